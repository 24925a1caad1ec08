/**
 * `wallet history` against a real btcd: a receive, a send, a bump, a channel opened and
 * closed, an escrow funded and claimed, from both sides; each transaction's label, net
 * amount and fee as the chain has them, newest first, the mempool on top; the --json shape.
 * The labels' absence said only where a contract could be involved, and never the history
 * failed for them (a TPM out of reach); nodes without an address index refused.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { networks, payments } from 'bitcoinjs-lib';
import { execFileSync } from 'node:child_process';
import { ROOT, swarmpay, type CliResult } from './helpers/cli.js';
import { startServer, stopChild, type Server } from './helpers/server.js';
import { startTestTpm } from './helpers/swtpm.js';
import { startBareBtcd } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { Swarmpay } from '../src/api/swarmpay.js';
import { makeRpcChain } from '../src/chain/rpc-chain.js';
import { RpcClient } from '../src/chain/rpc-client.js';
import { readReplacements, recordReplacement } from '../src/wallet/replacements.js';

const PASSPHRASE = 'a good long passphrase';

interface Entry {
  txid: string;
  kind: string;
  amount: number;
  fee?: number;
  confirmations: number;
  height?: number;
  time?: string;
  coinbase?: true;
  replaces?: string;
  channels?: string[];
  escrows?: string[];
  credits: { txid: string; vout: number; address: string; path: string; kind: string; value: number }[];
  debits: { txid: string; vout: number; address: string; path: string; kind: string; value: number }[];
  others: { vout: number; address?: string; script?: string; value: number }[];
}

describe('wallet history on a real btcd', () => {
  let tmp: ReturnType<typeof tempDir>;
  let alice: string;
  let bob: string;
  let pass: string;
  let chainArgs: string[];
  let server: Server | undefined;
  const a = (...args: string[]) => swarmpay(['--datadir', alice, '--tpm', 'none', ...args]);
  const b = (...args: string[]) => swarmpay(['--datadir', bob, '--tpm', 'none', ...chainArgs, ...args]);
  const withPass = ['--passphrase-file', ''];
  const history = async (run: typeof a, ...extra: string[]): Promise<{ contracts: string; transactions: Entry[] }> => {
    const r = await run('wallet', 'history', ...extra);
    expect([r.code, r.json?.error]).toEqual([0, undefined]);
    return r.json;
  };
  const labelled = (run: typeof a) => history(run, '--passphrase-file', pass);
  const mine = async (n = 1) => expect((await a('node', 'mine', String(n))).code).toBe(0);
  const other = (n: number) => payments.p2wpkh({ hash: Buffer.alloc(20, n), network: networks.regtest }).address!;
  const ok = (r: CliResult) => {
    expect([r.code, r.json?.error]).toEqual([0, undefined]);
    return r.json;
  };
  const balance = async (run: typeof a) => {
    const bal = (await run('wallet', 'balance')).json;
    return bal.confirmed + bal.unconfirmed + bal.immature;
  };

  beforeAll(async () => {
    tmp = tempDir();
    alice = path.join(tmp.dir, 'alice');
    bob = path.join(tmp.dir, 'bob');
    pass = path.join(tmp.dir, 'pass');
    withPass[1] = pass;
    writeFileSync(pass, PASSPHRASE);
    const started = ok(await a('node', 'start'));
    chainArgs = ['--rpc-url', started.rpcUrl, '--rpc-cookie', started.rpcCookie];
    ok(await a('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'a.words'), '--passphrase-file', pass));
    ok(await b('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'b.words'), '--passphrase-file', pass));
    server = await startServer(['--datadir', bob, '--tpm', 'none', ...chainArgs, 'channel', 'serve', '--listen', '127.0.0.1:0', '--passphrase-file', pass, '--poll', '1']);
  });
  afterAll(async () => {
    if (server) await stopChild(server.child);
    await a('node', 'stop');
    tmp?.remove();
  });

  test('a new wallet has no history, and nothing to label: no warning', async () => {
    const r = await a('wallet', 'history');
    expect([r.code, r.json, r.stderr]).toEqual([0, { contracts: 'none', transactions: [] }, '']);
  });

  test('receive, send, bump, channel open and close, escrow funding and claim: labels, amounts, fees, order', async () => {
    // Receive: the faucet pays a block's reward to Alice.
    const addr = ok(await a('wallet', 'address')).address as string;
    ok(await a('node', 'mine', '1', '--to', addr));

    // A send, confirmed.
    const sent = ok(await a('wallet', 'send', other(1), '250000', ...withPass));
    await mine();

    // A channel to Bob, 20,000 sats paid, closed.
    const opened = ok(await a('channel', 'open', '--peer', `127.0.0.1:${server!.port}`, '--peer-key', server!.key, '--capacity', '100000', ...withPass));
    await mine();
    ok(await a('channel', 'pay', opened.id, '20000', ...withPass));
    const closed = ok(await a('channel', 'close', opened.id, ...withPass));
    // Alice raises the close's fee by a child of her output of it (CPFP).
    const cpfp = ok(await a('channel', 'bump', opened.id, '--fee-rate', '20', ...withPass));
    await mine();
    const payeeShow = ok(await b('channel', 'show', opened.id, ...withPass));

    // An escrow: Bob offers, Alice funds, Bob claims.
    const item = path.join(tmp.dir, 'item.bin');
    writeFileSync(item, randomBytes(1000));
    const offerFile = path.join(tmp.dir, 'item.offer.json');
    const offered = ok(await b('escrow', 'offer', '--item', item, '--price', '50000', '--out', offerFile, ...withPass));
    const accepted = ok(await a('escrow', 'accept', offerFile, '--max-price', '50000', '--out', path.join(tmp.dir, 'item.acceptance.json'), ...withPass));
    await mine();
    const claimed = ok(await b('escrow', 'claim', offered.id, '--acceptance', path.join(tmp.dir, 'item.acceptance.json'), ...withPass));
    await mine();

    // A payment, then its replacement at a higher fee: in the mempool, on top.
    const slow = ok(await a('wallet', 'send', other(2), '100000', '--fee-rate', '2', ...withPass));
    const bumped = ok(await a('wallet', 'bump', slow.txid, '--fee-rate', '10', ...withPass));

    const h = await labelled(a);
    expect(h.contracts).toBe('labelled');
    const kinds = h.transactions.map((t) => [t.kind, t.txid]);
    expect(kinds).toEqual([
      ['bump', bumped.txid],
      ['escrow-funding', accepted.fundingTxid],
      // In one block, the child above its parent.
      ['channel-cpfp', cpfp.bumpTxid],
      ['channel-close', closed.closeTxid],
      ['channel-funding', opened.fundingTxid],
      ['send', sent.txid],
      ['receive', expect.any(String)],
    ]);
    const [bump, funding, child, close, chFunding, send, receive] = h.transactions as [Entry, Entry, Entry, Entry, Entry, Entry, Entry];

    // Net amounts to the wallet, and the fees it paid.
    expect(receive).toMatchObject({ amount: receive.credits[0]!.value, credits: [{ address: addr, kind: 'receive' }], debits: [] });
    expect(receive.fee).toBeUndefined();
    expect(send).toMatchObject({ amount: -(250000 + sent.fee), fee: sent.fee, others: [{ address: other(1), value: 250000 }] });
    expect(chFunding).toMatchObject({ amount: -(100000 + opened.fundingFee), fee: opened.fundingFee, channels: [opened.id] });
    expect(close).toMatchObject({ amount: 100000 - 20000, channels: [opened.id], credits: [{ value: 80000 }], debits: [] });
    expect(close.fee).toBeUndefined();
    // The child spends the close's output back to the wallet: only its fee leaves.
    expect(child).toMatchObject({ amount: -cpfp.fee, fee: cpfp.fee, channels: [opened.id], height: close.height, debits: [{ txid: closed.closeTxid, value: 80000 }], others: [] });
    expect(funding).toMatchObject({ amount: -(50000 + accepted.fee), fee: accepted.fee, escrows: [offered.id] });
    expect(bump).toMatchObject({ amount: -(100000 + bumped.fee), fee: bumped.fee, replaces: slow.txid, confirmations: 0, others: [{ address: other(2), value: 100000 }] });
    // The payment it replaced is gone from the chain, and from the history.
    expect(h.transactions.map((t) => t.txid)).not.toContain(slow.txid);

    // Order: the mempool on top (no height, no time), then heights down.
    expect(bump.height).toBeUndefined();
    expect(bump.time).toBeUndefined();
    const heights = h.transactions.slice(1).map((t) => t.height!);
    expect(heights).toEqual([...heights].sort((x, y) => y - x));
    for (const t of h.transactions.slice(1)) expect(t.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    // The amounts add up to the balance.
    expect(h.transactions.reduce((s, t) => s + t.amount, 0)).toBe(await balance(a));

    // Bob's side: the close and the claim paid him.
    const hb = await labelled(b);
    expect(hb.transactions.map((t) => [t.kind, t.txid, t.amount])).toEqual([
      ['escrow-claim', claimed.claimTxid, 50000 - claimed.fee],
      ['channel-close', closed.closeTxid, 20000 - payeeShow.closeFee],
    ]);
    expect(hb.transactions[0]!.escrows).toEqual([offered.id]);
    expect(hb.transactions.reduce((s, t) => s + t.amount, 0)).toBe(await balance(b));

    // Without the passphrase the history is whole but unlabelled, and says so.
    const locked = await history(a);
    expect(locked.contracts).toBe('locked');
    expect(locked.transactions.map((t) => t.kind)).toEqual(['bump', 'send', 'self', 'receive', 'send', 'send', 'receive']);
    expect(locked.transactions.map((t) => t.amount)).toEqual(h.transactions.map((t) => t.amount));
    expect((await a('wallet', 'history')).stderr).toContain('not labelled');

    // --limit: the newest N.
    expect((await history(a, '--limit', '2', '--passphrase-file', pass)).transactions).toEqual(h.transactions.slice(0, 2));
    // Once mined, the bump keeps its label and leaves the top of the mempool for a height.
    await mine();
    const tip = ok(await a('info')).node.height as number;
    const after = await labelled(a);
    expect(after.transactions[0]).toMatchObject({ kind: 'bump', txid: bumped.txid, confirmations: 1, height: tip });
    expect(after.transactions[1]).toMatchObject({ kind: 'escrow-funding', confirmations: tip - heights[0]! + 1 });
  });

  test('the human form: one line each, newest first, with the kind, the signed amount, the fee, the txid and whose', async () => {
    const h = await labelled(a);
    const text = execFileSync(path.join(ROOT, 'bin', 'swarmpay'), ['--datadir', alice, '--tpm', 'none', 'wallet', 'history', '--passphrase-file', pass], { env: { ...process.env, NO_COLOR: '1' }, encoding: 'utf8' });
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(h.transactions.length);
    lines.forEach((line, n) => {
      const t = h.transactions[n]!;
      expect(line).toContain(`  ${t.kind}  `);
      expect(line).toContain(`${t.amount > 0 ? '+' : ''}${t.amount} sats`);
      expect(line).toContain(t.txid);
      if (t.fee !== undefined) expect(line).toContain(`fee ${t.fee}`);
      for (const id of t.channels ?? []) expect(line).toContain(`channel ${id}`);
      if (t.replaces) expect(line).toContain(`replaces ${t.replaces}`);
    });
  });

  test('a backend without an address index refuses with HISTORY_UNAVAILABLE, never a part of the history as all of it', async () => {
    const core = makeRpcChain('core', 'regtest', new RpcClient({ url: 'http://127.0.0.1:1/', user: 'u', password: 'p' }));
    await expect(core.history(['bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080'])).rejects.toMatchObject({ code: 'HISTORY_UNAVAILABLE' });
    const cookie = path.join(tmp.dir, 'cookie');
    writeFileSync(cookie, 'u:p');
    // Refused before any node is asked anything (none listens on port 1).
    const r = await swarmpay(['--datadir', alice, '--chain', 'bitcoind', '--rpc-url', 'http://127.0.0.1:1/', '--rpc-cookie', cookie, 'wallet', 'history']);
    expect([r.code, r.json.error.code]).toEqual([2, 'HISTORY_UNAVAILABLE']);
    expect(r.json.error.hint).toContain('btcd');
  });

  test('a btcd run without --addrindex refuses with HISTORY_UNAVAILABLE, saying what to do', async () => {
    const dir = path.join(tmp.dir, 'btcd-no-addrindex');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'cookie'), 'u:p');
    const btcd = await startBareBtcd(dir, ['--txindex']);
    try {
      const r = await swarmpay(['--datadir', alice, '--tpm', 'none', '--chain', 'btcd', '--rpc-url', btcd.url, '--rpc-cookie', path.join(dir, 'cookie'), 'wallet', 'history']);
      expect([r.code, r.json.error.code]).toEqual([2, 'HISTORY_UNAVAILABLE']);
      expect(r.json.error.message).toContain('--addrindex');
      expect(r.json.error.hint).toContain('--addrindex');
    } finally {
      await btcd.stop();
    }
  });

  test('--limit must be a whole number from 1, from the command line and in the library', async () => {
    const r = await a('wallet', 'history', '--limit', '0');
    expect([r.code, r.json.error.code]).toEqual([1, 'USAGE']);
    const api = new Swarmpay({ datadir: alice, tpm: 'none' });
    expect((await api.history({ limit: 2 })).transactions).toHaveLength(2);
    // Never a few entries silently dropped (a negative limit sliced the newest off the end) nor a part passed off as a limit.
    for (const limit of [-1, 0, 1.5, Number.NaN, Infinity]) await expect(api.history({ limit })).rejects.toMatchObject({ code: 'USAGE' });
  });

  describe('a wallet that never used a contract, then paid one', () => {
    let carol: string;
    const c = (...args: string[]) => swarmpay(['--datadir', carol, '--tpm', 'none', ...chainArgs, ...args]);
    let received: string;

    beforeAll(async () => {
      carol = path.join(tmp.dir, 'carol');
      ok(await c('wallet', 'create', '--mnemonic-file', path.join(tmp.dir, 'c.words'), '--passphrase-file', pass));
      const to = ok(await c('wallet', 'address')).address as string;
      received = ok(await a('wallet', 'send', to, '300000', ...withPass)).txid;
      await mine();
    });

    test('plain payments only: nothing to label, no warning, the keystore not opened', async () => {
      const r = await c('wallet', 'history');
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.json.contracts).toBe('none');
      expect(r.json.transactions.map((t: Entry) => [t.kind, t.txid])).toEqual([['receive', received]]);
      // A wrong passphrase is not even tried: there was nothing to open the keystore for.
      writeFileSync(path.join(tmp.dir, 'wrong'), 'not the passphrase');
      expect((await c('wallet', 'history', '--passphrase-file', path.join(tmp.dir, 'wrong'))).json.contracts).toBe('none');
    });

    test('once it pays a P2WSH output (a contract could be involved): the warning without the passphrase, labelled with it', async () => {
      const p2wsh = payments.p2wsh({ redeem: { output: Buffer.from([0x51]) }, network: networks.regtest }).address!;
      const paid = ok(await c('wallet', 'send', p2wsh, '50000', ...withPass)).txid as string;
      await mine();
      const locked = await c('wallet', 'history');
      expect([locked.code, locked.json.contracts]).toEqual([0, 'locked']);
      expect(locked.stderr).toContain('warning: channel and escrow transactions are not labelled');
      expect(locked.json.transactions.map((t: Entry) => [t.kind, t.txid])).toEqual([['send', paid], ['receive', received]]);
      const labelled = await c('wallet', 'history', '--passphrase-file', pass);
      expect([labelled.code, labelled.json.contracts, labelled.stderr]).toEqual([0, 'labelled', '']);
      expect(labelled.json.transactions).toEqual(locked.json.transactions);
      // A wrong passphrase is the operator's to correct: said (exit 5), not shown as an unlabelled history.
      const wrong = await c('wallet', 'history', '--passphrase-file', path.join(tmp.dir, 'wrong'));
      expect([wrong.code, wrong.json.error?.code]).toEqual([5, 'WRONG_PASSPHRASE']);
    });

    test('a TPM keystore whose TPM cannot be reached: the whole history, unlabelled, with the reason as a warning', async () => {
      const tpm = await startTestTpm();
      let stopped = false;
      try {
        const t = (...args: string[]) => swarmpay(['--datadir', carol, '--tpm', tpm.arg, ...chainArgs, ...args]);
        ok(await t('tpm', 'provision', '--passphrase-file', pass));
        const sealed = await t('wallet', 'history');
        expect([sealed.code, sealed.json.contracts, sealed.stderr]).toEqual([0, 'labelled', '']);
        await tpm.stop();
        stopped = true;
        const r = await t('wallet', 'history');
        expect([r.code, r.json.contracts]).toEqual([0, 'unavailable']);
        expect(r.json.contractsError).toMatchObject({ code: expect.stringMatching(/^TPM_/), message: expect.any(String) });
        expect(r.json.transactions).toEqual(sealed.json.transactions);
        expect(r.stderr).toContain(`warning: channel and escrow transactions are not labelled (they show as sends and receives): the keystore could not be opened: ${r.json.contractsError.code}`);
      } finally {
        if (!stopped) await tpm.stop();
      }
    });
  });
});

describe('the record of replacements', () => {
  test('a line torn by a crash, or one that is not a replacement, is skipped; the others are read', () => {
    const tmp = tempDir();
    try {
      const [t1, t2, t3] = ['11', '22', '33'].map((h) => h.repeat(32));
      recordReplacement(tmp.dir, t2!, t1!);
      writeFileSync(path.join(tmp.dir, 'replacements.jsonl'), '{"txid":"nothex","replaces":"x"}\n{"txid":"' + t3, { flag: 'a' });
      expect([...readReplacements(tmp.dir)]).toEqual([[t2, t1]]);
      // The next record after a torn line is a line of its own.
      recordReplacement(tmp.dir, t1!, t3!);
      expect([...readReplacements(tmp.dir)]).toEqual([[t2, t1], [t1, t3]]);
      expect(readReplacements(path.join(tmp.dir, 'none')).size).toBe(0);
    } finally {
      tmp.remove();
    }
  });
});
