/**
 * The channel as a state machine over the chain, tried as an attacker and an unlucky
 * operator would, on a real btcd over real TCP links: payments on a dead or dying channel,
 * non-standard payouts, floods of opens, closes that must confirm (bumped, re-broadcast),
 * opens cut short and resumed, a payee that lies about what it was paid.
 */
import path from 'node:path';
import { statSync } from 'node:fs';
import { Transaction } from 'bitcoinjs-lib';
import { startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { Sessions } from './helpers/sessions.js';
import { testWallet, fund, type TestWallet } from './helpers/wallets.js';
import { loadCpu } from './helpers/server.js';
import { expectCode, failure } from './helpers/expect.js';
import { Payee, DEFAULT_POLICY, type PayeePolicy } from '../src/channel/payee.js';
import { PayerSession, openChannel, openChannels, refundChannel } from '../src/channel/payer.js';
import { bumpChannel, payGroups, resumeOpen, refreshChannel } from '../src/channel/flows.js';
import { readPayerLedger } from '../src/channel/payer-ledger.js';
import { SETTLED_DEPTH, getChannel, listChannels, outpointOf, readPaymentState, termsOf, type ChannelRecord } from '../src/channel/store.js';
import { encodeMessage, parseMessage, type Message } from '../src/channel/messages.js';
import { isPaymentsFrame } from '../src/channel/payments-codec.js';
import { paymentsFrame, readFrame, stateSig } from './helpers/payments.js';
import { StateHasher, channelOutput, closeVbytes, refundTx, signState } from '../src/bitcoin/channel.js';
import { faucetPay } from '../src/wallet/faucet.js';
import { CHANNEL_CHAIN, contractKey } from '../src/wallet/hd.js';
import { keystorePath } from '../src/keystore/keystore.js';
import { generateStaticKey, peerStaticKey, type StaticKey } from '../src/peer/keys.js';
import { connectTcp, listenTcp } from '../src/peer/transports.js';
import type { PeerLink } from '../src/peer/link.js';
import type { Connector } from '../src/peer/connect.js';
import type { ChainBackend } from '../src/chain/backend.js';
import { contractContext, type ContractContext } from '../src/wallet/contract-wallet.js';
import { SwarmpayError } from '../src/errors.js';
import net from 'node:net';
import { handshake } from '../src/peer/link.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

describe('the channel lifecycle on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let payer: TestWallet;
  let payeeWallet: TestWallet;
  let pc: ContractContext;
  let payee: Payee;
  let server: { port: number; close(): Promise<void> };
  const logs: string[] = [];
  let sessions: Sessions;

  const payeeKey = () => peerStaticKey(payeeWallet.seed);
  const link = (port = server.port, key: StaticKey = peerStaticKey(payer.seed)) => connectTcp('127.0.0.1', port, key, { peerKey: payeeKey().publicKey });
  const peer = () => ({ kind: 'tcp' as const, host: '127.0.0.1', port: server.port });
  const connector: Connector = async () => link();
  const open = async (capacity: bigint, expiryBlocks = 200) => {
    const l = await link();
    try {
      return (await openChannel(pc, l, peer(), { capacity, expiryBlocks, feeRate: FeeRate.ofSatPerVb(2n) })).rec;
    } finally {
      await l.close();
    }
  };
  const session = (id: string) => sessions.start(id);
  const payeeCtx = (policy: PayeePolicy = DEFAULT_POLICY, chain: ChainBackend = node.chain) => ({ ...contractContext(payeeWallet.session, payeeWallet.seed, chain, payeeWallet.networkDir), policy, log: (m: string) => logs.push(m) });
  /** Mines until the tip is `h`. */
  const mineTo = async (h: number) => {
    const tip = await node.chain.tipHeight();
    if (h > tip) await node.chain.mine(h - tip);
  };
  /** A raw link to the payee, attached to channel `id` by hello; returns the state it answered. */
  const attach = async (id: string): Promise<{ raw: PeerLink; it: AsyncIterator<Buffer>; state: Extract<Message, { t: 'state' }> }> => {
    const raw = await link();
    const it = raw.messages()[Symbol.asyncIterator]();
    raw.send(encodeMessage({ t: 'hello', id }));
    return { raw, it, state: parseMessage((await it.next()).value as Buffer) as Extract<Message, { t: 'state' }> };
  };
  /** One payment of `sats` after the state shown, and the payer's signed state covering it. */
  const signedPay = (rec: ChannelRecord, shown: { seq: number; cumulative: bigint }, sats: bigint): Buffer =>
    paymentsFrame(shown.seq + 1, [{ sats: Number(sats) }], { seq: shown.seq + 1, cumulative: shown.cumulative + sats, sig: stateSig(rec, payer.seed, rec.keyIndex, shown.cumulative + sats) });
  /** What the payee answers to one payment the payer's own checks would never send. */
  const payeeAnswer = async (rec: ChannelRecord): Promise<Message> => {
    const { raw, it, state } = await attach(rec.id);
    try {
      raw.send(signedPay(rec, state, 1000n));
      return parseMessage((await it.next()).value as Buffer);
    } finally {
      await raw.close();
    }
  };

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    payer = await testWallet(path.join(tmp.dir, 'payer'));
    payeeWallet = await testWallet(path.join(tmp.dir, 'payee'));
    await fund(node.chain, payer, 50_000_000n);
    await fund(node.chain, payeeWallet, 1_000_000n);
    pc = contractContext(payer.session, payer.seed, node.chain, payer.networkDir);
    sessions = new Sessions(pc, () => link());
    payee = new Payee(payeeCtx());
    server = await listenTcp('127.0.0.1', 0, payeeKey(), (l) => void payee.serve(l));
  });
  afterAll(async () => {
    await sessions?.closeAll();
    await server?.close();
    await payee?.shutdown();
    await node?.stop();
    tmp?.remove();
  });

  describe('payments on a dead or dying channel are refused by both sides, nothing signed or stored', () => {
    /** Both refusals, and proof that neither side's record moved. */
    const refusedBoth = async (rec: ChannelRecord, payerCode: string, payeeCode: string) => {
      const signedBefore = readPayerLedger(payer.session, payer.networkDir, rec.id).signed;
      const heldBefore = readPaymentState(payeeWallet.session, payeeWallet.networkDir, rec.id);
      const s = await session(rec.id);
      const e = await expectCode(s.pay([{ sats: 1000n, pid: null }]), payerCode);
      expect(readPayerLedger(payer.session, payer.networkDir, rec.id).signed).toEqual(signedBefore); // nothing was signed
      expect(await payeeAnswer(rec)).toMatchObject({ t: 'error', code: payeeCode });
      expect(readPaymentState(payeeWallet.session, payeeWallet.networkDir, rec.id)).toEqual(heldBefore);
      return e;
    };

    test('inside the close margin: CHANNEL_EXPIRING', async () => {
      const rec = await open(100_000n, DEFAULT_POLICY.minExpiryBlocks);
      await node.chain.mine(1);
      await (await session(rec.id)).pay([{ sats: 2000n, pid: null }]);
      await mineTo(rec.terms.expiry - rec.closeMargin);
      const e = await refusedBoth(rec, 'CHANNEL_EXPIRING', 'CHANNEL_EXPIRING');
      expect(e.message).toMatch(new RegExp(`${rec.closeMargin} blocks from the tip .* close margin of ${rec.closeMargin}`));
    });

    test('one block before the margin, payments are still taken', async () => {
      const rec = await open(100_000n, DEFAULT_POLICY.minExpiryBlocks);
      await node.chain.mine(1);
      await mineTo(rec.terms.expiry - rec.closeMargin - 1);
      const r = await (await session(rec.id)).pay([{ sats: 2000n, pid: null }]);
      expect(r.error).toBeUndefined();
      expect(r.acked.cumulative).toBe(2000n);
    });

    test('after the expiry, and after the payer\'s refund: refused, and the payee sees the refund', async () => {
      const rec = await open(100_000n, DEFAULT_POLICY.minExpiryBlocks);
      await node.chain.mine(1);
      await mineTo(rec.terms.expiry);
      await refusedBoth(rec, 'CHANNEL_EXPIRING', 'CHANNEL_EXPIRING');
      const refund = await refundChannel(pc, rec.id, FeeRate.ofSatPerVb(2n));
      // In the mempool: the payer knows its refund spends the funding; to the payee it is past the expiry.
      await refusedBoth(rec, 'CHANNEL_SPENT', 'CHANNEL_EXPIRING');
      // In a block, both sides see the funding spent.
      await node.chain.mine(1);
      await refusedBoth(rec, 'CHANNEL_SPENT', 'CHANNEL_SPENT');
      await node.chain.mine(SETTLED_DEPTH - 1);
      await payee.tick();
      expect(getChannel(payeeWallet.session, rec.id)).toMatchObject({ status: 'refunded', refund: { txid: refund.txid } });
      await refreshChannel(pc, getChannel(payer.session, rec.id), await node.chain.tipHeight());
      expect(getChannel(payer.session, rec.id)).toMatchObject({ status: 'refunded' });
    });

    test('a refund run again after a crash cut it short (broadcast, not stored) finds it on the chain', async () => {
      const rec = await open(100_000n, DEFAULT_POLICY.minExpiryBlocks);
      await node.chain.mine(1);
      await mineTo(rec.terms.expiry);
      const first = refundTx(termsOf(rec), outpointOf(rec), Buffer.from(rec.terms.payerScript, 'hex'), FeeRate.ofSatPerVb(2n), contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, rec.keyIndex).priv);
      await node.chain.broadcast(first.hex);
      const again = await refundChannel(pc, rec.id, FeeRate.ofSatPerVb(2n));
      expect(again.txid).toBe(first.txid);
      expect(getChannel(payer.session, rec.id)).toMatchObject({ status: 'refunding', refund: { txid: first.txid } });
    });

    test('a funding not yet confirmed: refused by both', async () => {
      const rec = await open(100_000n);
      await refusedBoth(rec, 'CHANNEL_STATE', 'CHANNEL_STATE');
      await node.chain.mine(1);
    });
  });

  describe('payout scripts: standard ones only, capped before anything is parsed further', () => {
    const sendOpen = async (payerScript: string, closeFee = 1000n): Promise<Message> => {
      const l = await link();
      try {
        const it = l.messages()[Symbol.asyncIterator]();
        const key = contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, 9999);
        const expiry = (await node.chain.tipHeight()) + 200;
        l.send(encodeMessage({ t: 'open', id: 'abad1dea0000' + Math.floor(Math.random() * 0xffff).toString(16).padStart(4, '0'), network: 'regtest', capacity: 100_000n, expiry, closeFee, payerPubkey: key.pub.toString('hex'), payerScript }));
        return parseMessage((await it.next()).value as Buffer);
      } finally {
        await l.close();
      }
    };
    // Longer than any standard payout (34 bytes), a script is refused by the parser itself.
    const nonStandard: [string, string, string, RegExp][] = [
      ['OP_TRUE', '51', 'CHANNEL_REFUSED', /not a standard one/],
      ['OP_RETURN', '6a0401020304', 'CHANNEL_REFUSED', /not a standard one/],
      ['bare 1-of-1 multisig', `5121${'02' + '11'.repeat(32)}51ae`, 'PEER_PROTOCOL', /at most 34 bytes/],
      ['bare P2PK', `21${'02' + '11'.repeat(32)}ac`, 'PEER_PROTOCOL', /at most 34 bytes/],
      ['a 25-byte witness v0 program', `0019${'22'.repeat(25)}`, 'CHANNEL_REFUSED', /not a standard one/],
      ['a witness v2 program', `5220${'33'.repeat(32)}`, 'CHANNEL_REFUSED', /not a standard one/],
      ['P2WPKH with a trailing byte', `0014${'44'.repeat(20)}00`, 'CHANNEL_REFUSED', /not a standard one/],
    ];
    test.each(nonStandard)('%s is refused at open, and nothing is stored', async (_kind, script, code, why) => {
      const before = statSync(keystorePath(payeeWallet.networkDir)).size;
      const channels = listChannels(payeeWallet.session).length;
      const a = await sendOpen(script);
      expect(a).toMatchObject({ t: 'error', code });
      expect((a as { message: string }).message).toMatch(why);
      expect(statSync(keystorePath(payeeWallet.networkDir)).size).toBe(before);
      expect(listChannels(payeeWallet.session)).toHaveLength(channels);
    });
    test('a 30 KB script is refused by the message parser, before anything else looks at it', async () => {
      const a = await sendOpen('aa'.repeat(30_000));
      expect(a).toMatchObject({ t: 'error', code: 'PEER_PROTOCOL' });
      expect((a as { message: string }).message).toMatch(/payerScript must be at most 34 bytes/);
    });
    test('a close fee below what the payee\'s node asks, or far above it (out of the payee\'s share), is refused', async () => {
      const payerScript = `0014${'55'.repeat(20)}`;
      const vbytes = closeVbytes({ payeeScript: Buffer.from(payerScript, 'hex'), payerScript: Buffer.from(payerScript, 'hex') });
      for (const rate of [1n, 7n, 1000n]) {
        const a = await sendOpen(payerScript, rate * vbytes);
        expect(a).toMatchObject({ t: 'error', code: 'CHANNEL_REFUSED' });
        expect((a as { message: string }).message).toMatch(new RegExp(`close fee ${rate * vbytes} sats is outside ${2n * vbytes}-${6n * vbytes} .* asks 2 sat/vB, and takes up to 3 times that`));
      }
      expect(await sendOpen(payerScript, 6n * vbytes)).toMatchObject({ t: 'accept' });
    });
  });

  test('1,000 opens nobody funds, from one key and from 1,000 keys: the payee stores nothing, and an honest open still works', async () => {
    const file = keystorePath(payeeWallet.networkDir);
    const before = { size: statSync(file).size, channels: listChannels(payeeWallet.session).length };
    const expiry = (await node.chain.tipHeight()) + 200;
    const script = `0014${'66'.repeat(20)}`;
    const fee = 2n * closeVbytes({ payeeScript: Buffer.from(script, 'hex'), payerScript: Buffer.from(script, 'hex') });
    const flood = async (keyOf: (i: number) => StaticKey) => {
      for (let i = 0; i < 1000; i += 25) {
        await Promise.all(Array.from({ length: 25 }, async (_, k) => {
          const l = await link(server.port, keyOf(i + k));
          const it = l.messages()[Symbol.asyncIterator]();
          l.send(encodeMessage({ t: 'open', id: (i + k).toString(16).padStart(16, 'f'), network: 'regtest', capacity: 100_000n, expiry, closeFee: fee, payerPubkey: contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, 5000).pub.toString('hex'), payerScript: script }));
          expect(parseMessage((await it.next()).value as Buffer)).toMatchObject({ t: 'accept' });
          await l.close();
        }));
      }
    };
    await flood(() => peerStaticKey(payer.seed));
    await flood(() => generateStaticKey());
    // One key-index block reserved for 2,000 opens: the keystore moved by a counter, not by records.
    expect(Math.abs(statSync(file).size - before.size)).toBeLessThan(64);
    expect(listChannels(payeeWallet.session)).toHaveLength(before.channels);
    const rec = await open(100_000n);
    await node.chain.mine(1);
    expect((await (await session(rec.id)).pay([{ sats: 1000n, pid: null }])).acked.cumulative).toBe(1000n);
  }, 180_000);

  describe('closes that confirm', () => {
    /**
     * A payee of its own, whose first close goes to a chain that drops it: what a payee
     * sees when its node loses the close (a restart empties btcd's mempool, and its
     * regtest chain does not survive one here). Then the real chain, as after a restart.
     */
    const lossyPayee = async (name: string) => {
      const w = await testWallet(path.join(tmp.dir, name));
      const ctx = (chain: ChainBackend) => ({ ...contractContext(w.session, w.seed, chain, w.networkDir), policy: DEFAULT_POLICY, log: (m: string) => logs.push(m) });
      const lost: string[] = [];
      const lossy: ChainBackend = Object.assign(Object.create(node.chain) as ChainBackend, {
        broadcast: async (hex: string) => (lost.push(hex), Transaction.fromHex(hex).getId()),
      });
      let p = new Payee(ctx(node.chain));
      const srv = await listenTcp('127.0.0.1', 0, peerStaticKey(w.seed), (l) => void p.serve(l));
      const l = await connectTcp('127.0.0.1', srv.port, peerStaticKey(payer.seed), { peerKey: peerStaticKey(w.seed).publicKey });
      const { rec } = await openChannel(pc, l, { kind: 'tcp', host: '127.0.0.1', port: srv.port }, { capacity: 200_000n, expiryBlocks: 200, feeRate: FeeRate.ofSatPerVb(2n) }).finally(() => l.close());
      await node.chain.mine(1);
      const s = await PayerSession.start(pc, await connectTcp('127.0.0.1', srv.port, peerStaticKey(payer.seed), { peerKey: peerStaticKey(w.seed).publicKey }), rec.id);
      await s.pay([{ sats: 50_000n, pid: null }]);
      await s.disconnect();
      await p.shutdown();
      p = new Payee(ctx(lossy));
      const closeTxid = await p.closeChannel(rec.id);
      await p.shutdown();
      p = new Payee(ctx(node.chain));
      return {
        rec, closeTxid, lost, wallet: w, payee: () => p,
        stop: async () => {
          await srv.close();
          await p.shutdown();
        },
      };
    };

    test('a close at the minimum fee, bumped by CPFP from the payee\'s own output: btcd takes the child and both confirm', async () => {
      const rec = await open(200_000n);
      await node.chain.mine(1);
      await (await session(rec.id)).pay([{ sats: 50_000n, pid: null }]);
      expect(BigInt(rec.terms.closeFee)).toBe(2n * closeVbytes(termsOf(rec))); // the floor: btcd on regtest has no estimate
      const closeTxid = await payee.closeChannel(rec.id);
      const wallet = contractContext(payeeWallet.session, payeeWallet.seed, node.chain, payeeWallet.networkDir);
      const bump = await bumpChannel(wallet, rec.id, FeeRate.ofSatPerVb(20n));
      const [close, child] = await Promise.all([node.chain.getTransaction(closeTxid), node.chain.getTransaction(bump.txid)]);
      expect(close!.confirmations).toBe(0);
      expect(child!.inputs.some((i) => i.txid === closeTxid)).toBe(true);
      const closeFee = BigInt(rec.terms.capacity) - close!.outputs.reduce((a, o) => a + o.value, 0n);
      const vsize = (hex: string) => BigInt(Transaction.fromHex(hex).virtualSize());
      expect((closeFee + BigInt(bump.fee)) / (vsize(close!.hex) + vsize(child!.hex))).toBeGreaterThanOrEqual(20n);
      expect(getChannel(payeeWallet.session, rec.id)).toMatchObject({ status: 'closing', close: { txid: closeTxid, bumps: [{ txid: bump.txid, feeRate: '20' }] } });
      // A second bump replaces the first (BIP125), and is the one the channel keeps last.
      const again = await bumpChannel(wallet, rec.id, FeeRate.ofSatPerVb(40n));
      expect(await node.chain.getTransaction(bump.txid)).toBeNull();
      await node.chain.mine(1);
      expect((await node.chain.getTransaction(closeTxid))!.confirmations).toBe(1);
      expect((await node.chain.getTransaction(again.txid))!.confirmations).toBe(1);
      await expectCode(bumpChannel(wallet, rec.id, FeeRate.ofSatPerVb(50n)), 'CHANNEL_STATE'); // confirmed: nothing to bump
      await node.chain.mine(SETTLED_DEPTH);
      await payee.tick();
      expect(getChannel(payeeWallet.session, rec.id).status).toBe('closed');
    });

    test('a close while payments stream in, on a loaded CPU: every payment acknowledged is in the close, and none after it', async () => {
      const rec = await open(5_000_000n);
      await node.chain.mine(1);
      const s = await session(rec.id);
      const load = loadCpu();
      try {
        // Paced, so that the stream is still going when the close comes (unpaced, it can be over in 700 ms).
        const streaming = s.pay(Array.from({ length: 500_000 }, () => ({ sats: 1n, pid: null })), { pace: 200_000 });
        await new Promise((r) => setTimeout(r, 700));
        const closeTxid = await payee.closeChannel(rec.id);
        const r = await streaming;
        expect(r.error).toMatchObject({ code: 'CHANNEL_STATE', message: expect.stringMatching(/is closing/) });
        const close = (await node.chain.getTransaction(closeTxid))!;
        const t = termsOf(rec);
        const toPayee = close.outputs.find((o) => Buffer.from(o.script).equals(Buffer.from(t.payeeScript)))!.value;
        expect(r.acked.cumulative).toBeGreaterThan(0n);
        expect(toPayee + t.closeFee).toBe(r.acked.cumulative);
      } finally {
        load.stop();
      }
    });

    test('a close that vanished from the mempool is broadcast again by `channel serve`, and confirms', async () => {
      const p = await lossyPayee('lossy-1');
      try {
        expect(await node.chain.getTransaction(p.closeTxid)).toBeNull();
        expect(getChannel(p.wallet.session, p.rec.id)).toMatchObject({ status: 'closing', close: { txid: p.closeTxid } });
        await p.payee().tick();
        expect(logs).toContain(`channel ${p.rec.id}: the close ${p.closeTxid} had left the mempool; broadcast again`);
        expect((await node.chain.getTransaction(p.closeTxid))!.confirmations).toBe(0);
        await node.chain.mine(1);
        expect((await node.chain.getTransaction(p.closeTxid))!.confirmations).toBe(1);
      } finally {
        await p.stop();
      }
    });

    test('a close that waited --bump-after blocks unconfirmed is bumped by `channel serve` itself, above its own rate', async () => {
      const p = await lossyPayee('lossy-2');
      try {
        await node.chain.mine(DEFAULT_POLICY.bumpAfter); // blocks the close missed
        await p.payee().tick(); // out again
        await p.payee().tick(); // it has waited long enough: bumped
        const rec = getChannel(p.wallet.session, p.rec.id) as Extract<ChannelRecord, { status: 'closing' }>;
        expect(rec.close.bumps).toHaveLength(1);
        const bump = rec.close.bumps[0]!;
        expect(FeeRate.parse(bump.feeRate).compare(FeeRate.ofSatPerVb(2n))).toBeGreaterThan(0);
        expect(logs.some((m) => m.includes(`bumped to ${bump.feeRate} sat/vB by ${bump.txid}`))).toBe(true);
        expect((await node.chain.getTransaction(bump.txid))!.inputs.some((i) => i.txid === p.closeTxid)).toBe(true);
        await p.payee().tick(); // not again at the same height
        expect((getChannel(p.wallet.session, p.rec.id) as Extract<ChannelRecord, { status: 'closing' }>).close.bumps).toHaveLength(1);
        await node.chain.mine(1);
        expect((await node.chain.getTransaction(bump.txid))!.confirmations).toBe(1);
      } finally {
        await p.stop();
      }
    });
  });

  test('several channels opened at once share one funding transaction, one output each, and each pays', async () => {
    const links = await Promise.all([1, 2, 3].map(() => link()));
    try {
      const opened = await openChannels(pc, links.map((l, i) => ({ link: l, peer: peer(), capacity: BigInt(100_000 * (i + 1)), expiryBlocks: 200 })), FeeRate.ofSatPerVb(2n));
      expect(new Set(opened.map((o) => o.fundingTxid)).size).toBe(1);
      expect(opened.map((o) => o.rec.funding.vout)).toEqual([0, 1, 2]);
      const funding = (await node.chain.getTransaction(opened[0]!.fundingTxid))!;
      for (const [i] of opened.entries()) expect(funding.outputs[i]!.value).toBe(BigInt(100_000 * (i + 1)));
      await node.chain.mine(1);
      for (const o of opened) {
        expect(getChannel(payeeWallet.session, o.rec.id)).toMatchObject({ status: 'open', funding: { txid: o.fundingTxid, vout: o.rec.funding.vout } });
        expect((await (await session(o.rec.id)).pay([{ sats: 5_000n, pid: null }])).acked.cumulative).toBe(5_000n);
      }
    } finally {
      await Promise.all(links.map((l) => l.close()));
    }
  });

  describe('opens that finish or fail cleanly', () => {
    /** A payee server that hangs up on `funded`: the payee failing between the two steps of an open. */
    const hangsUpOnFunded = async () =>
      listenTcp('127.0.0.1', 0, payeeKey(), (l) => {
        const inner = l.messages()[Symbol.asyncIterator]();
        const cut: PeerLink = Object.assign(Object.create(l) as PeerLink, {
          messages: () => ({
            [Symbol.asyncIterator]: () => ({
              next: async () => {
                const r = await inner.next();
                if (!r.done && parseMessage(r.value as Buffer).t === 'funded') {
                  await l.close();
                  return { done: true, value: undefined };
                }
                return r;
              },
            }),
          }),
        });
        void payee.serve(cut);
      });

    test('a payee that fails after the payer funded: the error names the funding and --resume, and resuming opens it', async () => {
      const broken = await hangsUpOnFunded();
      const l = await connectTcp('127.0.0.1', broken.port, peerStaticKey(payer.seed), { peerKey: payeeKey().publicKey });
      const err = (await failure(openChannel(pc, l, peer(), { capacity: 100_000n, expiryBlocks: 200, feeRate: FeeRate.ofSatPerVb(2n) }))) as SwarmpayError;
      await l.close();
      await broken.close();
      const rec = listChannels(payer.session).find((c) => c.status === 'opening')!;
      expect(err.message).toMatch(new RegExp(`channel ${rec.id} is funded \\(${rec.funding.txid}\\) but the payee has not confirmed it`));
      expect(err.hint).toContain(`swarmpay channel open --resume ${rec.id}`);
      expect(err.details).toMatchObject({ channel: rec.id, fundingTxid: rec.funding.txid });
      const opened = await resumeOpen(pc, connector, rec.id);
      expect(opened.status).toBe('open');
      expect(getChannel(payeeWallet.session, rec.id)).toMatchObject({ status: 'open', funding: { txid: rec.funding.txid } });
      // Resuming again is harmless: the payee says open again.
      expect((await resumeOpen(pc, connector, rec.id)).status).toBe('open');
      await node.chain.mine(1);
      expect((await (await session(rec.id)).pay([{ sats: 700n, pid: null }])).acked.cumulative).toBe(700n);
    });

    test('`channel pay` on an open cut short finishes it first', async () => {
      const broken = await hangsUpOnFunded();
      const l = await connectTcp('127.0.0.1', broken.port, peerStaticKey(payer.seed), { peerKey: payeeKey().publicKey });
      await failure(openChannel(pc, l, peer(), { capacity: 100_000n, expiryBlocks: 200, feeRate: FeeRate.ofSatPerVb(2n) }));
      await l.close();
      await broken.close();
      const rec = listChannels(payer.session).find((c) => c.status === 'opening')!;
      await node.chain.mine(1);
      const t = await payGroups(pc, connector, [{ channel: rec.id, items: [{ sats: 300n, pid: 'resumed-1' }] }]);
      expect(t.summary).toMatchObject({ acked: 1, sats: 300n });
      expect(getChannel(payer.session, rec.id).status).toBe('open');
    });

    test('a resume the payee can no longer take (past its margin): failed, and the hint says how the coins come back', async () => {
      const broken = await hangsUpOnFunded();
      const l = await connectTcp('127.0.0.1', broken.port, peerStaticKey(payer.seed), { peerKey: payeeKey().publicKey });
      await failure(openChannel(pc, l, peer(), { capacity: 100_000n, expiryBlocks: DEFAULT_POLICY.minExpiryBlocks, feeRate: FeeRate.ofSatPerVb(2n) }));
      await l.close();
      await broken.close();
      const rec = listChannels(payer.session).find((c) => c.status === 'opening')!;
      await mineTo(rec.terms.expiry - rec.closeMargin);
      const e = await expectCode(resumeOpen(pc, connector, rec.id), 'CHANNEL_EXPIRING');
      expect(e.hint).toContain(`swarmpay channel refund ${rec.id}`);
      expect(getChannel(payer.session, rec.id)).toMatchObject({ status: 'failed', reason: expect.stringMatching(/payee refused it/) });
      await mineTo(rec.terms.expiry);
      const r = await refundChannel(pc, rec.id, FeeRate.ofSatPerVb(2n));
      expect((await node.chain.getTransaction(r.txid))!.confirmations).toBe(0);
    });

    test('fifty opens at once: the payee looks up its payout address once, and every answer names it', async () => {
      const w = await testWallet(path.join(tmp.dir, 'payout'));
      let lookups = 0;
      const counting: ChainBackend = Object.assign(Object.create(node.chain) as ChainBackend, {
        used: (addresses: string[]) => (lookups++, node.chain.used(addresses)),
      });
      const p = new Payee({ ...contractContext(w.session, w.seed, counting, w.networkDir), policy: DEFAULT_POLICY, log: (m: string) => logs.push(m) });
      const srv = await listenTcp('127.0.0.1', 0, peerStaticKey(w.seed), (l) => void p.serve(l));
      try {
        const expiry = (await node.chain.tipHeight()) + 200;
        const accepts = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
          const l = await connectTcp('127.0.0.1', srv.port, generateStaticKey(), { peerKey: peerStaticKey(w.seed).publicKey });
          try {
            const it = l.messages()[Symbol.asyncIterator]();
            l.send(encodeMessage({ t: 'open', id: i.toString(16).padStart(16, 'a'), network: 'regtest', capacity: 100_000n, expiry, closeFee: 1000n, payerPubkey: contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, 9000 + i).pub.toString('hex'), payerScript: '0014' + '11'.repeat(20) }));
            return parseMessage((await it.next()).value as Buffer) as Extract<Message, { t: 'accept' }>;
          } finally {
            await l.close();
          }
        }));
        expect(new Set(accepts.map((a) => a.payeeScript)).size).toBe(1);
        expect(lookups).toBe(1); // the receive chain's first twenty addresses, asked about once
      } finally {
        await srv.close();
        await p.shutdown();
      }
    });

    test('one ticket, two fundings sent at once on two connections: one channel is stored, on one funding, and it closes', async () => {
      const l = await link();
      const it = l.messages()[Symbol.asyncIterator]();
      const key = contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, 7777);
      const payerScript = Buffer.concat([Buffer.from([0, 20]), Buffer.alloc(20, 9)]);
      const expiry = (await node.chain.tipHeight()) + 200;
      const id = 'd0b1ef00d0b1ef00';
      const closeFee = 2n * closeVbytes({ payeeScript: payerScript, payerScript });
      l.send(encodeMessage({ t: 'open', id, network: 'regtest', capacity: 400_000n, expiry, closeFee, payerPubkey: key.pub.toString('hex'), payerScript: payerScript.toString('hex') }));
      const accept = parseMessage((await it.next()).value as Buffer) as Extract<Message, { t: 'accept' }>;
      await l.close();
      const terms = { payerPubkey: key.pub, payeePubkey: Buffer.from(accept.payeePubkey, 'hex'), expiry, capacity: 400_000n, closeFee, payeeScript: Buffer.from(accept.payeeScript, 'hex'), payerScript };
      const out = channelOutput(terms, 'regtest');
      const fundings = [await faucetPay(node.chain, out.address, 400_000n), await faucetPay(node.chain, out.address, 400_000n)];
      const answers = await Promise.all(fundings.map(async (f) => {
        const c = await link();
        try {
          const ci = c.messages()[Symbol.asyncIterator]();
          c.send(encodeMessage({ t: 'funded', id, tx: f.hex, vout: Transaction.fromHex(f.hex).outs.findIndex((o) => Buffer.from(o.script).equals(out.script)), ticket: accept.ticket }));
          return parseMessage((await ci.next()).value as Buffer);
        } finally {
          await c.close();
        }
      }));
      expect(answers.map((a) => a.t).sort()).toEqual(['error', 'state']);
      expect(answers.find((a) => a.t === 'error')).toMatchObject({ code: 'CHANNEL_REFUSED', message: expect.stringMatching(/is taken/) });
      const stored = getChannel(payeeWallet.session, id);
      const winner = fundings.find((f) => f.txid === stored.funding.txid)!;
      expect(winner).toBeDefined();
      // Paid and closed on the stored funding: btcd takes the close.
      await node.chain.mine(1);
      const rec = { ...stored, keyIndex: 7777 } as ChannelRecord;
      const { raw, it: ri, state } = await attach(id);
      raw.send(signedPay(rec, state, 300_000n - state.cumulative));
      expect(parseMessage((await ri.next()).value as Buffer)).toMatchObject({ t: 'ack', seq: 1 });
      await raw.close();
      const closeTxid = await payee.closeChannel(id);
      expect((await node.chain.getTransaction(closeTxid))!.inputs[0]).toMatchObject({ txid: winner.txid });
    });

    test('a funding that never reached the chain by the expiry: the channel fails, and nobody watches it any more', async () => {
      const broken = await hangsUpOnFunded();
      // The payer's broadcast is lost (its node dropped it), and the payee never saw the funding.
      const lossy: ChainBackend = Object.assign(Object.create(node.chain) as ChainBackend, { broadcast: async (hex: string) => Transaction.fromHex(hex).getId() });
      const l = await connectTcp('127.0.0.1', broken.port, peerStaticKey(payer.seed), { peerKey: payeeKey().publicKey });
      await failure(openChannel({ ...pc, chain: lossy }, l, peer(), { capacity: 100_000n, expiryBlocks: DEFAULT_POLICY.minExpiryBlocks, feeRate: FeeRate.ofSatPerVb(2n) }));
      await l.close();
      await broken.close();
      const rec = listChannels(payer.session).find((c) => c.status === 'opening')!;
      expect(await node.chain.getTransaction(rec.funding.txid)).toBeNull();
      await refreshChannel(pc, rec, await node.chain.tipHeight());
      expect(getChannel(payer.session, rec.id).status).toBe('opening'); // not yet: it may still be broadcast
      await mineTo(rec.terms.expiry);
      await refreshChannel(pc, getChannel(payer.session, rec.id), await node.chain.tipHeight());
      expect(getChannel(payer.session, rec.id)).toMatchObject({ status: 'failed', reason: expect.stringMatching(/never confirmed, and the channel is past its expiry/) });
    });

    test('a payee that fails on `funded` for a passing reason (its keystore busy): the open stays resumable, not failed', async () => {
      const fake = await listenTcp('127.0.0.1', 0, payeeKey(), (l) => {
        void (async () => {
          for await (const b of l.messages()) {
            const m = parseMessage(b);
            if (m.t === 'open') l.send(encodeMessage({ t: 'accept', id: m.id, payeePubkey: contractKey(payeeWallet.seed, 'regtest', CHANNEL_CHAIN, 99).pub.toString('hex'), payeeScript: `0014${'77'.repeat(20)}`, confirmations: 1, closeMargin: 24, ticket: '00'.repeat(40) }));
            if (m.t === 'funded') l.send(encodeMessage({ t: 'error', code: 'KEYSTORE_BUSY', message: 'the keystore is in use by another swarmpay process (pid 1)' }));
          }
        })().catch(() => undefined);
      });
      try {
        const l = await connectTcp('127.0.0.1', fake.port, peerStaticKey(payer.seed), { peerKey: payeeKey().publicKey });
        const e = (await failure(openChannel(pc, l, { kind: 'tcp', host: '127.0.0.1', port: fake.port }, { capacity: 100_000n, expiryBlocks: 200, feeRate: FeeRate.ofSatPerVb(2n) }))) as SwarmpayError;
        await l.close();
        expect(e.hint).toContain('--resume');
        expect(getChannel(payer.session, (e.details as { channel: string }).channel).status).toBe('opening');
      } finally {
        await fake.close();
      }
      await node.chain.mine(1);
    });

    /** A payee that answers `open` with this raw accept (under the real payee's key). */
    const acceptsWith = async (accept: Record<string, unknown>, run: (port: number) => Promise<void>) => {
      const fake = await listenTcp('127.0.0.1', 0, payeeKey(), (l) => {
        void (async () => {
          for await (const b of l.messages()) {
            const m = parseMessage(b);
            if (m.t === 'open') l.send(Buffer.from(JSON.stringify({ t: 'accept', id: m.id, payeePubkey: contractKey(payeeWallet.seed, 'regtest', CHANNEL_CHAIN, 0).pub.toString('hex'), payeeScript: `0014${'77'.repeat(20)}`, closeMargin: 24, ticket: '00'.repeat(40), ...accept })));
          }
        })().catch(() => undefined);
      });
      try {
        await run(fake.port);
      } finally {
        await fake.close();
      }
    };
    const openVia = async (port: number) => {
      const l = await connectTcp('127.0.0.1', port, peerStaticKey(payer.seed), { peerKey: payeeKey().publicKey });
      try {
        return await openChannel(pc, l, peer(), { capacity: 100_000n, expiryBlocks: 200, feeRate: FeeRate.ofSatPerVb(2n) });
      } finally {
        await l.close();
      }
    };

    test('a payee asking for zero confirmations is refused before anything is funded', async () => {
      const channels = listChannels(payer.session).length;
      await acceptsWith({ v: 2, confirmations: 0 }, async (port) => {
        const e = await expectCode(openVia(port), 'PEER_PROTOCOL');
        expect(e.message).toMatch(/confirmations must be an integer in \[1, 100\]/);
      });
      expect(listChannels(payer.session)).toHaveLength(channels);
    });

    test('a peer of another protocol version is refused, naming both versions, on either side', async () => {
      const channels = listChannels(payer.session).length;
      await acceptsWith({ v: 1, confirmations: 1 }, async (port) => {
        const e = await expectCode(openVia(port), 'PEER_PROTOCOL');
        expect(e.message).toMatch(/the peer speaks channel protocol version 1; this swarmpay speaks version 2/);
        expect(e.hint).toMatch(/upgrade the older one/);
      });
      expect(listChannels(payer.session)).toHaveLength(channels);
      // A version 1 payer's hello, to the real payee.
      const raw = await link();
      try {
        raw.send(Buffer.from(JSON.stringify({ v: 1, t: 'hello', id: '0123456789abcdef' })));
        const answer = JSON.parse(((await raw.messages()[Symbol.asyncIterator]().next()).value as Buffer).toString()) as { v: number; t: string; code: string; message: string };
        expect(answer).toMatchObject({ v: 2, t: 'error', code: 'PEER_PROTOCOL', message: expect.stringMatching(/the peer speaks channel protocol version 1; this swarmpay speaks version 2/) });
      } finally {
        await raw.close();
      }
    });
  });

  describe('a payee that lies about what it was paid', () => {
    /** A payee under the real payee's key: shows the real state at hello, then lies as told. */
    const liar = async (shown: { seq: number; cumulative: bigint; sig: string | null }) => {
      /** Payments frames the payer sent it. */
      const sent: Buffer[] = [];
      const srv = await listenTcp('127.0.0.1', 0, payeeKey(), (l) => {
        void (async () => {
          let id = '';
          for await (const b of l.messages()) {
            if (isPaymentsFrame(b)) {
              sent.push(b);
              for (const st of readFrame(b).states) l.send(encodeMessage({ t: 'ack', id, seq: st.seq }));
              continue;
            }
            const m = parseMessage(b);
            if (m.t === 'hello') {
              id = m.id;
              l.send(encodeMessage({ t: 'state', id: m.id, ...shown, confirmations: 5, status: 'open' }));
            }
            if (m.t === 'known?') l.send(encodeMessage({ t: 'known', id: m.id, ids: [] }));
          }
        })().catch(() => undefined);
      });
      const via: Connector = async () => connectTcp('127.0.0.1', srv.port, peerStaticKey(payer.seed), { peerKey: payeeKey().publicKey });
      return { srv, via, sent };
    };

    test('"known: none" after a batch was paid: the payer pays nothing twice', async () => {
      const rec = await open(200_000n);
      await node.chain.mine(1);
      const batch = Array.from({ length: 30 }, (_, i) => ({ sats: 100n, pid: `order-${i}` }));
      expect((await payGroups(pc, connector, [{ channel: rec.id, items: batch }])).summary).toMatchObject({ acked: 30, sats: 3000n });
      const { srv, via, sent } = await liar(readPaymentState(payeeWallet.session, payeeWallet.networkDir, rec.id));
      try {
        const skipped: string[] = [];
        const t = await payGroups(pc, via, [{ channel: rec.id, items: batch }], { skipped: (e) => skipped.push(`${e.id}:${e.skipped}`) });
        expect(t.summary).toMatchObject({ sent: 0, acked: 0, skipped: 30, sats: 0n });
        expect(skipped.every((s) => s.endsWith(':already paid'))).toBe(true);
        expect(sent).toEqual([]);
      } finally {
        await srv.close();
      }
    });

    test('a payee that shows an amount without this payer\'s signature (at sequence 0, say) is refused: nothing is signed', async () => {
      const rec = await open(1_000_000n);
      await node.chain.mine(1);
      for (const shown of [{ seq: 0, cumulative: 990_000n, sig: null }, { seq: 3, cumulative: 990_000n, sig: null }, { seq: 0, cumulative: 990_000n, sig: '11'.repeat(64) }]) {
        const { srv, via, sent } = await liar(shown);
        try {
          const t = await payGroups(pc, via, [{ channel: rec.id, items: [{ sats: 10n, pid: null }] }]);
          expect(t.error).toMatchObject({ code: 'PEER_PROTOCOL', message: expect.stringMatching(/claims a state \(990000 sats at sequence \d\) that this payer never signed/) });
          expect(sent).toEqual([]);
          expect(readPayerLedger(payer.session, payer.networkDir, rec.id)).toMatchObject({ signed: { cumulative: 0n }, acked: { cumulative: 0n } });
        } finally {
          await srv.close();
        }
      }
    });

    test('a payee that shows less than it acknowledged is refused: nothing is paid from a lower state', async () => {
      const rec = await open(200_000n);
      await node.chain.mine(1);
      await payGroups(pc, connector, [{ channel: rec.id, items: [{ sats: 500n, pid: 'a' }, { sats: 500n, pid: 'b' }] }]);
      const s = await session(rec.id);
      const first = await s.pay([{ sats: 500n, pid: null }]);
      await s.disconnect();
      // An older state the payer really signed: cumulative 500 where the payee acknowledged 1,500.
      const older = { seq: 1, cumulative: 500n, sig: signState(new StateHasher(termsOf(rec), outpointOf(rec)).sighash(500n), contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, rec.keyIndex).priv).toString('hex') };
      expect(first.acked.cumulative).toBe(1500n);
      const { srv, via, sent } = await liar(older);
      try {
        const t = await payGroups(pc, via, [{ channel: rec.id, items: [{ sats: 500n, pid: 'a' }, { sats: 400n, pid: 'c' }] }]);
        expect(t.error).toMatchObject({ code: 'PEER_PROTOCOL', message: expect.stringMatching(/shows 500 sats paid, less than the 1500 it acknowledged/) });
        expect(t.summary.sent).toBe(0);
        expect(sent).toEqual([]);
      } finally {
        await srv.close();
      }
    });
  });

  test('a payer whose link dies mid-burst costs another channel nothing: every payment of the other is acknowledged', async () => {
    const r1 = await open(5_000_000n);
    await node.chain.mine(1); // the change of one funding is the coin of the next
    const r2 = await open(5_000_000n);
    await node.chain.mine(1);
    // The first payer's socket is ours to cut, as a killed process's would be.
    const socket = net.connect({ host: '127.0.0.1', port: server.port });
    await new Promise((r) => socket.once('connect', r));
    const s1 = await PayerSession.start(pc, await handshake(socket, 'initiator', peerStaticKey(payer.seed)), r1.id);
    const s2 = await session(r2.id);
    const dying = s1.pay(Array.from({ length: 200_000 }, () => ({ sats: 1n, pid: null })));
    const steady = s2.pay(Array.from({ length: 4000 }, () => ({ sats: 1n, pid: null })));
    await new Promise((r) => setTimeout(r, 300));
    socket.resetAndDestroy();
    const [d, r] = await Promise.all([dying, steady]);
    await s1.disconnect();
    expect(d.error).toBeDefined();
    expect(r.error).toBeUndefined();
    expect(r.ackedCount).toBe(4000);
    expect(readPaymentState(payeeWallet.session, payeeWallet.networkDir, r2.id).cumulative).toBe(4000n);
    // The payee serves on: the first channel pays again after a reconnect, from what it holds.
    const again = await session(r1.id);
    expect(again.paid.cumulative).toBeGreaterThanOrEqual(d.acked.cumulative);
    expect((await again.pay([{ sats: 1n, pid: null }])).error).toBeUndefined();
  });
});
