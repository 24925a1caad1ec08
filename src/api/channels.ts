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
import { planBatch, readBatch, repeatPayment, type BatchSource, type PayGroup, type PayItem } from '../channel/batch.js';
import { bumpChannel, channelReports, closeChannel, payGroups, resumeOpen, summaryOf, type ChannelReport, type PayEvents, type PayOutcome, type PaySummary } from '../channel/flows.js';
import { DEFAULT_EXPIRY_BLOCKS, PayerSession, finishOpen, openChannels, payerChannel, payerConversation, refundChannel, type OpenConsent, type OpenResult, type PayResult } from '../channel/payer.js';
import { Payee, payeePolicy, type PayeePolicy } from '../channel/payee.js';
import { recoverJournals, type Recovery } from '../channel/recover.js';
import type { PayerRecord } from '../channel/record.js';
import type { Environment } from './environment.js';
import { peerAddress, startServer, type Listen, type PeerLocation, type Server } from './server.js';
import { waitForTx, type WaitHooks } from './wait.js';
import type { FeeRate } from '../bitcoin/fee-rate.js';

export type { BatchSource, ChannelReport, OpenConsent, PayEvents, PayeePolicy, Recovery };
export { DEFAULT_POLICY } from '../channel/payee.js';
export { DEFAULT_EXPIRY_BLOCKS, MAX_EXPIRY_BLOCKS, MIN_EXPIRY_BLOCKS } from '../channel/payer.js';
export type { PaySummary, SentPayment, SkippedPayment, SkipReason } from '../channel/flows.js';

/** Waiting for the funding's confirmations (as many as the payee asked for), and hearing each. */
export type FundingWait = boolean | (WaitHooks & { onProgress?: (confirmations: number, wanted: number) => void });

/** A channel to open: to whom, and how much. */
export interface ChannelSpec {
  /** The payee: HOST:PORT of its `channel serve`, or a command that speaks to it on stdin/stdout. */
  peer: PeerLocation;
  /** The payee's static key, hex: any other is refused. */
  peerKey?: string;
  /** Sats locked in the channel. */
  capacity: bigint;
  /** Blocks until the payer may take back what was not paid; DEFAULT_EXPIRY_BLOCKS unless given. */
  expiryBlocks?: number;
}

/** How channels are opened: asked first (`confirm`), and waited for (`wait`). */
export interface OpenOptions {
  /** Asked once the funding is built (its fee known), before anything is stored or broadcast; false cancels (USAGE, nothing paid). */
  confirm?: (c: OpenConsent) => Promise<boolean>;
  wait?: FundingWait;
}

export interface ChannelOpenOptions extends ChannelSpec, OpenOptions {
  /** The funding's fee rate, sat/vB (the close's is agreed from the node's estimate). */
  feeRate: FeeRate;
}

/** A channel just opened: its report, and what the funding paid in fees. */
export type OpenReport = ChannelReport & { fundingFee: bigint };

/** Channels opened by one funding transaction: each one's report (in the order asked for), and what the funding paid in fees. */
export interface OpenManyReport {
  channels: ChannelReport[];
  fundingFee: bigint;
}

/**
 * The most channels one funding transaction opens. Each payee is handed the whole funding
 * in one message, which holds a transaction of at most 16,000 bytes: 200 channel outputs
 * (43 bytes each) leave room for about fifty inputs.
 */
export const MAX_CHANNELS_PER_FUNDING = 200;

/** A run of payments over a {@link ChannelSession}. */
export interface SessionPayOptions {
  /** How many payments of the one amount (default 1); not with a list of amounts. */
  count?: number;
  /** Payments per second: the sends spaced out, to see the latency below saturation. Default: as fast as the payee takes them. */
  pace?: number;
  /** Each payment's time from send to acknowledgement, in ms, by its index in the run (measured only when asked for). */
  onLatency?: (index: number, ms: number) => void;
}

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

/** A batch read and checked (Channels.readBatch): its payments grouped by channel, ids unique. */
export class Batch {
  constructor(readonly groups: readonly PayGroup[]) {}
}

