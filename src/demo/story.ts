/**
 * The demo's story, told through the library API as any program would: a fresh regtest
 * btcd and a software TPM in a temporary folder; a seller and a buyer wallet. The seller
 * seals its keystore to the TPM and serves its offers (`escrow serve`). The buyer enrolls
 * the seller's TPM through that server (its EK certificate checked against the demo swtpm's
 * local CA, the AK bound to that EK by credential activation, the AK recorded in the
 * buyer's trust store), then accepts the seller's attested offer online: a quote over the
 * buyer's own nonce, by that enrolled AK, with the PCR values it expects. The buyer funds
 * the escrow, the seller claims, the buyer recovers the item and checks it. Then the buyer
 * opens a channel to the seller's `channel serve`, pays it 100,000 micropayments, and the
 * seller closes. Each step reports through `onStep`; nothing here prints.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SwarmpayError } from '../errors.js';
import { parseCaBundle } from '../tpm/ek-certificate.js';
import { RegtestNode } from '../api/node.js';
import { FeeRate } from '../bitcoin/fee-rate.js';
import { Swarmpay } from '../api/swarmpay.js';
import type { Server } from '../api/server.js';

export interface DemoResult {
  network: 'regtest';
  workDir: string | null;
  node: { impl: 'btcd'; height: number };
  funding: { txid: string; sats: bigint };
  escrow: { offer_id: string; price_sats: bigint; funding_txid: string; funding_fee: bigint; claim_txid: string; claim_fee: bigint; attested: boolean; ak_name: string; ak_enrolled: boolean; ek_issuer: string; tpm_ca: string; item_matches: boolean };
  channel: { channel_id: string; funding_txid: string; funding_fee: bigint; payments: number; paid_sats: bigint; close_txid: string; close_fee: bigint; payments_per_sec: number };
  balances: { buyer_sats: bigint; seller_sats: bigint };
  seconds: number;
}

export interface DemoOptions {
  keep: boolean;
  onStep: (msg: string) => void;
}

export const DEMO_FUNDING = 100_000_000n;
export const DEMO_PRICE = 250_000n;
const DEMO_CAPACITY = 2_000_000n;
export const DEMO_PAYMENTS = 100_000;
export const DEMO_PAYMENT_SATS = 10n;
const FEE_RATE = FeeRate.ofSatPerVb(2n);
/** The PCRs the seller's quote covers and the buyer checks: the PC Client boot chain. */
const QUOTE_PCRS = [0, 1, 2, 3, 4, 5, 6, 7];

