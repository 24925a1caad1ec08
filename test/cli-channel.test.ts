/**
 * Channels as a new user runs them: two datadirs on one machine, a real btcd, the payee a
 * real `channel serve` process. Over TCP and over --peer-cmd; 10,000 payments; close and
 * refund confirmed by the node; the payee killed with SIGKILL mid-batch and restarted.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, swarmpay, type CliResult } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { startServer, stopChild, type Server } from './helpers/server.js';

const BIN = path.join(ROOT, 'bin', 'swarmpay');

describe('channel CLI: two datadirs, a real btcd, a real payee process', () => {
  let tmp: ReturnType<typeof tempDir>;
  let payer: string;
  let payee: string;
  let pass: string;
  let chainArgs: string[];
  let server: Server;
  const a = (...args: string[]) => swarmpay(['--datadir', payer, '--tpm', 'none', ...args]);
  const b = (...args: string[]) => swarmpay(['--datadir', payee, '--tpm', 'none', ...chainArgs, ...args]);
  const refused = (r: CliResult, exit: number, code: string) => expect({ exit: r.code, code: r.json?.error?.code ?? lastLine(r)?.error?.code }).toEqual({ exit, code });
  const lastLine = (r: CliResult) => lastLineOf(r.stdout);
  const lastLineOf = (stdout: string) => {
    const lines = stdout.trim().split('\n');
    try {
      return JSON.parse(lines[lines.length - 1]!);
    } catch {
      return undefined;
    }
  };

  const serve = (datadir: string, port = 0) =>
    startServer(['--datadir', datadir, '--tpm', 'none', ...chainArgs, 'channel', 'serve', '--listen', `127.0.0.1:${port}`, '--passphrase-file', pass, '--poll', '1']);
  const stop = stopChild;
  const mine = (n = 1) => a('node', 'mine', String(n));

  beforeAll(async () => {
    tmp = tempDir();
    payer = path.join(tmp.dir, 'payer');
    payee = path.join(tmp.dir, 'payee');
    pass = path.join(tmp.dir, 'pass');
    writeFileSync(pass, 'a good long passphrase');
    const started = await a('node', 'start');
    expect(started.code).toBe(0);
    chainArgs = ['--rpc-url', started.json.rpcUrl, '--rpc-cookie', started.json.rpcCookie];
    for (const [run, name] of [[a, 'payer'], [b, 'payee']] as const) {
      expect((await run('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, `${name}.words`), '--passphrase-file', pass)).code).toBe(0);
    }
    for (let i = 0; i < 3; i++) {
      const addr = (await a('wallet', 'address')).json.address;
      expect((await a('node', 'mine', '1', '--to', addr)).code).toBe(0);
    }
    server = await serve(payee);
  });
  afterAll(async () => {
    if (server) await stop(server.child);
    await a('node', 'stop');
    tmp?.remove();
  });

  test('over TCP: open, 10,000 payments, close; the node pays the payee exactly the acknowledged sum minus the agreed fee', async () => {
    const opened = await a('channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key, '--capacity', '1000000', '--passphrase-file', pass);
    expect(opened.code).toBe(0);
    const id = opened.json.id as string;
    expect(opened.json).toMatchObject({ role: 'payer', status: 'open', capacity: 1000000 });
    // Before the funding confirms, payments are refused with what to do.
    refused(await a('channel', 'pay', id, '10', '--passphrase-file', pass), 2, 'CHANNEL_STATE');
    await mine();

    const paid = await a('channel', 'pay', id, '10', '--count', '10000', '--passphrase-file', pass);
    expect(paid.code).toBe(0);
    const lines = paid.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(10_001);
    expect(lines[10_000].summary).toMatchObject({ payments: 10000, acked: 10000, sats: 100000 });

    const show = await b('channel', 'show', id, '--passphrase-file', pass);
    expect(show.json).toMatchObject({ role: 'payee', status: 'open', paid: 100000, remaining: 900000 });

    const closed = await a('channel', 'close', id, '--passphrase-file', pass);
    expect(closed.code).toBe(0);
    await mine();
    const tx = await a('--json', 'channel', 'show', id, '--passphrase-file', pass);
    expect(tx.json.closeTxid).toBe(closed.json.closeTxid);
    const payeeShow = await b('channel', 'show', id, '--passphrase-file', pass);
    expect(payeeShow.json.status).toBe('closing');
    // What the node confirmed: read the close back through the payee's wallet balance.
    const bal = await b('wallet', 'balance');
    expect(bal.json.confirmed).toBe(100000 - payeeShow.json.closeFee);
  });

  test('over --peer-cmd: a payee spoken to through a command\'s stdin/stdout, then a refund after the expiry', async () => {
    const other = path.join(tmp.dir, 'payee2');
    expect((await swarmpay(['--datadir', other, 'wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'payee2.words'), '--passphrase-file', pass])).code).toBe(0);
    const cmd = [process.execPath, BIN, '--datadir', other, '--tpm', 'none', ...chainArgs, 'channel', 'serve', '--stdio', '--passphrase-file', pass].map((x) => `'${x}'`).join(' ');
    const opened = await a('channel', 'open', '--peer-cmd', cmd, '--capacity', '200000', '--expiry', '12', '--passphrase-file', pass);
    expect(opened.code).toBe(0);
    const id = opened.json.id as string;
    await mine();
    const paid = await a('channel', 'pay', id, '10', '--count', '10000', '--passphrase-file', pass);
    expect(paid.code).toBe(0);
    expect(lastLineOf(paid.stdout).summary).toMatchObject({ acked: 10000, sats: 100000 });
    // Too early: the node would refuse, so swarmpay says when it becomes possible.
    const early = await a('channel', 'refund', id, '--passphrase-file', pass);
    refused(early, 2, 'CHANNEL_STATE');
    expect(early.json.error.hint).toMatch(/in \d+ blocks/);
    await mine(12);
    const refund = await a('channel', 'refund', id, '--passphrase-file', pass);
    expect(refund.code).toBe(0);
    await mine();
    const show = await a('channel', 'show', id, '--passphrase-file', pass);
    expect(show.json).toMatchObject({ status: 'refunded', refundTxid: refund.json.refundTxid });
  });

  test('a batch is idempotent; a malformed batch pays nothing', async () => {
    const opened = await a('channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key, '--capacity', '300000', '--passphrase-file', pass);
    const id = opened.json.id as string;
    await mine();
    const batch = path.join(tmp.dir, 'batch.jsonl');
    writeFileSync(batch, Array.from({ length: 100 }, (_, i) => JSON.stringify({ id: `inv-${i}`, channel: id, sats: 100 })).join('\n') + '\n');
    const first = await a('channel', 'pay', '--batch', batch, '--passphrase-file', pass);
    expect(first.code).toBe(0);
    expect(lastLine(first).summary).toMatchObject({ acked: 100, sats: 10000, skipped: 0 });
    const again = await a('channel', 'pay', '--batch', batch, '--passphrase-file', pass);
    expect(again.code).toBe(0);
    expect(lastLine(again).summary).toMatchObject({ acked: 0, sats: 0, skipped: 100 });
    writeFileSync(batch, `${JSON.stringify({ id: 'x', channel: id, sats: 5 })}\nnot json\n`);
    refused(await a('channel', 'pay', '--batch', batch, '--passphrase-file', pass), 2, 'INVALID_FILE');
    expect((await b('channel', 'show', id, '--passphrase-file', pass)).json.paid).toBe(10000);
  });

  test('bad input: wrong pinned key, unknown channel, over capacity', async () => {
    refused(await a('channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--peer-key', 'ab'.repeat(32), '--capacity', '100000', '--passphrase-file', pass), 2, 'PEER_KEY_MISMATCH');
    refused(await a('channel', 'pay', '0123456789abcdef', '10', '--passphrase-file', pass), 3, 'CHANNEL_NOT_FOUND');
    refused(await a('channel', 'open', '--peer', '127.0.0.1:1', '--capacity', '100000', '--passphrase-file', pass), 4, 'PEER_UNREACHABLE');
    const opened = await a('channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--capacity', '20000', '--passphrase-file', pass);
    await mine();
    refused(await a('channel', 'pay', opened.json.id, '30000', '--passphrase-file', pass), 2, 'CHANNEL_REFUSED');
  });

  test('the payee killed with SIGKILL mid-batch loses no acknowledged payment, and paying goes on after it restarts', async () => {
    const opened = await a('channel', 'open', '--peer', `127.0.0.1:${server.port}`, '--peer-key', server.key, '--capacity', '5000000', '--passphrase-file', pass);
    const id = opened.json.id as string;
    await mine();
    const paying = swarmpay(['--datadir', payer, '--tpm', 'none', 'channel', 'pay', id, '1', '--count', '200000', '--passphrase-file', pass]);
    await new Promise((r) => setTimeout(r, 1500));
    await stop(server.child, 'SIGKILL');
    const r = await paying;
    expect(r.code).toBe(4); // the payee vanished
    const acked = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.acked === true).length;
    expect(acked).toBeGreaterThan(0);
    expect(acked).toBeLessThan(200000);
    server = await serve(payee, server.port); // where the payer will look for it again
    const held = (await b('channel', 'show', id, '--passphrase-file', pass)).json.paid as number;
    expect(held).toBeGreaterThanOrEqual(acked); // every acknowledged payment survived
    const more = await a('channel', 'pay', id, '1', '--count', '10', '--passphrase-file', pass);
    expect(more.code).toBe(0);
    expect((await b('channel', 'show', id, '--passphrase-file', pass)).json.paid).toBe(held + 10);
  });
});
