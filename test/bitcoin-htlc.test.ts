/**
 * The fair-exchange HTLC on a real btcd, no mocks: both templates (the size-checked one of
 * every new escrow, the legacy one of escrows funded before it) built and recognised byte
 * for byte, the funding check, the claim (refused before signing with a wrong key K,
 * refused by the node with a wrong preimage, accepted with the right one and K read back
 * from its witness), the refund (non-final until the timeout height), and the exact payout
 * of both. What the size check refuses is in escrow-htlc-size.test.ts.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { opcodes, payments, script as bscript, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import {
  checkHtlcFunding,
  claimTx,
  htlcOutput,
  htlcRefundTx,
  htlcScript,
  opensLock,
  parseHtlcScript,
  readSpend,
  sha256,
  type HtlcTemplate,
  type HtlcTerms,
} from '../src/bitcoin/htlc.js';
import type { Outpoint } from '../src/bitcoin/outpoint.js';
import { faucetPay } from '../src/wallet/faucet.js';
import { expectCode, thrown } from './helpers/expect.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { hex, labelledKeys, p2wpkh, pub } from './helpers/keys.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

const priv = labelledKeys('escrow-tx');

const SELLER = priv('seller');
const BUYER = priv('buyer');
const FEE_RATE = FeeRate.ofSatPerVb(2n);
const TEMPLATES: HtlcTemplate[] = ['size-checked', 'legacy'];

/** OP_SIZE 32 OP_EQUALVERIFY, byte by byte. */
const SIZE_CHECK = [opcodes.OP_SIZE, 0x01, 0x20, opcodes.OP_EQUALVERIFY];