/** The seller's servers never claim by themselves here: the story claims as a step of its own. */
const NO_TICK_MS = 24 * 3600 * 1000;

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const work = mkdtempSync(path.join(tmpdir(), 'swarmpay-demo-'));
  const dirs = { buyer: path.join(work, 'buyer'), seller: path.join(work, 'seller') };
  // The node and the software TPM run for the seller's datadir: its TPM is the device's own.
  const node = new RegtestNode({ datadir: dirs.seller });
  const passphrase = { buyer: `buyer ${randomBytes(16).toString('hex')}`, seller: `seller ${randomBytes(16).toString('hex')}` };
  const servers: Server[] = [];
  const closers: (() => Promise<void>)[] = [() => node.close()];
  try {
    opts.onStep(`starting a fresh regtest btcd and a software TPM in ${work}`);
    const up = await node.start();
    if (up.tpm === null) throw new SwarmpayError('TPM_UNAVAILABLE', `the demo needs a software TPM: ${up.tpmUnavailable?.message ?? 'swtpm did not start'}`, { hint: up.tpmUnavailable?.hint ?? 'install swtpm and swtpm-tools (npm run setup)' });
    if (up.tpm.ekCa === null) throw new SwarmpayError('TPM_UNAVAILABLE', 'the demo\'s software TPM was made without an EK certificate, so the buyer cannot enroll it', { hint: 'swtpm_setup and swtpm_localca (package swtpm-tools) make one; see `swarmpay node start`' });
    const ekCa = up.tpm.ekCa;
    opts.onStep(`node up at height ${up.height} (segwit active); swtpm on 127.0.0.1:${up.tpm.port}`);
    const seller = new Swarmpay({ datadir: dirs.seller });
    const buyer = new Swarmpay({ datadir: dirs.buyer, ...node.options(), tpm: 'none' });
    closers.push(() => seller.close(), () => buyer.close());
    for (const [who, sp] of [['buyer', buyer], ['seller', seller]] as const) {
      const w = sp.createWallet({ passphrase: passphrase[who] });
      opts.onStep(`${who} wallet created: ${w.fingerprint} ${w.path}`);
    }
    const sealed = await seller.tpm.provision({ passphrase: passphrase.seller });
    opts.onStep(`seller keystore sealed by the TPM; anti-rollback counter ${sealed.counterIndex}`);
    const [sellerWallet, buyerWallet] = [await seller.unlock(), await buyer.unlock({ passphrase: passphrase.buyer })];

    const funding = await node.fund((await buyer.address()).address, DEMO_FUNDING);
    await node.mine(1);
    opts.onStep(`faucet paid the buyer ${DEMO_FUNDING} sats: ${funding.txid}`);

    // --- the seller's TPM identity, enrolled by the buyer ---
    // The seller's `escrow serve` answers enrollment; the buyer trusts the demo swtpm's local
    // CA, as it would a TPM manufacturer's.
    const market = await sellerWallet.escrow.serve({ listen: { tcp: '127.0.0.1:0' }, pollMs: NO_TICK_MS });
    servers.push(market);
    const sellerAt = { peer: `127.0.0.1:${market.port}`, peerKey: market.peerKey };
    const enrolled = await buyer.tpm.enroll(sellerAt.peer, parseCaBundle(readFileSync(ekCa, 'utf8'), ekCa), { peerKey: sellerAt.peerKey, label: 'demo seller' });
    const idn = enrolled.identity;
    opts.onStep(`seller's TPM showed its EK certificate (${idn.ek.kind}, by "${idn.ek.issuer}") and its AK ${idn.akName.slice(0, 16)}…`);
    opts.onStep(`buyer checked the EK certificate chains to the demo swtpm's local CA "${idn.ca.subject}" (${ekCa}), the CA it trusts`);
    opts.onStep("credential activation: the buyer sealed a secret to that EK and the AK's name; the seller's TPM recovered it, so the AK lives in the certified TPM");
    opts.onStep(`buyer recorded AK ${idn.akName.slice(0, 16)}… ("${idn.label}") in its trust store`);

    // --- fair exchange ---
    const item = Buffer.from(`swarmpay demo item: sensor calibration table ${randomBytes(8).toString('hex')}\n`.repeat(64));
    const offered = await sellerWallet.escrow.offer({ name: 'calibration.txt', item, price: DEMO_PRICE, timeout: { min: 144, max: 4032 }, confirmations: 1, expiresIn: 3600, attest: { pcrs: QUOTE_PCRS } });
    const id = offered.id;
    opts.onStep(`seller offered calibration.txt (${item.length} bytes) for ${DEMO_PRICE} sats: offer ${id}, H ${offered.hash.slice(0, 16)}…, quoted by its TPM`);

    // The buyer's golden values: what the seller's device is expected to have booted into.
    const golden = await seller.tpm.pcrValues(QUOTE_PCRS);
    // Online, as `escrow accept --peer --enrolled --expect-pcrs`: the buyer sends a fresh nonce and the seller's
    // TPM quotes the offer's PCRs again over H(offer digest || nonce); only the enrolled AK will do.
    const accepted = await buyerWallet.escrow.accept({ ...sellerAt, id }, { enrolled: true, expectPcrs: golden, maxPrice: DEMO_PRICE, feeRate: FEE_RATE });
    if (accepted.vouchedBy === null || accepted.akName === null || accepted.fee === null) throw new SwarmpayError('INTERNAL', 'the demo accepted an attestation by an AK that is not enrolled');
    opts.onStep(`buyer verified the seller's quote: signed by the enrolled AK ${accepted.akName.slice(0, 16)}… ("${accepted.vouchedBy.label}"), over the buyer's own nonce (H(offer digest || nonce)), PCRs 0-7 as expected`);
    opts.onStep(`buyer funded the escrow: ${accepted.fundingTxid}`);
    await node.mine(1);
    const claimed = await sellerWallet.escrow.claim(id, { feeRate: FEE_RATE });
    if (claimed.role !== 'seller' || claimed.fee === null) throw new SwarmpayError('INTERNAL', `the seller's claim of ${id} was made before`);
    await node.mine(1);
    opts.onStep(`seller claimed ${DEMO_PRICE} sats, revealing K: ${claimed.claimTxid}`);
    const recovered = await buyerWallet.escrow.claim(id, { out: path.join(work, 'buyer', 'calibration.txt') });
    const itemMatches = recovered.role === 'buyer' && recovered.itemMatches;
    opts.onStep(`buyer read K from the claim, decrypted the item and checked its SHA-256: ${itemMatches ? 'it matches the offer' : 'MISMATCH'}`);

    // --- micropayments ---
    const payee = await sellerWallet.channels.serve({ listen: { tcp: '127.0.0.1:0' }, pollMs: NO_TICK_MS });
    servers.push(payee);
    const opened = await buyerWallet.channels.open({ peer: `127.0.0.1:${payee.port}`, peerKey: payee.peerKey, capacity: DEMO_CAPACITY, expiryBlocks: 144, feeRate: FEE_RATE });
    await node.mine(1);
    opts.onStep(`buyer opened a ${DEMO_CAPACITY} sat channel to the seller over TCP: ${opened.fundingTxid}, confirmed`);
    const paid = await buyerWallet.channels.pay(opened.id, DEMO_PAYMENT_SATS, { count: DEMO_PAYMENTS });
    opts.onStep(`buyer paid ${paid.acked} micropayments of ${DEMO_PAYMENT_SATS} sats, each acknowledged once a signed state covering it was verified and stored: ${paid.payments_per_sec} payments/s`);
    const closed = await sellerWallet.channels.close(opened.id);
    await node.mine(1);
    opts.onStep(`seller closed the channel on the newest state: ${closed.closeTxid}, confirmed`);

    const [b, s] = await Promise.all([buyer.balance(), seller.balance()]);
    return {
      network: 'regtest',
      workDir: opts.keep ? work : null,
      node: { impl: 'btcd', height: (await node.status()).height ?? 0 },
      funding: { txid: funding.txid, sats: DEMO_FUNDING },
      escrow: { offer_id: id, price_sats: DEMO_PRICE, funding_txid: accepted.fundingTxid, funding_fee: accepted.fee, claim_txid: claimed.claimTxid, claim_fee: claimed.fee, attested: true, ak_name: accepted.akName, ak_enrolled: true, ek_issuer: accepted.vouchedBy.ek.issuer, tpm_ca: accepted.vouchedBy.ca.subject, item_matches: itemMatches },
      channel: { channel_id: opened.id, funding_txid: opened.fundingTxid, funding_fee: opened.fundingFee, payments: paid.acked, paid_sats: paid.sats, close_txid: closed.closeTxid, close_fee: opened.closeFee, payments_per_sec: paid.payments_per_sec },
      balances: { buyer_sats: b.confirmed, seller_sats: s.confirmed },
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const server of servers) await server.stop();
    if (!opts.keep) await node.stop();
    for (const close of closers) await close();
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
  }
}