export class Channels {
  private readonly connector: Connector;
  /** The payee this wallet serves as, while serve() runs: it holds the payments journal, so a close goes through it. */
  private serving: Payee | null = null;

  constructor(
    readonly ctx: ContractContext,
    readonly env: Environment,
  ) {
    this.connector = connectorFor(ctx.wallet.peerKey, env.opts.peerStderr);
  }

  /** Opens a channel to a payee, funded from this wallet; with `wait`, returns once the funding has the confirmations the payee asked for. */
  async open(o: ChannelOpenOptions): Promise<OpenReport> {
    const { channels, fundingFee } = await this.openMany([o], o.feeRate, o);
    // openMany answers each spec or throws.
    const [report] = channels;
    if (report === undefined) throw new SwarmpayError('INTERNAL', 'an open of one channel opened none');
    return { ...report, fundingFee };
  }

  /**
   * Opens several channels, funded by one transaction from this wallet (output i funds
   * channel i): one fee and one look at the wallet's coins for all of them. Each is agreed
   * with its payee over a link of its own, all at once, and stored before the funding is
   * broadcast; with `confirm`, only once it said yes to the channels and the funding's fee.
   * If any open does not finish, throws the first failure; each channel's status then says
   * where it stands (`resume` finishes an open cut short). With `wait`, returns once the
   * funding has the most confirmations any of the payees asked for.
   */
  async openMany(specs: readonly ChannelSpec[], feeRate: FeeRate, o: OpenOptions = {}): Promise<OpenManyReport> {
    if (specs.length < 1 || specs.length > MAX_CHANNELS_PER_FUNDING) {
      throw new SwarmpayError('USAGE', `${specs.length} channels in one funding: 1 to ${MAX_CHANNELS_PER_FUNDING}`, { hint: 'open more in several calls; nothing was funded' });
    }
    const peers = specs.map((s) => peerAddress(s.peer));
    const connecting = await Promise.allSettled(specs.map((s, i) => connectPeer(peers[i], this.ctx.wallet.peerKey, s.peerKey, this.env.opts.peerStderr)));
    const links = connecting.flatMap((c) => (c.status === 'fulfilled' ? [c.value] : []));
    let opened: OpenResult[];
    try {
      for (const c of connecting) if (c.status === 'rejected') throw c.reason;
      opened = await openChannels(this.ctx, specs.map((s, i) => ({ link: links[i], peer: peers[i], capacity: s.capacity, expiryBlocks: s.expiryBlocks ?? DEFAULT_EXPIRY_BLOCKS })), feeRate, o.confirm);
    } finally {
      await Promise.all(links.map((l) => l.close()));
    }
    // One funding for all: the wait is for the most confirmations a payee asked for.
    const pickiest = opened.reduce((a, b) => (b.rec.confirmations > a.rec.confirmations ? b : a));
    await this.waitForFunding(pickiest.rec, o.wait);
    return { channels: await channelReports(this.ctx, opened.map((x) => x.rec.id)), fundingFee: pickiest.fee };
  }

  /** Finishes an open that was cut short after its funding was signed: broadcasts the funding again and hands the payee its ticket. */
  async resume(id: string, o: { wait?: FundingWait } = {}): Promise<ChannelReport> {
    await this.waitForFunding(await resumeOpen(this.ctx, this.connector, id), o.wait);
    return this.show(id);
  }

  /**
   * Pays `sats` over channel `id`, `count` times (default once), pipelined; resolves when
   * every payment is acknowledged. A run that stops early throws its SwarmpayError with
   * the summary of how far it got in `details.summary` (see {@link stoppedRun}).
   */
  async pay(id: string, sats: bigint, o: { count?: number; events?: PayEvents } = {}): Promise<PaySummary> {
    return settled(await payGroups(this.ctx, this.connector, repeatPayment(id, sats, paymentCount(o.count)), o.events));
  }