describe.each(TEMPLATES)('HTLC script template (%s)', (template) => {
  const K = priv('key K');
  const keys = { template, hash: sha256(K), sellerPubkey: pub(SELLER), buyerPubkey: pub(BUYER) };
  /** The template byte by byte, so each case can bend one part of it. */
  const raw = (timeoutPush: number[], o: { hash?: Uint8Array; seller?: Uint8Array; buyer?: Uint8Array; sizeCheck?: number[]; op?: Partial<Record<'sha' | 'eqv' | 'cltv' | 'drop' | 'sig1' | 'sig2', number>> } = {}) => {
    const hash = o.hash ?? keys.hash;
    const seller = o.seller ?? keys.sellerPubkey;
    const buyer = o.buyer ?? keys.buyerPubkey;
    const sizeCheck = o.sizeCheck ?? (template === 'legacy' ? [] : SIZE_CHECK);
    const op = { sha: opcodes.OP_SHA256, eqv: opcodes.OP_EQUALVERIFY, cltv: opcodes.OP_CHECKLOCKTIMEVERIFY, drop: opcodes.OP_DROP, sig1: opcodes.OP_CHECKSIG, sig2: opcodes.OP_CHECKSIG, ...o.op };
    return Buffer.concat([
      Buffer.from([opcodes.OP_IF, ...sizeCheck, op.sha, hash.length]), hash,
      Buffer.from([op.eqv, seller.length]), seller,
      Buffer.from([op.sig1, opcodes.OP_ELSE, ...timeoutPush, op.cltv, op.drop, buyer.length]), buyer,
      Buffer.from([op.sig2, opcodes.OP_ENDIF]),
    ]);
  };

  test(template === 'legacy' ? 'is the script escrows were funded with before the size check, byte for byte' : 'is the DESIGN.md script, byte for byte', () => {
    expect(htlcScript({ ...keys, timeout: 300 })).toEqual(raw([0x02, 0x2c, 0x01]));
    expect(htlcScript({ ...keys, timeout: 16 })).toEqual(raw([opcodes.OP_16]));
    expect(htlcScript({ ...keys, timeout: 128 })).toEqual(raw([0x02, 0x80, 0x00]));
    // And as DESIGN.md writes it (OP_SIZE 32: the number 32, pushed as the byte 0x20).
    const sizeCheck = template === 'legacy' ? '' : 'OP_SIZE 20 OP_EQUALVERIFY ';
    const asm = `OP_IF ${sizeCheck}OP_SHA256 ${hex(keys.hash)} OP_EQUALVERIFY ${hex(keys.sellerPubkey)} OP_CHECKSIG OP_ELSE 2c01 OP_CHECKLOCKTIMEVERIFY OP_DROP ${hex(keys.buyerPubkey)} OP_CHECKSIG OP_ENDIF`;
    expect(htlcScript({ ...keys, timeout: 300 })).toEqual(Buffer.from(bscript.fromASM(asm)));
  });

  test('build and parse round trip, across every timeout push size', () => {
    const timeouts = [1, 2, 16, 17, 127, 128, 255, 256, 32_767, 32_768, 65_535, 8_388_607, 8_388_608, 499_999_999];
    for (let i = 0; i < 50; i++) timeouts.push(randomInt(1, 500_000_000));
    for (const timeout of timeouts) {
      const t = { template, hash: randomBytes(32), sellerPubkey: pub(randomBytes(32)), buyerPubkey: pub(randomBytes(32)), timeout };
      expect(parseHtlcScript(htlcScript(t))).toEqual(t);
    }
  });

  test('the two templates are two scripts: neither parses as the other', () => {
    const other: HtlcTemplate = template === 'legacy' ? 'size-checked' : 'legacy';
    const mine = htlcScript({ ...keys, timeout: 300 });
    const theirs = htlcScript({ ...keys, template: other, timeout: 300 });
    expect(mine.length - theirs.length).toBe(template === 'legacy' ? -4 : 4);
    expect(parseHtlcScript(mine)).toMatchObject({ template });
    expect(parseHtlcScript(theirs)).toMatchObject({ template: other });
    expect(htlcOutput({ ...keys, timeout: 300, value: 1000n }, 'regtest').address).not.toBe(htlcOutput({ ...keys, template: other, timeout: 300, value: 1000n }, 'regtest').address);
  });

  test('parse refuses non-minimal pushes, altered opcodes and wrong key or hash lengths', () => {
    const good = raw([0x02, 0x2c, 0x01]);
    const uncompressed = Buffer.from(ecc.pointFromScalar(SELLER, false)!);
    const notAPoint = Buffer.concat([Buffer.from([0x02]), Buffer.alloc(32, 0xff)]);
    const others: [string, Uint8Array][] = [
      ['empty', Buffer.alloc(0)],
      ['garbage', randomBytes(99)],
      ['truncated', good.subarray(0, -1)],
      ['trailing OP_NOP', Buffer.concat([good, Buffer.from([opcodes.OP_NOP])])],
      ['OP_HASH256 for OP_SHA256', raw([0x02, 0x2c, 0x01], { op: { sha: opcodes.OP_HASH256 } })],
      ['OP_EQUAL for OP_EQUALVERIFY', raw([0x02, 0x2c, 0x01], { op: { eqv: opcodes.OP_EQUAL } })],
      ['CSV for CLTV', raw([0x02, 0x2c, 0x01], { op: { cltv: opcodes.OP_CHECKSEQUENCEVERIFY } })],
      ['OP_NOP for OP_DROP', raw([0x02, 0x2c, 0x01], { op: { drop: opcodes.OP_NOP } })],
      ['CHECKSIGVERIFY in the hash branch', raw([0x02, 0x2c, 0x01], { op: { sig1: opcodes.OP_CHECKSIGVERIFY } })],
      ['CHECKMULTISIG in the timeout branch', raw([0x02, 0x2c, 0x01], { op: { sig2: opcodes.OP_CHECKMULTISIG } })],
      ['OP_NOTIF for OP_IF', Buffer.concat([Buffer.from([opcodes.OP_NOTIF]), good.subarray(1)])],
      ['timeout 5 as a data push', raw([0x01, 0x05])],
      ['timeout 300 with a padding byte', raw([0x03, 0x2c, 0x01, 0x00])],
      ['timeout 300 through OP_PUSHDATA1', raw([opcodes.OP_PUSHDATA1, 0x02, 0x2c, 0x01])],
      ['timeout 0', raw([opcodes.OP_0])],
      ['timeout -1', raw([opcodes.OP_1NEGATE])],
      ['negative timeout', raw([0x02, 0x2c, 0x81])],
      ['timeout 500,000,000 (a time)', raw([0x04, ...bscript.number.encode(500_000_000)])],
      ['5-byte timeout', raw([0x05, 0x01, 0x00, 0x00, 0x00, 0x01])],
      ['hash through OP_PUSHDATA1', Buffer.concat([Buffer.from([opcodes.OP_IF, opcodes.OP_SHA256, opcodes.OP_PUSHDATA1]), good.subarray(2)])],
      ['20-byte hash', raw([0x02, 0x2c, 0x01], { hash: keys.hash.subarray(0, 20) })],
      ['31-byte hash', raw([0x02, 0x2c, 0x01], { hash: keys.hash.subarray(1) })],
      ['33-byte hash', raw([0x02, 0x2c, 0x01], { hash: Buffer.concat([keys.hash, Buffer.from([0])]) })],
      ['32-byte seller key', raw([0x02, 0x2c, 0x01], { seller: keys.sellerPubkey.subarray(1) })],
      ['uncompressed seller key', raw([0x02, 0x2c, 0x01], { seller: uncompressed })],
      ['34-byte buyer key', raw([0x02, 0x2c, 0x01], { buyer: Buffer.concat([keys.buyerPubkey, Buffer.from([0])]) })],
      ['uncompressed buyer key', raw([0x02, 0x2c, 0x01], { buyer: Buffer.from(ecc.pointFromScalar(BUYER, false)!) })],
      ['buyer key not on the curve', raw([0x02, 0x2c, 0x01], { buyer: notAPoint })],
      // The size check, exactly, or none at all (the legacy template): nothing in between.
      ['OP_SIZE 33', raw([0x02, 0x2c, 0x01], { sizeCheck: [opcodes.OP_SIZE, 0x01, 0x21, opcodes.OP_EQUALVERIFY] })],
      ['OP_SIZE 31', raw([0x02, 0x2c, 0x01], { sizeCheck: [opcodes.OP_SIZE, 0x01, 0x1f, opcodes.OP_EQUALVERIFY] })],
      ['OP_SIZE 16 (OP_16)', raw([0x02, 0x2c, 0x01], { sizeCheck: [opcodes.OP_SIZE, opcodes.OP_16, opcodes.OP_EQUALVERIFY] })],
      ['32 with a padding byte', raw([0x02, 0x2c, 0x01], { sizeCheck: [opcodes.OP_SIZE, 0x02, 0x20, 0x00, opcodes.OP_EQUALVERIFY] })],
      ['32 through OP_PUSHDATA1', raw([0x02, 0x2c, 0x01], { sizeCheck: [opcodes.OP_SIZE, opcodes.OP_PUSHDATA1, 0x01, 0x20, opcodes.OP_EQUALVERIFY] })],
      ['OP_EQUAL after OP_SIZE', raw([0x02, 0x2c, 0x01], { sizeCheck: [opcodes.OP_SIZE, 0x01, 0x20, opcodes.OP_EQUAL] })],
      ['OP_SIZE without its check', raw([0x02, 0x2c, 0x01], { sizeCheck: [opcodes.OP_SIZE, opcodes.OP_DROP] })],
      ['32 OP_EQUALVERIFY without OP_SIZE', raw([0x02, 0x2c, 0x01], { sizeCheck: [opcodes.OP_NOP, 0x01, 0x20, opcodes.OP_EQUALVERIFY] })],
      ['the size check twice', raw([0x02, 0x2c, 0x01], { sizeCheck: [...SIZE_CHECK, ...SIZE_CHECK] })],
      ['the size check after the hash', Buffer.concat([Buffer.from([opcodes.OP_IF, opcodes.OP_SHA256, 0x20]), keys.hash, Buffer.from(SIZE_CHECK), raw([0x02, 0x2c, 0x01], { sizeCheck: [] }).subarray(3 + 32)])],
    ];
    expect(parseHtlcScript(good)).toEqual({ ...keys, timeout: 300 });
    for (const [what, script] of others) expect([what, parseHtlcScript(script)]).toEqual([what, null]);
  });

  test('building refuses a hash that is not a SHA-256, an uncompressed key, a timeout that is not a height', () => {
    const bad: [string, Parameters<typeof htlcScript>[0]][] = [
      ['31-byte hash', { ...keys, hash: keys.hash.subarray(1), timeout: 100 }],
      ['33-byte hash', { ...keys, hash: Buffer.concat([keys.hash, Buffer.from([1])]), timeout: 100 }],
      ['20-byte hash', { ...keys, hash: keys.hash.subarray(0, 20), timeout: 100 }],
      ['uncompressed seller key', { ...keys, sellerPubkey: ecc.pointFromScalar(SELLER, false)!, timeout: 100 }],
      ['uncompressed buyer key', { ...keys, buyerPubkey: ecc.pointFromScalar(BUYER, false)!, timeout: 100 }],
      ['seller key not on the curve', { ...keys, sellerPubkey: Buffer.concat([Buffer.from([0x02]), Buffer.alloc(32, 0xff)]), timeout: 100 }],
      ['timeout 0', { ...keys, timeout: 0 }],
      ['timeout -1', { ...keys, timeout: -1 }],
      ['timeout 1.5', { ...keys, timeout: 1.5 }],
      ['timeout NaN', { ...keys, timeout: Number.NaN }],
      ['timeout 500,000,000 (a Unix time)', { ...keys, timeout: 500_000_000 }],
    ];
    for (const [what, t] of [...bad, ['no template', { ...keys, template: undefined as unknown as HtlcTemplate, timeout: 100 }], ['an unknown template', { ...keys, template: 'v3' as HtlcTemplate, timeout: 100 }]] as const) {
      const e = thrown(() => htlcScript(t));
      expect([what, e.code]).toEqual([what, 'TX_CHECK_FAILED']);
    }
    // The output refuses impossible values on top of the template's checks.
    expect(thrown(() => htlcOutput({ ...keys, timeout: 100, value: 0n }, 'regtest')).code).toBe('TX_CHECK_FAILED');
    expect(thrown(() => htlcOutput({ ...keys, timeout: 100, value: 2_100_000_000_000_001n }, 'regtest')).code).toBe('TX_CHECK_FAILED');
  });

  test('the output is P2WSH of the script, for the network', () => {
    const t: HtlcTerms = { ...keys, timeout: 1000, value: 50_000n };
    const out = htlcOutput(t, 'regtest');
    expect(out.witnessScript).toEqual(htlcScript(t));
    expect(hex(out.script)).toBe(`0020${sha256(out.witnessScript).toString('hex')}`);
    expect(out.address).toMatch(/^bcrt1q/);
    expect(htlcOutput(t, 'mainnet').address).toMatch(/^bc1q/);
  });

  test('opensLock takes exactly the 32-byte preimage', () => {
    expect(opensLock(keys, K)).toBe(true);
    expect(opensLock(keys, priv('another key'))).toBe(false);
    expect(opensLock(keys, K.subarray(1))).toBe(false);
    expect(opensLock(keys, Buffer.concat([K, Buffer.from([0])]))).toBe(false);
    expect(opensLock(keys, Buffer.alloc(0))).toBe(false);
  });
});

