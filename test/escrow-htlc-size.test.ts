/**
 * Why the HTLC checks the preimage's size (OP_SIZE 32 OP_EQUALVERIFY), on a real btcd: a
 * seller who set H over a preimage of another length than K's 32 bytes can claim the
 * legacy script with it, and the node takes the claim; the size-checked script refuses it.
 * Escrows funded with the legacy script before the check (records without the `htlc`
 * field) stay claimable, refundable and readable, and a claim of one with such a preimage
 * is SELLER_CHEATED for the buyer, with the evidence, not INTERNAL. And the parser
 * recognises the two templates exactly: a byte changed in either is no HTLC, or another.
 */
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { script as bscript, Transaction } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { claimTx, htlcOutput, htlcScript, parseHtlcScript, readSpend, sha256, type HtlcScriptTerms, type HtlcTemplate, type HtlcTerms } from '../src/bitcoin/htlc.js';
import type { Outpoint } from '../src/bitcoin/outpoint.js';
import { recoverItem, refundEscrow } from '../src/escrow/buyer.js';
import { htlcOf, htlcSpend } from '../src/escrow/contract.js';
import { draftOffer, signOffer } from '../src/escrow/offer.js';
import { claimEscrow } from '../src/escrow/seller.js';
import { getEscrow, htlcTerms, nextEscrowKey, writeEscrowFile } from '../src/escrow/store.js';
import type { Acceptance } from '../src/escrow/record.js';
import { recordIn, storeRawEscrow } from './helpers/escrow-record.js';
import { faucetPay } from '../src/wallet/faucet.js';
import { ESCROW_CHAIN, contractKey } from '../src/wallet/hd.js';
import { contractContext, type ContractContext } from '../src/wallet/contract-wallet.js';
import { expectCode, thrown } from './helpers/expect.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { testWallet, type TestWallet } from './helpers/wallets.js';
import { hex, labelledKeys, p2wpkh, pub } from './helpers/keys.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

const RUNS = Number(process.env.SWARMPAY_FUZZ_RUNS ?? 200);
const SEED = Number(process.env.SWARMPAY_FUZZ_SEED ?? 20261130);
const runs = (scale = 1) => ({ numRuns: Math.max(1, Math.round(RUNS * scale)), seed: SEED });

const priv = labelledKeys('htlc-size');

const SELLER = priv('seller');
const BUYER = priv('buyer');
const FEE_RATE = FeeRate.ofSatPerVb(2n);
const PRICE = 50_000n;
const TEMPLATES: HtlcTemplate[] = ['size-checked', 'legacy'];

/** A claim signed like claimTx, but revealing any preimage: what a hostile seller's software could send. */
function handClaim(t: HtlcTerms, funding: Outpoint, preimage: Uint8Array, signer: Uint8Array = SELLER): Transaction {
  const ws = htlcScript(t);
  const tx = new Transaction();
  tx.version = 2;
  tx.addInput(Buffer.from(funding.txid, 'hex').reverse(), funding.vout, 0xffffffff);
  tx.addOutput(p2wpkh(SELLER), t.value - 1_000n);
  const sig = ecc.sign(tx.hashForWitnessV0(0, ws, t.value, Transaction.SIGHASH_ALL), signer);
  tx.setWitness(0, [bscript.signature.encode(sig, Transaction.SIGHASH_ALL), preimage, Uint8Array.of(1), ws]);
  return tx;
}

