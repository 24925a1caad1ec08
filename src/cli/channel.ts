/** `swarmpay channel serve|open|pay|close|bump|refund|list|recover|show`: parse, call src/channel, print. */
import { createInterface } from 'node:readline';
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { parseSats } from '../bitcoin/amount.js';
import { Payee, DEFAULT_POLICY, type PayeePolicy } from '../channel/payee.js';
import { openChannel, refundChannel } from '../channel/payer.js';
import type { PayerRecord } from '../channel/store.js';
import { bumpChannel, channelReports, closeChannel, payGroups, planBatch, resumeOpen, type ChannelReport, type PayGroup, type PayItem } from '../channel/flows.js';
import { MAX_CONFIRMATIONS, MIN_CONFIRMATIONS } from '../channel/messages.js';
import { recoverJournals, type Recovery } from '../channel/recover.js';
import { unlockWallet } from '../wallet/wallet.js';
import { connectPeer, connectorFor } from '../peer/connect.js';
import { withContext } from './command.js';
import { peerOf, runServer, serverLimits, serverLog, unlockedContext, withServerLimits, type LimitFlags } from './peer.js';
import { fieldLines } from './output.js';
import { feeRateFor, parseCount, parseFeeRate } from './args.js';

const DEFAULT_EXPIRY = 144;

