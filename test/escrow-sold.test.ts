/**
 * Issue 13, "Sold means confirmed", on a real btcd. An accepted offer whose funding is
 * replaced or double-spent before it confirms was never sold: `escrow serve` (and `escrow
 * claim`) put it back on the market, and another buyer can buy it. The claim pays the node's
 * fee estimate when no rate is given. A claim that leaves the mempool is broadcast again,
 * and one that waits is bumped by CPFP from its own output, and confirms.
 *
 * btcd (v0.24) takes BIP125 replacements of transactions that signal it, as every funding
 * does: the double-spend here is a real replacement in the node's mempool, and in a second
 * case a conflicting transaction the node mined. On regtest every block takes the whole
 * mempool, so a claim that "does not confirm" is one the node lost: the server's chain drops
 * its broadcast while blocks are mined (as a restarted btcd forgets its mempool).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Transaction } from 'bitcoinjs-lib';
import { addressToScript } from '../src/bitcoin/address.js';
import { claimTx, htlcOutput, type HtlcTerms } from '../src/bitcoin/htlc.js';
import type { SignedTx } from '../src/bitcoin/spend.js';
import type { ChainBackend } from '../src/chain/backend.js';
import { acceptOffer, recoverItem } from '../src/escrow/buyer.js';
import { htlcOf } from '../src/escrow/contract.js';
import { EscrowServer, fetchOffer, sendAcceptance } from '../src/escrow/online.js';
// The new functions through the namespace: against the code before this change the file still
// loads, and each test fails on what it checks.
import * as seller from '../src/escrow/seller.js';
import { claimEscrow, createOffer, openOffers, takeAcceptance, type OfferOptions } from '../src/escrow/seller.js';
import { getEscrow } from '../src/escrow/store.js';
import type { Acceptance, SellerClaimed } from '../src/escrow/record.js';
import { escrowConversation } from '../src/escrow/messages.js';
import { recordIn } from './helpers/escrow-record.js';
import { peerStaticKey } from '../src/peer/keys.js';
import type { PeerLink } from '../src/peer/link.js';
import { connectTcp, listenTcp } from '../src/peer/transports.js';
import { estimateVbytes } from '../src/wallet/coin-select.js';
import { faucetPay } from '../src/wallet/faucet.js';
import { ESCROW_CHAIN, contractKey } from '../src/wallet/hd.js';
import { ownedUtxos, planSend, signSend } from '../src/wallet/send.js';
import { receiveAddress, walletAccount, walletBalance } from '../src/wallet/wallet.js';
import { contractContext, type ContractContext } from '../src/wallet/contract-wallet.js';
import { swarmpay } from './helpers/cli.js';
import { expectCode, failure } from './helpers/expect.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { tempDir } from './helpers/tmp.js';
import { TEST_PASSPHRASE, testWallet, type TestWallet } from './helpers/wallets.js';
import { hex } from './helpers/keys.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

const PRICE = 50_000n;
/** Every payment here before the claims pays this, so that the node's estimate is well above the floor of 2. */
const FEE_RATE = FeeRate.ofSatPerVb(10n);
const MARGIN = 6;
const ACCEPT = { checks: {}, feeRate: FEE_RATE };
/** A claim aims at confirming within 6 blocks (seller.CLAIM_TARGET_BLOCKS, as a channel's close). */
const CLAIM_TARGET = 6;
const vsize = (h: string) => BigInt(Transaction.fromHex(h).virtualSize());