describe('parseHtlcScript recognises the two templates exactly', () => {
  const scriptTerms: fc.Arbitrary<HtlcScriptTerms> = fc.record({
    template: fc.constantFrom(...TEMPLATES),
    hash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
    // A SHA-256 is a valid scalar but with negligible odds.
    sellerPubkey: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => pub(createHash('sha256').update(b).digest())),
    buyerPubkey: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => pub(createHash('sha256').update(`buyer ${hex(b)}`).digest())),
    timeout: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 17, max: 499_999_999 })),
  });

  /**
   * Where the terms sit in a script: the hash, the two keys and the timeout (its push or
   * OP_N included). Every other byte is the template's own, the same whatever the terms.
   */
  function termBytes(t: HtlcScriptTerms, script: Buffer): Set<number> {
    const hashAt = 1 + (t.template === 'size-checked' ? 4 : 0) + 2;
    const sellerAt = hashAt + 32 + 2;
    const timeoutAt = sellerAt + 33 + 2;
    const timeoutEnd = script.length - 38; // CLTV DROP <33> buyer CHECKSIG ENDIF
    const buyerAt = script.length - 35;
    const at = new Set<number>();
    for (const [from, n] of [[hashAt, 32], [sellerAt, 33], [timeoutAt, timeoutEnd - timeoutAt], [buyerAt, 33]] as const) for (let i = from; i < from + n; i++) at.add(i);
    return at;
  }

  test('the terms sit where termBytes says (a check of the test itself)', () => {
    const t: HtlcScriptTerms = { template: 'size-checked', hash: sha256(Buffer.from('h')), sellerPubkey: pub(SELLER), buyerPubkey: pub(BUYER), timeout: 300 };
    for (const template of TEMPLATES) {
      const s = htlcScript({ ...t, template });
      const at = [...termBytes({ ...t, template }, s)];
      expect(Buffer.from(at.map((i) => s[i]!))).toEqual(Buffer.concat([t.hash, t.sellerPubkey, Buffer.from([0x02, 0x2c, 0x01]), t.buyerPubkey]));
    }
  });

  test('a byte of the template changed (the size check\'s 32 included): not an HTLC', () => {
    fc.assert(
      fc.property(scriptTerms, fc.nat(), fc.integer({ min: 1, max: 255 }), (t, where, delta) => {
        const script = htlcScript(t);
        const fixed = [...Array(script.length).keys()].filter((i) => !termBytes(t, script).has(i));
        const i = fixed[where % fixed.length]!;
        const m = Buffer.from(script);
        m[i] = (m[i]! + delta) & 0xff;
        expect([i, parseHtlcScript(m)]).toEqual([i, null]);
      }),
      runs(5),
    );
  });

  test('any byte changed, cut or added anywhere: not an HTLC, or exactly the HTLC of other terms', () => {
    const change = fc.oneof(
      fc.record({ k: fc.constant('set' as const), at: fc.nat(), delta: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ k: fc.constant('cut' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ k: fc.constant('add' as const), at: fc.nat(), more: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
    );
    fc.assert(
      fc.property(scriptTerms, change, (t, c) => {
        const script = htlcScript(t);
        const at = c.at % (script.length + 1);
        let m: Buffer;
        if (c.k === 'set') {
          m = Buffer.from(script);
          m[at % script.length] = (m[at % script.length]! + c.delta) & 0xff;
        } else if (c.k === 'cut') m = Buffer.concat([script.subarray(0, at % script.length), script.subarray((at % script.length) + c.n)]);
        else m = Buffer.concat([script.subarray(0, at), c.more, script.subarray(at)]);
        const parsed = parseHtlcScript(m);
        if (parsed === null) return;
        // Only exactly what htlcScript builds, and never the same terms from other bytes.
        expect(htlcScript(parsed)).toEqual(m);
        expect(parsed).not.toEqual(t);
      }),
      runs(5),
    );
  });

  test('the size check is exactly what tells the templates apart', () => {
    fc.assert(
      fc.property(scriptTerms, (t) => {
        const sized = htlcScript({ ...t, template: 'size-checked' });
        const legacy = htlcScript({ ...t, template: 'legacy' });
        expect(Buffer.concat([sized.subarray(0, 1), sized.subarray(5)])).toEqual(legacy);
        expect(hex(sized.subarray(1, 5))).toBe('82012088'); // OP_SIZE <0x20> OP_EQUALVERIFY
        expect(parseHtlcScript(sized)).toEqual({ ...t, template: 'size-checked' });
        expect(parseHtlcScript(legacy)).toEqual({ ...t, template: 'legacy' });
      }),
      runs(),
    );
  });

  test('a vector written out by hand: H = 32 bytes of 0x11, the seller G, the buyer 2G, timeout 300', () => {
    const G = '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
    const G2 = '02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5';
    const t: HtlcScriptTerms = { template: 'size-checked', hash: Buffer.alloc(32, 0x11), sellerPubkey: Buffer.from(G, 'hex'), buyerPubkey: Buffer.from(G2, 'hex'), timeout: 300 };
    const sized = `63 82 01 20 88 a8 20 ${'11'.repeat(32)} 88 21 ${G} ac 67 02 2c 01 b1 75 21 ${G2} ac 68`.replaceAll(' ', '');
    const legacy = `63 a8 20 ${'11'.repeat(32)} 88 21 ${G} ac 67 02 2c 01 b1 75 21 ${G2} ac 68`.replaceAll(' ', '');
    expect(hex(htlcScript(t))).toBe(sized);
    expect(hex(htlcScript({ ...t, template: 'legacy' }))).toBe(legacy);
    expect(parseHtlcScript(Buffer.from(sized, 'hex'))).toEqual(t);
    expect(parseHtlcScript(Buffer.from(legacy, 'hex'))).toEqual({ ...t, template: 'legacy' });
  });
});

describe('the size check on a real btcd', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(async () => {
    await node?.stop();
  });

  const terms = (template: HtlcTemplate, hash: Uint8Array, timeout: number): HtlcTerms => ({ template, hash: Buffer.from(hash), sellerPubkey: pub(SELLER), buyerPubkey: pub(BUYER), timeout, value: 100_000n });

  async function fund(t: HtlcTerms): Promise<Outpoint> {
    const out = htlcOutput(t, 'regtest');
    const paid = await faucetPay(node.chain, out.address, t.value);
    const vout = Transaction.fromHex(paid.hex).outs.findIndex((o) => out.script.equals(o.script));
    await node.chain.mine(1);
    return { txid: paid.txid, vout };
  }

  async function mempoolAccept(tx: Transaction): Promise<{ allowed: boolean; reason: string | undefined }> {
    const [r] = await node.rpc.call<{ txid: string; allowed: boolean; 'reject-reason'?: string }[]>('testmempoolaccept', [[tx.toHex()], 0.1]);
    expect(r!.txid).toBe(tx.getId());
    // btcd leaves `allowed` out when it is false.
    return { allowed: r!.allowed === true, reason: r!['reject-reason'] || undefined };
  }

  test('a claim revealing a 33-byte preimage of H: the size-checked script refuses it, the legacy one takes it', async () => {
    const p = randomBytes(33);
    const timeout = (await node.chain.tipHeight()) + 100;
    // swarmpay's own claim never reveals anything but a 32-byte key, under either template.
    for (const template of TEMPLATES) expect(thrown(() => claimTx(terms(template, sha256(p), timeout), { txid: '00'.repeat(32), vout: 0 }, p, p2wpkh(SELLER), FEE_RATE, SELLER)).code).toBe('TX_CHECK_FAILED');

    // Size-checked: the node refuses the claim, in the mempool test and when sent; the coins stay.
    const sized = terms('size-checked', sha256(p), timeout);
    const a = await fund(sized);
    const refused = handClaim(sized, a, p);
    const tested = await mempoolAccept(refused);
    expect(tested.allowed).toBe(false);
    expect(tested.reason).toMatch(/EQUALVERIFY failed/);
    const err = await expectCode(node.chain.broadcast(refused.toHex()), 'TX_REJECTED');
    expect(err.message).toMatch(/EQUALVERIFY failed/);
    await node.chain.mine(1);
    expect(await node.chain.getTransaction(refused.getId())).toBeNull();
    expect(await node.chain.findSpend(a, htlcOutput(sized, 'regtest').address)).toBeNull();

    // Legacy: the same claim (the same H, the same preimage) is valid, and confirms.
    const legacy = terms('legacy', sha256(p), timeout);
    const b = await fund(legacy);
    const taken = handClaim(legacy, b, p);
    expect(await mempoolAccept(taken)).toEqual({ allowed: true, reason: undefined });
    expect(await node.chain.broadcast(taken.toHex())).toBe(taken.getId());
    await node.chain.mine(1);
    const address = htlcOutput(legacy, 'regtest').address;
    const spend = (await node.chain.findSpend(b, address))!;
    expect(spend).toMatchObject({ txid: taken.getId(), confirmations: 1 });
    // Read as the claim it is, revealing those 33 bytes: not an unreadable spend (INTERNAL).
    expect(readSpend(legacy, spend.witness)).toEqual({ kind: 'claim', key: p });
    expect(await htlcSpend(node.chain, { terms: legacy, funding: b, address })).toEqual({ kind: 'claim', txid: taken.getId(), key: p, confirmations: 1 });
    // And the preimage is no claim of the size-checked script of the same terms.
    expect(readSpend(sized, [...spend.witness.slice(0, 3), htlcScript(sized)])).toBeNull();
  });

  test.each([0, 1, 31, 64])('the size-checked script refuses a %i-byte preimage of H too', async (n) => {
    const p = randomBytes(n);
    const t = terms('size-checked', sha256(p), (await node.chain.tipHeight()) + 100);
    const funding = await fund(t);
    const claim = handClaim(t, funding, p);
    const tested = await mempoolAccept(claim);
    expect(tested.allowed).toBe(false);
    expect(tested.reason).toMatch(/EQUALVERIFY failed/);
    await expectCode(node.chain.broadcast(claim.toHex()), 'TX_REJECTED');
  });

  test('the 32-byte key passes the size check: the claim confirms and K is read back', async () => {
    const k = randomBytes(32);
    const t = terms('size-checked', sha256(k), (await node.chain.tipHeight()) + 100);
    const funding = await fund(t);
    const claim = claimTx(t, funding, k, p2wpkh(SELLER), FEE_RATE, SELLER);
    expect((await mempoolAccept(Transaction.fromHex(claim.hex))).allowed).toBe(true);
    expect(await node.chain.broadcast(claim.hex)).toBe(claim.txid);
    await node.chain.mine(1);
    const spend = (await node.chain.findSpend(funding, htlcOutput(t, 'regtest').address))!;
    expect(readSpend(t, spend.witness)).toEqual({ kind: 'claim', key: k });
  });
});

