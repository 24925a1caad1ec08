// Last resort after the whole run: stop any btcd or swtpm a test started in a temporary
// folder and could not stop itself (a test that timed out before its afterAll, say); only
// this run's folders, which carry its name (global-setup.cjs, tmp.ts).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

module.exports = async function globalTeardown() {
  const escape = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const marker = new RegExp(`${escape(path.join(os.tmpdir(), 'swarmpay-'))}(test|node|swtpm)-${escape(process.env.SWARMPAY_TEST_RUN ?? '')}-`);
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd;
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (/\b(btcd|swtpm)\b/.test(cmd) && marker.test(cmd)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
  }
};
