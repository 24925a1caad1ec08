/**
 * The demo's story on embedded defaults: a fresh regtest btcd and a software TPM in a
 * temporary folder; a seller and a buyer wallet. The seller seals its keystore to the TPM
 * and makes an attested offer of a file. The buyer first enrolls the seller's TPM over a
 * peer link (its EK certificate checked against the demo swtpm's local CA, the AK bound to
 * that EK by credential activation, the AK recorded in the buyer's trust store), then
 * verifies the offer's quote by that enrolled AK against the seller's PCR values, funds
 * the escrow, the seller claims, the buyer recovers the item and checks it. Then the buyer opens a channel to the seller over TCP, pays it 1,000
 * micropayments, and the seller closes. Every step is the real code on the real node and
 * TPM; each reports through `onStep`, nothing here prints.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { embeddedRpc, startNode, stopNode, nodeDir } from '../chain/embedded-node.js';
import type { RpcClient } from '../chain/rpc-client.js';
import { BtcdChain } from '../chain/rpc-chain.js';
import { keystorePath, passphraseUnlocker, provisionTpm, type Unlocker } from '../keystore/keystore.js';
import { Tpm } from '../tpm/tpm.js';
import { startSwtpm, stopSwtpm, swtpmDir } from '../tpm/swtpm-process.js';
import { attest } from '../tpm/attestation.js';
import { parseCaBundle } from '../tpm/ek-certificate.js';
import { answerEnrollment, enrollPeer } from '../tpm/enroll.js';
import { listIdentities } from '../tpm/trust-store.js';
import { SwarmpayError } from '../errors.js';
import { FAUCET_ADDRESS, faucetPay } from '../wallet/faucet.js';
import { newMnemonic } from '../wallet/mnemonic.js';
import { createWallet, receiveAddress, walletBalance } from '../wallet/wallet.js';
import { openContracts, type ContractContext } from '../wallet/contract-wallet.js';
import { createOffer, claimEscrow, takeAcceptance, DEFAULT_CLAIM_MARGIN } from '../escrow/seller.js';
import { acceptOffer, recoverItem } from '../escrow/buyer.js';
import { freshNonce, offerDigest } from '../escrow/offer.js';
import { Payee, DEFAULT_POLICY } from '../channel/payee.js';
import { PayerSession, openChannel } from '../channel/payer.js';
import { generateStaticKey } from '../peer/keys.js';
import { connectTcp, listenTcp } from '../peer/transports.js';

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
export const DEMO_CAPACITY = 2_000_000n;
export const DEMO_PAYMENTS = 100_000;
export const DEMO_PAYMENT_SATS = 10n;
const FEE_RATE = 2n;
/** The PCRs the seller's quote covers and the buyer checks: the PC Client boot chain. */
const QUOTE_PCRS = [0, 1, 2, 3, 4, 5, 6, 7];

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const work = mkdtempSync(path.join(tmpdir(), 'swarmpay-demo-'));
  const dirs = { buyer: path.join(work, 'buyer', 'regtest'), seller: path.join(work, 'seller', 'regtest') };
  const node = nodeDir(dirs.buyer);
  const tpmDir = swtpmDir(dirs.seller);
  let rpc: RpcClient | undefined;
  let tpm: Tpm | undefined;
  const closers: (() => Promise<void>)[] = [];
  try {
    opts.onStep(`starting a fresh regtest btcd and a software TPM in ${work}`);
    const [{ height }, { state: tpmState }] = await Promise.all([startNode(node, 'btcd', FAUCET_ADDRESS), startSwtpm(tpmDir)]);
    rpc = embeddedRpc(node).client;
    const chain = new BtcdChain('regtest', rpc);
    opts.onStep(`node up at height ${height} (segwit active); swtpm on 127.0.0.1:${tpmState.port}`);
    if (tpmState.ekCa === null) throw new SwarmpayError('TPM_UNAVAILABLE', 'the demo\'s software TPM was made without an EK certificate, so the buyer cannot enroll it', { hint: 'swtpm_setup and swtpm_localca (package swtpm-tools) make one; see `swarmpay node start`' });
    const ekCa = tpmState.ekCa;

    // Demo wallets live for one run; their passphrases are random and never leave memory.
    const pass = { buyer: randomBytes(16).toString('hex'), seller: randomBytes(16).toString('hex') };
    for (const who of ['buyer', 'seller'] as const) {
      const pub = createWallet(dirs[who], 'regtest', pass[who], newMnemonic());
      opts.onStep(`${who} wallet created: ${pub.fingerprint} ${pub.path}`);
    }
    tpm = await Tpm.open({ kind: 'swtpm', host: tpmState.host, port: tpmState.port });
    const sellerTpm = tpm;
    const sellerUnlocker: Unlocker = { passphrase: async () => pass.seller, tpm: async () => sellerTpm };
    const provisioned = await provisionTpm(keystorePath(dirs.seller), 'regtest', sellerUnlocker, [], false);
    const protector = provisioned.header.protector;
    opts.onStep(`seller keystore sealed by the TPM; anti-rollback counter ${protector.type === 'tpm' ? `0x${protector.counterIndex.toString(16)}` : '?'}`);

    const unlock = (who: 'buyer' | 'seller'): Promise<ContractContext> => openContracts(dirs[who], 'regtest', who === 'seller' ? sellerUnlocker : passphraseUnlocker(pass.buyer), chain);
    const [buyer, seller] = [await unlock('buyer'), await unlock('seller')];

    const funding = await faucetPay(chain, (await receiveAddress(chain, dirs.buyer, 'regtest')).address, DEMO_FUNDING);
    await chain.mine(1);
    opts.onStep(`faucet paid the buyer ${DEMO_FUNDING} sats: ${funding.txid}`);

    // --- the seller's TPM identity, enrolled by the buyer ---
    // The seller answers enrollment on a link of its own (as `escrow serve` does); the buyer
    // trusts the demo swtpm's local CA, as it would a TPM manufacturer's.
    const enrolment = await listenTcp('127.0.0.1', 0, seller.wallet.peerKey, (l) => {
      closers.push(() => l.close());
      void (async () => {
        try {
          for await (const m of l.messages()) await answerEnrollment(sellerTpm, l, m);
        } catch {
          /* the buyer went away */
        }
      })();
    });
    closers.push(() => enrolment.close());
    const cas = parseCaBundle(readFileSync(ekCa, 'utf8'), ekCa);
    const enrolLink = await connectTcp('127.0.0.1', enrolment.port, generateStaticKey(), { peerKey: seller.wallet.peerKey.publicKey });
    let enrolled;
    try {
      enrolled = await enrollPeer(enrolLink, cas, { networkDir: dirs.buyer, label: 'demo seller' });
    } finally {
      await enrolLink.close();
      await enrolment.close();
    }
    const idn = enrolled.identity;
    opts.onStep(`seller's TPM showed its EK certificate (${idn.ek.kind}, by "${idn.ek.issuer}") and its AK ${idn.akName.slice(0, 16)}…`);
    opts.onStep(`buyer checked the EK certificate chains to the demo swtpm's local CA "${idn.ca.subject}" (${ekCa}), the CA it trusts`);
    opts.onStep("credential activation: the buyer sealed a secret to that EK and the AK's name; the seller's TPM recovered it, so the AK lives in the certified TPM");
    opts.onStep(`buyer recorded AK ${idn.akName.slice(0, 16)}… ("${idn.label}") in its trust store`);

    // --- fair exchange ---
    const item = Buffer.from(`swarmpay demo item: sensor calibration table ${randomBytes(8).toString('hex')}\n`.repeat(64));
    const offered = await createOffer(seller, {
      name: 'calibration.txt', item, price: DEMO_PRICE, timeout: { min: 144, max: 4032 }, confirmations: 1, expiresIn: 3600,
      attest: (nonce) => attest(sellerTpm, nonce, QUOTE_PCRS),
    });
    const id = offered.offer.id;
    opts.onStep(`seller offered ${offered.offer.item.name} (${item.length} bytes) for ${DEMO_PRICE} sats: offer ${id}, H ${offered.offer.hash.slice(0, 16)}…, quoted by its TPM`);

    // The buyer's golden values: what the seller's device is expected to have booted into.
    const golden = Object.fromEntries([...(await sellerTpm.pcrRead(QUOTE_PCRS))].map(([p, v]) => [String(p), v.toString('hex')]));
    // As online (`escrow accept --peer`): the buyer's fresh nonce, and the seller's TPM quotes the offer's PCRs
    // again over H(offer digest || that nonce), so the quote the buyer checks was made for it, not replayed.
    const buyerNonce = randomBytes(32);
    const quote = await attest(sellerTpm, freshNonce(offerDigest(offered.offer), buyerNonce), QUOTE_PCRS);
    // The enrolled AK is required (`escrow accept --enrolled --expect-pcrs`): a quote by any other key is refused.
    const accepted = await acceptOffer(buyer, offered.offer, offered.ciphertext, {
      checks: { requireAttestation: true, requireEnrolled: true, enrolled: listIdentities(dirs.buyer), expectPcrs: golden, maxPrice: DEMO_PRICE, fresh: { nonce: buyerNonce, quote } },
      feeRate: FEE_RATE,
    });
    const att = accepted.attestation!;
    if (att.vouchedBy === null) throw new SwarmpayError('INTERNAL', 'the demo accepted an attestation by an AK that is not enrolled');
    opts.onStep(`buyer verified the seller's quote: signed by the enrolled AK ${att.akName.slice(0, 16)}… ("${att.vouchedBy.label}"), over the buyer's own nonce (H(offer digest || nonce)), PCRs 0-7 as expected`);
    opts.onStep(`buyer funded the escrow: ${accepted.acceptance.funding.txid}`);
    await takeAcceptance(seller, accepted.acceptance);
    await chain.mine(1);
    const claimed = await claimEscrow(seller, id, { feeRate: FEE_RATE, margin: DEFAULT_CLAIM_MARGIN, force: false });
    await chain.mine(1);
    opts.onStep(`seller claimed ${DEMO_PRICE} sats, revealing K: ${claimed.txid}`);
    const recovered = await recoverItem(buyer, id, path.join(work, 'buyer', 'calibration.txt'));
    const itemMatches = recovered.sha256 === offered.offer.item.sha256;
    opts.onStep(`buyer read K from the claim, decrypted the item and checked its SHA-256: ${itemMatches ? 'it matches the offer' : 'MISMATCH'}`);

    // --- micropayments ---
    const payee = new Payee({ ...seller, policy: DEFAULT_POLICY, log: () => {} });
    const server = await listenTcp('127.0.0.1', 0, seller.wallet.peerKey, (link) => void payee.serve(link));
    closers.push(async () => {
      await server.close();
      await payee.shutdown();
    });
    const peer = { kind: 'tcp' as const, host: '127.0.0.1', port: server.port };
    const connect = () => connectTcp('127.0.0.1', server.port, buyer.wallet.peerKey, { peerKey: seller.wallet.peerKey.publicKey });
    let link = await connect();
    const opened = await openChannel(buyer, link, peer, { capacity: DEMO_CAPACITY, expiryBlocks: 144, feeRate: FEE_RATE });
    await link.close();
    await chain.mine(1);
    opts.onStep(`buyer opened a ${DEMO_CAPACITY} sat channel to the seller over TCP: ${opened.fundingTxid}, confirmed`);
    link = await connect();
    const session = await PayerSession.start(buyer, link, opened.rec.id);
    const paid = await session.pay(Array.from({ length: DEMO_PAYMENTS }, () => ({ sats: DEMO_PAYMENT_SATS, pid: null })));
    await session.disconnect();
    if (paid.error !== undefined) throw paid.error;
    const perSec = Math.round(DEMO_PAYMENTS / paid.seconds);
    opts.onStep(`buyer paid ${DEMO_PAYMENTS} micropayments of ${DEMO_PAYMENT_SATS} sats, each acknowledged once a signed state covering it was verified and stored: ${perSec} payments/s`);
    const closeTxid = await payee.closeChannel(opened.rec.id);
    await chain.mine(1);
    await chain.waitForConfirmations(closeTxid, 1, { pollMs: 100, timeoutMs: 30_000 });
    opts.onStep(`seller closed the channel on the newest state: ${closeTxid}, confirmed`);

    const [b, s] = await Promise.all([walletBalance(chain, dirs.buyer, 'regtest'), walletBalance(chain, dirs.seller, 'regtest')]);
    return {
      network: 'regtest',
      workDir: opts.keep ? work : null,
      node: { impl: 'btcd', height: await chain.tipHeight() },
      funding: { txid: funding.txid, sats: DEMO_FUNDING },
      escrow: { offer_id: id, price_sats: DEMO_PRICE, funding_txid: accepted.acceptance.funding.txid, funding_fee: accepted.fee!, claim_txid: claimed.txid, claim_fee: claimed.fee!, attested: true, ak_name: att.akName, ak_enrolled: true, ek_issuer: att.vouchedBy.ek.issuer, tpm_ca: att.vouchedBy.ca.subject, item_matches: itemMatches },
      channel: { channel_id: opened.rec.id, funding_txid: opened.fundingTxid, funding_fee: opened.fee, payments: paid.ackedCount, paid_sats: paid.acked.cumulative, close_txid: closeTxid, close_fee: BigInt(opened.rec.terms.closeFee), payments_per_sec: perSec },
      balances: { buyer_sats: b.confirmed, seller_sats: s.confirmed },
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const close of closers) await close();
    await tpm?.close();
    rpc?.close();
    if (!opts.keep) {
      await Promise.all([stopNode(node), stopSwtpm(tpmDir)]);
      rmSync(work, { recursive: true, force: true });
    }
  }
}
