/**
 * How this run of the CLI started: from the start-up snapshot (snapshot.ts says so as it runs
 * a command) or from its ES modules. `swarmpay info` shows it: a command some 50 ms slower than
 * it should be is an operator's first question, and a new Node without `npm run build` the answer.
 */
export type CliStart = 'snapshot' | 'modules';

let start: CliStart = 'modules';

export function startedFromSnapshot(): void {
  start = 'snapshot';
}

/** The start and the Node that runs: what `info` reports as its `cli` part. */
export function cliStart(): { start: CliStart; node: string } {
  return { start, node: process.version };
}
