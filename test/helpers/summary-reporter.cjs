// Ends the run with the plain line "N passed, N failed, N skipped", which any CI reads.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests: p, numFailedTests: f, numPendingTests: s } = results;
    process.stdout.write(`\ntests: ${p} passed, ${f} failed, ${s} skipped\n`);
  }
}
module.exports = SummaryReporter;
