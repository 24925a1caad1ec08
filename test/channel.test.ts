/**
 * Payment channels end to end, in process but over real TCP links and a real btcd: open,
 * pipelined payments with group commit, reconnect, batch idempotency, close and refund,
 * and every payment a payee must refuse, refused without changing its journal.
 */
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { Sessions } from './helpers/sessions.js';
import { testWallet, fund, type TestWallet } from './helpers/wallets.js';
import { failure } from './helpers/expect.js';
import { Payee, DEFAULT_POLICY, type PayeeContext } from '../src/channel/payee.js';
import { openChannel, refundChannel } from '../src/channel/payer.js';
import { contractContext, type ContractContext } from '../src/wallet/contract-wallet.js';
import { peerStaticKey } from '../src/peer/keys.js';
import { MAX_UNCOVERED, encodeMessage, parseMessage, type Message } from '../src/channel/messages.js';
import { isPaymentsFrame } from '../src/channel/payments-codec.js';
import { frameOf, paymentsFrame, stateSig } from './helpers/payments.js';
import { SETTLED_DEPTH, closePaymentJournal, findChannel, getChannel, openPaymentJournal, readPaymentState, termsOf, outpointOf } from '../src/channel/store.js';
import { refreshChannel } from '../src/channel/flows.js';
import { recoverJournals } from '../src/channel/recover.js';
import { connectTcp, listenTcp } from '../src/peer/transports.js';
import type { PeerLink } from '../src/peer/link.js';
import { StateHasher, channelOutput, signState } from '../src/bitcoin/channel.js';
import { faucetPay } from '../src/wallet/faucet.js';
import { Transaction } from 'bitcoinjs-lib';
import { CHANNEL_CHAIN, contractKey } from '../src/wallet/hd.js';
import { SwarmpayError } from '../src/errors.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