  /**
   * Connects to the payee of channel `id` (this wallet pays it) and keeps the connection:
   * runs of payments over it skip the handshake and the reconciliation each pay() makes,
   * which suits a program that pays as it goes (a device's service loop). Finishes an open
   * cut short first, as pay() does. Until disconnect(), the session holds the channel's
   * ledger: pay(), payBatch() and close() on this channel are refused (KEYSTORE_BUSY).
   */
  async connect(id: string): Promise<ChannelSession> {
    const rec = payerChannel(this.ctx, id);
    const link = await this.connector(rec.peer, rec.peerKey);
    try {
      if (rec.status === 'opening') await finishOpen(this.ctx, payerConversation(link), rec);
      return new ChannelSession(id, await PayerSession.start(this.ctx, link, id));
    } catch (e) {
      await link.close();
      throw e;
    }
  }

  /**
   * Pays a batch: JSON lines `{"id", "channel", "sats"}` (strings, or a stream of them such
   * as a file or stdin), read whole and checked before anything is paid. Ids already paid
   * are skipped, so a batch may be run again.
   */
  async payBatch(batch: BatchSource | Batch, events: PayEvents = {}): Promise<PaySummary> {
    const planned = batch instanceof Batch ? batch : await Channels.readBatch(batch);
    return settled(await payGroups(this.ctx, this.connector, planned.groups, events));
  }

  /**
   * Reads and checks a batch without a wallet (`name`: the file, for errors), so that a bad
   * batch is refused before anything is unlocked; payBatch takes what this returns.
   */
  static async readBatch(source: BatchSource, name?: string): Promise<Batch> {
    return new Batch(planBatch(await readBatch(source, name)));
  }

  /** Closes a channel: as its payee, broadcasts the newest state; as its payer, asks the payee to. */
  async close(id: string, o: { onLog?: (msg: string) => void } = {}): Promise<{ id: string; closeTxid: string }> {
    return { id, closeTxid: await closeChannel(this.ctx, this.connector, id, o.onLog ?? (() => undefined), this.serving) };
  }

  /** Raises the fee of the channel's close (or refund) waiting to confirm to `feeRate` sat/vB, by a child from this wallet (CPFP). */
  async bump(id: string, feeRate: FeeRate): Promise<{ id: string; bumpTxid: string; feeRate: FeeRate; fee: bigint }> {
    const b = await bumpChannel(this.ctx, id, feeRate);
    return { id, bumpTxid: b.txid, feeRate, fee: BigInt(b.fee) };
  }

  /** As the payer, once the expiry is reached: takes the whole channel output back. */
  async refund(id: string, feeRate: FeeRate): Promise<{ id: string; refundTxid: string; fee: bigint }> {
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
  /** The payee's policy: `given` over the defaults, refused (USAGE) if no channel could meet it; needs no wallet. */
  static policy(given: Partial<PayeePolicy> = {}): PayeePolicy {
    return payeePolicy(given);
  }

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
    const o = wait === true ? {} : wait;
    const txid = rec.funding.txid;
    const timedOut = { stands: `channel ${rec.id} is open and its funding may still confirm`, hint: `\`swarmpay channel open --resume ${rec.id} --wait\` waits again` };
    await waitForTx(txid, o, timedOut, (timeoutMs) => this.ctx.chain.waitForConfirmations(txid, rec.confirmations, { ...(o.onProgress ? { onProgress: o.onProgress } : {}), pollMs: this.env.pollMs, timeoutMs }));
  }
}

/**
 * A connection to one channel's payee, kept open (from {@link Channels.connect}): runs of
 * payments one after another (a run asked for while another is under way waits for it,
 * as close() does), until disconnect().
 */
export class ChannelSession {
  private turn: Promise<unknown> = Promise.resolve();
  private ended: Promise<void> | null = null;

  /** Made by {@link Channels.connect}, which reconciles the session with the payee first. */
  constructor(
    /** The channel paid. */
    readonly id: string,
    private readonly session: PayerSession,
  ) {}

