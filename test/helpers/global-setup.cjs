// Names this run, so that its teardown stops only what this run started: two jest runs
// on one machine (a developer's and a helper's) must not kill each other's nodes.
module.exports = async function globalSetup() {
  process.env.SWARMPAY_TEST_RUN = String(process.pid);
};