describe('payment channels on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let payer: TestWallet;
  let payee: TestWallet;
  let server: { port: number; close(): Promise<void> };
  let service: Payee;
  let pc: ContractContext;
  const logs: string[] = [];

  const link = () => connectTcp('127.0.0.1', server.port, peerStaticKey(payer.seed), { peerKey: peerStaticKey(payee.seed).publicKey });
  const open = async (capacity: bigint, expiryBlocks = 144) => {
    const l = await link();
    try {
      return await openChannel(pc, l, { kind: 'tcp', host: '127.0.0.1', port: server.port }, { capacity, expiryBlocks, feeRate: FeeRate.ofSatPerVb(2n) });
    } finally {
      await l.close();
    }
  };
  let sessions: Sessions;
  const session = (id: string) => sessions.start(id);
  /** A payee of its own (its own wallet and server), for tests that set it up differently; `prepare` runs before it starts. */
  const ownPayee = async (name: string, prepare: (w: TestWallet) => void, extra: Partial<PayeeContext> = {}) => {
    const w = await testWallet(path.join(tmp.dir, name));
    prepare(w);
    const p = new Payee({ ...contractContext(w.session, w.seed, node.chain, w.networkDir), policy: DEFAULT_POLICY, log: (m) => logs.push(m), ...extra });
    const srv = await listenTcp('127.0.0.1', 0, peerStaticKey(w.seed), (l) => void p.serve(l));
    const connect = () => connectTcp('127.0.0.1', srv.port, peerStaticKey(payer.seed), { peerKey: peerStaticKey(w.seed).publicKey });
    const pays = async () => {
      const l = await connect();
      const { rec } = await openChannel(pc, l, { kind: 'tcp', host: '127.0.0.1', port: srv.port }, { capacity: 200_000n, expiryBlocks: 144, feeRate: FeeRate.ofSatPerVb(2n) }).finally(() => l.close());
      await node.chain.mine(1);
      return sessions.start(rec.id, await connect());
    };
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await srv.close();
      await p.shutdown();
    };
    return { wallet: w, pays, stop, connect };
  };

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir();
    payer = await testWallet(path.join(tmp.dir, 'payer'));
    payee = await testWallet(path.join(tmp.dir, 'payee'));
    await fund(node.chain, payer, 50_000_000n);
    service = new Payee({ ...contractContext(payee.session, payee.seed, node.chain, payee.networkDir), policy: DEFAULT_POLICY, log: (m) => logs.push(m) });
    server = await listenTcp('127.0.0.1', 0, peerStaticKey(payee.seed), (l) => void service.serve(l));
    pc = contractContext(payer.session, payer.seed, node.chain, payer.networkDir);
    sessions = new Sessions(pc, () => link());
  });
  afterAll(async () => {
    await sessions?.closeAll();
    await server?.close();
    await service?.shutdown();
    await node?.stop();
    tmp?.remove();
  });

  test('open, pipelined payments past two full windows, reconnect, close: the node pays the payee exactly what was acknowledged minus the close fee', async () => {
    const { rec } = await open(1_000_000n);
    expect(rec.status).toBe('open');
    await node.chain.mine(1);
    const s = await session(rec.id);
    const n = 2 * MAX_UNCOVERED + 7;
    const paid0 = 7n * BigInt(n);
    const r = await s.pay(Array.from({ length: n }, () => ({ sats: 7n, pid: null })));
    expect(r.ackedCount).toBe(n);
    expect(r.acked).toMatchObject({ seq: n, cumulative: paid0 });
    // The payee's journal holds the same newest state, signature and all.
    expect(readPaymentState(payee.session, payee.networkDir, rec.id)).toEqual(r.acked);

    // A new connection reconciles on the payee's state and goes on.
    const again = await session(rec.id);
    expect(again.paid).toMatchObject({ seq: n, cumulative: paid0 });
    const more = await again.pay([{ sats: 1000n, pid: null }]);
    expect(more.acked.cumulative).toBe(paid0 + 1000n);

    const txid = await again.close();
    await node.chain.mine(1);
    const tx = (await node.chain.getTransaction(txid))!;
    expect(tx.confirmations).toBe(1);
    const t = termsOf(getChannel(payee.session, rec.id));
    const paid = tx.outputs.find((o) => Buffer.from(o.script).equals(Buffer.from(t.payeeScript)))!.value;
    const back = tx.outputs.find((o) => Buffer.from(o.script).equals(Buffer.from(t.payerScript)))!.value;
    expect(paid).toBe(paid0 + 1000n - t.closeFee);
    expect(back).toBe(1_000_000n - paid0 - 1000n);
    expect(getChannel(payee.session, rec.id).status).toBe('closing');
  });

  test('a batch is idempotent: ids already paid are skipped on a second run', async () => {
    const { rec } = await open(200_000n);
    await node.chain.mine(1);
    const items = Array.from({ length: 50 }, (_, i) => ({ sats: 10n, pid: `line-${i}` }));
    const first = await session(rec.id);
    await first.pay(items.slice(0, 30));
    const second = await session(rec.id);
    const known = await second.known(items.map((i) => i.pid));
    expect(known.size).toBe(30);
    const r = await second.pay(items.filter((i) => !known.has(i.pid)));
    expect(r.acked.cumulative).toBe(500n);
    // Paying a known id again is refused by the payee.
    const third = await session(rec.id);
    const dup = await third.pay([{ sats: 10n, pid: 'line-3' }]);
    expect(dup.ackedCount).toBe(0);
    expect((dup.error as SwarmpayError).message).toMatch(/paid already/);
  });

  describe('payments the payee refuses, its journal unchanged', () => {
    let id: string;
    let raw: PeerLink;
    let hasher: StateHasher;
    let priv: Buffer;
    let seq: number;
    let cumulative: bigint;
    beforeAll(async () => {
      const { rec } = await open(100_000n);
      id = rec.id;
      await node.chain.mine(1);
      const s = await session(id);
      await s.pay([{ sats: 1000n, pid: null }]);
      hasher = new StateHasher(termsOf(rec), outpointOf(rec));
      priv = contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, rec.keyIndex).priv;
    });
    afterEach(() => raw.close());
    beforeEach(async () => {
      raw = await link();
      raw.send(encodeMessage({ t: 'hello', id }));
      const it = raw.messages()[Symbol.asyncIterator]();
      const st = parseMessage((await it.next()).value as Buffer) as Extract<Message, { t: 'state' }>;
      seq = st.seq;
      cumulative = st.cumulative;
    });
    /** Sends one frame and returns the payee's answer: an error, and then the link closes. */
    const answer = async (frame: Buffer): Promise<Message> => {
      raw.send(frame);
      const it = raw.messages()[Symbol.asyncIterator]();
      const r = await it.next();
      return parseMessage(r.value as Buffer);
    };
    const sig = (c: bigint) => signState(hasher.sighash(c), priv);
    const refusedWith = async (frame: Buffer, pattern: RegExp) => {
      const before = readPaymentState(payee.session, payee.networkDir, id);
      const a = await answer(frame);
      expect(a).toMatchObject({ t: 'error', code: 'CHANNEL_REFUSED' });
      expect((a as { message: string }).message).toMatch(pattern);
      await raw.closed.catch(() => undefined);
      expect(readPaymentState(payee.session, payee.networkDir, id)).toEqual(before);
    };

    test('a signed state for less than the payments before it add up to', () => refusedWith(paymentsFrame(seq + 1, [{ sats: 5 }], { seq: seq + 1, cumulative: cumulative + 4n, sig: sig(cumulative + 4n) }), /is for \d+ sats, but the payments up to it add up to/));
    test('a signed state for more than the payments before it add up to', () => refusedWith(paymentsFrame(seq + 1, [{ sats: 5 }], { seq: seq + 1, cumulative: cumulative + 6n, sig: sig(cumulative + 6n) }), /add up to/));
    test('a reused sequence number', () => refusedWith(paymentsFrame(seq, [{ sats: 1 }], { seq, cumulative: cumulative + 1n, sig: sig(cumulative + 1n) }), /sequence/));
    test('more than the capacity', () => refusedWith(paymentsFrame(seq + 1, [{ sats: Number(100_001n - cumulative) }]), /capacity/));
    test('a bad signature', () => refusedWith(paymentsFrame(seq + 1, [{ sats: 5 }], { seq: seq + 1, cumulative: cumulative + 5n, sig: sig(cumulative + 6n) }), /signature/));
    test('a state for a payment not sent', () => refusedWith(paymentsFrame(seq + 1, [{ sats: 5 }], { seq: seq + 2, cumulative: cumulative + 5n, sig: sig(cumulative + 5n) }), /only payments \d+ to \d+ wait for one/));
    test('a signature for another channel', async () => {
      const other = await open(100_000n);
      const otherHasher = new StateHasher(termsOf(other.rec), outpointOf(other.rec));
      const otherPriv = contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, other.rec.keyIndex).priv;
      await refusedWith(paymentsFrame(seq + 1, [{ sats: 5 }], { seq: seq + 1, cumulative: cumulative + 5n, sig: signState(otherHasher.sighash(cumulative + 5n), otherPriv) }), /signature/);
    });
    test('a bad signature in the middle of a batch: reported, the link closed, and nothing past the last good state acknowledged', async () => {
      const before = readPaymentState(payee.session, payee.networkDir, id);
      const good = { seq: seq + 3, cumulative: cumulative + 30n, sig: sig(cumulative + 30n) };
      // In one frame: three payments and their state, then three more and a state whose signature is for another amount.
      const ten = { sats: 10 };
      raw.send(frameOf(seq + 1, [ten, ten, ten, good, ten, ten, ten, { seq: seq + 6, cumulative: cumulative + 60n, sig: sig(cumulative + 61n) }]));
      const it = raw.messages()[Symbol.asyncIterator]();
      const answers: Message[] = [];
      for (let r = await it.next(); !r.done; r = await it.next().catch(() => ({ done: true as const, value: undefined }))) answers.push(parseMessage(r.value as Buffer));
      expect(answers).toEqual([
        { t: 'ack', id, seq: seq + 3 },
        { t: 'error', code: 'CHANNEL_REFUSED', message: `the signature of the state at sequence ${seq + 6} does not verify for this channel and amount` },
      ]);
      expect(readPaymentState(payee.session, payee.networkDir, id)).toEqual({ seq: seq + 3, cumulative: cumulative + 30n, sig: good.sig.toString('hex') });
      expect(before.seq).toBe(seq);
    });
    test('garbage instead of a message closes the link with a protocol error', async () => {
      raw.send(Buffer.from('{"v":2,"t":"known?","id":"zz"}'));
      const it = raw.messages()[Symbol.asyncIterator]();
      const a = parseMessage((await it.next()).value as Buffer);
      expect(a).toMatchObject({ t: 'error', code: 'PEER_PROTOCOL' });
    });
  });

  test('a payer that never signs: nothing is acknowledged, and the payee closes the link after a bounded wait', async () => {
    const own = await ownPayee('unsigned', () => undefined, { unsignedTimeoutMs: 400 });
    try {
      const s = await own.pays();
      const held = readPaymentState(own.wallet.session, own.wallet.networkDir, s.rec.id);
      await s.disconnect();
      const l = await own.connect();
      const it = l.messages()[Symbol.asyncIterator]();
      l.send(encodeMessage({ t: 'hello', id: s.rec.id }));
      await it.next(); // its state
      const t0 = performance.now();
      l.send(paymentsFrame(1, Array.from({ length: 50 }, () => ({ sats: 10 }))));
      const answer = parseMessage((await it.next()).value as Buffer);
      expect(answer).toMatchObject({ t: 'error', code: 'PEER_PROTOCOL', message: expect.stringMatching(/payments 1 to 50 waited \d+ s for a signed state that covers them: none counts/) });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(350);
      await l.closed.catch(() => undefined);
      expect(readPaymentState(own.wallet.session, own.wallet.networkDir, s.rec.id)).toEqual(held);

      // One frame that starts payments waiting and covers only some of them (found by the payee fuzz):
      // the rest wait just as long, then the link is closed.
      const l2 = await own.connect();
      const it2 = l2.messages()[Symbol.asyncIterator]();
      l2.send(encodeMessage({ t: 'hello', id: s.rec.id }));
      await it2.next();
      const t1 = performance.now();
      l2.send(frameOf(held.seq + 1, [...Array.from({ length: 10 }, () => ({ sats: 10 })), { seq: held.seq + 5, cumulative: held.cumulative + 50n, sig: stateSig(s.rec, payer.seed, s.rec.keyIndex, held.cumulative + 50n) }]));
      expect(parseMessage((await it2.next()).value as Buffer)).toMatchObject({ t: 'ack', seq: held.seq + 5 });
      expect(parseMessage((await it2.next()).value as Buffer)).toMatchObject({ t: 'error', code: 'PEER_PROTOCOL', message: expect.stringMatching(new RegExp(`payments ${held.seq + 6} to ${held.seq + 10} waited`)) });
      expect(performance.now() - t1).toBeLessThan(5_000);
      await l2.closed.catch(() => undefined);
    } finally {
      await own.stop();
    }
  });

  test('a payee that acknowledges a payment no signed state covers is refused, and nothing counts as paid', async () => {
    const { rec } = await open(100_000n);
    const id = rec.id;
    await node.chain.mine(1);
    // A fake payee under the real payee's key: it answers "hello" truthfully, then acknowledges ahead of the payer.
    const fake = await listenTcp('127.0.0.1', 0, peerStaticKey(payee.seed), (l) => {
      void (async () => {
        for await (const bytes of l.messages()) {
          if (isPaymentsFrame(bytes)) l.send(encodeMessage({ t: 'ack', id, seq: 4 }));
          else if (parseMessage(bytes).t === 'hello') l.send(encodeMessage({ t: 'state', id, seq: 0, cumulative: 0n, sig: null, confirmations: 1, status: 'open' }));
        }
      })().catch(() => undefined);
    });
    try {
      const s = await sessions.start(rec.id, await connectTcp('127.0.0.1', fake.port, peerStaticKey(payer.seed), { peerKey: peerStaticKey(payee.seed).publicKey }));
      // Paced at 2 a second: the bogus acknowledgement arrives while one payment is out (and signed), the fourth 1.5 s away.
      const r = await s.pay(Array.from({ length: 5 }, () => ({ sats: 100n, pid: null })), { pace: 2 });
      expect(r.error).toMatchObject({ code: 'PEER_PROTOCOL' });
      expect((r.error as Error).message).toMatch(/acknowledged sequence 4, which no signed state in flight ends at \(0 acknowledged, 1 signed\)/);
      expect(r.acked).toMatchObject({ seq: 0, cumulative: 0n });
      expect(r.ackedCount).toBe(0);
    } finally {
      await fake.close();
    }
  });

  test('an expiry too near is refused at open, and nothing is funded', async () => {
    const err = await failure(open(100_000n, 3));
    expect(err).toMatchObject({ code: 'CHANNEL_REFUSED' });
    expect((err as Error).message).toMatch(/too near/);
  });

  test('refund: refused before the expiry (saying when), confirmed after it', async () => {
    const { rec } = await open(100_000n, DEFAULT_POLICY.minExpiryBlocks);
    await node.chain.mine(1);
    const early = await failure(refundChannel(pc, rec.id, FeeRate.ofSatPerVb(2n)));
    expect(early).toMatchObject({ code: 'CHANNEL_STATE' });
    expect((early as SwarmpayError).hint).toMatch(/in \d+ blocks/);
    const tip = await node.chain.tipHeight();
    await node.chain.mine(rec.terms.expiry - tip);
    const r = await refundChannel(pc, rec.id, FeeRate.ofSatPerVb(2n));
    await node.chain.mine(1);
    expect((await node.chain.getTransaction(r.txid))!.confirmations).toBe(1);
    expect(getChannel(payer.session, rec.id)).toMatchObject({ status: 'refunding', refund: { txid: r.txid } });
    // Settled once the chain has it deep enough, on both sides, each from what it sees.
    await node.chain.mine(SETTLED_DEPTH - 1);
    await refreshChannel(pc, getChannel(payer.session, rec.id), await node.chain.tipHeight());
    expect(getChannel(payer.session, rec.id)).toMatchObject({ status: 'refunded', refund: { txid: r.txid } });
    await service.tick();
    expect(getChannel(payee.session, rec.id)).toMatchObject({ status: 'refunded', refund: { txid: r.txid } });
  });

  test('the payee\'s disk filling up: payments stop with a clear error, and the payee holds exactly what it acknowledged', async () => {
    let mnt = '';
    const full = await ownPayee('full', (w) => {
      mnt = path.join(w.networkDir, 'channels');
      mkdirSync(mnt, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    });
    try {
      const s = await full.pays();
      // Long batch ids make each record large, so 64 KiB fill within about a thousand payments.
      const r = await s.pay(Array.from({ length: 3000 }, (_, i) => ({ sats: 1n, pid: `invoice-${String(i).padStart(50, '0')}` })));
      const err = r.error as SwarmpayError | undefined;
      expect(err?.message).toMatch(/cannot store payments.*disk is full/);
      const acked = r.ackedCount;
      expect(acked).toBeGreaterThan(0);
      expect(acked).toBeLessThan(3000);
      expect(readPaymentState(full.wallet.session, full.wallet.networkDir, s.rec.id)).toMatchObject({ seq: r.acked.seq, cumulative: r.acked.cumulative });
      expect(r.acked.seq).toBe(acked);
    } finally {
      await full.stop();
      execFileSync('umount', [mnt]);
    }
  });

  test('a long-running payee rewrites its journal as it grows: the file stays small, and the newest state and every batch id survive', async () => {
    const limit = 8 * 1024;
    const own = await ownPayee('compacting', () => undefined, { compactJournalAt: limit });
    const journal = path.join(own.wallet.networkDir, 'channels', 'channel-payments.journal');
    try {
      const s = await own.pays();
      const pids = Array.from({ length: 100 }, (_, i) => `line-${i}`);
      await s.pay(pids.map((pid) => ({ sats: 3n, pid })));
      let largest = 0;
      for (let round = 0; round < 10; round++) {
        const r = await s.pay(Array.from({ length: 300 }, () => ({ sats: 1n, pid: null })));
        expect(r.error).toBeUndefined();
        largest = Math.max(largest, statSync(journal).size);
      }
      // 3,100 payments in commits of a few dozen: uncompacted, the journal reaches about 90 KiB.
      expect(largest).toBeLessThan(2 * limit);
      expect(logs.filter((m) => /compact/.test(m))).toEqual([]);
      await own.stop();
      const { channels } = openPaymentJournal(own.wallet.session, own.wallet.networkDir);
      await closePaymentJournal(own.wallet.session);
      expect(channels.get(s.rec.id)!.state).toEqual(s.paid);
      expect(s.paid).toMatchObject({ seq: 3100, cumulative: 3300n });
      expect([...channels.get(s.rec.id)!.ids].sort()).toEqual([...pids].sort());
    } finally {
      await own.stop();
    }
  });

  test('a damaged payment journal: the payee refuses to start, recover keeps the newest state a signature proves, and the close pays it; an older copy of the journal is refused', async () => {
    const own = await ownPayee('damaged', () => undefined);
    const journal = path.join(own.wallet.networkDir, 'channels', 'channel-payments.journal');
    const restart = () => new Payee({ ...contractContext(own.wallet.session, own.wallet.seed, node.chain, own.wallet.networkDir), policy: DEFAULT_POLICY, log: (m) => logs.push(m) });
    try {
      const s = await own.pays();
      await s.pay([{ sats: 500n, pid: 'first' }]);
      const old = readFileSync(journal);
      for (let i = 0; i < 4; i++) await s.pay([{ sats: 500n, pid: `more-${i}` }]);
      expect(s.paid).toMatchObject({ seq: 5, cumulative: 2500n });
      await s.disconnect();
      await own.stop();
      const whole = readFileSync(journal);
      // Records are framed by a 4-byte length (plus a 4-byte check) after the two 64-byte headers; the last is the newest state.
      let last = 128;
      for (let off = 128; off < whole.length; off += 8 + whole.readUInt32BE(off)) last = off;

      // An older copy beside the keystore that recorded the newer one at shutdown.
      writeFileSync(journal, old);
      expect(() => restart()).toThrow(expect.objectContaining({ code: 'ROLLBACK_DETECTED' }));

      // The newest record's tag damaged: its state is intact and its signature proves it.
      const tagHit = Buffer.from(whole);
      tagHit[tagHit.length - 1] ^= 1;
      writeFileSync(journal, tagHit);
      expect(() => restart()).toThrow(expect.objectContaining({ code: 'KEYSTORE_CORRUPT' }));
      const r1 = await recoverJournals(own.wallet.session, own.wallet.networkDir);
      expect(r1.journals[0]).toMatchObject({ status: 'recovered', records: { authentic: 4, unauthenticated: 1 } });
      expect(r1.journals[0]!.damage).toEqual([{ offset: last, bytes: whole.length - last, what: 'record 4 fails authentication' }]);
      expect(r1.states).toEqual([{ id: s.rec.id, seq: 5, cumulative: 2500n, proof: 'signature' }]);
      expect(readFileSync(r1.journals[0]!.keptAs!)).toEqual(tagHit);
      expect(readPaymentState(own.wallet.session, own.wallet.networkDir, s.rec.id)).toEqual(s.paid);
      // Whole now: a second run changes nothing.
      const recovered = readFileSync(journal);
      expect((await recoverJournals(own.wallet.session, own.wallet.networkDir)).journals[0]!.status).toBe('whole');
      expect(readFileSync(journal)).toEqual(recovered);

      // An older record's sequence number changed under its encryption (2 to 9: GCM without its tag is
      // CTR, so a flipped bit flips the same bit of the text): its signature still proves its amount,
      // 1,000 sats, but a damaged sequence number must not make it pass for the newest state.
      const seqHit = Buffer.from(whole);
      const second = 128 + 8 + whole.readUInt32BE(128);
      seqHit[second + 8 + 12 + `{"ch":"${s.rec.id}","seq":`.length] ^= '2'.charCodeAt(0) ^ '9'.charCodeAt(0);
      writeFileSync(journal, seqHit);
      const r3 = await recoverJournals(own.wallet.session, own.wallet.networkDir);
      expect(r3.journals[0]).toMatchObject({ status: 'recovered', records: { authentic: 4, unauthenticated: 1 } });
      expect(r3.states).toEqual([{ id: s.rec.id, seq: 5, cumulative: 2500n, proof: 'journal' }]);

      // The newest record's nonce damaged (in the file as it was before the recovery): nothing of it
      // can be read, and the state before it is the newest proved.
      const nonceHit = Buffer.from(whole);
      nonceHit[last + 8] ^= 0x10;
      writeFileSync(journal, nonceHit);
      const r2 = await recoverJournals(own.wallet.session, own.wallet.networkDir);
      expect(r2.states).toEqual([{ id: s.rec.id, seq: 4, cumulative: 2000n, proof: 'journal' }]);
      const newestState = r2.states[0]!;

      // The payee starts again and closes on what was recovered; the node pays it.
      const p = restart();
      try {
        const txid = await p.closeChannel(s.rec.id);
        await node.chain.mine(1);
        const tx = (await node.chain.getTransaction(txid))!;
        const t = termsOf(getChannel(own.wallet.session, s.rec.id));
        expect(tx.outputs.find((o) => Buffer.from(o.script).equals(Buffer.from(t.payeeScript)))!.value).toBe(newestState.cumulative - t.closeFee);
      } finally {
        await p.shutdown();
      }
      expect(existsSync(`${journal}.lock`)).toBe(false);
    } finally {
      await own.stop();
    }
  });

  test('a funding transaction that does not pay the agreed amount is refused, and the channel never opens', async () => {
    const l = await link();
    try {
      const it = l.messages()[Symbol.asyncIterator]();
      const key = contractKey(payer.seed, 'regtest', CHANNEL_CHAIN, 900);
      const payerScript = Buffer.concat([Buffer.from([0, 20]), Buffer.alloc(20, 5)]);
      const expiry = (await node.chain.tipHeight()) + 144;
      const id = 'feedfacefeedface';
      l.send(encodeMessage({ t: 'open', id, network: 'regtest', capacity: 100_000n, expiry, closeFee: 400n, payerPubkey: key.pub.toString('hex'), payerScript: payerScript.toString('hex') }));
      const accept = parseMessage((await it.next()).value as Buffer) as Extract<Message, { t: 'accept' }>;
      expect(accept.t).toBe('accept');
      const terms = { payerPubkey: key.pub, payeePubkey: Buffer.from(accept.payeePubkey, 'hex'), expiry, capacity: 100_000n, closeFee: 400n, payeeScript: Buffer.from(accept.payeeScript, 'hex'), payerScript };
      const out = channelOutput(terms, 'regtest');
      const tx = await faucetPay(node.chain, out.address, 99_000n); // short by 1,000 sats
      const vout = Transaction.fromHex(tx.hex).outs.findIndex((o) => Buffer.from(o.script).equals(out.script));
      l.send(encodeMessage({ t: 'funded', id, tx: tx.hex, vout, ticket: accept.ticket }));
      const answer = parseMessage((await it.next()).value as Buffer);
      expect(answer).toMatchObject({ t: 'error', code: 'FUNDING_MISMATCH' });
      expect(findChannel(payee.session, id)).toBeNull();
    } finally {
      await l.close();
    }
  });

  test('the payee closes by itself once the expiry is within its margin, paying what was acknowledged', async () => {
    const { rec } = await open(100_000n, DEFAULT_POLICY.minExpiryBlocks + 2);
    await node.chain.mine(1);
    const s = await session(rec.id);
    await s.pay([{ sats: 5_000n, pid: null }]);
    await service.tick();
    expect(getChannel(payee.session, rec.id).status).toBe('open'); // not yet
    const tip = await node.chain.tipHeight();
    await node.chain.mine(rec.terms.expiry - DEFAULT_POLICY.closeMargin - tip);
    await service.tick();
    const closing = getChannel(payee.session, rec.id);
    expect(closing.status).toBe('closing');
    const txid = (closing as { close: { txid: string } }).close.txid;
    await node.chain.mine(1);
    const tx = (await node.chain.getTransaction(txid!))!;
    const t = termsOf(getChannel(payee.session, rec.id));
    expect(tx.outputs.find((o) => Buffer.from(o.script).equals(Buffer.from(t.payeeScript)))!.value).toBe(5_000n - t.closeFee);
    await service.tick();
    expect(getChannel(payee.session, rec.id)).toMatchObject({ status: 'closing', close: { txid, bumps: [] } }); // once only
  });

  test('payments beyond the capacity are refused before any is sent, and the session goes on', async () => {
    const { rec } = await open(50_000n);
    await node.chain.mine(1);
    const s = await session(rec.id);
    await s.pay([{ sats: 40_000n, pid: null }]);
    const err = await failure(s.pay([{ sats: 5_000n, pid: null }, { sats: 5_001n, pid: null }]));
    expect(err).toMatchObject({ code: 'CHANNEL_REFUSED' });
    expect(readPaymentState(payee.session, payee.networkDir, rec.id).cumulative).toBe(40_000n);
    expect((await s.pay([{ sats: 10_000n, pid: null }])).acked.cumulative).toBe(50_000n);
  });
});