describe('sold means confirmed; claims that confirm (real btcd)', () => {
  let node: TestNode;
  let tmp: ReturnType<typeof tempDir>;
  let sellerW: TestWallet;
  let buyer: TestWallet;
  let buyer2: TestWallet;
  let sctx: ContractContext;
  let bctx: ContractContext;
  let b2ctx: ContractContext;
  const logs: string[] = [];
  const log = (m: string) => logs.push(m);

  const ctxOf = (w: TestWallet, chain: ChainBackend = node.chain): ContractContext => (contractContext(w.session, w.seed, chain, w.networkDir));
  const item = (label: string, size = 3000) => Buffer.concat([Buffer.from(`${label}\n`), randomBytes(size)]);
  const offerOptions = (o: Partial<OfferOptions> = {}): OfferOptions => ({
    name: 'photo.raw', item: item('photo'), price: PRICE, timeout: { min: 20, max: 100 }, confirmations: 1, expiresIn: 3600, ...o,
  });
  /** A chain whose broadcasts vanish while `drop` is set: what a node that loses its mempool shows. */
  const lossy = () => {
    const c = { drop: false, chain: null as unknown as ChainBackend };
    c.chain = Object.assign(Object.create(node.chain) as ChainBackend, {
      broadcast: async (h: string) => (c.drop ? Transaction.fromHex(h).getId() : node.chain.broadcast(h)),
    });
    return c;
  };
  /** The claim this escrow's record names, rebuilt at `feeRate` to the output the chain shows it paying. */
  const claimAt = async (rec: SellerClaimed, w: TestWallet, feeRate: FeeRate) => {
    const info = (await node.chain.getTransaction(rec.claimTxid))!;
    const h = htlcOf(rec, 'regtest');
    return claimTx(h.terms, h.funding, Buffer.from(rec.key, 'hex'), info.outputs[0]!.script, feeRate, contractKey(w.seed, 'regtest', ESCROW_CHAIN, rec.keyIndex).priv);
  };

  /**
   * The buyer's double-spend of an unconfirmed funding: the same inputs, all back to the
   * buyer's own address, at `feeRate` (above the funding's, as BIP125 wants).
   */
  async function doubleSpend(w: TestWallet, txid: string, feeRate: FeeRate): Promise<SignedTx> {
    const tx = (await node.chain.getTransaction(txid))!;
    const { used } = await ownedUtxos(node.chain, walletAccount(w.networkDir, 'regtest'), 'regtest');
    const ownerOf = new Map(used.map((a) => [hex(a.script), a]));
    const inputs = [];
    const owners = [];
    for (const i of tx.inputs) {
      const prev = (await node.chain.getTransaction(i.txid))!.outputs[i.vout]!;
      inputs.push({ txid: i.txid, vout: i.vout, value: prev.value, script: prev.script });
      owners.push(ownerOf.get(hex(prev.script))!);
    }
    const to = addressToScript((await receiveAddress(node.chain, w.networkDir, 'regtest')).address, 'regtest');
    const fee = feeRate.feeFor(estimateVbytes(inputs.length, [to]));
    const value = inputs.reduce((a, i) => a + i.value, 0n) - fee;
    return signSend({ spend: { inputs, outputs: [{ script: to, value }], fee, feeRate, paid: value }, owners }, w.seed, 'regtest');
  }

  beforeAll(async () => {
    node = await startTestNode();
    tmp = tempDir('swarmpay-escrow-sold-');
    sellerW = await testWallet(path.join(tmp.dir, 'seller'));
    buyer = await testWallet(path.join(tmp.dir, 'buyer'));
    buyer2 = await testWallet(path.join(tmp.dir, 'buyer2'));
    for (let i = 0; i < 6; i++) {
      for (const w of [buyer, buyer2]) await faucetPay(node.chain, (await receiveAddress(node.chain, w.networkDir, 'regtest')).address, 5_000_000n, FEE_RATE);
    }
    await node.chain.mine(1);
    sctx = ctxOf(sellerW);
    bctx = ctxOf(buyer);
    b2ctx = ctxOf(buyer2);
  });
  afterAll(async () => {
    await node?.stop();
    tmp?.remove();
  });

  describe('the claim fee follows the node\'s estimate when no fee rate is given', () => {
    test('the rate chosen: the estimate, never below 2 sat/vB; no estimate gives 2 on regtest and FEE_RATE_REQUIRED elsewhere', async () => {
      expect(seller.CLAIM_TARGET_BLOCKS).toBe(CLAIM_TARGET);
      const estimating = (rate: string | null): ChainBackend => Object.assign(Object.create(node.chain) as ChainBackend, { estimateFeeRate: async () => (rate === null ? null : FeeRate.parse(rate)) });
      const claimRate = async (estimate: string | null, network: 'regtest' | 'testnet') => (await seller.claimFeeRate(estimating(estimate), network)).toString();
      expect(await claimRate('17.125', 'regtest')).toBe('17.125');
      expect(await claimRate('1', 'regtest')).toBe('2');
      expect(await claimRate(null, 'regtest')).toBe('2');
      expect(await claimRate('17', 'testnet')).toBe('17');
      const e = await expectCode(seller.claimFeeRate(estimating(null), 'testnet'), 'FEE_RATE_REQUIRED');
      expect(e.hint).toMatch(/--fee-rate/);
    });

    test('`escrow serve` without a fee rate claims at the node\'s estimate, not at 2', async () => {
      const { offer, ciphertext } = await createOffer(sctx, offerOptions());
      const r = await acceptOffer(bctx, offer, ciphertext, ACCEPT);
      await takeAcceptance(sctx, r.acceptance);
      await node.chain.mine(1);
      const estimate = (await node.chain.estimateFeeRate(CLAIM_TARGET))!;
      expect(estimate.compare(FEE_RATE)).toBeGreaterThanOrEqual(0);

      const server = new EscrowServer(sctx, { feeRate: null, margin: MARGIN, log });
      await server.claimReady();
      const rec = recordIn(getEscrow(sellerW.session, offer.id), 'seller', 'claimed');
      // The claim on chain is, byte for byte, the one made at the estimate.
      const expected = await claimAt(rec, sellerW, estimate);
      expect(expected.txid).toBe(rec.claimTxid);
      const info = (await node.chain.getTransaction(rec.claimTxid))!;
      expect(PRICE - info.outputs[0]!.value).toBe(expected.fee);
      expect(FeeRate.paidBy(expected.fee, vsize(info.hex)).compare(estimate)).toBeGreaterThanOrEqual(0);
      await node.chain.mine(1);
      expect((await node.chain.getTransaction(rec.claimTxid))!.confirmations).toBe(1);
    });

    test('`escrow claim` (the CLI) without --fee-rate claims at the node\'s estimate and says so', async () => {
      // A seller datadir of its own: the CLI process writes its keystore.
      const s3 = await testWallet(path.join(tmp.dir, 'seller-cli'));
      const s3ctx = ctxOf(s3);
      const { offer, ciphertext } = await createOffer(s3ctx, offerOptions());
      const r = await acceptOffer(bctx, offer, ciphertext, ACCEPT);
      const acceptanceFile = path.join(tmp.dir, 'cli.acceptance.json');
      writeFileSync(acceptanceFile, JSON.stringify(r.acceptance));
      await node.chain.mine(1);
      const estimate = (await node.chain.estimateFeeRate(CLAIM_TARGET))!;
      expect(estimate.compare(FeeRate.ofSatPerVb(2n))).toBeGreaterThan(0);

      const pass = path.join(tmp.dir, 'pass');
      writeFileSync(pass, TEST_PASSPHRASE);
      const claimed = await swarmpay(['--datadir', s3.datadir, '--tpm', 'none', '--rpc-url', node.state.rpcUrl, '--rpc-cookie', node.state.cookieFile, 'escrow', 'claim', offer.id, '--acceptance', acceptanceFile, '--passphrase-file', pass]);
      expect([claimed.code, claimed.json?.error]).toEqual([0, undefined]);
      expect(claimed.json).toMatchObject({ id: offer.id, role: 'seller', feeRate: estimate.toJSON() });
      const rec: SellerClaimed = { ...recordIn(getEscrow(s3.session, offer.id), 'seller', 'offered'), acceptance: r.acceptance, htlc: 'size-checked', status: 'claimed', claimTxid: claimed.json.claimTxid as string };
      const expected = await claimAt(rec, s3, estimate);
      expect([claimed.json.claimTxid, BigInt(claimed.json.fee)]).toEqual([expected.txid, expected.fee]);
      await node.chain.mine(1);
    });
  });

  describe('an offer is sold once its funding confirms', () => {
    let server: EscrowServer;
    let listener: { port: number; close(): Promise<void> };
    const links: PeerLink[] = [];
    const connect = async (w: TestWallet) => {
      const l = await connectTcp('127.0.0.1', listener.port, peerStaticKey(w.seed), { peerKey: peerStaticKey(sellerW.seed).publicKey });
      links.push(l);
      return l;
    };
    beforeAll(async () => {
      server = new EscrowServer(sctx, { feeRate: null, margin: MARGIN, log });
      listener = await listenTcp('127.0.0.1', 0, peerStaticKey(sellerW.seed), (l) => void server.serve(l));
    });
    afterAll(async () => {
      await Promise.all(links.map((l) => l.close().catch(() => undefined)));
      await listener?.close();
    });

    test('a buyer who funds and then double-spends the unconfirmed funding: after the server\'s tick the offer is offered again, and another buyer buys it', async () => {
      const theItem = item('sold twice?', 20_000);
      const { offer } = await createOffer(sctx, offerOptions({ item: theItem }));

      // The first buyer funds over the link, and the seller takes it: off the market.
      const l1 = await connect(buyer);
      const c1 = escrowConversation(l1);
      const f1 = await fetchOffer(c1, offer.id);
      const r1 = await acceptOffer(bctx, f1.offer, f1.ciphertext, ACCEPT);
      await sendAcceptance(c1, r1.acceptance);
      await l1.close();
      expect(getEscrow(sellerW.session, offer.id)).toMatchObject({ status: 'funded', acceptance: r1.acceptance });
      const funding = r1.acceptance.funding.txid;
      expect(Transaction.fromHex(r1.acceptance.tx).ins.every((i) => i.sequence < 0xfffffffe)).toBe(true); // it signals RBF

      // ... and replaces the funding by a payment to itself at a higher fee rate: btcd takes it.
      const conflict = await doubleSpend(buyer, funding, FeeRate.ofSatPerVb(30n));
      expect(await node.chain.broadcast(conflict.hex)).toBe(conflict.txid);
      expect(await node.chain.getTransaction(funding)).toBeNull();
      expect((await node.chain.getTransaction(conflict.txid))!.confirmations).toBe(0);
      // Until the server looks, the offer is off the market.
      const meanwhile = await connect(buyer2);
      expect(await failure(fetchOffer(escrowConversation(meanwhile), offer.id))).toMatchObject({ details: { peerCode: 'ESCROW_NOT_FOUND' } });
      await meanwhile.close();

      await server.claimReady();
      const back = getEscrow(sellerW.session, offer.id);
      expect(back).toMatchObject({ status: 'offered' });
      expect(back).not.toHaveProperty('htlc');
      expect(back).not.toHaveProperty('acceptance');
      expect(openOffers(sctx).map((r) => r.id)).toContain(offer.id);
      expect(logs).toContainEqual(expect.stringMatching(new RegExp(`^escrow ${offer.id}: the funding ${funding} is gone before it confirmed \\(the node refuses it: .+\\): not sold; offered again$`)));
      // The same acceptance again: the node refuses its funding, and nothing changes.
      await expectCode(takeAcceptance(sctx, r1.acceptance, MARGIN), 'TX_REJECTED');
      expect(getEscrow(sellerW.session, offer.id)).toEqual(back);

      // Another buyer buys it, the server claims once that funding confirms, and the buyer gets the item.
      const l2 = await connect(buyer2);
      const c2 = escrowConversation(l2);
      const f2 = await fetchOffer(c2, offer.id);
      const r2 = await acceptOffer(b2ctx, f2.offer, f2.ciphertext, ACCEPT);
      await sendAcceptance(c2, r2.acceptance);
      await l2.close();
      expect(getEscrow(sellerW.session, offer.id)).toMatchObject({ status: 'funded', acceptance: r2.acceptance, htlc: 'size-checked' });
      await node.chain.mine(1);
      expect((await node.chain.getTransaction(conflict.txid))!.confirmations).toBe(1);
      await server.claimReady();
      const sold = recordIn(getEscrow(sellerW.session, offer.id), 'seller', 'claimed');
      await node.chain.mine(1);
      const out = path.join(tmp.dir, 'sold.raw');
      expect((await recoverItem(b2ctx, offer.id, out)).claimTxid).toBe(sold.claimTxid);
      expect(readFileSync(out)).toEqual(theItem);
    });

    test('`escrow claim` on an escrow whose funding lost to a conflicting transaction the node mined: ESCROW_STATE, nothing revealed, offered again', async () => {
      const { offer, ciphertext } = await createOffer(sctx, offerOptions());
      const r = await acceptOffer(bctx, offer, ciphertext, ACCEPT);
      await takeAcceptance(sctx, r.acceptance, MARGIN);
      const conflict = await doubleSpend(buyer, r.acceptance.funding.txid, FeeRate.ofSatPerVb(30n));
      await node.chain.broadcast(conflict.hex);
      await node.chain.mine(1);
      expect((await node.chain.getTransaction(conflict.txid))!.confirmations).toBe(1);

      const e = await expectCode(claimEscrow(sctx, offer.id, { feeRate: null, margin: MARGIN, force: false }), 'ESCROW_STATE');
      expect(e.message).toMatch(new RegExp(`the funding ${r.acceptance.funding.txid} of escrow ${offer.id} is gone before it confirmed .*: the offer was not sold`));
      expect(e.hint).toMatch(/never revealed; the offer is open again/);
      expect(e.details).toMatchObject({ fundingTxid: r.acceptance.funding.txid, released: true });
      expect(getEscrow(sellerW.session, offer.id)).toMatchObject({ status: 'offered' });
      expect(openOffers(sctx).map((x) => x.id)).toContain(offer.id);
      // Nothing spends the escrow address: K is still a secret.
      const h = htlcOutput({ template: 'size-checked', hash: Buffer.from(offer.hash, 'hex'), sellerPubkey: Buffer.from(offer.seller, 'hex'), buyerPubkey: Buffer.from(r.acceptance.buyer, 'hex'), timeout: r.acceptance.timeout, value: PRICE }, 'regtest');
      expect(await node.chain.used([h.address])).toEqual([false]);
      // A claim asked again says there is no acceptance.
      await expectCode(claimEscrow(sctx, offer.id, { feeRate: null, margin: MARGIN, force: false }), 'ESCROW_STATE');
    });

    test('a funding the node merely lost (never had) is broadcast again: the escrow stays sold and is claimed once it confirms', async () => {
      const { offer } = await createOffer(sctx, offerOptions());
      // The buyer's signed funding, handed over but never broadcast; the seller's node drops it too.
      const key = contractKey(buyer.seed, 'regtest', ESCROW_CHAIN, 900);
      const timeout = (await node.chain.tipHeight()) + 40;
      const terms: HtlcTerms = { template: 'size-checked', hash: Buffer.from(offer.hash, 'hex'), sellerPubkey: Buffer.from(offer.seller, 'hex'), buyerPubkey: key.pub, timeout, value: PRICE };
      const plan = await planSend(node.chain, walletAccount(buyer.networkDir, 'regtest'), 'regtest', htlcOutput(terms, 'regtest').address, PRICE, FEE_RATE);
      const signed = signSend(plan, buyer.seed, 'regtest');
      const a: Acceptance = { format: 'swarmpay-acceptance', version: 1, offer: offer.id, buyer: hex(key.pub), timeout, funding: { txid: signed.txid, vout: 0 }, tx: signed.hex };
      const lost = lossy();
      lost.drop = true;
      await takeAcceptance(ctxOf(sellerW, lost.chain), a, MARGIN);
      expect(await node.chain.getTransaction(signed.txid)).toBeNull();

      const early = await expectCode(claimEscrow(sctx, offer.id, { feeRate: null, margin: MARGIN, force: false }), 'ESCROW_STATE');
      expect(early.message).toMatch(/0 of 1 confirmations/);
      expect((await node.chain.getTransaction(signed.txid))!.confirmations).toBe(0);
      expect(getEscrow(sellerW.session, offer.id)).toMatchObject({ status: 'funded', acceptance: a });
      await server.claimReady();
      expect(getEscrow(sellerW.session, offer.id).status).toBe('funded');
      await node.chain.mine(1);
      await server.claimReady();
      expect(getEscrow(sellerW.session, offer.id).status).toBe('claimed');
      await node.chain.mine(1);
    });
  });

  describe('a claim that does not confirm', () => {
    test('made at the relay minimum and lost from the mempool: broadcast again, bumped by CPFP from its own output after 2 blocks, and both confirm', async () => {
      // A seller of its own, so that this server sees only this escrow.
      const sb = await testWallet(path.join(tmp.dir, 'seller-bump'));
      const { offer, ciphertext } = await createOffer(ctxOf(sb), offerOptions());
      const r = await acceptOffer(bctx, offer, ciphertext, ACCEPT);
      await takeAcceptance(ctxOf(sb), r.acceptance, MARGIN);
      await node.chain.mine(1);

      const chain = lossy();
      const own: string[] = [];
      const server = new EscrowServer(ctxOf(sb, chain.chain), { feeRate: FeeRate.ofSatPerVb(1n), margin: MARGIN, bumpAfter: 2, log: (m) => own.push(m) });
      chain.drop = true;
      await server.claimReady();
      const claimTxid = recordIn(getEscrow(sb.session, offer.id), 'seller', 'claimed').claimTxid;
      expect(own).toEqual([`escrow ${offer.id}: claimed ${PRICE} sats in ${claimTxid}`]);
      expect(await node.chain.getTransaction(claimTxid)).toBeNull();
      await node.chain.mine(2); // blocks the claim missed
      chain.drop = false;

      await server.claimReady(); // out again: the same claim
      expect(own[1]).toBe(`escrow ${offer.id}: the claim ${claimTxid} had left the mempool; broadcast again`);
      const claim = (await node.chain.getTransaction(claimTxid))!;
      expect(claim.confirmations).toBe(0);
      const claimFee = PRICE - claim.outputs[0]!.value;
      expect(claimFee / vsize(claim.hex)).toBe(1n); // the relay minimum, below the node's estimate
      expect((await node.chain.estimateFeeRate(2))!.compare(FeeRate.ofSatPerVb(1n))).toBeGreaterThan(0);

      await server.claimReady(); // it has waited 2 blocks: bumped
      expect(own).toHaveLength(3);
      const m = own[2]!.match(new RegExp(`^escrow ${offer.id}: the claim ${claimTxid} waited 2 blocks; bumped to ([0-9.]+) sat/vB by ([0-9a-f]{64})$`));
      expect(m).not.toBeNull();
      const [rate, childTxid] = [FeeRate.parse(m![1]!), m![2]!];
      expect(rate.compare(FeeRate.ofSatPerVb(1n))).toBeGreaterThan(0);
      const child = (await node.chain.getTransaction(childTxid))!;
      expect(child.inputs.map((i) => `${i.txid}:${i.vout}`)).toEqual([`${claimTxid}:0`]); // the claim's own output, nothing else
      const childFee = claim.outputs[0]!.value - child.outputs.reduce((s, o) => s + o.value, 0n);
      expect(FeeRate.paidBy(claimFee + childFee, vsize(claim.hex) + vsize(child.hex)).compare(rate)).toBeGreaterThanOrEqual(0);
      await server.claimReady(); // not again at the same height
      expect(own).toHaveLength(3);

      // A second bump replaces the first (BIP125): the node keeps only the newer child.
      const pending = await seller.pendingClaim(ctxOf(sb), getEscrow(sb.session, offer.id), claimTxid);
      expect(pending.child?.txid).toBe(childTxid);
      expect(pending.feeRate.compare(rate)).toBeGreaterThanOrEqual(0);
      const again = await seller.bumpClaim(ctxOf(sb), pending, FeeRate.ofSatPerKvb(2n * rate.satPerKvb));
      expect(again.replaced).toBe(childTxid);
      expect(await node.chain.getTransaction(childTxid)).toBeNull();

      const before = (await walletBalance(node.chain, sb.networkDir, 'regtest'));
      await node.chain.mine(1);
      expect((await node.chain.getTransaction(claimTxid))!.confirmations).toBe(1);
      expect((await node.chain.getTransaction(again.txid))!.confirmations).toBe(1);
      await server.claimReady();
      expect(own).toHaveLength(3);
      expect(getEscrow(sb.session, offer.id)).toMatchObject({ status: 'claimed', claimTxid });
      const after = await walletBalance(node.chain, sb.networkDir, 'regtest');
      expect(after.confirmed).toBe(before.unconfirmed);
      expect(after.confirmed).toBe(PRICE - claimFee - again.fee);
      // The buyer reads K from the claim as ever.
      expect((await recoverItem(bctx, offer.id, path.join(tmp.dir, 'bumped.raw'))).claimTxid).toBe(claimTxid);
    });

    test('a claim lost near the timeout is made again all the same (K is out), and within the margin bumped at once, whatever bumpAfter says; it confirms before the refund is valid', async () => {
      const sc = await testWallet(path.join(tmp.dir, 'seller-late'));
      const { offer, ciphertext } = await createOffer(ctxOf(sc), offerOptions());
      const r = await acceptOffer(bctx, offer, ciphertext, { ...ACCEPT, timeoutBlocks: 20 });
      await takeAcceptance(ctxOf(sc), r.acceptance, MARGIN);
      await node.chain.mine(1);

      const chain = lossy();
      const own: string[] = [];
      const server = new EscrowServer(ctxOf(sc, chain.chain), { feeRate: FeeRate.ofSatPerVb(2n), margin: MARGIN, bumpAfter: 100, log: (m) => own.push(m) });
      chain.drop = true;
      await server.claimReady();
      const claimTxid = recordIn(getEscrow(sc.session, offer.id), 'seller', 'claimed').claimTxid;
      expect(own).toEqual([`escrow ${offer.id}: claimed ${PRICE} sats in ${claimTxid}`]);
      // The node lost the claim, and the tip is now within the margin of the timeout.
      const timeout = r.acceptance.timeout;
      await node.chain.mine(timeout - MARGIN + 1 - (await node.chain.tipHeight()));
      chain.drop = false;

      await server.claimReady();
      expect(own[1]).toBe(`escrow ${offer.id}: the claim ${claimTxid} had left the mempool; broadcast again`);
      await server.claimReady();
      expect(own[2]).toMatch(new RegExp(`^escrow ${offer.id}: the claim ${claimTxid} waited \\d+ blocks; bumped to [0-9.]+ sat/vB by [0-9a-f]{64}$`));
      await node.chain.mine(1);
      expect(await node.chain.tipHeight()).toBeLessThan(timeout);
      expect((await node.chain.getTransaction(claimTxid))!.confirmations).toBe(1);
    });
  });
});
