import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { portFree, freePort } from '../src/util/daemon.js';
import { startSwtpm, stopSwtpm } from '../src/tpm/swtpm-process.js';
import { Tpm } from '../src/tpm/tpm.js';
import { tempDir } from './helpers/tmp.js';
const run = promisify(execFile);
test('exp', async () => {
  const tmp = tempDir('x-');
  let port = 0;
  for (;;) { port = await freePort(); if (port < 65535 && await portFree(port + 1)) break; }
  writeFileSync(path.join(tmp.dir, 'tpm.json'), JSON.stringify({ pid: 999999999, host: '127.0.0.1', port, ctrlPort: port + 1 }));
  const { state } = await startSwtpm(tmp.dir);
  console.log(state);
  const tcti = `swtpm:host=127.0.0.1,port=${port}`;
  const tpm = await Tpm.open({ kind: 'swtpm', host: '127.0.0.1', port });
  console.log((await tpm.random(8)).toString('hex'));
  try {
    const r = await run('tpm2_getrandom', ['--hex', '8'], { env: { ...process.env, TPM2TOOLS_TCTI: tcti }, timeout: 5000 });
    console.log('while open', r.stdout, r.stderr);
  } catch (e) { console.log('while open fail', String(e)); }
  try { console.log((await tpm.random(8)).toString('hex')); } catch (e) { console.log('after', e); }
  await tpm.close();
  try {
    const r = await run('tpm2_getrandom', ['--hex', '8'], { env: { ...process.env, TPM2TOOLS_TCTI: tcti }, timeout: 5000 });
    console.log('closed', r.stdout, r.stderr);
  } catch (e) { console.log('closed fail', String(e)); }
  await stopSwtpm(tmp.dir); tmp.remove();
});