describe('escrow records of both templates on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let seller: TestWallet;
  let buyer: TestWallet;
  let sctx: ContractContext;
  let bctx: ContractContext;
  const CLAIM = { feeRate: FEE_RATE, margin: 6, force: false };

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir('swarmpay-htlc-size-');
    seller = await testWallet(path.join(tmp.dir, 'seller'));
    buyer = await testWallet(path.join(tmp.dir, 'buyer'));
    sctx = contractContext(seller.session, seller.seed, node.chain, seller.networkDir);
    bctx = contractContext(buyer.session, buyer.seed, node.chain, buyer.networkDir);
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  /**
   * An escrow funded (from the faucet) with the HTLC of `template`, recorded on both sides as
   * `htlc` says: absent, as swarmpay wrote records before the size check. `hash` replaces the
   * offer's H, as a cheating seller's own software would.
   */
  async function escrow(template: HtlcTemplate, htlc: HtlcTemplate | undefined, o: { hash?: Uint8Array } = {}) {
    const item = Buffer.concat([Buffer.from('the item\n'), randomBytes(2000)]);
    const sIndex = nextEscrowKey(seller.session);
    const skey = contractKey(seller.seed, 'regtest', ESCROW_CHAIN, sIndex);
    const bIndex = nextEscrowKey(buyer.session);
    const bkey = contractKey(buyer.seed, 'regtest', ESCROW_CHAIN, bIndex);
    const id = randomBytes(8).toString('hex');
    const d = draftOffer({ id, network: 'regtest', name: 'item.bin', item, price: PRICE, timeout: { min: 20, max: 100 }, confirmations: 1, seller: skey.pub, expires: new Date(Date.now() + 3_600_000) });
    if (o.hash !== undefined) d.body.hash = hex(o.hash);
    const offer = signOffer(d.body, skey.priv);
    const timeout = (await node.chain.tipHeight()) + 30;
    const t: HtlcTerms = { template, hash: Buffer.from(offer.hash, 'hex'), sellerPubkey: skey.pub, buyerPubkey: bkey.pub, timeout, value: PRICE };
    const out = htlcOutput(t, 'regtest');
    const paid = await faucetPay(node.chain, out.address, PRICE);
    const vout = Transaction.fromHex(paid.hex).outs.findIndex((x) => out.script.equals(x.script));
    const acceptance: Acceptance = { format: 'swarmpay-acceptance', version: 1, offer: id, buyer: hex(bkey.pub), timeout, funding: { txid: paid.txid, vout }, tx: paid.hex };
    // Without `htlc`, as records were written before the size check: nulls beside every status.
    const base = { id, offer, acceptance, status: 'funded', created: new Date().toISOString(), ...(htlc === undefined ? { claimTxid: null, refundTxid: null } : { htlc }) };
    await storeRawEscrow(seller.session, id, sIndex, { ...base, role: 'seller', keyIndex: sIndex, key: hex(d.key) });
    await storeRawEscrow(buyer.session, id, bIndex, { ...base, role: 'buyer', keyIndex: bIndex, ...(htlc === undefined ? { key: null } : {}) });
    const srec = recordIn(getEscrow(seller.session, id), 'seller', 'funded');
    const brec = recordIn(getEscrow(buyer.session, id), 'buyer', 'funded');
    expect([srec.htlc, brec.htlc]).toEqual([htlc ?? 'legacy', htlc ?? 'legacy']);
    writeEscrowFile(seller.networkDir, `${id}.enc`, d.ciphertext);
    writeEscrowFile(buyer.networkDir, `${id}.enc`, d.ciphertext);
    await node.chain.mine(1);
    return { id, item, t, srec, brec, funding: { txid: paid.txid, vout } };
  }

  test('htlcTerms: a record without the field is legacy; the field names the template', async () => {
    const old = await escrow('legacy', undefined);
    expect(htlcTerms(old.srec).template).toBe('legacy');
    expect(htlcOf(old.brec, 'regtest').address).toBe(htlcOutput(old.t, 'regtest').address);
    const sized = await escrow('size-checked', 'size-checked');
    expect(htlcTerms(sized.srec).template).toBe('size-checked');
    expect(htlcOf(sized.brec, 'regtest').address).toBe(htlcOutput(sized.t, 'regtest').address);
    expect(htlcTerms({ ...sized.srec, htlc: 'legacy' })).toEqual({ ...htlcTerms(sized.srec), template: 'legacy' });
  });

  test.each([
    ['a legacy escrow from a record written before the size check', 'legacy', undefined],
    ['a size-checked escrow', 'size-checked', 'size-checked'],
  ] as const)('%s: the seller claims through its script, the buyer reads K and gets the item', async (_what, template, htlc) => {
    const e = await escrow(template, htlc);
    const claim = await claimEscrow(sctx, e.id, CLAIM);
    expect(claim.fee).not.toBeNull();
    await node.chain.mine(1);
    const spend = (await node.chain.findSpend(e.funding, htlcOutput(e.t, 'regtest').address))!;
    expect(spend.txid).toBe(claim.txid);
    expect(parseHtlcScript(spend.witness[spend.witness.length - 1]!)).toMatchObject({ template });
    const out = path.join(tmp.dir, `${e.id}.got`);
    const got = await recoverItem(bctx, e.id, out);
    expect(got.claimTxid).toBe(claim.txid);
    expect(readFileSync(out)).toEqual(e.item);
    expect(getEscrow(buyer.session, e.id)).toMatchObject({ status: 'completed', claimTxid: claim.txid, ...(htlc === undefined ? {} : { htlc }) });
  });

  test.each([
    ['a legacy escrow from a record written before the size check', 'legacy', undefined],
    ['a size-checked escrow', 'size-checked', 'size-checked'],
  ] as const)('%s: the buyer refunds at the timeout through its script; the seller sees it refunded', async (_what, template, htlc) => {
    const e = await escrow(template, htlc);
    await expectCode(refundEscrow(bctx, e.id, FEE_RATE), 'ESCROW_TOO_EARLY');
    const tip = await node.chain.tipHeight();
    if (tip < e.t.timeout) await node.chain.mine(e.t.timeout - tip);
    const refund = await refundEscrow(bctx, e.id, FEE_RATE);
    await node.chain.mine(1);
    const spend = (await node.chain.findSpend(e.funding, htlcOutput(e.t, 'regtest').address))!;
    expect(spend.txid).toBe(refund.txid);
    expect(parseHtlcScript(spend.witness[spend.witness.length - 1]!)).toMatchObject({ template });
    await expectCode(claimEscrow(sctx, e.id, CLAIM), 'ESCROW_STATE');
    expect(getEscrow(seller.session, e.id)).toMatchObject({ status: 'refunded', refundTxid: refund.txid });
  });

  test('a legacy escrow whose seller set H over 33 bytes and claimed with them: SELLER_CHEATED with the preimage and the claim as evidence, not INTERNAL', async () => {
    const p = randomBytes(33);
    const e = await escrow('legacy', undefined, { hash: sha256(p) });
    const claim = handClaim(e.t, e.funding, p, contractKey(seller.seed, 'regtest', ESCROW_CHAIN, e.srec.keyIndex).priv);
    expect(await node.chain.broadcast(claim.toHex())).toBe(claim.getId());
    await node.chain.mine(1);

    const out = path.join(tmp.dir, `${e.id}.got`);
    const err = await expectCode(recoverItem(bctx, e.id, out), 'SELLER_CHEATED');
    expect(err.details).toMatchObject({ claimTxid: claim.getId() });
    const evidence = JSON.parse(readFileSync((err.details as { evidence: string }).evidence, 'utf8'));
    expect(evidence).toMatchObject({ key: hex(p), claimTxid: claim.getId(), offer: { id: e.id, hash: hex(sha256(p)) } });
    expect(getEscrow(buyer.session, e.id)).toMatchObject({ status: 'cheated', key: hex(p), claimTxid: claim.getId() });
    // Asked again, the same answer from the record.
    await expectCode(recoverItem(bctx, e.id, out), 'SELLER_CHEATED');
  });
});
