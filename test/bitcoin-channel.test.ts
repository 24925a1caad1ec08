import { createHash, randomBytes, randomInt } from 'node:crypto';
import { initEccLib, opcodes, payments, script as bscript, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import {
  channelOutput,
  closablePayment,
  channelScript,
  checkFunding,
  closeTx,
  closeVbytes,
  parseChannelScript,
  refundTx,
  signState,
  stateOutputs,
  StateHasher,
  verifyState,
  type ChannelTerms,
} from '../src/bitcoin/channel.js';
import type { Outpoint } from '../src/bitcoin/outpoint.js';
import { addressToScript } from '../src/bitcoin/address.js';
import { dustThreshold, MAX_PAYOUT_SCRIPT_BYTES, payoutType, type PayoutType } from '../src/bitcoin/policy.js';
import { faucetPay } from '../src/wallet/faucet.js';
import { expectCode, thrown } from './helpers/expect.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { hex, labelledKeys, p2wpkh, pub } from './helpers/keys.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

const priv = labelledKeys('channel-tx');

const PAYER = priv('payer');
const PAYEE = priv('payee');
const STRANGER = priv('stranger');
const FEE_RATE = FeeRate.ofSatPerVb(2n);

function terms(expiry: number, capacity = 1_000_000n): ChannelTerms {
  const scripts = { payeeScript: p2wpkh(PAYEE), payerScript: p2wpkh(PAYER) };
  return { payerPubkey: pub(PAYER), payeePubkey: pub(PAYEE), expiry, capacity, closeFee: FEE_RATE.feeFor(closeVbytes(scripts)), ...scripts };
}


/** Microseconds per call of `f`, after a warm-up. */
function micros(n: number, f: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(n, 1000); i++) f(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(i);
  return Number(process.hrtime.bigint() - start) / n / 1000;
}

describe('channel script template', () => {
  const keys = { payerPubkey: pub(PAYER), payeePubkey: pub(PAYEE) };
  /** The template byte by byte, so each test can bend one part of it. */
  const raw = (expiryPush: number[], o: { payee?: Uint8Array; payer?: Uint8Array; verify?: number } = {}) => {
    const payee = o.payee ?? keys.payeePubkey;
    const payer = o.payer ?? keys.payerPubkey;
    return Buffer.concat([
      Buffer.from([opcodes.OP_IF, payee.length]), payee,
      Buffer.from([o.verify ?? opcodes.OP_CHECKSIGVERIFY, opcodes.OP_ELSE, ...expiryPush, opcodes.OP_CHECKLOCKTIMEVERIFY, opcodes.OP_DROP, opcodes.OP_ENDIF, payer.length]), payer,
      Buffer.from([opcodes.OP_CHECKSIG]),
    ]);
  };

  test('is the DESIGN.md script, byte for byte', () => {
    expect(channelScript({ ...keys, expiry: 300 })).toEqual(raw([0x02, 0x2c, 0x01]));
    expect(channelScript({ ...keys, expiry: 5 })).toEqual(raw([opcodes.OP_5]));
  });

  test('build and parse round trip, across every expiry push size', () => {
    const expiries = [1, 16, 17, 127, 128, 255, 256, 32_767, 32_768, 65_535, 8_388_607, 8_388_608, 499_999_999];
    for (let i = 0; i < 50; i++) expiries.push(randomInt(1, 500_000_000));
    for (const expiry of expiries) {
      const script = channelScript({ ...keys, expiry });
      expect(script.length).toBeLessThanOrEqual(80);
      expect(parseChannelScript(script)).toEqual({ ...keys, expiry });
    }
  });

  test('parse refuses every other script', () => {
    const uncompressed = Buffer.from(ecc.pointFromScalar(PAYEE, false)!);
    const notAPoint = Buffer.concat([Buffer.from([0x02]), Buffer.alloc(32, 0xff)]);
    const good = raw([0x02, 0x2c, 0x01]);
    const others: [string, Uint8Array][] = [
      ['empty', Buffer.alloc(0)],
      ['garbage', randomBytes(80)],
      ['truncated', good.subarray(0, -1)],
      ['trailing OP_NOP', Buffer.concat([good, Buffer.from([opcodes.OP_NOP])])],
      ['trailing zero', Buffer.concat([good, Buffer.from([0])])],
      ['CHECKSIG for CHECKSIGVERIFY', raw([0x02, 0x2c, 0x01], { verify: opcodes.OP_CHECKSIG })],
      ['CHECKSEQUENCEVERIFY for CLTV', Buffer.from(hex(good).replace('2c01b175', '2c01b275'), 'hex')],
      ['uncompressed payee key', raw([0x02, 0x2c, 0x01], { payee: uncompressed })],
      ['32-byte payer key', raw([0x02, 0x2c, 0x01], { payer: keys.payerPubkey.subarray(1) })],
      ['payee key not on the curve', raw([0x02, 0x2c, 0x01], { payee: notAPoint })],
      ['expiry 5 as a data push', raw([0x01, 0x05])],
      ['expiry 300 with a padding byte', raw([0x03, 0x2c, 0x01, 0x00])],
      ['expiry 300 through OP_PUSHDATA1', raw([opcodes.OP_PUSHDATA1, 0x02, 0x2c, 0x01])],
      ['expiry 0', raw([opcodes.OP_0])],
      ['expiry -1', raw([opcodes.OP_1NEGATE])],
      ['negative expiry', raw([0x02, 0x2c, 0x81])],
      ['expiry 500,000,000 (a time)', raw([0x04, ...bscript.number.encode(500_000_000)])],
      ['5-byte expiry', raw([0x05, 0x01, 0x00, 0x00, 0x00, 0x01])],
    ];
    expect(parseChannelScript(good)).toEqual({ ...keys, expiry: 300 });
    for (const [what, script] of others) expect([what, parseChannelScript(script)]).toEqual([what, null]);
  });

  test('building refuses keys and expiries that would lock the coins', () => {
    expect(thrown(() => channelScript({ ...keys, expiry: 0 })).code).toBe('TX_CHECK_FAILED');
    expect(thrown(() => channelScript({ ...keys, expiry: 500_000_000 })).code).toBe('TX_CHECK_FAILED');
    expect(thrown(() => channelScript({ ...keys, expiry: 1.5 })).code).toBe('TX_CHECK_FAILED');
    expect(thrown(() => channelScript({ ...keys, payeePubkey: ecc.pointFromScalar(PAYEE, false)!, expiry: 10 })).code).toBe('TX_CHECK_FAILED');
  });

  test('the channel output is P2WSH of the script, and its address is for the network', () => {
    const t = terms(1000);
    const out = channelOutput(t, 'regtest');
    expect(out.witnessScript).toEqual(channelScript(t));
    expect(hex(out.script)).toBe(`0020${createHash('sha256').update(out.witnessScript).digest('hex')}`);
    expect(out.address).toMatch(/^bcrt1q/);
    expect(hex(addressToScript(out.address, 'regtest'))).toBe(hex(out.script));
    expect(channelOutput(t, 'mainnet').address).toMatch(/^bc1q/);
  });
});

describe('channel states', () => {
  const t = terms(1000);
  const funding: Outpoint = { txid: randomBytes(32).toString('hex'), vout: 3 };
  const dustPayer = dustThreshold(t.payerScript);
  const minState = t.closeFee + dustThreshold(t.payeeScript);

  test('a state pays the payee cumulative - closeFee and the payer the rest, leaving dust out', () => {
    expect(stateOutputs(t, 400_000n)).toEqual([{ script: t.payeeScript, value: 400_000n - t.closeFee }, { script: t.payerScript, value: 600_000n }]);
    expect(stateOutputs(t, t.capacity - dustPayer)).toHaveLength(2);
    expect(stateOutputs(t, t.capacity - dustPayer + 1n)).toEqual([{ script: t.payeeScript, value: t.capacity - dustPayer + 1n - t.closeFee }]);
    expect(stateOutputs(t, t.capacity)).toEqual([{ script: t.payeeScript, value: t.capacity - t.closeFee }]);
    expect(stateOutputs(t, minState)[0]!.value).toBe(dustThreshold(t.payeeScript));
    // Below that, the payee's output is dust and left out: a state it signs for but would not close on.
    expect(closablePayment(t)).toBe(minState);
    expect(stateOutputs(t, minState - 1n)).toEqual([{ script: t.payerScript, value: t.capacity - minState + 1n }]);
    expect(stateOutputs(t, 0n)).toEqual([{ script: t.payerScript, value: t.capacity }]);
  });

  test('amounts outside [0, capacity] are refused before any signature', () => {
    const hasher = new StateHasher(t, funding);
    const sig = Buffer.alloc(64, 1);
    for (const bad of [-1n, t.capacity + 1n]) {
      expect(thrown(() => stateOutputs(t, bad)).code).toBe('TX_CHECK_FAILED');
      expect(thrown(() => hasher.sighash(bad)).code).toBe('TX_CHECK_FAILED');
      expect(thrown(() => closeTx(t, funding, bad, sig, sig)).code).toBe('TX_CHECK_FAILED');
    }
    expect(thrown(() => closeTx(t, funding, minState, sig.subarray(1), sig)).code).toBe('TX_CHECK_FAILED');
    expect(thrown(() => new StateHasher({ ...t, closeFee: -1n }, funding)).code).toBe('TX_CHECK_FAILED');
    expect(thrown(() => new StateHasher(t, { txid: 'ab', vout: 0 })).code).toBe('TX_CHECK_FAILED');
  });

  test('StateHasher equals bitcoinjs hashForWitnessV0 of the close tx, for many amounts', () => {
    const hasher = new StateHasher(t, funding);
    const witnessScript = channelScript(t);
    const sig = signState(randomBytes(32), STRANGER);
    const amounts = [0n, 1n, minState - 1n, minState, t.capacity, t.capacity - dustPayer, t.capacity - dustPayer + 1n];
    for (let i = 0; i < 1000; i++) amounts.push(BigInt(randomInt(Number(minState), Number(t.capacity) + 1)));
    for (const c of amounts) {
      const tx = Transaction.fromHex(closeTx(t, funding, c, sig, sig).hex);
      expect(hex(hasher.sighash(c))).toBe(hex(tx.hashForWitnessV0(0, witnessScript, t.capacity, Transaction.SIGHASH_ALL)));
    }
  });

  test('hot path timings (sighash, signState, verifyState)', () => {
    const hasher = new StateHasher(t, funding);
    const hashes = Array.from({ length: 1000 }, (_, i) => hasher.sighash(minState + BigInt(i)));
    const sigs = hashes.map((h) => signState(h, PAYER));
    const payer = pub(PAYER);
    for (let i = 0; i < sigs.length; i++) expect(verifyState(hashes[i]!, payer, sigs[i]!)).toBe(true);
    const sighash = micros(50_000, (i) => hasher.sighash(minState + BigInt(i)));
    const sign = micros(5_000, (i) => signState(hashes[i % 1000]!, PAYER));
    const verify = micros(5_000, (i) => verifyState(hashes[i % 1000]!, payer, sigs[i % 1000]!));
    const setup = micros(2_000, () => new StateHasher(t, funding));
    console.log(`channel hot path: sighash ${sighash.toFixed(2)} µs, signState ${sign.toFixed(1)} µs, verifyState ${verify.toFixed(1)} µs (new StateHasher ${setup.toFixed(1)} µs)`);
  });

  test('verifyState is false, not an exception, for any wrong signature', () => {
    const h = new StateHasher(t, funding).sighash(500_000n);
    const sig = signState(h, PAYER);
    expect(verifyState(h, pub(PAYER), sig)).toBe(true);
    expect(verifyState(h, pub(PAYEE), sig)).toBe(false);
    expect(verifyState(new StateHasher(t, funding).sighash(500_001n), pub(PAYER), sig)).toBe(false);
    expect(verifyState(h, pub(PAYER), sig.subarray(1))).toBe(false);
    expect(verifyState(h, pub(PAYER), Buffer.alloc(64, 0xff))).toBe(false);
    expect(verifyState(h, pub(PAYER), Buffer.alloc(64))).toBe(false);
    // The same signature with high S is valid ECDSA but not standard: refused.
    const n = BigInt('0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141');
    const highS = Buffer.concat([sig.subarray(0, 32), Buffer.from((n - BigInt(`0x${hex(sig.subarray(32))}`)).toString(16).padStart(64, '0'), 'hex')]);
    expect(verifyState(h, pub(PAYER), highS)).toBe(false);
  });
});

describe('channel transactions on a real btcd', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(async () => {
    await node?.stop();
  });

  /** Funds the channel output from the faucet (finding its vout by script) and confirms it. */
  async function fund(t: ChannelTerms): Promise<Outpoint> {
    const out = channelOutput(t, 'regtest');
    const paid = await faucetPay(node.chain, out.address, t.capacity);
    const vout = Transaction.fromHex(paid.hex).outs.findIndex((o) => out.script.equals(o.script));
    const funding = checkFunding(t, 'regtest', paid.hex, vout);
    expect(funding).toEqual({ txid: paid.txid, vout });
    await node.chain.mine(1);
    return funding;
  }

  const sigs = (t: ChannelTerms, funding: Outpoint, c: bigint) => {
    const h = new StateHasher(t, funding).sighash(c);
    return { payer: signState(h, PAYER), payee: signState(h, PAYEE) };
  };

  async function confirmed(txid: string) {
    await node.chain.mine(1);
    return node.chain.waitForConfirmations(txid, 1, { pollMs: 50 });
  }

  const outputsOf = (info: { outputs: { script: Uint8Array; value: bigint }[] }) => info.outputs.map((o) => ({ script: hex(o.script), value: o.value }));

  test('checkFunding refuses a wrong script, a wrong amount, a missing vout', async () => {
    const t = terms((await node.chain.tipHeight()) + 100);
    const other = channelOutput({ ...t, expiry: t.expiry + 1 }, 'regtest');
    const elsewhere = await faucetPay(node.chain, other.address, t.capacity);
    const otherVout = Transaction.fromHex(elsewhere.hex).outs.findIndex((o) => other.script.equals(o.script));
    const wrongScript = thrown(() => checkFunding(t, 'regtest', elsewhere.hex, otherVout));
    expect([wrongScript.code, wrongScript.message]).toEqual(['FUNDING_MISMATCH', `output ${otherVout} of the funding transaction does not pay the channel address ${channelOutput(t, 'regtest').address}`]);

    const out = channelOutput(t, 'regtest');
    const short = await faucetPay(node.chain, out.address, t.capacity - 1n);
    const vout = Transaction.fromHex(short.hex).outs.findIndex((o) => out.script.equals(o.script));
    const wrongAmount = thrown(() => checkFunding(t, 'regtest', short.hex, vout));
    expect([wrongAmount.code, wrongAmount.message]).toEqual(['FUNDING_MISMATCH', `output ${vout} of the funding transaction holds 999999 sats, not the channel's 1000000`]);
    expect(checkFunding({ ...t, capacity: t.capacity - 1n }, 'regtest', short.hex, vout)).toEqual({ txid: short.txid, vout });

    const missing = thrown(() => checkFunding(t, 'regtest', short.hex, 7));
    expect([missing.code, missing.message]).toEqual(['FUNDING_MISMATCH', 'the funding transaction has no output 7']);
    expect(thrown(() => checkFunding(t, 'regtest', 'not hex', 0)).code).toBe('FUNDING_MISMATCH');
  });

  test('a close confirms, paying the payee exactly cumulative - closeFee and the payer exactly the rest', async () => {
    const t = terms((await node.chain.tipHeight()) + 1000);
    const funding = await fund(t);
    const c = 123_456n;
    const s = sigs(t, funding, c);
    const close = closeTx(t, funding, c, s.payer, s.payee);
    expect(Transaction.fromHex(close.hex).virtualSize()).toBeLessThanOrEqual(Number(closeVbytes(t)));
    expect(Transaction.fromHex(close.hex).virtualSize()).toBeGreaterThanOrEqual(Number(closeVbytes(t)) - 2);
    expect(await node.chain.broadcast(close.hex)).toBe(close.txid);
    const info = await confirmed(close.txid);
    expect(info.inputs.map((i) => ({ txid: i.txid, vout: i.vout }))).toEqual([funding]);
    expect(outputsOf(info)).toEqual([
      { script: hex(t.payeeScript), value: c - t.closeFee },
      { script: hex(t.payerScript), value: t.capacity - c },
    ]);
  });

  test('a close with a bad payee signature, a signature for another amount, or the signatures swapped is rejected by the node', async () => {
    const t = terms((await node.chain.tipHeight()) + 1000);
    const funding = await fund(t);
    const c = 300_000n;
    const s = sigs(t, funding, c);
    const other = sigs(t, funding, c + 1n);
    const stranger = signState(new StateHasher(t, funding).sighash(c), STRANGER);
    const bad = [
      closeTx(t, funding, c, s.payer, stranger),
      closeTx(t, funding, c, other.payer, s.payee),
      closeTx(t, funding, c, other.payer, other.payee),
      closeTx(t, funding, c, s.payee, s.payer),
    ];
    for (const tx of bad) {
      const err = await expectCode(node.chain.broadcast(tx.hex), 'TX_REJECTED');
      expect(err.message).toMatch(/script|signature/i);
    }
    // Nothing was spent by those: the right signatures still close the channel.
    const good = closeTx(t, funding, c, s.payer, s.payee);
    await node.chain.broadcast(good.hex);
    expect((await confirmed(good.txid)).confirmations).toBe(1);
  });

  test('a close whose payer remainder is dust leaves that output out, and confirms', async () => {
    const t = terms((await node.chain.tipHeight()) + 1000, 200_000n);
    const funding = await fund(t);
    const c = t.capacity - 100n;
    const s = sigs(t, funding, c);
    const close = closeTx(t, funding, c, s.payer, s.payee);
    await node.chain.broadcast(close.hex);
    expect(outputsOf(await confirmed(close.txid))).toEqual([{ script: hex(t.payeeScript), value: c - t.closeFee }]);
  });

  test('the refund is non-final until the chain reaches the expiry, then confirms', async () => {
    const tip = await node.chain.tipHeight();
    const t = terms(tip + 4);
    const funding = await fund(t);
    const to = p2wpkh(STRANGER);
    const refund = refundTx(t, funding, to, FEE_RATE, PAYER);
    const tx = Transaction.fromHex(refund.hex);
    expect(tx.locktime).toBe(t.expiry);
    expect(tx.ins[0]!.sequence).toBe(0xfffffffe);
    expect(refund.fee).toBeGreaterThanOrEqual(FEE_RATE.feeFor(BigInt(tx.virtualSize())));
    expect(refund.fee).toBeLessThanOrEqual(FEE_RATE.feeFor(BigInt(tx.virtualSize() + 1)));

    // The next block would be at most the expiry: a transaction locked to it is not final yet.
    while ((await node.chain.tipHeight()) < t.expiry - 1) {
      const err = await expectCode(node.chain.broadcast(refund.hex), 'TX_REJECTED');
      expect(err.message).toMatch(/final|locktime/i);
      await node.chain.mine(1);
    }
    expect((await expectCode(node.chain.broadcast(refund.hex), 'TX_REJECTED')).message).toMatch(/final|locktime/i);
    await node.chain.mine(1);
    expect(await node.chain.tipHeight()).toBe(t.expiry);
    expect(await node.chain.broadcast(refund.hex)).toBe(refund.txid);
    expect(outputsOf(await confirmed(refund.txid))).toEqual([{ script: hex(to), value: t.capacity - refund.fee }]);
  });

  test('the refund checks its key, dust and fee caps before signing', () => {
    const t = terms(1000);
    const funding: Outpoint = { txid: '11'.repeat(32), vout: 0 };
    const to = p2wpkh(PAYER);
    expect(thrown(() => refundTx(t, funding, to, FEE_RATE, PAYEE)).code).toBe('TX_CHECK_FAILED');
    expect(thrown(() => refundTx({ ...t, capacity: 500n }, funding, to, FEE_RATE, PAYER)).code).toBe('DUST_OUTPUT');
    expect(thrown(() => refundTx(t, funding, to, FeeRate.ofSatPerVb(5000n), PAYER)).code).toBe('FEE_TOO_HIGH');
    expect(thrown(() => refundTx({ ...t, capacity: 200_000n }, funding, to, FeeRate.ofSatPerVb(1000n), PAYER)).code).toBe('FEE_TOO_HIGH');
    expect(thrown(() => refundTx(t, funding, to, FeeRate.ofSatPerVb(0n), PAYER)).code).toBe('INVALID_AMOUNT');
  });
});

