/**
 * Waits that speak (issue 15): every `--wait` prints the txid it waits on before it starts,
 * then progress (redrawn on a terminal, a line every 10 s elsewhere), and ends at its
 * `--timeout` with TIMEOUT, the txid and what to run next. Against a real btcd: wallet send,
 * channel open and escrow claim (seller and buyer); the progress display on its own.
 */
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import { jest } from '@jest/globals';
import { ROOT, spawnSwarmpay, swarmpay, until, type CliResult } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { Output } from '../src/cli/output.js';

const BIN = path.join(ROOT, 'bin', 'swarmpay');
const TXID = /\b[0-9a-f]{64}\b/;

/** A stream that keeps what is written, a terminal or not. */
function sink(isTTY: boolean): Writable & { isTTY: boolean; text(): string } {
  let text = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return Object.assign(w, { isTTY, text: () => text });
}

describe('progress display', () => {
  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  test('not on a terminal: the first line at once, then the latest message every 10 s, until the result; stdout holds only the result', () => {
    const io = { stdout: sink(false), stderr: sink(false) };
    const out = new Output(true, io);
    out.progress('waiting: 0/1');
    expect(io.stderr.text()).toBe('waiting: 0/1 (0 s)\n');
    jest.advanceTimersByTime(3000);
    out.progress('waiting: 0/2');
    expect(io.stderr.text()).toBe('waiting: 0/1 (0 s)\n');
    jest.advanceTimersByTime(7000);
    expect(io.stderr.text()).toBe('waiting: 0/1 (0 s)\nwaiting: 0/2 (10 s)\n');
    jest.advanceTimersByTime(10_000);
    expect(io.stderr.text().split('\n')).toHaveLength(4);
    out.result({ done: true }, 'done');
    jest.advanceTimersByTime(60_000);
    expect(io.stderr.text()).toBe('waiting: 0/1 (0 s)\nwaiting: 0/2 (10 s)\nwaiting: 0/2 (20 s)\n');
    expect(io.stdout.text()).toBe('{"done":true}\n');
  });

  test('on a terminal: one line redrawn in place, at each message and every second, gone before the result', () => {
    const io = { stdout: sink(false), stderr: sink(true) };
    const out = new Output(false, io);
    out.progress('funding: 0/1');
    jest.advanceTimersByTime(2000);
    out.progress('funding: 1/1');
    out.result({}, 'opened');
    // eslint-disable-next-line no-control-regex
    expect(io.stderr.text().replace(/\x1b\[(2|22)m/g, '')).toBe(['funding: 0/1 (0 s)', 'funding: 0/1 (1 s)', 'funding: 0/1 (2 s)', 'funding: 1/1 (2 s)', ''].map((l) => (l === '' ? '\r\x1b[2K' : `\r\x1b[2K${l}`)).join(''));
    expect(io.stdout.text()).toBe('opened\n');
  });
});

describe('waits on a real btcd', () => {
  let tmp: ReturnType<typeof tempDir>;
  let a: string; // sender, payer, buyer; runs the node
  let b: string; // payee, seller
  let pass: string;
  let chainArgs: string[];
  const file = (name: string) => path.join(tmp.dir, name);
  const aRun = (...args: string[]) => swarmpay(['--datadir', a, '--tpm', 'none', ...args]);
  const bRun = (...args: string[]) => swarmpay(['--datadir', b, '--tpm', 'none', ...chainArgs, ...args]);
  const mine = (n = 1) => aRun('node', 'mine', String(n));
  /** The txid the wait announced on stderr, which must come before any progress line: printed before the wait started. */
  const firstTxid = (r: CliResult) => {
    const said = /^(?:sent|funding|escrow funding) ([0-9a-f]{64})\b/m.exec(r.stderr);
    const progress = r.stderr.search(/\(\d+ s\)\n/);
    return said !== null && (progress < 0 || said.index < progress) ? said[1] : undefined;
  };
  const timedOut = (r: CliResult, txid: string | undefined) => {
    expect({ exit: r.code, code: r.json?.error?.code }).toEqual({ exit: 4, code: 'TIMEOUT' });
    expect(txid).toMatch(TXID);
    expect(r.json.error.message).toContain(txid);
    expect(r.json.error.message).toMatch(/may still (confirm|claim)/);
    expect(r.json.error.hint).toEqual(expect.any(String));
  };

  beforeAll(async () => {
    tmp = tempDir();
    a = file('a');
    b = file('b');
    pass = file('pass');
    writeFileSync(pass, 'a good long passphrase');
    const started = await aRun('node', 'start');
    expect(started.code).toBe(0);
    chainArgs = ['--rpc-url', started.json.rpcUrl, '--rpc-cookie', started.json.rpcCookie];
    expect((await aRun('wallet', 'create', '--mnemonic-file', file('a.words'), '--passphrase-file', pass)).code).toBe(0);
    expect((await bRun('wallet', 'create', '--mnemonic-file', file('b.words'), '--passphrase-file', pass)).code).toBe(0);
    for (let i = 0; i < 3; i++) expect((await aRun('node', 'mine', '1', '--to', (await aRun('wallet', 'address')).json.address)).code).toBe(0);
  });
  afterAll(async () => {
    await aRun('node', 'stop');
    tmp?.remove();
  });

  test('send --wait 1 --timeout 3 with nothing mined: the txid on stderr first, a progress line, then TIMEOUT naming it', async () => {
    const to = (await bRun('wallet', 'address')).json.address as string;
    const t0 = Date.now();
    const r = await aRun('wallet', 'send', to, '10000', '--passphrase-file', pass, '--wait', '1', '--timeout', '3');
    expect(Date.now() - t0).toBeLessThan(15_000);
    timedOut(r, firstTxid(r));
    expect(r.stderr).toMatch(/waiting for confirmations: 0\/1 \(\d+ s\)\n/);
    expect(r.json.error.message).toMatch(/broadcast/);
    // --json: stdout is the one error document, nothing else.
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    // It is out: the payee sees it unconfirmed.
    expect((await bRun('wallet', 'balance')).json.unconfirmed).toBe(10000);
  });

  test('send --wait 1: the txid is printed before anything confirms; a block mined meanwhile ends the wait', async () => {
    const to = (await bRun('wallet', 'address')).json.address as string;
    const sending = spawnSwarmpay(['--datadir', a, '--tpm', 'none', 'wallet', 'send', to, '20000', '--passphrase-file', pass, '--wait', '1', '--timeout', '60']);
    let stderr = '';
    sending.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await until(() => TXID.test(stderr));
    expect(sending.child.exitCode).toBeNull();
    await mine();
    const r = await sending.done;
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ txid: stderr.match(TXID)![0], confirmations: 1 });
  });

  test('--timeout without --wait is a usage error, and nothing is sent', async () => {
    const before = (await bRun('wallet', 'balance')).json;
    const r = await aRun('wallet', 'send', (await bRun('wallet', 'address')).json.address, '10000', '--passphrase-file', pass, '--timeout', '3');
    expect({ exit: r.code, code: r.json?.error?.code }).toEqual({ exit: 1, code: 'USAGE' });
    expect((await bRun('wallet', 'balance')).json).toEqual(before);
  });

  test('channel open --wait --timeout 2: the funding\'s txid first, TIMEOUT naming it; --resume --wait waits again', async () => {
    await mine();
    const cmd = [BIN, '--datadir', b, '--tpm', 'none', ...chainArgs, 'channel', 'serve', '--stdio', '--passphrase-file', pass].map((x) => `'${x}'`).join(' ');
    const r = await aRun('channel', 'open', '--peer-cmd', cmd, '--capacity', '200000', '--passphrase-file', pass, '--wait', '--timeout', '2');
    timedOut(r, firstTxid(r));
    const id = r.json.error.hint.match(/--resume ([0-9a-f]+)/)?.[1] as string;
    expect((await aRun('channel', 'show', id, '--passphrase-file', pass)).json).toMatchObject({ status: 'open', fundingTxid: firstTxid(r) });
    await mine();
    const again = await aRun('channel', 'open', '--resume', id, '--passphrase-file', pass, '--wait', '--timeout', '30');
    expect(again.code).toBe(0);
    expect(firstTxid(again)).toBe(firstTxid(r));
  });

  test('escrow claim --wait --timeout 2, seller and buyer: the funding\'s txid first, TIMEOUT naming it', async () => {
    await mine();
    const item = file('item');
    writeFileSync(item, randomBytes(2000));
    const offered = await bRun('escrow', 'offer', '--item', item, '--price', '50000', '--out', file('offer.json'), '--passphrase-file', pass);
    expect(offered.code).toBe(0);
    const id = offered.json.id as string;
    const accepted = await aRun('escrow', 'accept', file('offer.json'), '--max-price', '50000', '--out', file('acceptance.json'), '--passphrase-file', pass);
    expect(accepted.code).toBe(0);
    // Nothing mined: the funding has none of the confirmations the seller's claim waits for.
    const seller = await bRun('escrow', 'claim', id, '--acceptance', file('acceptance.json'), '--wait', '--timeout', '2', '--passphrase-file', pass);
    timedOut(seller, firstTxid(seller));
    expect(seller.stderr).toMatch(/funding: 0\/1 confirmations \(\d+ s\)\n/);
    const buyer = await aRun('escrow', 'claim', id, '--out', file('item.got'), '--wait', '--timeout', '2', '--passphrase-file', pass);
    timedOut(buyer, firstTxid(buyer));
    expect(firstTxid(buyer)).toBe(firstTxid(seller));
    await mine();
    expect((await bRun('escrow', 'claim', id, '--wait', '--timeout', '30', '--passphrase-file', pass)).code).toBe(0);
    expect((await aRun('escrow', 'claim', id, '--out', file('item.got'), '--wait', '--timeout', '30', '--passphrase-file', pass)).code).toBe(0);
  });
});
