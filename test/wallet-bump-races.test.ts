/**
 * Fee bumps racing payments, on a real btcd: a replacement evicts whatever spends the
 * payment it replaces, so a bump (RBF, or a CPFP child replacing an earlier child) must
 * never go out over a payment that spent its change. A `wallet send` in another process
 * during a bump's prompt does not pick the change (coin locks), and one the locks do not
 * stop is seen just before the bump would be signed, which is then refused.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Transaction, networks, payments } from 'bitcoinjs-lib';
import { startTestNode, type TestNode } from './helpers/node.js';
import { swarmpay } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { expectCode } from './helpers/expect.js';
import { TEST_PASSPHRASE, fund, testWallet, type TestWallet } from './helpers/wallets.js';
import { Swarmpay } from '../src/api/swarmpay.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';
import { contractContext } from '../src/wallet/contract-wallet.js';
import { signCpfp, planCpfp, type CpfpParent } from '../src/wallet/cpfp.js';
import { planSend, signSend } from '../src/wallet/send.js';
import { receiveAddress, walletAccount } from '../src/wallet/wallet.js';
import type { SignedTx } from '../src/bitcoin/spend.js';

describe('fee bumps racing payments on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let passFile: string;
  let env: Record<string, string>;
  const apis: Swarmpay[] = [];
  let n = 0;

  /** An address of no wallet here. */
  const other = () => payments.p2wpkh({ hash: Buffer.alloc(20, ++n), network: networks.regtest }).address!;
  const mempool = async () => node.rpc.call<string[]>('getrawmempool');
  const account = (w: TestWallet) => walletAccount(w.networkDir, 'regtest');

  /** A new wallet with a confirmed coin of each of `coins`, and the library and the CLI on it. */
  const wallet = async (...coins: bigint[]) => {
    const datadir = path.join(tmp.dir, `w${++n}`);
    const w = await testWallet(datadir);
    for (const c of coins) await fund(node.chain, w, c);
    const api = new Swarmpay({ datadir, chain: 'btcd', rpcUrl: node.state.rpcUrl, rpcCookie: node.state.cookieFile, tpm: 'none' });
    apis.push(api);
    const cli = (...args: string[]) => swarmpay(['--datadir', datadir, ...args], env);
    return { w, api, cli };
  };

  /** A 1 sat/vB payment of `sats` from `w` to a stranger, broadcast; its change stays unconfirmed. */
  const lowFeeSend = async (w: TestWallet, sats: bigint): Promise<SignedTx> => {
    const signed = signSend(await planSend(node.chain, account(w), 'regtest', other(), sats, FeeRate.ofSatPerVb(1n)), w.seed, 'regtest');
    await node.chain.broadcast(signed.hex);
    return signed;
  };

  const inputsOf = async (txid: string) => (await node.chain.getTransaction(txid))!.inputs.map((i) => `${i.txid}:${i.vout}`);
  /** The outpoint of `tx`'s change: its last output. */
  const changeOf = async (txid: string) => `${txid}:${(await node.chain.getTransaction(txid))!.outputs.length - 1}`;

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    passFile = path.join(tmp.dir, 'pass');
    writeFileSync(passFile, `${TEST_PASSPHRASE}\n`);
    env = { SWARMPAY_CHAIN: 'btcd', SWARMPAY_RPC_URL: node.state.rpcUrl, SWARMPAY_RPC_COOKIE: node.state.cookieFile, SWARMPAY_TPM: 'none' };
  });
  afterAll(async () => {
    for (const a of apis) await a.close();
    await node?.stop();
    tmp?.remove();
  });
  afterEach(async () => {
    await node.chain.mine(1);
  });

  test('a `wallet send` in another process during a bump\'s prompt picks another coin than the change, and both go out', async () => {
    const { w, api, cli } = await wallet(1_000_000n, 200_000n);
    const a = await lowFeeSend(w, 300_000n);
    const change = await changeOf(a.txid);
    let sent: { code: number; json: { txid?: string; error?: unknown } } | undefined;
    const bump = await api.bump(a.txid, {
      feeRate: FeeRate.ofSatPerVb(5n),
      passphrase: TEST_PASSPHRASE,
      confirm: async () => {
        // Largest first, the ~700,000 sats of unconfirmed change would be the send's pick: the bump holds it.
        sent = await cli('wallet', 'send', other(), '150000', '--fee-rate', '1', '--passphrase-file', passFile);
        return true;
      },
    });
    expect([sent?.code, sent?.json.error]).toEqual([0, undefined]);
    expect(await inputsOf(sent!.json.txid!)).not.toContain(change);
    const pool = await mempool();
    expect(pool).toEqual(expect.arrayContaining([bump.txid, sent!.json.txid!]));
    expect(pool).not.toContain(a.txid);
  });

  test('a payment that spent the change while the bump waited at its prompt (another copy of the wallet, which no lock stops): the bump is refused and the payment stays', async () => {
    const { w, api } = await wallet(1_000_000n);
    const a = await lowFeeSend(w, 300_000n);
    let b: SignedTx | undefined;
    const bumped = api.bump(a.txid, {
      feeRate: FeeRate.ofSatPerVb(5n),
      passphrase: TEST_PASSPHRASE,
      confirm: async () => {
        b = await lowFeeSend(w, 100_000n);
        expect(await inputsOf(b.txid)).toContain(await changeOf(a.txid));
        return true;
      },
    });
    await bumped.catch(() => undefined);
    // Nothing replaced the payment, so the one that spent its change is still in the mempool.
    expect(await mempool()).toEqual(expect.arrayContaining([a.txid, b!.txid]));
    const e = await expectCode(bumped, 'TX_CHECK_FAILED');
    expect(e.message).toContain(`its change is already spent by ${b!.txid}`);
    expect(e.message).toContain('a replacement would cancel that payment too');
    expect(e.hint).toMatch(/nothing was signed or sent/);
  });

  test('a payment whose change is already spent when the bump starts: refused at once, naming the spender', async () => {
    const { w, cli } = await wallet(1_000_000n);
    const a = await lowFeeSend(w, 300_000n);
    const b = await lowFeeSend(w, 100_000n);
    const r = await cli('wallet', 'bump', a.txid, '--fee-rate', '5', '--passphrase-file', passFile);
    expect(r.code).not.toBe(0);
    expect(r.json.error.code).toBe('TX_CHECK_FAILED');
    expect(r.json.error.message).toContain(`its change is already spent by ${b.txid}`);
    expect(await mempool()).toEqual(expect.arrayContaining([a.txid, b.txid]));
  });

  test('a send while a bump holds the only coin (its change) is refused saying the coins are held, not missing', async () => {
    const { w, api, cli } = await wallet(1_000_000n);
    const a = await lowFeeSend(w, 300_000n);
    let sent: { code: number; json: { error?: { code: string; hint: string; details: Record<string, string> } } } | undefined;
    await api.bump(a.txid, {
      feeRate: FeeRate.ofSatPerVb(5n),
      passphrase: TEST_PASSPHRASE,
      confirm: async () => {
        sent = await cli('wallet', 'send', other(), '100000', '--fee-rate', '1', '--passphrase-file', passFile);
        return true;
      },
    });
    expect(sent?.json.error?.code).toBe('INSUFFICIENT_FUNDS');
    const held = Transaction.fromHex(a.hex).outs.at(-1)!.value; // the change of the payment the bump replaced
    expect(sent!.json.error!.hint).toContain(`${held} sats are held by other running commands (a send or an open waiting for its confirmation): try again when they finish`);
    expect(sent!.json.error!.details.held).toBe(held.toString());
  });

  test('a bump whose record for `wallet history` cannot be written still succeeds, with a warning', async () => {
    const { w, cli } = await wallet(1_000_000n);
    const a = await lowFeeSend(w, 300_000n);
    mkdirSync(path.join(w.networkDir, 'replacements.jsonl'));
    const r = await cli('wallet', 'bump', a.txid, '--fee-rate', '5', '--passphrase-file', passFile);
    expect([r.code, r.json.error]).toEqual([0, undefined]);
    expect(r.json.replaces).toBe(a.txid);
    expect(r.stderr).toMatch(/warning: the replacement is sent, but could not be recorded as a bump \(.*replacements\.jsonl.*\): `wallet history` shows it as a send/);
    const pool = await mempool();
    expect(pool).toContain(r.json.txid);
    expect(pool).not.toContain(a.txid);
  });

  test('a CPFP child whose change a payment spent is not replaced: the next bump is refused and the payment stays', async () => {
    const sender = await testWallet(path.join(tmp.dir, 'sender'));
    await fund(node.chain, sender, 2_000_000n);
    const { w } = await wallet(50_000n);
    const { address } = await receiveAddress(node.chain, w.networkDir, 'regtest');
    const p = signSend(await planSend(node.chain, account(sender), 'regtest', address, 500_000n, FeeRate.ofSatPerVb(1n)), sender.seed, 'regtest');
    await node.chain.broadcast(p.hex);
    const parent: CpfpParent = { txid: p.txid, hex: p.hex, fee: p.fee };
    const first = signCpfp(await planCpfp(node.chain, account(w), 'regtest', parent, FeeRate.ofSatPerVb(5n)), w.seed, 'regtest');
    await node.chain.broadcast(first.hex);
    // The child pays a change address: a send may spend it, and picks it (the largest coin).
    const send = await lowFeeSend(w, 100_000n);
    expect(await inputsOf(send.txid)).toContain(`${first.txid}:0`);

    const ctx = contractContext(w.session, w.seed, node.chain, w.networkDir);
    const bumped = ctx.wallet.bump(parent, FeeRate.ofSatPerVb(30n), { replacing: first }, async (child) => node.chain.broadcast(child.hex));
    await bumped.catch(() => undefined);
    // Nothing replaced the earlier child, so the send from its change is still in the mempool.
    expect(await mempool()).toEqual(expect.arrayContaining([parent.txid, first.txid, send.txid]));
    const e = await expectCode(bumped, 'TX_CHECK_FAILED');
    expect(e.message).toContain(`the earlier child ${first.txid} cannot be replaced: its output 0 is already spent by ${send.txid}`);
  });
});
