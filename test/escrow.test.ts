/**
 * The fair-exchange escrow at library level: a seller and a buyer wallet, a real btcd,
 * a swtpm for attested offers, and real TCP links for the online flow. Every bad input is
 * refused with its code before a coin moves or a record changes; the happy path, the
 * refund and the cheating seller are checked against what the node has.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { SwarmpayError } from '../src/errors.js';
import { claimTx, htlcOutput, readSpend, sha256, type HtlcTerms } from '../src/bitcoin/htlc.js';
import { DEFAULT_ACCEPT_TIMEOUT, acceptOffer, recoverItem, refundEscrow } from '../src/escrow/buyer.js';
import { htlcOf } from '../src/escrow/contract.js';
import { CHUNK_BYTES, encodeEscrowMessage, parseEscrowMessage, type EscrowMessage } from '../src/escrow/messages.js';
import { draftOffer, freshNonce, offerDigest, parseOffer, signOffer, type Offer } from '../src/escrow/offer.js';
import { EscrowServer, fetchOffer, sendAcceptance } from '../src/escrow/online.js';
import { claimEscrow, createOffer, openOffers, takeAcceptance, type OfferOptions } from '../src/escrow/seller.js';
import { ciphertextPath, getEscrow, htlcTerms, listEscrows, nextEscrowKey, saveEscrow, writeEscrowFile } from '../src/escrow/store.js';
import type { Acceptance, AcceptedRecord } from '../src/escrow/record.js';
import { escrowConversation } from '../src/escrow/messages.js';
import { recordIn } from './helpers/escrow-record.js';
import { peerStaticKey } from '../src/peer/keys.js';
import { handshake, type PeerLink } from '../src/peer/link.js';
import { connectTcp, listenTcp } from '../src/peer/transports.js';
import { attest } from '../src/tpm/attestation.js';
import { listIdentities } from '../src/tpm/trust-store.js';
import type { Tpm } from '../src/tpm/tpm.js';
import { faucetPay } from '../src/wallet/faucet.js';
import { ESCROW_CHAIN, contractKey } from '../src/wallet/hd.js';
import { planSend, signSend } from '../src/wallet/send.js';
import { receiveAddress, walletAccount, walletBalance } from '../src/wallet/wallet.js';
import { contractContext, type ContractContext } from '../src/wallet/contract-wallet.js';
import { snapshot } from './helpers/cli.js';
import { expectCode, failure } from './helpers/expect.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { startTestTpm, type TestTpm } from './helpers/swtpm.js';
import { tempDir } from './helpers/tmp.js';
import { testWallet, type TestWallet } from './helpers/wallets.js';
import { enrollTpm } from './helpers/enroll.js';
import { hex } from './helpers/keys.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

const PRICE = 50_000n;
const FEE_RATE = FeeRate.ofSatPerVb(2n);
const MARGIN = 6;
const CLAIM = { feeRate: FEE_RATE, margin: MARGIN, force: false };
const ACCEPT = { checks: {}, feeRate: FEE_RATE };
const PCRS = [0, 1, 2, 3, 4, 5, 6, 7];


describe('escrow between two wallets on a real btcd', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let seller: TestWallet;
  let buyer: TestWallet;
  let sctx: ContractContext;
  let bctx: ContractContext;

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir('swarmpay-escrow-');
    seller = await testWallet(path.join(tmp.dir, 'seller'));
    buyer = await testWallet(path.join(tmp.dir, 'buyer'));
    // Several coins, so that the buyer can fund an escrow while the change of the last one is unconfirmed.
    for (let i = 0; i < 8; i++) await faucetPay(node.chain, (await receiveAddress(node.chain, buyer.networkDir, 'regtest')).address, 20_000_000n);
    await node.chain.mine(1);
    sctx = contractContext(seller.session, seller.seed, node.chain, seller.networkDir);
    bctx = contractContext(buyer.session, buyer.seed, node.chain, buyer.networkDir);
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  const item = (label: string, size = 3000) => Buffer.concat([Buffer.from(`${label}\n`), randomBytes(size)]);
  const offerOptions = (o: Partial<OfferOptions> = {}): OfferOptions => ({
    name: 'photo.raw', item: item('photo'), price: PRICE, timeout: { min: 20, max: 100 }, confirmations: 1, expiresIn: 3600, ...o,
  });

  const total = async (w: TestWallet) => {
    const b = await walletBalance(node.chain, w.networkDir, 'regtest');
    return b.confirmed + b.unconfirmed + b.immature;
  };
  /** Everything a refused step must leave as it was: files (keystore included), records, next key, coins. */
  const state = async (w: TestWallet) => ({
    files: snapshot(w.networkDir),
    escrows: structuredClone(listEscrows(w.session)),
    nextKey: nextEscrowKey(w.session),
    balance: await walletBalance(node.chain, w.networkDir, 'regtest'),
  });
  const mineTo = async (height: number) => {
    const tip = await node.chain.tipHeight();
    if (height > tip) await node.chain.mine(height - tip);
    expect(await node.chain.tipHeight()).toBe(height);
  };
  const spendOf = (rec: AcceptedRecord) => {
    const h = htlcOf(rec, 'regtest');
    return node.chain.findSpend(h.funding, h.address);
  };
  /** The buyer's acceptOffer refused with `code`: no coin moved, no record or file changed. */
  async function buyerRefuses(offer: Offer, ciphertext: Uint8Array, checks: Parameters<typeof acceptOffer>[3]['checks'], code: string): Promise<SwarmpayError> {
    const before = await state(buyer);
    const e = await expectCode(acceptOffer(bctx, offer, ciphertext, { checks, feeRate: FEE_RATE }), code);
    expect(await state(buyer)).toEqual(before);
    expect(existsSync(ciphertextPath(buyer.networkDir, offer.id))).toBe(false);
    return e;
  }

  describe('offers the buyer refuses before paying', () => {
    let offer: Offer;
    let ciphertext: Buffer;
    beforeAll(async () => {
      ({ offer, ciphertext } = await createOffer(sctx, offerOptions()));
    });

    test('a field altered after signing: OFFER_INVALID', async () => {
      for (const altered of [
        { ...offer, price: '1000' },
        { ...offer, timeout: { ...offer.timeout, max: 52_560 } },
        { ...offer, item: { ...offer.item, sha256: hex(sha256(Buffer.from('something else'))) } },
        { ...offer, hash: hex(sha256(randomBytes(32))) },
        { ...offer, seller: hex(contractKey(seller.seed, 'regtest', ESCROW_CHAIN, 999).pub) },
        { ...offer, signature: '00'.repeat(64) },
      ]) {
        const e = await buyerRefuses(altered, ciphertext, {}, 'OFFER_INVALID');
        expect(e.message).toMatch(/signature over the offer does not verify/);
      }
    });

    test('an offer signed for another network: WRONG_NETWORK', async () => {
      const idx = nextEscrowKey(seller.session);
      const key = contractKey(seller.seed, 'regtest', ESCROW_CHAIN, idx);
      const d = draftOffer({ id: randomBytes(8).toString('hex'), network: 'testnet', name: 'photo.raw', item: item('testnet'), price: PRICE, timeout: { min: 20, max: 100 }, confirmations: 1, seller: key.pub, expires: new Date(Date.now() + 3600_000) });
      const e = await buyerRefuses(signOffer(d.body, key.priv), d.ciphertext, {}, 'WRONG_NETWORK');
      expect(e.message).toBe('the offer is for testnet, not regtest');
    });

    test('an expired offer: OFFER_EXPIRED', async () => {
      const expired = await createOffer(sctx, offerOptions({ expiresIn: -1 }));
      const e = await buyerRefuses(expired.offer, expired.ciphertext, {}, 'OFFER_EXPIRED');
      expect(e.message).toBe(`the offer expired at ${expired.offer.expires}`);
      // Nor does the seller serve it any more.
      expect(openOffers(sctx).map((r) => r.id)).not.toContain(expired.offer.id);
    });

    test('a price above --max-price: PRICE_ABOVE_LIMIT', async () => {
      const e = await buyerRefuses(offer, ciphertext, { maxPrice: PRICE - 1n }, 'PRICE_ABOVE_LIMIT');
      expect(e.message).toMatch(new RegExp(`asks ${PRICE} sats, above --max-price ${PRICE - 1n}`));
    });

    test('a ciphertext that is not the one the offer names: CIPHERTEXT_MISMATCH', async () => {
      const flipped = Buffer.from(ciphertext);
      flipped[40]! ^= 1;
      await buyerRefuses(offer, flipped, {}, 'CIPHERTEXT_MISMATCH');
      await buyerRefuses(offer, ciphertext.subarray(1), {}, 'CIPHERTEXT_MISMATCH');
      await buyerRefuses(offer, Buffer.concat([ciphertext, Buffer.from([0])]), {}, 'CIPHERTEXT_MISMATCH');
    });

    test('requireAttestation and no attestation: ATTESTATION_INVALID', async () => {
      const e = await buyerRefuses(offer, ciphertext, { requireAttestation: true }, 'ATTESTATION_INVALID');
      expect(e.message).toMatch(/carries no attestation/);
    });

    test('a timeout outside the offer\'s range: USAGE', async () => {
      for (const timeoutBlocks of [19, 101]) {
        const before = await state(buyer);
        await expectCode(acceptOffer(bctx, offer, ciphertext, { ...ACCEPT, timeoutBlocks }), 'USAGE');
        expect(await state(buyer)).toEqual(before);
      }
    });

    describe('attested offers (swtpm)', () => {
      let t: TestTpm;
      let tpm: Tpm;
      let attested: Awaited<ReturnType<typeof createOffer>>;
      let akName: string;
      const attestedOffer = () => createOffer(sctx, offerOptions({ attest: (nonce) => attest(tpm, nonce, PCRS) }));
      /** The buyer's trust store, as `escrow accept` always passes it. */
      const trustStore = () => listIdentities(buyer.networkDir);
      beforeAll(async () => {
        t = await startTestTpm();
        tpm = await t.open();
        attested = await attestedOffer();
        akName = attested.offer.attestation!.akName;
      });
      afterAll(async () => {
        await tpm?.close();
        await t?.stop();
      });

      test('an attestation moved from another offer: ATTESTATION_INVALID', async () => {
        const other = await createOffer(sctx, offerOptions());
        const moved = { ...other.offer, attestation: attested.offer.attestation! };
        const e = await buyerRefuses(moved, other.ciphertext, {}, 'ATTESTATION_INVALID');
        expect(e.message).toMatch(/another nonce/);
      });

      test('PCRs the allow list does not allow: ATTESTATION_INVALID (said before whether anyone vouches for the AK)', async () => {
        const e = await buyerRefuses(attested.offer, attested.ciphertext, { expectPcrs: { '7': 'ff'.repeat(32) }, enrolled: trustStore() }, 'ATTESTATION_INVALID');
        expect(e.message).toBe(`PCR 7 is ${attested.offer.attestation!.pcrs.values['7']}, which the allow list does not allow`);
        const missing = await buyerRefuses(attested.offer, attested.ciphertext, { requireAttestation: true, expectPcrs: { '16': '00'.repeat(32) } }, 'ATTESTATION_INVALID');
        expect(missing.message).toMatch(/PCR 16 is required/);
      });

      test('an AK nobody vouches for (not enrolled, not pinned), with requireAttestation or expectPcrs: ATTESTATION_INVALID naming `tpm enroll` and --ak; nothing paid', async () => {
        expect(trustStore()).toEqual([]);
        const quoted = attested.offer.attestation!.pcrs.values;
        for (const checks of [{ requireAttestation: true, enrolled: trustStore() }, { expectPcrs: { '7': quoted['7']! }, enrolled: trustStore() }, { requireAttestation: true }]) {
          const e = await buyerRefuses(attested.offer, attested.ciphertext, checks, 'ATTESTATION_INVALID');
          expect(e.message).toBe(`the offer's attestation is by TPM key ${akName}, which nobody vouches for (neither enrolled nor pinned with --ak): nothing ties it to a TPM you trust`);
          expect(e.hint).toMatch(/`swarmpay tpm enroll --peer HOST:PORT --tpm-ca FILE`.*--ak.*nothing was paid/);
        }
        // requireEnrolled (`--enrolled`): pinning the AK is not enough.
        const pinnedOnly = await buyerRefuses(attested.offer, attested.ciphertext, { requireEnrolled: true, ak: attested.offer.attestation!.akPublic, enrolled: trustStore() }, 'ATTESTATION_INVALID');
        expect(pinnedOnly.message).toMatch(/which you pinned but did not enroll, and --enrolled asks for an enrolled one/);
      });

      test('an AK nobody vouches for, without requireAttestation: accepted, and the result says so (akVouched false, vouchedBy null)', async () => {
        const o = await attestedOffer();
        const r = await acceptOffer(bctx, o.offer, o.ciphertext, { checks: { enrolled: trustStore() }, feeRate: FEE_RATE });
        expect(r.attestation).toMatchObject({ akName, akPinned: false, akVouched: false, vouchedBy: null });
        expect(r.rec.status).toBe('funded');
        await node.chain.mine(1);
      });

      test('an AK pinned with `ak`: vouched for by the pin, not enrolled; another pinned key is refused', async () => {
        const o = await attestedOffer();
        const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
        const e = await buyerRefuses(o.offer, o.ciphertext, { requireAttestation: true, ak: stranger, enrolled: trustStore() }, 'ATTESTATION_INVALID');
        expect(e.message).toMatch(/not the pinned one/);
        const r = await acceptOffer(bctx, o.offer, o.ciphertext, { checks: { requireAttestation: true, ak: o.offer.attestation!.akPublic, enrolled: trustStore() }, feeRate: FEE_RATE });
        expect(r.attestation).toMatchObject({ akName, akPinned: true, akVouched: true, vouchedBy: null });
        await node.chain.mine(1);
      });

      test("the buyer enrolls the seller's TPM (EK certificate, credential activation): a valid attested offer by the enrolled AK passes, vouched for by that identity, with the verified PCRs", async () => {
        const enrolled = await enrollTpm(tpm, t.ekCa!, buyer.networkDir, 'seller device');
        expect(enrolled.identity.akName).toBe(akName);
        expect(trustStore()).toEqual([enrolled.identity]);
        const quoted = attested.offer.attestation!.pcrs.values;
        expect(Object.keys(quoted).sort()).toEqual(PCRS.map(String).sort());
        // An enrolled AK with a pin of another key: both must hold.
        const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
        await buyerRefuses(attested.offer, attested.ciphertext, { ak: stranger, enrolled: trustStore() }, 'ATTESTATION_INVALID');
        const checks = { requireAttestation: true, requireEnrolled: true, enrolled: trustStore(), expectPcrs: { '0': quoted['0']!, '7': [quoted['7']!, '11'.repeat(32)] } };
        const r = await acceptOffer(bctx, attested.offer, attested.ciphertext, { checks, feeRate: FEE_RATE });
        expect(r.attestation).not.toBeNull();
        expect(r.attestation!.pcrs).toEqual(quoted);
        expect(r.attestation).toMatchObject({
          akName, akPinned: true, akVouched: true,
          vouchedBy: { akName, label: 'seller device', enrolledAt: enrolled.identity.enrolledAt, ek: { issuer: 'CN=swtpm-localca' }, ca: { subject: 'CN=swtpm-localca-rootca' } },
        });
        expect(r.rec.status).toBe('funded');
        expect(await node.chain.getTransaction(r.acceptance.funding.txid)).not.toBeNull();
        await node.chain.mine(1);
        // Enrolled, the AK is vouched for without requireAttestation too.
        const o = await attestedOffer();
        const plain = await acceptOffer(bctx, o.offer, o.ciphertext, { checks: { enrolled: trustStore() }, feeRate: FEE_RATE });
        expect(plain.attestation).toMatchObject({ akVouched: true, vouchedBy: { label: 'seller device' } });
        await node.chain.mine(1);
      });
    });
  });

  describe('acceptances the seller refuses, its state unchanged', () => {
    let offer: Offer;
    let keyIndex = 900;
    beforeAll(async () => {
      ({ offer } = await createOffer(sctx, offerOptions()));
    });

    /**
     * An acceptance signed by the buyer's wallet but never broadcast: the HTLC of `terms`
     * (the offer's, with changes), paid `value`.
     */
    async function acceptance(o: { timeout?: number; value?: bigint; terms?: Partial<HtlcTerms> } = {}): Promise<Acceptance> {
      const key = contractKey(buyer.seed, 'regtest', ESCROW_CHAIN, keyIndex++);
      const timeout = o.timeout ?? (await node.chain.tipHeight()) + offer.timeout.min;
      const terms: HtlcTerms = { template: 'size-checked', hash: Buffer.from(offer.hash, 'hex'), sellerPubkey: Buffer.from(offer.seller, 'hex'), buyerPubkey: key.pub, timeout, value: PRICE, ...o.terms };
      const plan = await planSend(node.chain, walletAccount(buyer.networkDir, 'regtest'), 'regtest', htlcOutput(terms, 'regtest').address, o.value ?? PRICE, FEE_RATE);
      const signed = signSend(plan, buyer.seed, 'regtest');
      return { format: 'swarmpay-acceptance', version: 1, offer: offer.id, buyer: hex(key.pub), timeout, funding: { txid: signed.txid, vout: 0 }, tx: signed.hex };
    }
    async function sellerRefuses(a: Acceptance, code: string, message: RegExp): Promise<void> {
      const before = await state(seller);
      const rec = structuredClone(getEscrow(seller.session, offer.id));
      const e = await expectCode(takeAcceptance(sctx, a), code);
      expect(e.message).toMatch(message);
      expect(await state(seller)).toEqual(before);
      expect(getEscrow(seller.session, offer.id)).toEqual(rec);
      expect(rec).toMatchObject({ status: 'offered' });
      expect(rec).not.toHaveProperty('acceptance');
      // The seller did not broadcast the funding it was handed.
      expect(await node.chain.getTransaction(a.funding.txid)).toBeNull();
    }

    test('funding that pays another amount: FUNDING_MISMATCH', async () => {
      await sellerRefuses(await acceptance({ value: PRICE - 1n }), 'FUNDING_MISMATCH', new RegExp(`holds ${PRICE - 1n} sats, not the escrow's ${PRICE}`));
      await sellerRefuses(await acceptance({ value: PRICE + 1n }), 'FUNDING_MISMATCH', new RegExp(`holds ${PRICE + 1n} sats`));
    });

    test('funding that pays another script: FUNDING_MISMATCH', async () => {
      const tip = await node.chain.tipHeight();
      // The legacy HTLC (no size check) of the right terms is another script too: new escrows are size-checked.
      for (const terms of [{ hash: sha256(randomBytes(32)) }, { sellerPubkey: contractKey(buyer.seed, 'regtest', ESCROW_CHAIN, 1).pub }, { timeout: tip + 21 }, { template: 'legacy' as const }]) {
        await sellerRefuses(await acceptance({ timeout: tip + 20, terms }), 'FUNDING_MISMATCH', /does not pay the escrow address/);
      }
      // The acceptance's vout at the change output, and a tx that is not the named one.
      const a = await acceptance();
      await sellerRefuses({ ...a, funding: { ...a.funding, vout: 1 } }, 'FUNDING_MISMATCH', /does not pay the escrow address/);
      const b = await acceptance();
      await sellerRefuses({ ...a, tx: b.tx }, 'FUNDING_MISMATCH', /names funding .* but carries transaction/);
    });

    test('a timeout beyond offer.timeout.max: FUNDING_MISMATCH', async () => {
      const tip = await node.chain.tipHeight();
      await sellerRefuses(await acceptance({ timeout: tip + offer.timeout.max + 1 }), 'FUNDING_MISMATCH', new RegExp(`${offer.timeout.max + 1} blocks from the tip; the offer allows at most ${offer.timeout.max}`));
    });

    test('an offer whose minimum timeout leaves no time to confirm and claim is not made: USAGE, nothing changed', async () => {
      const before = await state(seller);
      for (const [min, confirmations] of [[MARGIN + 1, 1], [MARGIN + 3, 3]] as const) {
        const e = await expectCode(createOffer(sctx, offerOptions({ timeout: { min, max: 100 }, confirmations })), 'USAGE');
        expect(e.hint).toBe(`offer at least ${MARGIN + confirmations + 1} blocks`);
      }
      expect(await state(seller)).toEqual(before);
      // One block more is an offer.
      const made = await createOffer(sctx, offerOptions({ timeout: { min: MARGIN + 2, max: 100 }, confirmations: 1 }));
      expect(made.offer.timeout).toEqual({ min: MARGIN + 2, max: 100 });
    });

    test('a timeout too near to confirm and claim before it: ESCROW_TOO_LATE', async () => {
      const tip = await node.chain.tipHeight();
      // margin + confirmations blocks left is too few; one more would do.
      await sellerRefuses(await acceptance({ timeout: tip + MARGIN + offer.confirmations }), 'ESCROW_TOO_LATE', /too near/);
      await sellerRefuses(await acceptance({ timeout: tip + 2 }), 'ESCROW_TOO_LATE', /too near/);
    });
  });

  test('happy path: offer, accept, take, claim, recover the exact item; the seller gains price - claim fee', async () => {
    const theItem = item('the real photo', 100_000);
    const sellerBefore = await total(seller);
    const buyerBefore = await total(buyer);

    const { offer, ciphertext, ciphertextFile } = await createOffer(sctx, offerOptions({ item: theItem }));
    expect(readFileSync(ciphertextFile)).toEqual(ciphertext);
    const srec = recordIn(getEscrow(seller.session, offer.id), 'seller', 'offered');
    expect(srec).not.toHaveProperty('acceptance');
    expect(hex(sha256(Buffer.from(srec.key, 'hex')))).toBe(offer.hash);
    expect(offer.item).toEqual({ name: 'photo.raw', size: theItem.length, sha256: hex(sha256(theItem)) });

    const r = await acceptOffer(bctx, offer, ciphertext, { checks: { maxPrice: PRICE }, feeRate: FEE_RATE });
    expect(r.rec).toMatchObject({ role: 'buyer', status: 'funded', htlc: 'size-checked' });
    expect(r.rec).not.toHaveProperty('key');
    // The default timeout: a day, or the offer's most if that is less (100 here).
    expect(r.acceptance.timeout).toBe((await node.chain.tipHeight()) + Math.min(DEFAULT_ACCEPT_TIMEOUT, offer.timeout.max));
    expect(buyerBefore - (await total(buyer))).toBe(PRICE + r.fee!);
    const funding = (await node.chain.getTransaction(r.acceptance.funding.txid))!;
    expect(funding.outputs[0]!.value).toBe(PRICE);

    const taken = await takeAcceptance(sctx, r.acceptance);
    expect(taken).toMatchObject({ status: 'funded', acceptance: r.acceptance, htlc: 'size-checked' });
    // Before its confirmation the seller does not claim.
    const early = await expectCode(claimEscrow(sctx, offer.id, CLAIM), 'ESCROW_STATE');
    expect(early.message).toMatch(/0 of 1 confirmations/);
    // Nor has the buyer anything to recover yet.
    await expectCode(recoverItem(bctx, offer.id, path.join(tmp.dir, 'early.raw')), 'ESCROW_STATE');

    await node.chain.mine(1);
    const claim = await claimEscrow(sctx, offer.id, CLAIM);
    expect(claim.fee).not.toBeNull();
    expect(claim.rec).toMatchObject({ status: 'claimed', claimTxid: claim.txid });
    await node.chain.mine(1);
    const claimInfo = (await node.chain.getTransaction(claim.txid))!;
    expect(claimInfo.confirmations).toBe(1);
    expect(claimInfo.outputs.map((o) => o.value)).toEqual([PRICE - claim.fee!]);
    expect(await total(seller) - sellerBefore).toBe(PRICE - claim.fee!);

    const out = path.join(tmp.dir, 'got.raw');
    const got = await recoverItem(bctx, offer.id, out);
    expect(got).toEqual({ file: out, claimTxid: claim.txid, sha256: hex(sha256(theItem)), size: theItem.length });
    expect(readFileSync(out)).toEqual(theItem);
    expect(getEscrow(buyer.session, offer.id)).toMatchObject({ status: 'completed', key: srec.key, claimTxid: claim.txid });
    expect(buyerBefore - (await total(buyer))).toBe(PRICE + r.fee!);
  });

  test('idempotency: accepting twice pays once; taking, claiming and recovering twice give the same result', async () => {
    const buyerBefore = await total(buyer);
    const { offer, ciphertext } = await createOffer(sctx, offerOptions());
    const first = await acceptOffer(bctx, offer, ciphertext, ACCEPT);
    const second = await acceptOffer(bctx, offer, ciphertext, ACCEPT);
    expect(second.acceptance).toEqual(first.acceptance);
    expect(second.fee).toBeNull();
    expect(buyerBefore - (await total(buyer))).toBe(PRICE + first.fee!);
    expect(listEscrows(buyer.session).filter((r) => r.id === offer.id)).toHaveLength(1);
    await node.chain.mine(1);
    // Once confirmed, a third accept still pays nothing more.
    expect((await acceptOffer(bctx, offer, ciphertext, ACCEPT)).acceptance.funding).toEqual(first.acceptance.funding);
    expect(buyerBefore - (await total(buyer))).toBe(PRICE + first.fee!);

    const taken = await takeAcceptance(sctx, first.acceptance);
    expect(await takeAcceptance(sctx, first.acceptance)).toEqual(taken);
    const claim = await claimEscrow(sctx, offer.id, CLAIM);
    const again = await claimEscrow(sctx, offer.id, CLAIM);
    expect(again.txid).toBe(claim.txid);
    expect(again.fee).toBeNull();
    // A claim broadcast but not recorded (a crash in between): run again, the chain is checked first.
    await saveEscrow(seller.session, taken);
    const recovered = await claimEscrow(sctx, offer.id, CLAIM);
    expect(recovered).toMatchObject({ txid: claim.txid, fee: null });
    expect(getEscrow(seller.session, offer.id)).toMatchObject({ status: 'claimed', claimTxid: claim.txid });
    await node.chain.mine(1);
    expect((await claimEscrow(sctx, offer.id, CLAIM)).txid).toBe(claim.txid);
    // Another buyer's acceptance for a sold offer is refused.
    await expectCode(takeAcceptance(sctx, { ...first.acceptance, timeout: first.acceptance.timeout + 1 }), 'ESCROW_STATE');

    const out = path.join(tmp.dir, 'idem.raw');
    const a = await recoverItem(bctx, offer.id, out);
    expect(await recoverItem(bctx, offer.id, out)).toEqual(a);
  });

  test('a claim within the safety margin of the timeout: ESCROW_TOO_LATE and nothing revealed; with force it claims', async () => {
    const { offer, ciphertext } = await createOffer(sctx, offerOptions());
    const r = await acceptOffer(bctx, offer, ciphertext, ACCEPT);
    const rec = await takeAcceptance(sctx, r.acceptance);
    const timeout = r.acceptance.timeout;
    await mineTo(timeout - MARGIN);

    const before = await state(seller);
    const e = await expectCode(claimEscrow(sctx, offer.id, CLAIM), 'ESCROW_TOO_LATE');
    expect(e.details).toEqual({ tip: timeout - MARGIN, timeout });
    expect(e.hint).toMatch(/nothing was revealed/);
    expect(await spendOf(rec)).toBeNull();
    expect(await state(seller)).toEqual(before);
    expect(getEscrow(seller.session, offer.id)).toEqual(rec);
    // A larger margin says the same a block earlier.
    await expectCode(claimEscrow(sctx, offer.id, { ...CLAIM, margin: MARGIN + 1 }), 'ESCROW_TOO_LATE');

    const forced = await claimEscrow(sctx, offer.id, { ...CLAIM, force: true });
    const spend = (await spendOf(rec))!;
    expect(spend.txid).toBe(forced.txid);
    expect(readSpend(htlcTerms(rec), spend.witness)).toEqual({ kind: 'claim', key: Buffer.from(rec.key, 'hex') });
    await node.chain.mine(1);
    expect((await recoverItem(bctx, offer.id, path.join(tmp.dir, 'late.raw'))).claimTxid).toBe(forced.txid);
  });

  test('refund: ESCROW_TOO_EARLY naming the height until the timeout, then it confirms; the seller then reports it refunded', async () => {
    const { offer, ciphertext } = await createOffer(sctx, offerOptions());
    const r = await acceptOffer(bctx, offer, ciphertext, ACCEPT);
    const srec = await takeAcceptance(sctx, r.acceptance);
    await node.chain.mine(1);
    const timeout = r.acceptance.timeout;
    const brec = recordIn(getEscrow(buyer.session, offer.id), 'buyer', 'funded');

    for (const height of [await node.chain.tipHeight(), timeout - 1]) {
      await mineTo(height);
      const before = await state(buyer);
      const e = await expectCode(refundEscrow(bctx, offer.id, FEE_RATE), 'ESCROW_TOO_EARLY');
      expect(e.message).toMatch(/not finalized/);
      expect(e.hint).toMatch(new RegExp(`at height ${timeout}, ${timeout - height} blocks? from now`));
      expect(e.details).toMatchObject({ timeout, tip: height });
      expect(await state(buyer)).toEqual(before);
      expect(getEscrow(buyer.session, offer.id)).toEqual(brec);
      expect(await spendOf(brec)).toBeNull();
    }

    await mineTo(timeout);
    const buyerBefore = await total(buyer);
    const refund = await refundEscrow(bctx, offer.id, FEE_RATE);
    expect(refund.fee).not.toBeNull();
    expect(getEscrow(buyer.session, offer.id)).toMatchObject({ status: 'refunded', refundTxid: refund.txid });
    expect(await refundEscrow(bctx, offer.id, FEE_RATE)).toEqual({ txid: refund.txid, fee: null });
    // Broadcast but not recorded (a crash in between): the chain is checked first.
    await saveEscrow(buyer.session, brec);
    expect(await refundEscrow(bctx, offer.id, FEE_RATE)).toEqual({ txid: refund.txid, fee: null });

    await node.chain.mine(1);
    const info = (await node.chain.getTransaction(refund.txid))!;
    expect(info.confirmations).toBe(1);
    expect(info.outputs.map((o) => o.value)).toEqual([PRICE - refund.fee!]);
    expect(await total(buyer) - buyerBefore).toBe(PRICE - refund.fee!);
    expect(readSpend(htlcTerms(brec), (await spendOf(brec))!.witness)).toEqual({ kind: 'refund' });

    const late = await expectCode(claimEscrow(sctx, offer.id, CLAIM), 'ESCROW_STATE');
    expect(late.message).toBe(`the buyer refunded escrow ${offer.id} in ${refund.txid}`);
    expect(getEscrow(seller.session, offer.id)).toMatchObject({ status: 'refunded', refundTxid: refund.txid, key: srec.key });
    await expectCode(recoverItem(bctx, offer.id, path.join(tmp.dir, 'never.raw')), 'ESCROW_STATE');
    expect(existsSync(path.join(tmp.dir, 'never.raw'))).toBe(false);
  });

  test('a cheating seller (the offer names item A, the ciphertext holds item B): SELLER_CHEATED with the evidence kept', async () => {
    const itemA = item('the item the buyer pays for');
    const itemB = item('something else entirely');
    const keyIndex = nextEscrowKey(seller.session);
    const key = contractKey(seller.seed, 'regtest', ESCROW_CHAIN, keyIndex);
    const id = randomBytes(8).toString('hex');
    const d = draftOffer({ id, network: 'regtest', name: 'a.raw', item: itemB, price: PRICE, timeout: { min: 20, max: 100 }, confirmations: 1, seller: key.pub, expires: new Date(Date.now() + 3600_000) });
    d.body.item.sha256 = hex(sha256(itemA));
    d.body.item.size = itemA.length;
    const offer = signOffer(d.body, key.priv);
    writeEscrowFile(seller.networkDir, `${id}.enc`, d.ciphertext);
    await saveEscrow(seller.session, { id, role: 'seller', offer, keyIndex, key: hex(d.key), status: 'offered', created: new Date().toISOString() });

    const r = await acceptOffer(bctx, offer, d.ciphertext, ACCEPT);
    await takeAcceptance(sctx, r.acceptance);
    await node.chain.mine(1);
    const claim = await claimEscrow(sctx, id, CLAIM);

    const out = path.join(tmp.dir, 'cheated.raw');
    const e = await expectCode(recoverItem(bctx, id, out), 'SELLER_CHEATED');
    expect(e.details).toMatchObject({ claimTxid: claim.txid });
    const file = (e.details as { evidence: string }).evidence;
    expect(file).toBe(path.join(buyer.networkDir, 'escrow', `${id}.evidence.json`));
    expect(e.hint).toContain(file);
    const evidence = JSON.parse(readFileSync(file, 'utf8'));
    expect(evidence).toMatchObject({ key: hex(d.key), claimTxid: claim.txid, decryptedSha256: hex(sha256(itemB)), offer: { id, signature: offer.signature, item: { sha256: hex(sha256(itemA)) } } });
    expect(readFileSync(path.join(buyer.networkDir, 'escrow', `${id}.evidence.bin`))).toEqual(itemB);
    expect(existsSync(out)).toBe(false);
    expect(getEscrow(buyer.session, id)).toMatchObject({ status: 'cheated', key: hex(d.key), claimTxid: claim.txid });
    // The key in the evidence is the one on chain.
    const cheated = recordIn(getEscrow(buyer.session, id), 'buyer', 'cheated');
    const spend = (await spendOf(cheated))!;
    expect(readSpend(htlcTerms(cheated), spend.witness)).toEqual({ kind: 'claim', key: d.key });
  });

  // The funding signals RBF: a claim on it before it confirms would reveal K while the buyer
  // can still replace the funding and keep both the item and its coins.
  test('no offer asks fewer than one confirmation, and no claim comes before it', async () => {
    await expectCode(createOffer(sctx, offerOptions({ confirmations: 0 })), 'USAGE');
    const made = await createOffer(sctx, offerOptions({ confirmations: 1 }));
    const r = await acceptOffer(bctx, made.offer, made.ciphertext, ACCEPT);
    const rec = await takeAcceptance(sctx, r.acceptance);
    await expectCode(claimEscrow(sctx, made.offer.id, CLAIM), 'ESCROW_STATE');
    expect(await spendOf(rec)).toBeNull();
    // A peer's offer of 0 confirmations is not one swarmpay accepts either.
    const zero = signOffer({ ...made.offer, confirmations: 0 }, contractKey(seller.seed, 'regtest', ESCROW_CHAIN, rec.keyIndex).priv);
    expect(() => parseOffer(JSON.parse(JSON.stringify(zero)))).toThrow(expect.objectContaining({ code: 'OFFER_INVALID' }));
    // Once confirmed, the claim goes through (and leaves no funded escrow to later tests).
    await node.chain.mine(1);
    expect((await claimEscrow(sctx, made.offer.id, CLAIM)).txid).toBe((await spendOf(rec))!.txid);
  });

  describe('online, over real TCP links', () => {
    let server: EscrowServer;
    let listener: { port: number; close(): Promise<void> };
    const logs: string[] = [];
    const links: PeerLink[] = [];
    const connect = async (key = peerStaticKey(buyer.seed)) => {
      const l = await connectTcp('127.0.0.1', listener.port, key, { peerKey: peerStaticKey(seller.seed).publicKey });
      links.push(l);
      return l;
    };
    beforeAll(async () => {
      server = new EscrowServer(sctx, { feeRate: FEE_RATE, margin: MARGIN, log: (m) => logs.push(m) });
      listener = await listenTcp('127.0.0.1', 0, peerStaticKey(seller.seed), (l) => void server.serve(l));
    });
    afterAll(async () => {
      await Promise.all(links.map((l) => l.close().catch(() => undefined)));
      await listener?.close();
    });
    const nextMessage = async (it: AsyncIterator<Buffer>): Promise<EscrowMessage | null> => {
      const r = await it.next();
      return r.done ? null : parseEscrowMessage(r.value);
    };

    test('fetch, accept and hand over over the link; the server claims once confirmed: the same result as from files', async () => {
      const theItem = item('sent over the link', 80_000); // more than one chunk
      const { offer } = await createOffer(sctx, offerOptions({ item: theItem }));
      const sellerBefore = await total(seller);
      const buyerBefore = await total(buyer);

      const link = await connect();
      const conv = escrowConversation(link);
      const fetched = await fetchOffer(conv, offer.id);
      expect(fetched.offer).toEqual(offer);
      expect(fetched.ciphertext).toEqual(readFileSync(ciphertextPath(seller.networkDir, offer.id)));
      const r = await acceptOffer(bctx, fetched.offer, fetched.ciphertext, ACCEPT);
      await sendAcceptance(conv, r.acceptance);
      await link.close();
      const srec = recordIn(getEscrow(seller.session, offer.id), 'seller', 'funded');
      expect(srec).toMatchObject({ status: 'funded', acceptance: r.acceptance });

      // Not before its confirmation.
      await server.claimReady();
      expect(getEscrow(seller.session, offer.id).status).toBe('funded');
      expect(await spendOf(srec)).toBeNull();

      await node.chain.mine(1);
      await server.claimReady();
      const claimed = recordIn(getEscrow(seller.session, offer.id), 'seller', 'claimed');
      expect(logs).toContain(`escrow ${offer.id}: claimed ${PRICE} sats in ${claimed.claimTxid}`);
      await node.chain.mine(1);

      // The claim is byte for byte the one the file flow's claimTx makes for this escrow.
      const info = (await node.chain.getTransaction(claimed.claimTxid))!;
      expect(info.confirmations).toBe(1);
      const h = htlcOf(claimed, 'regtest');
      const expected = claimTx(h.terms, h.funding, Buffer.from(claimed.key, 'hex'), info.outputs[0]!.script, FEE_RATE, contractKey(seller.seed, 'regtest', ESCROW_CHAIN, claimed.keyIndex).priv);
      expect(expected.txid).toBe(claimed.claimTxid);
      expect(info.outputs.map((o) => o.value)).toEqual([PRICE - expected.fee]);
      expect(await total(seller) - sellerBefore).toBe(PRICE - expected.fee);
      expect(buyerBefore - (await total(buyer))).toBe(PRICE + r.fee!);

      const out = path.join(tmp.dir, 'online.raw');
      expect((await recoverItem(bctx, offer.id, out)).claimTxid).toBe(claimed.claimTxid);
      expect(readFileSync(out)).toEqual(theItem);
    });

    test('garbage or malformed escrow messages: PEER_PROTOCOL, the link closed, nothing changed', async () => {
      const { offer } = await createOffer(sctx, offerOptions());
      const before = await state(seller);
      const N = hex(randomBytes(32));
      const bad = [
        'garbage',
        '[]',
        // Version 1 (no buyer's nonce) and versions to come.
        `{"v":1,"t":"get","id":null}`,
        `{"v":3,"t":"get","id":null,"nonce":"${N}"}`,
        `{"v":2,"t":"get","id":"zz","nonce":"${N}"}`,
        '{"v":2,"t":"get","nonce":"' + N + '"}',
        // The buyer's nonce: missing, null, short, long, not hex.
        '{"v":2,"t":"get","id":null}',
        '{"v":2,"t":"get","id":null,"nonce":null}',
        `{"v":2,"t":"get","id":null,"nonce":"${N.slice(2)}"}`,
        `{"v":2,"t":"get","id":null,"nonce":"${N}00"}`,
        `{"v":2,"t":"get","id":null,"nonce":"${'zz'.repeat(32)}"}`,
        '{"v":2,"t":"launch"}',
        `{"v":2,"t":"chunk","i":0,"data":"!!"}`,
        // An offer's quote must be null or an object.
        JSON.stringify({ v: 2, t: 'offer', offer: {}, chunks: 1 }),
        JSON.stringify({ v: 2, t: 'offer', offer: {}, chunks: 1, quote: 'x' }),
        JSON.stringify({ v: 2, t: 'offer', offer: {}, chunks: 1, quote: [] }),
        // Well-formed, but not what a buyer sends.
        JSON.stringify({ v: 2, t: 'offer', offer: {}, chunks: 1, quote: null }),
        JSON.stringify({ v: 2, t: 'taken', id: offer.id }),
      ];
      for (const text of bad) {
        const link = await connect();
        const it = link.messages()[Symbol.asyncIterator]();
        link.send(Buffer.from(text));
        const m = await nextMessage(it);
        expect([text, m]).toMatchObject([text, { t: 'error', code: 'PEER_PROTOCOL' }]);
        // The server hangs up.
        expect(await nextMessage(it).catch(() => null)).toBeNull();
      }
      expect(await state(seller)).toEqual(before);
      expect(getEscrow(seller.session, offer.id)).toMatchObject({ status: 'offered' });
    });

    test('fifty gets at once from a buyer that does not read: the seller holds a few MiB, not fifty copies of the item; read at last, the offer arrives whole', async () => {
      const big = item('big', 4 * 1024 * 1024);
      const { offer } = await createOffer(sctx, offerOptions({ item: big }));
      const link = await connect();
      const it = link.messages()[Symbol.asyncIterator]();
      const base = process.memoryUsage().arrayBuffers;
      for (let i = 0; i < 50; i++) link.send(encodeEscrowMessage({ t: 'get', id: offer.id, nonce: randomBytes(32) }));
      await new Promise((r) => setTimeout(r, 1500)); // the seller sends what it may; nobody reads
      const grew = (process.memoryUsage().arrayBuffers - base) / 2 ** 20;
      expect(grew).toBeLessThan(16); // both ends of the link in this process; was 50 x 4 MiB read and queued
      const head = await nextMessage(it);
      expect(head).toMatchObject({ t: 'offer', offer, chunks: Math.ceil(readFileSync(ciphertextPath(seller.networkDir, offer.id)).length / CHUNK_BYTES) });
      const parts: Buffer[] = [];
      for (let i = 0; i < (head as { chunks: number }).chunks; i++) parts.push((await nextMessage(it) as { data: Buffer }).data);
      expect(Buffer.concat(parts).equals(readFileSync(ciphertextPath(seller.networkDir, offer.id)))).toBe(true); // toEqual walks 4 MiB byte by byte
      await link.close();
    }, 30_000);

    test('an offer held by one buyer is refused to a second, until the first hangs up', async () => {
      const { offer } = await createOffer(sctx, offerOptions());
      const first = await connect();
      await fetchOffer(escrowConversation(first), offer.id);

      const before = await state(seller);
      const second = await connect(peerStaticKey(randomBytes(64)));
      const it = second.messages()[Symbol.asyncIterator]();
      second.send(encodeEscrowMessage({ t: 'get', id: offer.id, nonce: randomBytes(32) }));
      const refused = await nextMessage(it);
      expect(refused).toMatchObject({ t: 'error', code: 'ESCROW_STATE' });
      expect((refused as { message: string }).message).toMatch(/being accepted by another buyer/);
      // Nor may it hand over an acceptance for the held offer.
      const a: Acceptance = { format: 'swarmpay-acceptance', version: 1, offer: offer.id, buyer: hex(contractKey(buyer.seed, 'regtest', ESCROW_CHAIN, 990).pub), timeout: (await node.chain.tipHeight()) + 20, funding: { txid: '11'.repeat(32), vout: 0 }, tx: '00' };
      second.send(encodeEscrowMessage({ t: 'accepted', acceptance: a }));
      expect(await nextMessage(it)).toMatchObject({ t: 'error', code: 'ESCROW_STATE', message: expect.stringMatching(/not held for this buyer/) });
      expect(await state(seller)).toEqual(before);
      await second.close();

      // Through fetchOffer the refusal is an error of ours that names the seller's code.
      const third = await connect(peerStaticKey(randomBytes(64)));
      const e = await failure(fetchOffer(escrowConversation(third), offer.id));
      expect(e).toMatchObject({ code: 'ESCROW_STATE', details: { peerCode: 'ESCROW_STATE' } });
      await third.close();

      // Once the first buyer hangs up, the offer is free again.
      await first.close();
      let got: Offer | null = null;
      for (let i = 0; i < 50 && got === null; i++) {
        const l = await connect(peerStaticKey(randomBytes(64)));
        try {
          got = (await fetchOffer(escrowConversation(l), offer.id)).offer;
        } catch (err) {
          expect(err).toMatchObject({ details: { peerCode: 'ESCROW_STATE' } });
          await new Promise((res) => setTimeout(res, 50));
        } finally {
          await l.close();
        }
      }
      expect(got).toEqual(offer);
      expect(getEscrow(seller.session, offer.id)).toMatchObject({ status: 'offered' });
    });

    test('a buyer that vanishes mid-frame ends only its own service: the server logs it and serves on', async () => {
      // The failed link cannot carry the error notice back; telling the gone peer must not fail the server.
      const served = new Promise<void>((resolve, reject) => {
        const raw = createServer((sock) => {
          void handshake(sock, 'responder', peerStaticKey(seller.seed)).then((l) => server.serve(l)).then(resolve, reject);
        });
        raw.listen(0, '127.0.0.1', async () => {
          const sock = createConnection((raw.address() as AddressInfo).port, '127.0.0.1');
          await handshake(sock, 'initiator', peerStaticKey(buyer.seed));
          sock.end(Buffer.from([0, 0, 1, 0, 42])); // a frame header promising 256 bytes, then one byte and EOF
          raw.close();
        });
      });
      await expect(served).resolves.toBeUndefined();
      expect(logs.some((m) => m.includes('PEER_PROTOCOL') && m.includes('truncated frame'))).toBe(true);
      const { offer } = await createOffer(sctx, offerOptions());
      const l = await connect();
      expect((await fetchOffer(escrowConversation(l), offer.id)).offer).toEqual(offer);
      await l.close();
    });

    describe("attested offers online: a fresh quote over the buyer's nonce (swtpm)", () => {
      let t: TestTpm;
      let tpm: Tpm;
      let tpmListener: { port: number; close(): Promise<void> };
      const fakes: { close(): Promise<void> }[] = [];
      const attestedOffer = () => createOffer(sctx, offerOptions({ attest: (nonce) => attest(tpm, nonce, PCRS) }));
      const connectTo = async (port: number) => {
        const l = await connectTcp('127.0.0.1', port, peerStaticKey(buyer.seed), { peerKey: peerStaticKey(seller.seed).publicKey });
        links.push(l);
        return l;
      };
      beforeAll(async () => {
        t = await startTestTpm();
        tpm = await t.open();
        const withTpm = new EscrowServer(sctx, { feeRate: FEE_RATE, margin: MARGIN, log: (m) => logs.push(m), tpm: async () => tpm });
        tpmListener = await listenTcp('127.0.0.1', 0, peerStaticKey(seller.seed), (l) => void withTpm.serve(l));
      });
      afterAll(async () => {
        await Promise.all(fakes.map((f) => f.close()));
        await tpmListener?.close();
        await tpm?.close();
        await t?.stop();
      });
      /** A seller that answers `get` with the offer, its ciphertext and a quote of its choosing (one chunk: small items only). */
      const fakeSeller = async (offer: Offer, ciphertext: Buffer, quoteFor: (nonce: Buffer) => unknown) => {
        const l = await listenTcp('127.0.0.1', 0, peerStaticKey(seller.seed), (link) => void (async () => {
          const it = link.messages()[Symbol.asyncIterator]();
          const m = await nextMessage(it);
          if (m?.t !== 'get') return;
          link.send(encodeEscrowMessage({ t: 'offer', offer, chunks: 1, quote: quoteFor(m.nonce) }));
          link.send(encodeEscrowMessage({ t: 'chunk', i: 0, data: ciphertext }));
        })());
        fakes.push(l);
        return l.port;
      };

      test("accepted on a quote made now for the buyer's nonce: its nonce is H(offer digest || nonce), over the offer's PCRs", async () => {
        const { offer } = await attestedOffer();
        const link = await connectTo(tpmListener.port);
        const conv = escrowConversation(link);
        const f = await fetchOffer(conv, offer.id);
        expect(f.offer).toEqual(offer);
        expect(f.nonce).toHaveLength(32);
        const quote = f.quote as { nonce: string; pcrs: { values: Record<string, string> }; akName: string };
        expect(quote.nonce).toBe(hex(sha256(Buffer.concat([offerDigest(offer), f.nonce]))));
        expect(quote.nonce).toBe(hex(freshNonce(offerDigest(offer), f.nonce)));
        expect(quote.nonce).not.toBe(offer.attestation!.nonce);
        expect(Object.keys(quote.pcrs.values)).toEqual(Object.keys(offer.attestation!.pcrs.values));
        expect(quote.akName).toBe(offer.attestation!.akName);
        const r = await acceptOffer(bctx, f.offer, f.ciphertext, { checks: { requireAttestation: true, ak: offer.attestation!.akPublic, fresh: { nonce: f.nonce, quote: f.quote } }, feeRate: FEE_RATE });
        expect(r.attestation).toMatchObject({ akName: offer.attestation!.akName, akPinned: true, akVouched: true, fresh: true, pcrs: quote.pcrs.values });
        await sendAcceptance(conv, r.acceptance);
        await link.close();
        expect(getEscrow(seller.session, offer.id).status).toBe('funded');
        await node.chain.mine(1);
      });

      test('a replayed quote (the offer\'s own, or one made for another nonce) is refused: ATTESTATION_INVALID, nothing paid', async () => {
        const { offer, ciphertext } = await attestedOffer();
        const forAnother = await attest(tpm, freshNonce(offerDigest(offer), randomBytes(32)), PCRS);
        const cases: [string, (nonce: Buffer) => unknown, RegExp][] = [
          ["the offer's stored quote", () => offer.attestation, /the quote's nonce is not this buyer's/],
          ['a quote for another buyer\'s nonce', () => forAnother, /the quote's nonce is not this buyer's/],
          // The document's nonce field set to this buyer's: the quote the TPM signed still says otherwise.
          ['an old quote with its nonce field rewritten', (nonce) => ({ ...forAnother, nonce: hex(freshNonce(offerDigest(offer), nonce)) }), /another nonce/],
        ];
        for (const [what, quoteFor, why] of cases) {
          const link = await connectTo(await fakeSeller(offer, ciphertext, quoteFor));
          const f = await fetchOffer(escrowConversation(link), offer.id);
          for (const checks of [{}, { requireAttestation: true, ak: offer.attestation!.akPublic }]) {
            const before = await state(buyer);
            const e = await expectCode(acceptOffer(bctx, f.offer, f.ciphertext, { checks: { ...checks, fresh: { nonce: f.nonce, quote: f.quote } }, feeRate: FEE_RATE }), 'ATTESTATION_INVALID');
            expect([what, e.message]).toEqual([what, expect.stringMatching(why)]);
            expect(await state(buyer)).toEqual(before);
            expect(existsSync(ciphertextPath(buyer.networkDir, offer.id))).toBe(false);
          }
          await link.close();
        }
      });

      test('a seller serving without a TPM sends no fresh quote: a buyer who requires attestation refuses, clearly; one who does not, accepts it as not attested', async () => {
        const { offer } = await attestedOffer();
        const link = await connect(); // the server without a TPM
        const f = await fetchOffer(escrowConversation(link), offer.id);
        expect(f.quote).toBeNull();
        const before = await state(buyer);
        const e = await expectCode(acceptOffer(bctx, f.offer, f.ciphertext, { checks: { requireAttestation: true, fresh: { nonce: f.nonce, quote: null } }, feeRate: FEE_RATE }), 'ATTESTATION_INVALID');
        expect(e.message).toMatch(/the seller made no fresh quote for your nonce/);
        expect(await state(buyer)).toEqual(before);
        expect(logs).toContain(`offer ${offer.id}: attested, but no TPM to quote for this buyer's nonce: sent without a fresh quote`);
        const r = await acceptOffer(bctx, f.offer, f.ciphertext, { checks: { fresh: { nonce: f.nonce, quote: null } }, feeRate: FEE_RATE });
        expect(r.attestation).toBeNull();
        await link.close();
        await node.chain.mine(1);
      });
    });
  });
});
