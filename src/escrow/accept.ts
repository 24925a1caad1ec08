/**
 * The buyer's accept, whole: the offer (from files, or fetched from the seller with a quote
 * for the buyer's nonce), the buyer's checks, what the buyer is warned about and asked,
 * the funding (acceptOffer), the acceptance written for the seller, and online its handing
 * over. What is said about an accepted escrow comes back as the object `escrow accept
 * --json` prints.
 */
import { SwarmpayError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { PeerLink } from '../peer/link.js';
import { acceptOffer, type AcceptOptions, type AcceptSummary } from './buyer.js';
import { escrowConversation } from './messages.js';
import type { Offer, OfferAttestation } from './offer.js';
import { fetchOffer, sendAcceptance } from './online.js';
import { writeEscrowFile } from './store.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

/** What the buyer is warned about: each is said once, before anything is paid when it can be. */
export type AcceptWarning =
  /** The offer is attested, but the seller made no quote for this buyer's nonce: accepted as not attested. */
  | 'no-fresh-quote'
  /** The seller's link key was not pinned: whoever answered is taken to be the seller. */
  | 'key-learned'
  /** The attestation is the offer's own quote, which anyone holding the offer can replay. */
  | 'replayable-quote'
  /** Nobody (an enrollment, a pinned AK) vouches for the key that attested the offer. */
  | 'unvouched-ak';

/** What the buyer is asked to agree to: the summary, and the seller's link key if it was learned on first use. */
export interface AcceptConsent extends AcceptSummary {
  learnedKey: string | null;
}

/** Where the offer comes from: in hand (a file's), or a seller's `escrow serve`. */
export type OfferSource =
  | { kind: 'offer'; offer: Offer; ciphertext: Uint8Array }
  | {
      kind: 'peer';
      connect: () => Promise<PeerLink>;
      /** The offer's id; null for the seller's only open one. */
      id: string | null;
      /** The seller's link key was given beforehand (refused if another answers). */
      pinned: boolean;
      /** Reached through a command (`--peer-cmd`): its server ends with this link, before the funding confirms. */
      viaCommand: boolean;
    };

export interface AcceptFlowOptions {
  checks: AcceptOptions['checks'];
  timeoutBlocks?: number;
  feeRate: FeeRate;
  /** Asked once the funding is built, before anything is stored or paid; false cancels. */
  confirm?: (s: AcceptConsent) => Promise<boolean>;
  warn: (message: string, kind: AcceptWarning) => void;
  /** Also write the acceptance to this file, for the seller. */
  out?: string;
}

/** An accepted escrow, as `escrow accept --json` prints it. */
export interface AcceptedEscrow {
  id: string;
  fundingTxid: string;
  /** Null when it was accepted before (the stored funding broadcast again, nothing paid twice). */
  fee: bigint | null;
  price: bigint;
  timeout: number;
  /** The acceptance file for the seller. */
  acceptance: string;
  attested: boolean;
  akName: string | null;
  akPinned: boolean | null;
  akVouched: boolean | null;
  vouchedBy: OfferAttestation['vouchedBy'] | null;
  quoteFresh: boolean | null;
  pcrs: OfferAttestation['pcrs'] | null;
  /** Online: the seller took the acceptance. */
  sellerTook: boolean;
  sellerKeyLearned: boolean;
  /** Over a command, whose server ends with this link: what the seller must run to claim. */
  sellerMustRun: string | null;
}

export async function acceptEscrow(ctx: ContractContext, source: OfferSource, o: AcceptFlowOptions): Promise<AcceptedEscrow> {
  if (source.kind === 'offer') return accept(ctx, source.offer, source.ciphertext, null, o);
  const link = await source.connect();
  try {
    const conv = escrowConversation(link);
    const { offer, ciphertext, nonce, quote } = await fetchOffer(conv, source.id);
    const checks = { ...o.checks, fresh: { nonce, quote } };
    // A buyer who requires attestation is refused by checkOffer; any other is told.
    if (offer.attestation !== undefined && quote === null && !checks.requireAttestation) {
      o.warn(`offer ${offer.id} is attested, but the seller sent no fresh quote for your nonce (its \`escrow serve\` has no TPM at hand): it is accepted as not attested`, 'no-fresh-quote');
    }
    const learned = source.pinned ? null : link.remoteKey.toString('hex');
    if (learned !== null) o.warn(`the seller's link key ${learned} was learned on first use: nothing proves this is the seller you meant; pass --peer-key to pin it`, 'key-learned');
    return await accept(ctx, offer, ciphertext, { learned, viaCommand: source.viaCommand, hand: (a) => sendAcceptance(conv, a) }, { ...o, checks });
  } finally {
    await link.close();
  }
}

interface Online {
  learned: string | null;
  viaCommand: boolean;
  hand: (a: Parameters<typeof sendAcceptance>[1]) => Promise<void>;
}

async function accept(ctx: ContractContext, offer: Offer, ciphertext: Uint8Array, online: Online | null, o: AcceptFlowOptions): Promise<AcceptedEscrow> {
  let warned = false;
  const warnAttestation = (a: OfferAttestation | null) => {
    if (a === null || warned) return;
    warned = true;
    if (!a.fresh) o.warn(REPLAYABLE, 'replayable-quote');
    if (!a.akVouched) o.warn(`nobody vouches for the TPM key ${a.akName} that attested this offer: it is neither enrolled (\`swarmpay tpm enroll\`) nor pinned with --ak, so the quote does not show which device made the offer; --require-attestation refuses such an offer`, 'unvouched-ak');
  };
  const learned = online?.learned ?? null;
  const ao: AcceptOptions = {
    checks: o.checks,
    feeRate: o.feeRate,
    ...(o.timeoutBlocks === undefined ? {} : { timeoutBlocks: o.timeoutBlocks }),
    // Before anything is paid: the warnings, then the question.
    confirm: async (s) => {
      warnAttestation(s.attestation);
      return o.confirm === undefined || o.confirm({ ...s, learnedKey: learned });
    },
  };
  const r = await acceptOffer(ctx, offer, ciphertext, ao);
  warnAttestation(r.attestation); // accepted before: no question was asked
  const text = JSON.stringify(r.acceptance, null, 2) + '\n';
  const stored = writeEscrowFile(ctx.networkDir, `${r.rec.id}.acceptance.json`, text);
  if (o.out !== undefined) writeFileAtomic(o.out, text, 0o644);
  const file = o.out ?? stored;
  if (online !== null) {
    try {
      await online.hand(r.acceptance);
    } catch (e) {
      // The coins are in the contract already: say how the seller can still learn of it.
      if (!(e instanceof SwarmpayError)) throw e;
      throw new SwarmpayError(e.code, `escrow ${r.rec.id} is funded (${r.acceptance.funding.txid}), but the seller did not take the acceptance: ${e.message}`, {
        hint: `run the same command again (it does not pay twice), or give the seller ${file}; from height ${r.acceptance.timeout} on, \`escrow refund\` takes the coins back`,
        cause: e,
      });
    }
  }
  const a = r.attestation;
  return {
    id: r.rec.id,
    fundingTxid: r.acceptance.funding.txid,
    fee: r.fee,
    price: BigInt(r.rec.offer.price),
    timeout: r.acceptance.timeout,
    acceptance: file,
    attested: a !== null,
    akName: a?.akName ?? null,
    akPinned: a?.akPinned ?? null,
    akVouched: a?.akVouched ?? null,
    vouchedBy: a?.vouchedBy ?? null,
    quoteFresh: a?.fresh ?? null,
    pcrs: a?.pcrs ?? null,
    sellerTook: online !== null,
    sellerKeyLearned: learned !== null,
    // Over a command the seller's `escrow serve --stdio` ends with this link, before the funding confirms: it claims only if told to.
    sellerMustRun: online?.viaCommand ? `swarmpay escrow claim ${r.rec.id}` : null,
  };
}

/** Said whenever an attested offer is accepted on the offer's own quote (from a file): it proves less than a fresh one. */
const REPLAYABLE = 'the TPM quote of offer files is the one made with the offer (its nonce is the offer digest): anyone holding the offer can replay it, so it shows the device\'s state when the offer was made, not now; accept online (--peer/--peer-cmd) for a quote made for your nonce';
