/**
 * The peer link over a child process's stdin/stdout (spawnPeer, the `--peer-cmd` path) to
 * a real `node` that serves it on its own stdio (stdioPeer, the `--stdio` path): round
 * trips, the child's fate when the link ends, commands that fail or are not peers.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { generateStaticKey } from '../src/peer/keys.js';
import type { PeerLink } from '../src/peer/link.js';
import { spawnPeer } from '../src/peer/transports.js';
import { expectCode } from './helpers/expect.js';
import { tempDir } from './helpers/tmp.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const tmp = tempDir('swarmpay-peer-process-');
const SERVER_KEY = generateStaticKey();
const CLIENT_KEY = generateStaticKey();

/** The link's sources as JavaScript beside the scripts, so a child `node` runs this very code without a build. */
function transpileLink(dir: string): void {
  const files = ['src/errors.ts', ...readdirSync(path.join(ROOT, 'src/peer')).map((f) => `src/peer/${f}`)];
  for (const f of files) {
    const js = ts.transpileModule(readFileSync(path.join(ROOT, f), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } });
    mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
    writeFileSync(path.join(dir, f.replace(/\.ts$/, '.js')), js.outputText);
  }
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
}

/** Serves one peer on stdin/stdout and echoes each message; "die" makes it SIGKILL itself mid-link. */
const ECHO = `
import { stdioPeer } from './src/peer/transports.js';
import { staticKeyFromPrivate } from './src/peer/keys.js';
const link = await stdioPeer(staticKeyFromPrivate(Buffer.from(process.argv[2], 'hex')));
process.stderr.write('echo peer: serving ' + link.remoteKey.toString('hex') + '\\n');
for await (const m of link.messages()) {
  if (m.toString() === 'die') process.kill(process.pid, 'SIGKILL');
  link.send(m);
}
await link.close();
`;

/** A user of spawnPeer in its own process, to see what reaches that process's stdout and stderr. */
const CLIENT = `
import { spawnPeer } from './src/peer/transports.js';
import { generateStaticKey } from './src/peer/keys.js';
const link = await spawnPeer(process.argv[2], generateStaticKey());
link.send(Buffer.from('hello'));
for await (const m of link.messages()) { process.stdout.write('got ' + m.toString()); break; }
await link.close();
`;

const q = (s: string) => `'${s}'`;
const echoCommand = (pidFile?: string) =>
  `${pidFile ? `echo $$ > ${q(pidFile)}; ` : ''}exec ${q(process.execPath)} ${q(path.join(tmp.dir, 'echo.js'))} ${SERVER_KEY.privateKey.toString('hex')}`;

beforeAll(() => {
  transpileLink(tmp.dir);
  writeFileSync(path.join(tmp.dir, 'echo.js'), ECHO);
  writeFileSync(path.join(tmp.dir, 'client.js'), CLIENT);
});
afterAll(() => tmp.remove());

const links: PeerLink[] = [];
afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.close()));
});

async function spawnEcho(pidFile?: string): Promise<PeerLink> {
  // Its stderr is checked once, below; here it would only fill the test log.
  const link = await spawnPeer(`${echoCommand(pidFile)} 2>/dev/null`, CLIENT_KEY, { peerKey: SERVER_KEY.publicKey });
  links.push(link);
  return link;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (a few seconds at most) for the process whose pid the command wrote to be gone. */
async function gone(pidFile: string): Promise<boolean> {
  const pid = Number(readFileSync(pidFile, 'utf8'));
  for (let i = 0; i < 100 && alive(pid); i += 1) await sleep(50);
  return !alive(pid);
}

let pidFiles = 0;
const pidFile = () => path.join(tmp.dir, `pid-${(pidFiles += 1)}`);

test('round trip through a child process: every message echoed, in order, with a throughput figure', async () => {
  const link = await spawnEcho();
  expect(link.remoteKey).toEqual(SERVER_KEY.publicKey);
  const COUNT = 20_000;
  const start = performance.now();
  // Read while sending, and let the pipe take what was sent: neither side holds more than a few MiB for the other.
  const reading = (async () => {
    let n = 0;
    for await (const m of link.messages()) {
      expect(m.toString()).toBe(`payment ${n} `.padEnd(200, '.'));
      if (++n === COUNT) break;
    }
  })();
  for (let i = 0; i < COUNT; i += 1) {
    link.send(Buffer.from(`payment ${i} `.padEnd(200, '.')));
    if (i % 1000 === 999) await link.drained();
  }
  await reading;
  const ms = performance.now() - start;
  console.log(`peer link over a child's stdin/stdout: ${COUNT} x 200-byte messages echoed in ${(ms / 1000).toFixed(2)} s, ${Math.round(COUNT / (ms / 1000))} round trips/s`);
  await link.close();
  await expect(link.closed).resolves.toBeUndefined();
});

test('the child is gone once the link is closed', async () => {
  const pids = pidFile();
  const link = await spawnEcho(pids);
  link.send(Buffer.from('one'));
  for await (const m of link.messages()) if (m.toString() === 'one') break;
  await link.close();
  expect(await gone(pids)).toBe(true);
});

test('a child killed mid-link: the reader gets a clear error, not a hang', async () => {
  const link = await spawnEcho();
  link.send(Buffer.from('first'));
  for await (const m of link.messages()) if (m.toString() === 'first') break;
  link.send(Buffer.from('die'));
  const got: string[] = [];
  const e = await expectCode(
    (async () => {
      for await (const m of link.messages()) got.push(m.toString());
    })(),
    'PEER_UNREACHABLE',
  );
  expect(got).toEqual([]);
  expect(e.message).toMatch(/^peer command ".*": ended the connection without closing the link/);
});

test("a command that fails says how: the command's exit status", async () => {
  const e = await expectCode(spawnPeer('exit 255', CLIENT_KEY), 'PEER_UNREACHABLE');
  expect(e.message).toMatch(/^peer command "exit 255": .*; the command exited with status 255$/);
  const missing = await expectCode(spawnPeer('swarmpay-no-such-command-here 2>/dev/null', CLIENT_KEY), 'PEER_UNREACHABLE');
  expect(missing.message).toMatch(/status 127$/);
});

test('a command that is not a peer is a protocol error, and is killed', async () => {
  const pids = pidFile();
  await expectCode(spawnPeer(`echo $$ > ${q(pids)}; exec yes 2>/dev/null`, CLIENT_KEY), 'PEER_PROTOCOL');
  expect(await gone(pids)).toBe(true);
});

test('a command that says nothing fails the handshake timeout, and is killed', async () => {
  const pids = pidFile();
  const e = await expectCode(spawnPeer(`echo $$ > ${q(pids)}; exec sleep 60`, CLIENT_KEY, { handshakeTimeoutMs: 300 }), 'PEER_TIMEOUT');
  expect(e.message).toMatch(/did not complete the handshake within 0.3 s$/);
  expect(await gone(pids)).toBe(true);
});

test("the peer command's stderr reaches ours; our stdout carries only what we print", async () => {
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
    execFile(process.execPath, [path.join(tmp.dir, 'client.js'), echoCommand()], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr }))),
  );
  expect(stdout).toBe('got hello');
  expect(stderr).toMatch(/^echo peer: serving [0-9a-f]{64}\n$/);
});