describe('standard payout scripts only', () => {
  // payments.p2tr checks its key through the ECC library it is given.
  initEccLib(ecc);
  const key = (label: string) => pub(priv(label));
  /** A script of each standard type, paying a key named `label`. */
  const payout: Record<PayoutType, (label: string) => Buffer> = {
    p2wpkh: (l) => Buffer.from(payments.p2wpkh({ pubkey: key(l) }).output!),
    p2wsh: (l) => Buffer.from(payments.p2wsh({ redeem: { output: bscript.compile([key(l), opcodes.OP_CHECKSIG]) } }).output!),
    p2tr: (l) => Buffer.from(payments.p2tr({ internalPubkey: key(l).subarray(1) }).output!),
    p2pkh: (l) => Buffer.from(payments.p2pkh({ pubkey: key(l) }).output!),
    p2sh: (l) => Buffer.from(payments.p2sh({ redeem: payments.p2wpkh({ pubkey: key(l) }) }).output!),
  };
  const TYPES = Object.keys(payout) as PayoutType[];
  const b = (...parts: (number[] | Uint8Array)[]) => Buffer.concat(parts.map((x) => Buffer.from(x)));
  const h20 = Buffer.alloc(20, 0x11);
  const h32 = Buffer.alloc(32, 0x22);

  /** What a peer might ask to be paid to instead, none of it standard here. */
  const nonStandard: [string, Buffer][] = [
    ['OP_TRUE', b([opcodes.OP_TRUE])],
    ['OP_RETURN', Buffer.from(payments.embed({ data: [Buffer.from('swarmpay')] }).output!)],
    ['bare 1-of-1 multisig', Buffer.from(payments.p2ms({ m: 1, pubkeys: [key('ms')] }).output!)],
    ['bare P2PK', Buffer.from(payments.p2pk({ pubkey: key('pk') }).output!)],
    ['witness v0 program of 25 bytes', b([opcodes.OP_0, 25], Buffer.alloc(25, 0x33))],
    ['witness v2 program', b([opcodes.OP_2, 32], h32)],
    ['P2WPKH with a trailing byte', b(payout.p2wpkh('x'), [opcodes.OP_NOP])],
    ['30 KB script', Buffer.alloc(30_000, opcodes.OP_NOP)],
  ];

  const withScripts = (expiry: number, payeeScript: Uint8Array, payerScript: Uint8Array): ChannelTerms => ({
    payerPubkey: pub(PAYER), payeePubkey: pub(PAYEE), expiry, capacity: 1_000_000n,
    closeFee: FEE_RATE.feeFor(closeVbytes({ payeeScript, payerScript })), payeeScript, payerScript,
  });

  test('payoutType names each standard template, and MAX_PAYOUT_SCRIPT_BYTES is the longest', () => {
    for (const type of TYPES) expect([type, payoutType(payout[type]('a'))]).toEqual([type, type]);
    expect(payoutType(b([opcodes.OP_0, 20], h20))).toBe('p2wpkh');
    expect(payoutType(b([opcodes.OP_0, 32], h32))).toBe('p2wsh');
    expect(payoutType(b([opcodes.OP_1, 32], h32))).toBe('p2tr');
    expect(payoutType(b([opcodes.OP_DUP, opcodes.OP_HASH160, 20], h20, [opcodes.OP_EQUALVERIFY, opcodes.OP_CHECKSIG]))).toBe('p2pkh');
    expect(payoutType(b([opcodes.OP_HASH160, 20], h20, [opcodes.OP_EQUAL]))).toBe('p2sh');
    expect(MAX_PAYOUT_SCRIPT_BYTES).toBe(34);
    expect(Math.max(...TYPES.map((t) => payout[t]('a').length))).toBe(MAX_PAYOUT_SCRIPT_BYTES);
  });

  test('payoutType is null for everything else', () => {
    const others: [string, Buffer][] = [
      ...nonStandard,
      ['empty', Buffer.alloc(0)],
      ['witness v0 program of 21 bytes', b([opcodes.OP_0, 21], Buffer.alloc(21))],
      ['witness v0 program of 33 bytes', b([opcodes.OP_0, 33], Buffer.alloc(33))],
      ['witness v1 program of 20 bytes', b([opcodes.OP_1, 20], h20)],
      ['witness v1 program of 33 bytes', b([opcodes.OP_1, 33], Buffer.alloc(33, 2))],
      ['witness v16 program', b([opcodes.OP_16, 32], h32)],
      ['P2WPKH pushed through OP_PUSHDATA1', b([opcodes.OP_0, opcodes.OP_PUSHDATA1, 20], h20)],
      ['P2PKH pushed through OP_PUSHDATA1', b([opcodes.OP_DUP, opcodes.OP_HASH160, opcodes.OP_PUSHDATA1, 20], h20, [opcodes.OP_EQUALVERIFY, opcodes.OP_CHECKSIG])],
      ['P2SH with OP_EQUALVERIFY', b([opcodes.OP_HASH160, 20], h20, [opcodes.OP_EQUALVERIFY])],
      ['P2PKH without OP_DUP', b([opcodes.OP_HASH160, 20], h20, [opcodes.OP_EQUALVERIFY, opcodes.OP_CHECKSIG])],
      ['P2PKH with a trailing byte', b(payout.p2pkh('x'), [0])],
      ['P2SH truncated', payout.p2sh('x').subarray(0, -1)],
      ['P2TR truncated', payout.p2tr('x').subarray(0, -1)],
      ['P2WSH with a trailing byte', b(payout.p2wsh('x'), [0])],
    ];
    for (const [what, script] of others) expect([what, payoutType(script)]).toEqual([what, null]);
  });

  test('dustThreshold is Bitcoin Core\'s at 3 sat/vB for each type', () => {
    const core: Record<PayoutType, bigint> = { p2pkh: 546n, p2sh: 540n, p2wpkh: 294n, p2wsh: 330n, p2tr: 330n };
    for (const type of TYPES) expect([type, dustThreshold(payout[type]('a'))]).toEqual([type, core[type]]);
  });

  test.each(nonStandard)('building from terms refuses a payer or payee script that is %s', (_, script) => {
    const funding: Outpoint = { txid: '11'.repeat(32), vout: 0 };
    const sig = Buffer.alloc(64, 1);
    const good = payout.p2wpkh('good');
    for (const [side, t] of [['payer', withScripts(1000, good, script)], ['payee', withScripts(1000, script, good)]] as const) {
      const builders: [string, () => unknown][] = [
        ['channelOutput', () => channelOutput(t, 'regtest')],
        ['StateHasher', () => new StateHasher(t, funding)],
        ['closeTx', () => closeTx(t, funding, 500_000n, sig, sig)],
        ['refundTx', () => refundTx(t, funding, good, FEE_RATE, PAYER)],
      ];
      for (const [builder, f] of builders) expect([side, builder, thrown(f).code]).toEqual([side, builder, 'TX_CHECK_FAILED']);
    }
    // The sweep target (refund, HTLC claim) is checked the same way.
    expect(thrown(() => refundTx(withScripts(1000, good, good), funding, script, FEE_RATE, PAYER)).code).toBe('TX_CHECK_FAILED');
  });

  test('the refusal names the script, shortened, and the types to use', () => {
    const good = payout.p2wpkh('good');
    const use = 'is not a standard payout: use a P2WPKH, P2WSH, P2TR, P2PKH or P2SH address';
    expect(thrown(() => channelOutput(withScripts(1000, good, b([opcodes.OP_TRUE])), 'regtest')).message).toBe(`the payer script (1 byte: 51) ${use}`);
    expect(thrown(() => channelOutput(withScripts(1000, Buffer.alloc(30_000, 0x61), good), 'regtest')).message).toBe(`the payee script (30000 bytes: ${'61'.repeat(20)}…) ${use}`);
    expect(thrown(() => channelOutput(withScripts(1000, good, Buffer.alloc(0)), 'regtest')).message).toBe(`the payer script (0 bytes) ${use}`);
  });

  describe('on a real btcd', () => {
    let node: TestNode;
    beforeAll(async () => {
      node = await startTestNode();
    });
    afterAll(async () => {
      await node?.stop();
    });

    /** Funds, closes at `c` signed by both keys, and returns the confirmed close's outputs. */
    async function closeOnChain(t: ChannelTerms, c: bigint) {
      const out = channelOutput(t, 'regtest');
      const paid = await faucetPay(node.chain, out.address, t.capacity);
      const funding = checkFunding(t, 'regtest', paid.hex, Transaction.fromHex(paid.hex).outs.findIndex((o) => out.script.equals(o.script)));
      await node.chain.mine(1);
      const h = new StateHasher(t, funding).sighash(c);
      const close = closeTx(t, funding, c, signState(h, PAYER), signState(h, PAYEE));
      expect(await node.chain.broadcast(close.hex)).toBe(close.txid);
      await node.chain.mine(1);
      const info = await node.chain.waitForConfirmations(close.txid, 1, { pollMs: 50 });
      expect(info.confirmations).toBe(1);
      return info.outputs.map((o) => ({ script: hex(o.script), value: o.value }));
    }

    /** A state both of whose outputs are above dust: the payee's and the payer's. */
    const bothPaid = (t: ChannelTerms, c: bigint) => {
      expect(c - t.closeFee).toBeGreaterThanOrEqual(dustThreshold(t.payeeScript));
      expect(t.capacity - c).toBeGreaterThanOrEqual(dustThreshold(t.payerScript));
      return [
        { script: hex(t.payeeScript), value: c - t.closeFee },
        { script: hex(t.payerScript), value: t.capacity - c },
      ];
    };

    test.each(TYPES)('a close paying %s to both sides is accepted by btcd and pays each exactly', async (type) => {
      const t = withScripts((await node.chain.tipHeight()) + 1000, payout[type]('payee out'), payout[type]('payer out'));
      const c = 250_000n;
      expect(await closeOnChain(t, c)).toEqual(bothPaid(t, c));
    });

    test('a close paying the payee P2TR and the payer P2PKH is accepted by btcd', async () => {
      const t = withScripts((await node.chain.tipHeight()) + 1000, payout.p2tr('payee out'), payout.p2pkh('payer out'));
      const c = 600_000n;
      expect(await closeOnChain(t, c)).toEqual(bothPaid(t, c));
    });

    test('btcd refuses a close paying OP_TRUE or another non-standard script, which is why they are refused before signing', async () => {
      const t = withScripts((await node.chain.tipHeight()) + 1000, payout.p2wpkh('payee out'), payout.p2wpkh('payer out'));
      const out = channelOutput(t, 'regtest');
      const paid = await faucetPay(node.chain, out.address, t.capacity);
      const funding = checkFunding(t, 'regtest', paid.hex, Transaction.fromHex(paid.hex).outs.findIndex((o) => out.script.equals(o.script)));
      await node.chain.mine(1);
      const c = 400_000n;
      // Built by hand, as closeTx no longer would: the same close with the payer's output swapped.
      const byHand = (payerScript: Uint8Array) => {
        const tx = new Transaction();
        tx.version = 2;
        tx.addInput(Buffer.from(funding.txid, 'hex').reverse(), funding.vout, 0xffffffff);
        tx.addOutput(t.payeeScript, c - t.closeFee);
        tx.addOutput(payerScript, t.capacity - c);
        const h = tx.hashForWitnessV0(0, out.witnessScript, t.capacity, Transaction.SIGHASH_ALL);
        const der = (k: Uint8Array) => bscript.signature.encode(signState(h, k), Transaction.SIGHASH_ALL);
        tx.setWitness(0, [der(PAYER), der(PAYEE), Uint8Array.of(1), out.witnessScript]);
        return tx.toHex();
      };
      for (const what of ['OP_TRUE', 'witness v0 program of 25 bytes', 'P2WPKH with a trailing byte']) {
        const err = await expectCode(node.chain.broadcast(byHand(nonStandard.find(([w]) => w === what)![1])), 'TX_REJECTED');
        expect([what, err.message]).toEqual([what, expect.stringMatching(/non-?standard/i)]);
      }
      // The same close paying the payer's own script is fine.
      await node.chain.broadcast(byHand(t.payerScript));
    });

    test('outputs just at the dust limit of each type are accepted by btcd', async () => {
      const t = withScripts((await node.chain.tipHeight()) + 1000, payout.p2pkh('payee out'), payout.p2sh('payer out'));
      const c = t.capacity - dustThreshold(t.payerScript);
      expect(await closeOnChain(t, c)).toEqual(bothPaid(t, c));
      const u = { ...t, capacity: t.closeFee + dustThreshold(t.payeeScript) + dustThreshold(t.payerScript) };
      expect(await closeOnChain(u, u.closeFee + dustThreshold(u.payeeScript))).toEqual(bothPaid(u, u.closeFee + dustThreshold(u.payeeScript)));
    });
  });
});