  /**
   * Pays `sats`, `count` times (default once), or each amount of a list, pipelined; resolves
   * with the run's summary once every payment is acknowledged. A run that stops early
   * throws its SwarmpayError with the summary of how far it got (see {@link stoppedRun}),
   * as {@link Channels.pay} does. Once a run has stopped with payments in flight (the payee
   * may hold some unacknowledged), this session pays no more: connect again, and paying
   * goes on from what the payee shows. A run refused before anything was sent (more than
   * the channel holds, a channel no longer payable) leaves the session as it was.
   */
  async pay(sats: bigint | readonly bigint[], o: SessionPayOptions = {}): Promise<PaySummary> {
    const items = this.items(sats, o);
    return this.inTurn(() => this.run(items, o));
  }

  /**
   * Asks the payee to close the channel on its newest state; resolves with the close's txid
   * once the node shows that transaction spending the channel (the payee's word alone moves
   * nothing). The session stays connected until disconnect().
   */
  close(): Promise<{ id: string; closeTxid: string }> {
    return this.inTurn(async () => ({ id: this.id, closeTxid: await this.session.close() }));
  }

  /** Ends the connection once the run under way (if any) is over, and lets go of the channel's ledger; the channel stays as it is. Calling it again waits for the same end. */
  disconnect(): Promise<void> {
    this.ended ??= this.turn.then(() => this.session.disconnect());
    return this.ended;
  }

  private items(sats: bigint | readonly bigint[], o: SessionPayOptions): PayItem[] {
    if (o.pace !== undefined && !(o.pace > 0 && Number.isFinite(o.pace))) throw new SwarmpayError('USAGE', `a pace of ${o.pace} payments a second: more than 0`);
    if (typeof sats === 'bigint') return repeatPayment(this.id, sats, paymentCount(o.count))[0].items;
    if (o.count !== undefined) throw new SwarmpayError('USAGE', 'a count goes with one amount, not with a list of amounts');
    return sats.map((s) => ({ sats: s, pid: null }));
  }

  /** Runs `f` once everything asked of this session before it is over. */
  private inTurn<T>(f: () => Promise<T>): Promise<T> {
    if (this.ended !== null) return Promise.reject(new SwarmpayError('USAGE', `the session on channel ${this.id} is disconnected`, { hint: 'connect again' }));
    const run = this.turn.then(f);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private async run(items: PayItem[], o: SessionPayOptions): Promise<PaySummary> {
    const before = this.session.paid;
    let r: PayResult;
    try {
      r = await this.session.pay(items, { pace: o.pace, onLatency: o.onLatency });
    } catch (e) {
      // Refused before anything was sent, or failed after: what the payee acknowledged is what
      // the acknowledged state moved by, never taken as nothing (a caller might pay it again).
      const now = this.session.paid;
      const acked = now.seq - before.seq;
      return settled({ summary: runSummary(items.length, acked, acked, now.cumulative - before.cumulative, 0), error: e });
    }
    // The acknowledged state covers the run's acknowledged payments: their sats without a sum over them.
    const summary = runSummary(items.length, r.sent, r.ackedCount, r.acked.cumulative - before.cumulative, r.seconds);
    return settled(r.error === undefined ? { summary } : { summary, error: r.error });
  }
}

function runSummary(payments: number, sent: number, acked: number, sats: bigint, seconds: number): PaySummary {
  return summaryOf({ payments, sent, acked, skipped: 0, sats, seconds });
}

function paymentCount(count = 1): number {
  if (!Number.isSafeInteger(count) || count < 1) throw new SwarmpayError('USAGE', `a count of ${count} payments: at least 1`);
  return count;
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

/** How far a Channels.pay, Channels.payBatch or ChannelSession.pay that threw got: its summary, or null for any other error. */
export function stoppedRun(e: unknown): PaySummary | null {
  if (!(e instanceof SwarmpayError)) return null;
  const s = e.details?.summary;
  return isPaySummary(s) ? s : null;
}

function isPaySummary(v: unknown): v is PaySummary {
  return typeof v === 'object' && v !== null && typeof (v as { acked?: unknown }).acked === 'number' && typeof (v as { sats?: unknown }).sats === 'bigint';
}
