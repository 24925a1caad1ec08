/**
 * Payment channels through the library: open one to a payee, pay over it (one payment, a
 * stream, or a batch whose ids are paid at most once), close, bump, refund, and serve as
 * the payee. Results are the objects `channel … --json` prints.
 */
import { SwarmpayError } from '../errors.js';
import { connectPeer, connectorFor, type Connector } from '../peer/connect.js';
import type { LinkOptions } from '../peer/link.js';
import type { ServerLimits } from '../peer/transports.js';
import type { ContractContext } from '../wallet/contract-wallet.js';
import { planBatch, readBatch, repeatPayment, type BatchSource } from '../channel/batch.js';
import { bumpChannel, channelReports, closeChannel, payGroups, resumeOpen, type ChannelReport, type PayEvents, type PayOutcome, type PaySummary } from '../channel/flows.js';
import { DEFAULT_EXPIRY_BLOCKS, openChannel, refundChannel } from '../channel/payer.js';
import { Payee, payeePolicy, type PayeePolicy } from '../channel/payee.js';
import { recoverJournals, type Recovery } from '../channel/recover.js';
import type { PayerRecord } from '../channel/record.js';
import type { Environment } from './environment.js';
import { peerAddress, startServer, type Listen, type PeerLocation, type Server } from './server.js';

export type { BatchSource, ChannelReport, PayEvents, PayeePolicy, Recovery };
export { DEFAULT_POLICY } from '../channel/payee.js';
export { DEFAULT_EXPIRY_BLOCKS, MAX_EXPIRY_BLOCKS, MIN_EXPIRY_BLOCKS } from '../channel/payer.js';
export type { PaySummary, SentPayment, SkippedPayment, SkipReason } from '../channel/flows.js';

/** Waiting for the funding's confirmations (as many as the payee asked for), and hearing each. */
export type FundingWait = boolean | { onProgress: (confirmations: number, wanted: number) => void };

export interface ChannelOpenOptions {
  /** The payee: HOST:PORT of its `channel serve`, or a command that speaks to it on stdin/stdout. */
  peer: PeerLocation;
  /** The payee's static key, hex: any other is refused. */
  peerKey?: string;
  /** Sats locked in the channel. */
  capacity: bigint;
  /** Blocks until the payer may take back what was not paid; DEFAULT_EXPIRY_BLOCKS unless given. */
  expiryBlocks?: number;
  /** The funding's fee rate, sat/vB (the close's is agreed from the node's estimate). */
  feeRate: bigint;
  wait?: FundingWait;
}

/** A channel just opened: its report, and what the funding paid in fees. */
export type OpenReport = ChannelReport & { fundingFee: bigint };

export interface ChannelServeOptions {
  listen: Listen;
  /** The payee's policy; defaults (DEFAULT_POLICY) where a field is not given. */
  policy?: Partial<PayeePolicy>;
  limits?: LinkOptions & ServerLimits;
  /** How often every channel is looked at (closes to make, confirm or bump), ms. */
  pollMs?: number;
  /** One line per event: a channel opened, a close made, a peer refused. */
  log?: (msg: string) => void;
}

export class Channels {
  private readonly connect: Connector;
  /** The payee this wallet serves as, while serve() runs: it holds the payments journal, so a close goes through it. */
  private serving: Payee | null = null;

  constructor(
    readonly ctx: ContractContext,
    readonly env: Environment,
  ) {
    this.connect = connectorFor(ctx.wallet.peerKey);
  }

  /** Opens a channel to a payee, funded from this wallet; with `wait`, returns once the funding has the confirmations the payee asked for. */
  async open(o: ChannelOpenOptions): Promise<OpenReport> {
    const peer = peerAddress(o.peer);
    const link = await connectPeer(peer, this.ctx.wallet.peerKey, o.peerKey);
    let opened: Awaited<ReturnType<typeof openChannel>>;
    try {
      opened = await openChannel(this.ctx, link, peer, { capacity: o.capacity, expiryBlocks: o.expiryBlocks ?? DEFAULT_EXPIRY_BLOCKS, feeRate: o.feeRate });
    } finally {
      await link.close();
    }
    await this.waitForFunding(opened.rec, o.wait);
    return { ...(await this.show(opened.rec.id)), fundingFee: opened.fee };
  }

  /** Finishes an open that was cut short after its funding was signed: broadcasts the funding again and hands the payee its ticket. */
  async resume(id: string, o: { wait?: FundingWait } = {}): Promise<ChannelReport> {
    await this.waitForFunding(await resumeOpen(this.ctx, this.connect, id), o.wait);
    return this.show(id);
  }