describe.each(TEMPLATES)('reading a claim (%s)', (template) => {
  // In witness v0, OP_IF taking exactly 0x01 (MINIMALIF) is relay policy, not consensus: a
  // miner may confirm a claim whose branch selector is 0x02. K is on chain all the same, and
  // the buyer must be able to read it.
  test('readSpend reads K from any claim of the script whose preimage opens the lock, whatever its selector', () => {
    const k = randomBytes(32);
    const t: HtlcTerms = { template, hash: sha256(k), sellerPubkey: pub(SELLER), buyerPubkey: pub(BUYER), timeout: 500, value: 100_000n };
    const sig = Buffer.alloc(71, 1);
    expect(readSpend(t, [sig, k, Uint8Array.of(1), htlcScript(t)])).toEqual({ kind: 'claim', key: k });
    expect(readSpend(t, [sig, k, Uint8Array.of(2), htlcScript(t)])).toEqual({ kind: 'claim', key: k });
    expect(readSpend(t, [sig, randomBytes(32), Uint8Array.of(1), htlcScript(t)])).toBeNull();
    expect(readSpend(t, [sig, new Uint8Array(0), htlcScript(t)])).toEqual({ kind: 'refund' });
  });

  // A preimage of H that is not 32 bytes: the size-checked script cannot be spent with it,
  // the legacy one can (escrow-htlc-size.test.ts shows both on btcd). A valid legacy claim with one
  // is read as what it is, a claim revealing that preimage, so the buyer can show the seller
  // cheated; for the size-checked script no such spend exists.
  test(template === 'legacy' ? 'readSpend reads a claim with a preimage of H of any length' : 'readSpend reads no claim with a preimage that is not 32 bytes', () => {
    const sig = Buffer.alloc(71, 1);
    for (const n of [0, 1, 31, 33, 64, 80]) {
      const p = randomBytes(n);
      const t: HtlcTerms = { template, hash: sha256(p), sellerPubkey: pub(SELLER), buyerPubkey: pub(BUYER), timeout: 500, value: 100_000n };
      const read = readSpend(t, [sig, p, Uint8Array.of(1), htlcScript(t)]);
      expect([n, read]).toEqual([n, template === 'legacy' ? { kind: 'claim', key: p } : null]);
      // A preimage of another hash is no claim under either template.
      expect(readSpend(t, [sig, Buffer.concat([p, Buffer.from([0])]), Uint8Array.of(1), htlcScript(t)])).toBeNull();
    }
  });
});