/** Batch lines: JSON `{"id": "...", "channel": "...", "sats": N}`, one per line. */
async function readBatch(file: string): Promise<{ pid: string; channel: string; sats: bigint }[]> {
  const input = file === '-' ? process.stdin : createReadStream(file);
  const out: { pid: string; channel: string; sats: bigint }[] = [];
  let n = 0;
  try {
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      n++;
      if (line.trim() === '') continue;
      let o: { id?: unknown; channel?: unknown; sats?: unknown };
      try {
        o = JSON.parse(line) as typeof o;
      } catch {
        throw new SwarmpayError('INVALID_FILE', `batch line ${n} is not JSON`, { hint: 'each line is {"id": "...", "channel": "...", "sats": N}; nothing was paid' });
      }
      if (typeof o.id !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(o.id) || typeof o.channel !== 'string' || (typeof o.sats !== 'number' && typeof o.sats !== 'string')) {
        throw new SwarmpayError('INVALID_FILE', `batch line ${n} needs "id" (1-64 printable characters), "channel" and "sats"`, { hint: 'nothing was paid' });
      }
      out.push({ pid: o.id, channel: o.channel, sats: parseSats(String(o.sats), `batch line ${n} sats`) });
    }
  } catch (e) {
    if (e instanceof SwarmpayError) throw e;
    throw new SwarmpayError('INVALID_FILE', `cannot read the batch ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return out;
}

/** One line of `channel list`. */
function listLine(r: ChannelReport): string {
  const when = r.expiresIn > 0 ? `expires in ${r.expiresIn} blocks` : `expired ${-r.expiresIn} blocks ago`;
  return `${r.id}  ${r.role}  ${r.status.padEnd(9)}  ${r.paid}/${r.capacity} sats paid  ${when}`;
}

/** What `channel recover` did, for a reader. */
function recoveryLines(r: Recovery): string[] {
  if (r.journals.length === 0) return ['no channel journals in this datadir'];
  const lines: string[] = [];
  for (const j of r.journals) {
    if (j.status === 'whole') {
      lines.push(`${j.file}: whole, nothing changed`);
      continue;
    }
    lines.push(`${j.file}: ${j.problem}`);
    for (const d of j.damage) lines.push(`  at byte ${d.offset} (${d.bytes} bytes): ${d.what}`);
    lines.push(`  rewritten from ${j.records.authentic} records that authenticate${j.records.unauthenticated > 0 ? ` and ${j.records.unauthenticated} that do not (only signed states kept from those)` : ''}; the file as it was is kept as ${j.keptAs ?? '(nothing: it was missing)'}`);
  }
  for (const s of r.states) lines.push(`channel ${s.id}: closes on ${s.cumulative} sats at payment ${s.seq} (${s.proof === 'journal' ? 'an authentic record' : "proved by the payer's signature"})`);
  return lines;
}

export function registerChannel(program: Command): void {
  const channel = program.command('channel').description('payment channels: thousands of payments a second, settled with two transactions');

  withServerLimits(channel
    .command('serve'))
    .description('the payee: accept channels and payments, and see closes confirm, until SIGINT/SIGTERM')
    .option('--listen <host:port>', 'listen for payers on TCP', '127.0.0.1:9735')
    .option('--stdio', 'serve one payer on stdin/stdout (for --peer-cmd, e.g. over ssh)')
    .option('--min-capacity <sats>', 'smallest channel accepted', String(DEFAULT_POLICY.minCapacity))
    .option('--max-capacity <sats>', 'largest channel accepted', String(DEFAULT_POLICY.maxCapacity))
    .option('--min-expiry <blocks>', 'the expiry must be at least this many blocks away (more than --close-margin)', String(DEFAULT_POLICY.minExpiryBlocks))
    .option('--confirmations <n>', 'funding confirmations before payments count (at least 1)', String(DEFAULT_POLICY.confirmations))
    .option('--close-margin <blocks>', 'stop payments and close this many blocks before the expiry', String(DEFAULT_POLICY.closeMargin))
    .option('--min-close-fee-rate <sat/vB>', 'the least close fee rate agreed at open, whatever the node estimates', String(DEFAULT_POLICY.minCloseFeeRate))
    .option('--bump-after <blocks>', 'bump a close by CPFP once it has waited this many blocks unconfirmed', String(DEFAULT_POLICY.bumpAfter))
    .option('--poll <seconds>', 'how often to look at every channel (closes to make, confirm or bump)', '10')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<LimitFlags & { listen: string; stdio?: boolean; minCapacity: string; maxCapacity: string; minExpiry: string; confirmations: string; closeMargin: string; minCloseFeeRate: string; bumpAfter: string; poll: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const policy: PayeePolicy = {
          minCapacity: parseSats(opts.minCapacity, '--min-capacity'),
          maxCapacity: parseSats(opts.maxCapacity, '--max-capacity'),
          minExpiryBlocks: parseCount(opts.minExpiry, '--min-expiry', 2, 100_000),
          confirmations: parseCount(opts.confirmations, '--confirmations', MIN_CONFIRMATIONS, MAX_CONFIRMATIONS),
          closeMargin: parseCount(opts.closeMargin, '--close-margin', 1, 10_000),
          minCloseFeeRate: parseFeeRate(opts.minCloseFeeRate),
          bumpAfter: parseCount(opts.bumpAfter, '--bump-after', 1, 1000),
        };
        if (policy.minExpiryBlocks <= policy.closeMargin) {
          throw new SwarmpayError('USAGE', `--min-expiry ${policy.minExpiryBlocks} must be more than --close-margin ${policy.closeMargin}`, { hint: 'a channel must have blocks for payments before the margin stops them' });
        }
        const pollMs = parseCount(opts.poll, '--poll', 1, 86_400) * 1000;
        const limits = serverLimits(opts);
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const payee = new Payee({ ...pc, policy, log: serverLog });
        try {
          await runServer(ctx, {
            listen: opts.listen, stdio: !!opts.stdio, key: pc.wallet.peerKey, limits, pollMs, log: serverLog, what: 'payer',
            serve: (link) => payee.serve(link),
            tick: () => payee.tick(),
          });
        } finally {
          await payee.shutdown();
          serverLog('stopped; every acknowledged payment is stored');
        }
      }),
    );

  channel
    .command('open')
    .description('the payer: fund a channel to a payee from this wallet; or finish one whose open was cut short')
    .option('--peer <host:port>', 'the payee\'s `channel serve --listen` address')
    .option('--peer-cmd <command>', 'run COMMAND and speak to the payee over its stdin/stdout')
    .option('--peer-key <hex>', 'the payee\'s static key (as `channel serve` prints it): refuse any other')
    .option('--capacity <sats>', 'sats to lock in the channel (required unless --resume)')
    .option('--expiry <blocks>', 'blocks until the payer may take back what was not paid', String(DEFAULT_EXPIRY))
    .option('--fee-rate <sat/vB>', 'fee rate of the funding (default 2 on regtest); the close\'s is agreed from the node\'s estimate')
    .option('--resume <channel-id>', 'finish opening this channel: broadcast its funding again and hand the payee its ticket')
    .option('--wait', 'wait until the funding has the confirmations the payee asked for')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ peer?: string; peerCmd?: string; peerKey?: string; capacity?: string; expiry: string; feeRate?: string; resume?: string; wait?: boolean; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        let rec: PayerRecord;
        let fundingFee: bigint | null = null;
        if (opts.resume !== undefined) {
          if (opts.capacity !== undefined || opts.peer !== undefined || opts.peerCmd !== undefined) throw new SwarmpayError('USAGE', '--resume takes the channel\'s own terms and payee: give no --capacity, --peer or --peer-cmd');
          rec = await resumeOpen(pc, connectorFor(pc.wallet.peerKey), opts.resume);
        } else {
          const peer = peerOf(opts);
          if (opts.capacity === undefined) throw new SwarmpayError('USAGE', 'give --capacity <sats> (or --resume <channel-id>)');
          const capacity = parseSats(opts.capacity, '--capacity');
          const expiryBlocks = parseCount(opts.expiry, '--expiry', 2, 52_560);
          const feeRate = feeRateFor(ctx.network, opts.feeRate);
          const link = await connectPeer(peer, pc.wallet.peerKey, opts.peerKey);
          try {
            const r = await openChannel(pc, link, peer, { capacity, expiryBlocks, feeRate });
            rec = r.rec;
            fundingFee = r.fee;
          } finally {
            await link.close();
          }
        }
        if (opts.wait) {
          await pc.chain.waitForConfirmations(rec.funding.txid, rec.confirmations, { onProgress: (c, w) => ctx.out.progress(`funding: ${c}/${w} confirmations`), pollMs: ctx.network === 'regtest' ? 200 : 5000 });
        }
        const [report] = await channelReports(pc, [rec.id]);
        ctx.out.result({ ...report, ...(fundingFee === null ? {} : { fundingFee }) }, [
          `channel ${rec.id} ${rec.status}: ${rec.terms.capacity} sats to ${rec.peerKey.slice(0, 16)}…`,
          `funding ${rec.funding.txid}${fundingFee === null ? '' : ` (fee ${fundingFee} sats)`}, expiry at height ${rec.terms.expiry}; payments stop ${rec.closeMargin} blocks before it`,
        ]);
      }),
    );

  channel
    .command('pay')
    .description('the payer: pay over a channel, pipelined; or a batch of JSON lines')
    .argument('[channel-id]', 'the channel')
    .argument('[sats]', 'the amount of each payment')
    .option('--count <n>', 'make this many payments of SATS', '1')
    .option('--batch <file>', 'JSON lines {"id", "channel", "sats"} from FILE or - (stdin); ids already paid are skipped')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ count: string; batch?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        let groups: PayGroup[];
        if (opts.batch !== undefined) {
          if (args.length > 0) throw new SwarmpayError('USAGE', 'with --batch the channels and amounts come from the batch');
          groups = planBatch(await readBatch(opts.batch));
        } else {
          if (args.length !== 2) throw new SwarmpayError('USAGE', 'give a channel id and an amount, or --batch FILE');
          const sats = parseSats(args[1]!);
          const count = parseCount(opts.count, '--count', 1, 10_000_000);
          // One item, `count` times: ten million payments hold ten million references, not objects.
          groups = [{ channel: args[0]!, items: new Array<PayItem>(count).fill({ sats, pid: null }) }];
        }
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const t = await payGroups(pc, connectorFor(pc.wallet.peerKey), groups, {
          skipped: (e) => ctx.out.json && ctx.out.jsonLine({ id: e.pid, channel: e.channel, sats: e.sats, skipped: e.why }),
          payment: (p) => ctx.out.json && ctx.out.jsonLine({ ...(p.pid === null ? {} : { id: p.pid }), channel: p.channel, seq: p.seq, sats: p.sats, acked: p.acked }),
          acknowledged: (ch, done, of) => done % 500 === 0 && ctx.out.progress(`${ch}: ${done}/${of} payments acknowledged`),
        });
        const perSec = t.seconds > 0 ? Math.round(t.acked / t.seconds) : 0;
        const { error, ...counts } = t;
        if (ctx.out.json) ctx.out.jsonLine({ summary: { ...counts, payments_per_sec: perSec } });
        else ctx.out.info(`${t.acked} of ${t.payments} payments acknowledged (${t.sats} sats)${t.skipped ? `, ${t.skipped} skipped as paid` : ''}, ${perSec}/s`);
        if (error !== undefined) throw error;
        if (!ctx.out.json) ctx.out.result({}, `paid ${t.sats} sats in ${t.acked} payments`);
      }),
    );

  channel
    .command('close')
    .description('close a channel: the payee broadcasts the newest state; a payer asks the payee to')
    .argument('<channel-id>', 'the channel')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, args, opts) => {
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const txid = await closeChannel(pc, connectorFor(pc.wallet.peerKey), args[0]!, (m) => ctx.out.info(m));
        ctx.out.result({ id: args[0], closeTxid: txid }, `closing ${args[0]}: ${txid}`);
      }),
    );

  channel
    .command('bump')
    .description('raise the fee of a channel\'s close (or refund) waiting to confirm, by a child (CPFP) from this wallet')
    .argument('<channel-id>', 'the channel')
    .requiredOption('--fee-rate <sat/vB>', 'the fee rate of the close and its child together')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ feeRate: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const feeRate = parseFeeRate(opts.feeRate);
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const b = await bumpChannel(pc, args[0]!, feeRate);
        ctx.out.result({ id: args[0], bumpTxid: b.txid, feeRate: BigInt(b.feeRate), fee: BigInt(b.fee) }, `bumped ${args[0]} to ${b.feeRate} sat/vB: child ${b.txid} pays ${b.fee} sats`);
      }),
    );

  channel
    .command('refund')
    .description('the payer: take back the whole channel output after the expiry')
    .argument('<channel-id>', 'the channel')
    .option('--fee-rate <sat/vB>', 'fee rate of the refund (default 2 on regtest)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ feeRate?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const feeRate = feeRateFor(ctx.network, opts.feeRate);
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const r = await refundChannel(pc, args[0]!, feeRate);
        ctx.out.result({ id: args[0], refundTxid: r.txid, fee: r.fee }, `refunded ${args[0]}: ${r.txid}`);
      }),
    );

  channel
    .command('list')
    .description('the channels of this datadir, each as the chain shows it now')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, _args, opts) => {
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const rows = await channelReports(pc);
        ctx.out.result({ channels: rows }, rows.length === 0 ? 'no channels' : rows.map(listLine));
      }),
    );

  channel
    .command('recover')
    .description('check every channel journal; one that is damaged or older than the keystore recorded is rewritten from what can still be verified, the file kept beside it')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, _args, opts) => {
        // No node: a journal is mended from the disk alone.
        const { session } = await unlockWallet(ctx.networkDir, ctx.network, ctx.unlocker(opts.passphraseFile), { checkpoint: false });
        const r = await recoverJournals(session, ctx.networkDir);
        ctx.out.result({ ...r }, recoveryLines(r));
      }),
    );

  channel
    .command('show')
    .description('one channel: status, paid, remaining, expiry in blocks, confirmations, txids')
    .argument('<channel-id>', 'the channel')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, args, opts) => {
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const [r] = await channelReports(pc, [args[0]!]);
        ctx.out.result(r!, fieldLines({ ...r }));
      }),
    );
}