  /**
   * Pays `sats` over channel `id`, `count` times (default once), pipelined; resolves when
   * every payment is acknowledged. A run that stops early throws its SwarmpayError with
   * the summary of how far it got in `details.summary` (see {@link stoppedRun}).
   */
  async pay(id: string, sats: bigint, o: { count?: number; events?: PayEvents } = {}): Promise<PaySummary> {
    const count = o.count ?? 1;
    if (!Number.isSafeInteger(count) || count < 1) throw new SwarmpayError('USAGE', `a count of ${count} payments: at least 1`);
    return settled(await payGroups(this.ctx, this.connect, repeatPayment(id, sats, count), o.events));
  }

  /**
   * Pays a batch: JSON lines `{"id", "channel", "sats"}` (strings, or a stream of them such
   * as a file or stdin), read whole and checked before anything is paid. Ids already paid
   * are skipped, so a batch may be run again.
   */
  async payBatch(batch: BatchSource, events: PayEvents = {}): Promise<PaySummary> {
    return settled(await payGroups(this.ctx, this.connect, planBatch(await readBatch(batch)), events));
  }

  /** Closes a channel: as its payee, broadcasts the newest state; as its payer, asks the payee to. */
  async close(id: string, o: { onLog?: (msg: string) => void } = {}): Promise<{ id: string; closeTxid: string }> {
    return { id, closeTxid: await closeChannel(this.ctx, this.connect, id, o.onLog ?? (() => undefined), this.serving) };
  }

  /** Raises the fee of the channel's close (or refund) waiting to confirm to `feeRate` sat/vB, by a child from this wallet (CPFP). */
  async bump(id: string, feeRate: bigint): Promise<{ id: string; bumpTxid: string; feeRate: bigint; fee: bigint }> {
    const b = await bumpChannel(this.ctx, id, feeRate);
    return { id, bumpTxid: b.txid, feeRate: BigInt(b.feeRate), fee: BigInt(b.fee) };
  }

  /** As the payer, once the expiry is reached: takes the whole channel output back. */
  async refund(id: string, feeRate: bigint): Promise<{ id: string; refundTxid: string; fee: bigint }> {
    const r = await refundChannel(this.ctx, id, feeRate);
    return { id, refundTxid: r.txid, fee: r.fee };
  }

  /** Every channel of this datadir, each as the chain shows it now. */
  async list(): Promise<{ channels: ChannelReport[] }> {
    return { channels: await channelReports(this.ctx) };
  }

  /** One channel, as the chain shows it now. */
  async show(id: string): Promise<ChannelReport> {
    const [report] = await channelReports(this.ctx, [id]);
    // channelReports answers each id asked for, or throws CHANNEL_NOT_FOUND.
    if (report === undefined) throw new SwarmpayError('CHANNEL_NOT_FOUND', `no channel ${id} in this datadir`);
    return report;
  }

  /** Checks every channel journal, and rewrites one that is damaged or rolled back from what still verifies (no node needed). */
  recover(): Promise<Recovery> {
    return recoverJournals(this.ctx.session, this.ctx.networkDir);
  }

  /** Serves as the payee until stop(): takes channels and payments, closes before each expiry, sees closes confirm. */
  async serve(o: ChannelServeOptions): Promise<Server> {
    const policy = payeePolicy(o.policy);
    const log = o.log ?? (() => undefined);
    const payee = new Payee({ ...this.ctx, policy, log });
    this.serving = payee;
    const shutdown = async () => {
      this.serving = null;
      await payee.shutdown();
      log('stopped; every acknowledged payment is stored');
    };
    try {
      return await startServer({ key: this.ctx.wallet.peerKey, serve: (link) => payee.serve(link), tick: () => payee.tick(), shutdown }, o);
    } catch (e) {
      await shutdown();
      throw e;
    }
  }

  private async waitForFunding(rec: PayerRecord, wait: FundingWait | undefined): Promise<void> {
    if (wait === undefined || wait === false) return;
    const onProgress = wait === true ? undefined : wait.onProgress;
    await this.ctx.chain.waitForConfirmations(rec.funding.txid, rec.confirmations, { ...(onProgress ? { onProgress } : {}), pollMs: this.env.pollMs });
  }
}

/**
 * A run's summary, or its failure as a SwarmpayError that carries the summary: a caller
 * that only awaits can never take a run cut short for a whole one.
 */
function settled(r: PayOutcome): PaySummary {
  if (r.error === undefined) return r.summary;
  if (!(r.error instanceof SwarmpayError)) throw r.error;
  const e = r.error;
  throw new SwarmpayError(e.code, e.message, { ...(e.hint === undefined ? {} : { hint: e.hint }), details: { ...e.details, summary: r.summary }, cause: e });
}

/** How far a pay() or payBatch() that threw got: its summary, or null for any other error. */
export function stoppedRun(e: unknown): PaySummary | null {
  if (!(e instanceof SwarmpayError)) return null;
  const s = e.details?.summary;
  return isPaySummary(s) ? s : null;
}

function isPaySummary(v: unknown): v is PaySummary {
  return typeof v === 'object' && v !== null && typeof (v as { acked?: unknown }).acked === 'number' && typeof (v as { sats?: unknown }).sats === 'bigint';
}