describe.each(TEMPLATES)('HTLC transactions on a real btcd (%s)', (template) => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(async () => {
    await node?.stop();
  });

  const terms = (timeout: number, k: Uint8Array, value = 100_000n): HtlcTerms => ({ template, hash: sha256(k), sellerPubkey: pub(SELLER), buyerPubkey: pub(BUYER), timeout, value });

  /** Pays the HTLC from the faucet (its vout found by script), confirmed. */
  async function fund(t: HtlcTerms, value = t.value): Promise<{ funding: Outpoint; hex: string }> {
    const out = htlcOutput(t, 'regtest');
    const paid = await faucetPay(node.chain, out.address, value);
    const vout = Transaction.fromHex(paid.hex).outs.findIndex((o) => out.script.equals(o.script));
    expect(vout).toBeGreaterThanOrEqual(0);
    await node.chain.mine(1);
    return { funding: { txid: paid.txid, vout }, hex: paid.hex };
  }

  async function confirmed(txid: string) {
    await node.chain.mine(1);
    return node.chain.waitForConfirmations(txid, 1, { pollMs: 50 });
  }

  const outputsOf = (info: { outputs: { script: Uint8Array; value: bigint }[] }) => info.outputs.map((o) => ({ script: hex(o.script), value: o.value }));

  /** A claim signed like claimTx, but with any preimage: what a buggy or hostile seller could send. */
  function handClaim(t: HtlcTerms, funding: Outpoint, preimage: Uint8Array, to: Uint8Array, signer: Uint8Array): Transaction {
    const ws = htlcScript(t);
    const tx = new Transaction();
    tx.version = 2;
    tx.locktime = 0;
    tx.addInput(Buffer.from(funding.txid, 'hex').reverse(), funding.vout, 0xffffffff);
    tx.addOutput(to, t.value - 1_000n);
    const sig = ecc.sign(tx.hashForWitnessV0(0, ws, t.value, Transaction.SIGHASH_ALL), signer);
    tx.setWitness(0, [bscript.signature.encode(sig, Transaction.SIGHASH_ALL), preimage, Uint8Array.of(1), ws]);
    return tx;
  }

  test('checkHtlcFunding refuses a wrong amount and a wrong script, and accepts the right output', async () => {
    const k = randomBytes(32);
    const t = terms((await node.chain.tipHeight()) + 100, k);
    const out = htlcOutput(t, 'regtest');

    const short = await faucetPay(node.chain, out.address, t.value - 1n);
    const shortVout = Transaction.fromHex(short.hex).outs.findIndex((o) => out.script.equals(o.script));
    const wrongAmount = thrown(() => checkHtlcFunding(t, 'regtest', short.hex, shortVout));
    expect([wrongAmount.code, wrongAmount.message]).toEqual(['FUNDING_MISMATCH', `output ${shortVout} of the funding transaction holds ${t.value - 1n} sats, not the escrow's ${t.value}`]);

    // The right amount to an HTLC one term away (another timeout, another hash): not ours.
    const otherTemplate: HtlcTemplate = template === 'legacy' ? 'size-checked' : 'legacy';
    for (const other of [{ ...t, timeout: t.timeout + 1 }, { ...t, hash: sha256(randomBytes(32)) }, { ...t, buyerPubkey: pub(SELLER) }, { ...t, template: otherTemplate }]) {
      const o = htlcOutput(other, 'regtest');
      const paid = await faucetPay(node.chain, o.address, t.value);
      const vout = Transaction.fromHex(paid.hex).outs.findIndex((x) => o.script.equals(x.script));
      const wrongScript = thrown(() => checkHtlcFunding(t, 'regtest', paid.hex, vout));
      expect([wrongScript.code, wrongScript.message]).toEqual(['FUNDING_MISMATCH', `output ${vout} of the funding transaction does not pay the escrow address ${out.address}`]);
    }

    expect(thrown(() => checkHtlcFunding(t, 'regtest', short.hex, 9)).code).toBe('FUNDING_MISMATCH');
    expect(thrown(() => checkHtlcFunding(t, 'regtest', 'not a transaction', 0)).code).toBe('FUNDING_MISMATCH');

    const right = await faucetPay(node.chain, out.address, t.value);
    const vout = Transaction.fromHex(right.hex).outs.findIndex((o) => out.script.equals(o.script));
    expect(checkHtlcFunding(t, 'regtest', right.hex, vout)).toEqual({ txid: right.txid, vout });
    await node.chain.mine(1);
  });

  test('claim: a wrong K is refused before signing, a wrong preimage by the node, the right K confirms and is read back', async () => {
    const k = randomBytes(32);
    const t = terms((await node.chain.tipHeight()) + 100, k);
    const { funding } = await fund(t);
    const to = p2wpkh(SELLER);

    // Our own check: nothing is signed with a key that does not open the lock.
    for (const wrong of [randomBytes(32), k.subarray(1), Buffer.concat([k, Buffer.from([0])])]) {
      const e = thrown(() => claimTx(t, funding, wrong, to, FEE_RATE, SELLER));
      expect(e.code).toBe('TX_CHECK_FAILED');
      expect(e.message).toMatch(/does not open the hash lock/);
    }
    // The right K with the buyer's key is refused before signing too.
    expect(thrown(() => claimTx(t, funding, k, to, FEE_RATE, BUYER)).code).toBe('TX_CHECK_FAILED');

    // Around our check: the node is the referee, and it refuses a wrong preimage and a wrong signer.
    const refused: [Transaction, RegExp][] = [
      [handClaim(t, funding, randomBytes(32), to, SELLER), /OP_EQUALVERIFY failed/],
      [handClaim(t, funding, k, to, BUYER), /failed checksig/],
    ];
    for (const [bad, reason] of refused) {
      const err = await expectCode(node.chain.broadcast(bad.toHex()), 'TX_REJECTED');
      expect(err.message).toMatch(reason);
      expect(await node.chain.getTransaction(bad.getId())).toBeNull();
    }
    // The hand-built claim itself is well-formed: with the right preimage and key the node takes it.
    // (Checked on a second funding so that the claim under test below spends the first.)
    const second = await fund(terms(t.timeout, k));
    const handRight = handClaim(t, second.funding, k, to, SELLER);
    expect(await node.chain.broadcast(handRight.toHex())).toBe(handRight.getId());

    expect(await node.chain.findSpend(funding, htlcOutput(t, 'regtest').address)).toBeNull();
    const claim = claimTx(t, funding, k, to, FEE_RATE, SELLER);
    const tx = Transaction.fromHex(claim.hex);
    expect(tx.locktime).toBe(0);
    expect(tx.ins[0]!.sequence).toBe(0xffffffff);
    expect(await node.chain.broadcast(claim.hex)).toBe(claim.txid);

    // K is on chain from the mempool on.
    const pending = (await node.chain.findSpend(funding, htlcOutput(t, 'regtest').address))!;
    expect(pending).toMatchObject({ txid: claim.txid, confirmations: 0 });
    expect(readSpend(t, pending.witness)).toEqual({ kind: 'claim', key: k });

    const info = await confirmed(claim.txid);
    expect(info.confirmations).toBe(1);
    const spend = (await node.chain.findSpend(funding, htlcOutput(t, 'regtest').address))!;
    expect(spend).toMatchObject({ txid: claim.txid, input: 0, confirmations: 1 });
    expect(readSpend(t, spend.witness)).toEqual({ kind: 'claim', key: k });
    // Not a spend of another HTLC's script (the same terms under the other template included).
    expect(readSpend({ ...t, timeout: t.timeout + 1 }, spend.witness)).toBeNull();
    expect(readSpend({ ...t, template: template === 'legacy' ? 'size-checked' : 'legacy' }, spend.witness)).toBeNull();
    expect(readSpend(t, [])).toBeNull();
  });

  test('refund: rejected by the node as not finalized until the tip reaches the timeout, then it confirms and reads as a refund', async () => {
    const tip = await node.chain.tipHeight();
    const t = terms(tip + 5, randomBytes(32));
    const { funding } = await fund(t);
    const to = p2wpkh(BUYER);
    const refund = htlcRefundTx(t, funding, to, FEE_RATE, BUYER);
    const tx = Transaction.fromHex(refund.hex);
    expect(tx.locktime).toBe(t.timeout);
    expect(tx.ins[0]!.sequence).toBe(0xfffffffe);
    expect(thrown(() => htlcRefundTx(t, funding, to, FEE_RATE, SELLER)).code).toBe('TX_CHECK_FAILED');

    while ((await node.chain.tipHeight()) < t.timeout) {
      const err = await expectCode(node.chain.broadcast(refund.hex), 'TX_REJECTED');
      expect(err.message).toMatch(/not finalized/);
      await node.chain.mine(1);
    }
    expect(await node.chain.tipHeight()).toBe(t.timeout);
    expect(await node.chain.broadcast(refund.hex)).toBe(refund.txid);
    await confirmed(refund.txid);
    const spend = (await node.chain.findSpend(funding, htlcOutput(t, 'regtest').address))!;
    expect(spend.txid).toBe(refund.txid);
    expect(readSpend(t, spend.witness)).toEqual({ kind: 'refund' });
  });

  test('the claim and the refund pay exactly value - fee to the target script, at the fee rate', async () => {
    const tip = await node.chain.tipHeight();
    const k = randomBytes(32);
    for (const [value, rate] of [[100_000n, FEE_RATE], [1_234_567n, FeeRate.parse('7.25')]] as const) {
      const t = terms(tip + 2, k, value);
      const a = await fund(t);
      const b = await fund(t);
      const claimTo = Buffer.from(payments.p2wsh({ redeem: { output: Buffer.from([opcodes.OP_TRUE]) } }).output!);
      const refundTo = p2wpkh(BUYER);
      const claim = claimTx(t, a.funding, k, claimTo, rate, SELLER);
      if ((await node.chain.tipHeight()) < t.timeout) await node.chain.mine(t.timeout - (await node.chain.tipHeight()));
      const refund = htlcRefundTx(t, b.funding, refundTo, rate, BUYER);
      for (const [spend, to] of [[claim, claimTo], [refund, refundTo]] as const) {
        await node.chain.broadcast(spend.hex);
        const info = await confirmed(spend.txid);
        expect(info.inputs.map((i) => ({ txid: i.txid, vout: i.vout }))).toEqual([spend === claim ? a.funding : b.funding]);
        expect(outputsOf(info)).toEqual([{ script: hex(to), value: value - spend.fee }]);
        // The fee is the rate times the size, never less (the estimate assumes the longest signature).
        const vsize = BigInt(Transaction.fromHex(info.hex).virtualSize());
        expect(spend.fee).toBeGreaterThanOrEqual(rate.feeFor(vsize));
        expect(spend.fee).toBeLessThanOrEqual(rate.feeFor(vsize + 1n));
      }
    }
  });
});
