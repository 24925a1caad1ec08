/** `swarmpay channel serve|open|pay|close|bump|refund|list|recover|show`: parse, one call to the library's Channels, print. */
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { parseSats } from '../bitcoin/amount.js';
import type { ChannelReport, OpenConsent, PaySummary, Recovery } from '../api/channels.js';
import { DEFAULT_EXPIRY_BLOCKS, DEFAULT_POLICY, MAX_EXPIRY_BLOCKS, MIN_EXPIRY_BLOCKS } from '../channel/defaults.js';
import { withContext } from './command.js';
import type { Context } from './context.js';
import { peerLocation, runUntilSignal, serverLimits, serverLog, withServerLimits, type LimitFlags } from './peer.js';
import type { PeerLocation } from '../api/server.js';
import { fieldLines } from './fields.js';
import { feeRateFor, parseCount, parseFeeRate } from './args.js';
import { timeoutOption, waitHooks } from './wait.js';

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

/** One channel's report, for a reader: where it stands and what it can pay. */
function openedLines(r: ChannelReport & { fundingFee?: bigint }): string[] {
  return [
    `channel ${r.id} ${r.status}: ${r.capacity} sats to ${r.peerKey.slice(0, 16)}…`,
    `funding ${r.fundingTxid}${r.fundingFee === undefined ? '' : ` (fee ${r.fundingFee} sats)`}, expiry at height ${r.expiry}; payments stop ${r.closeMargin} blocks before it`,
  ];
}

/** What `channel open` asks before it locks the capacity: the payee, the amounts and the fee. */
function openConsent(c: OpenConsent, peer: PeerLocation): { facts: string[]; question: string } {
  const [ch] = c.channels; // `channel open` opens one
  if (ch === undefined) throw new SwarmpayError('INTERNAL', 'a consent to open no channel');
  return {
    facts: [
      `payee:    ${typeof peer === 'string' ? peer : `command ${peer.command}`}, key ${ch.payeeKey}`,
      `capacity: ${ch.capacity} sats, locked until height ${ch.expiry} (${ch.expiryBlocks} blocks): what is not paid comes back by \`channel refund\` after that`,
      `fee:      ${c.fee} sats for the funding (${c.feeRate} sat/vB)`,
    ],
    question: `Lock ${ch.capacity} sats in a channel to ${ch.payeeKey.slice(0, 16)}… and pay ${c.fee} sats fee?`,
  };
}

/** A run of payments: the summary (a JSON line of its own), then its error if it stopped early. */
/** A run of payments: its summary, also when it stopped early (then its error follows). */
async function printRun(ctx: Context, run: Promise<PaySummary>): Promise<void> {
  const summary = (t: PaySummary) => {
    if (ctx.out.json) ctx.out.jsonLine({ summary: t });
    else ctx.out.info(`${t.acked} of ${t.payments} payments acknowledged (${t.sats} sats)${t.skipped ? `, ${t.skipped} skipped as paid` : ''}, ${t.payments_per_sec}/s`);
  };
  let t: PaySummary;
  try {
    t = await run;
  } catch (e) {
    const { stoppedRun } = await import('../api/channels.js');
    const got = stoppedRun(e);
    if (got !== null) summary(got);
    throw e;
  }
  summary(t);
  if (!ctx.out.json) ctx.out.result({}, `paid ${t.sats} sats in ${t.acked} payments`);
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
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<LimitFlags & { listen: string; stdio?: boolean; minCapacity: string; maxCapacity: string; minExpiry: string; confirmations: string; closeMargin: string; minCloseFeeRate: string; bumpAfter: string; poll: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        // Checked before the wallet is unlocked: a policy no channel could meet asks for nothing.
        const { Channels } = await import('../api/channels.js');
        const policy = Channels.policy({
          minCapacity: parseSats(opts.minCapacity, '--min-capacity'),
          maxCapacity: parseSats(opts.maxCapacity, '--max-capacity'),
          minExpiryBlocks: parseCount(opts.minExpiry, '--min-expiry', 1, 100_000),
          confirmations: parseCount(opts.confirmations, '--confirmations', 0, 1000),
          closeMargin: parseCount(opts.closeMargin, '--close-margin', 0, 100_000),
          minCloseFeeRate: parseFeeRate(opts.minCloseFeeRate),
          bumpAfter: parseCount(opts.bumpAfter, '--bump-after', 1, 1000),
        });
        const pollMs = parseCount(opts.poll, '--poll', 1, 86_400) * 1000;
        const limits = serverLimits(opts);
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const server = await wallet.channels.serve({ listen: opts.stdio ? { stdio: true } : { tcp: opts.listen }, policy, limits, pollMs, log: serverLog });
        await runUntilSignal(ctx, server);
      }),
    );

  channel
    .command('open')
    .description('the payer: fund a channel to a payee from this wallet; or finish one whose open was cut short')
    .option('--peer <host:port>', 'the payee\'s `channel serve --listen` address')
    .option('--peer-cmd <command>', 'run COMMAND and speak to the payee over its stdin/stdout')
    .option('--peer-key <hex>', 'the payee\'s static key (as `channel serve` prints it): refuse any other')
    .option('--capacity <sats>', 'sats to lock in the channel (required unless --resume)')
    .option('--expiry <blocks>', 'blocks until the payer may take back what was not paid', String(DEFAULT_EXPIRY_BLOCKS))
    .option('--fee-rate <sat/vB>', 'fee rate of the funding (default: $SWARMPAY_FEE_RATE, fee-rate= in swarmpay.conf, else 2 on regtest; required elsewhere); the close\'s is agreed from the node\'s estimate')
    .option('--resume <channel-id>', 'finish opening this channel: broadcast its funding again and hand the payee its ticket')
    .option('--wait', 'wait until the funding has the confirmations the payee asked for (its txid is printed first)')
    .addOption(timeoutOption())
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ peer?: string; peerCmd?: string; peerKey?: string; capacity?: string; expiry: string; feeRate?: string; resume?: string; wait?: boolean; timeout?: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const hooks = waitHooks(ctx, opts, (txid) => `funding ${txid} is broadcast; waiting for its confirmations`);
        const wait = opts.wait ? { ...hooks, onProgress: (c: number, w: number) => ctx.out.progress(`funding: ${c}/${w} confirmations`) } : false;
        if (opts.resume !== undefined) {
          if (opts.capacity !== undefined || opts.peer !== undefined || opts.peerCmd !== undefined) throw new SwarmpayError('USAGE', '--resume takes the channel\'s own terms and payee: give no --capacity, --peer or --peer-cmd');
          const wallet = await ctx.unlockWallet(opts.passphraseFile, 'spend');
          const r = await wallet.channels.resume(opts.resume, { wait });
          ctx.out.result(r, openedLines(r));
          return;
        }
        const peer = peerLocation(opts);
        if (opts.capacity === undefined) throw new SwarmpayError('USAGE', 'give --capacity <sats> (or --resume <channel-id>)');
        const capacity = parseSats(opts.capacity, '--capacity');
        const expiryBlocks = parseCount(opts.expiry, '--expiry', MIN_EXPIRY_BLOCKS, MAX_EXPIRY_BLOCKS);
        const feeRate = feeRateFor(ctx.env, opts.feeRate);
        // Refused here without a terminal or --yes: before the passphrase, nothing asked in vain.
        const confirm = ctx.prompt.consent(ctx.opts.yes, 'locking coins in a channel', (c: OpenConsent) => openConsent(c, peer));
        const wallet = await ctx.unlockWallet(opts.passphraseFile, 'spend');
        const r = await wallet.channels.open({ peer, ...(opts.peerKey === undefined ? {} : { peerKey: opts.peerKey }), capacity, expiryBlocks, feeRate, wait, confirm });
        ctx.out.result(r, openedLines(r));
      }),
    );

  channel
    .command('pay')
    .description('the payer: pay over a channel, pipelined; or a batch of JSON lines')
    .argument('[channel-id]', 'the channel')
    .argument('[sats]', 'the amount of each payment')
    .option('--count <n>', 'make this many payments of SATS', '1')
    .option('--batch <file>', 'JSON lines {"id", "channel", "sats"} from FILE or - (stdin); ids already paid are skipped')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ count: string; batch?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const events = {
          skipped: (e: object) => ctx.out.json && ctx.out.jsonLine(e),
          payment: (e: object) => ctx.out.json && ctx.out.jsonLine(e),
          acknowledged: (ch: string, done: number, of: number) => done % 500 === 0 && ctx.out.progress(`${ch}: ${done}/${of} payments acknowledged`),
        };
        if (opts.batch !== undefined) {
          if (args.length > 0) throw new SwarmpayError('USAGE', 'with --batch the channels and amounts come from the batch');
          // Loaded before the file is opened: a stream's error (a missing file) must find its reader listening.
          const { Channels } = await import('../api/channels.js');
          const input = opts.batch === '-' ? process.stdin : createReadStream(opts.batch);
          // Read and checked whole before the wallet is unlocked: a bad batch asks for nothing and pays nothing.
          const batch = await Channels.readBatch(input, opts.batch === '-' ? 'the batch on stdin' : `the batch ${opts.batch}`);
          const wallet = await ctx.unlockWallet(opts.passphraseFile, 'spend');
          await printRun(ctx, wallet.channels.payBatch(batch, events));
          return;
        }
        const [id, amount] = args;
        if (args.length !== 2 || id === undefined || amount === undefined) throw new SwarmpayError('USAGE', 'give a channel id and an amount, or --batch FILE');
        const sats = parseSats(amount);
        const count = parseCount(opts.count, '--count', 1, 10_000_000);
        const wallet = await ctx.unlockWallet(opts.passphraseFile, 'spend');
        await printRun(ctx, wallet.channels.pay(id, sats, { count, events }));
      }),
    );

  channel
    .command('close')
    .description('close a channel: the payee broadcasts the newest state; a payer asks the payee to')
    .argument('<channel-id>', 'the channel')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, [id = ''], opts) => {
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = await wallet.channels.close(id, { onLog: (m) => ctx.out.info(m) });
        ctx.out.result(r, `closing ${r.id}: ${r.closeTxid}`);
      }),
    );

  channel
    .command('bump')
    .description('raise the fee of a channel\'s close (or refund) waiting to confirm, by a child (CPFP) from this wallet')
    .argument('<channel-id>', 'the channel')
    .requiredOption('--fee-rate <sat/vB>', 'the fee rate of the close and its child together')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ feeRate: string; passphraseFile?: string }>(async (ctx, [id = ''], opts) => {
        const feeRate = parseFeeRate(opts.feeRate);
        const wallet = await ctx.unlockWallet(opts.passphraseFile, 'spend');
        const r = await wallet.channels.bump(id, feeRate);
        ctx.out.result(r, `bumped ${r.id} to ${r.feeRate} sat/vB: child ${r.bumpTxid} pays ${r.fee} sats`);
      }),
    );

  channel
    .command('refund')
    .description('the payer: take back the whole channel output after the expiry')
    .argument('<channel-id>', 'the channel')
    .option('--fee-rate <sat/vB>', 'fee rate of the refund (default: $SWARMPAY_FEE_RATE, fee-rate= in swarmpay.conf, else 2 on regtest; required elsewhere)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ feeRate?: string; passphraseFile?: string }>(async (ctx, [id = ''], opts) => {
        const feeRate = feeRateFor(ctx.env, opts.feeRate);
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = await wallet.channels.refund(id, feeRate);
        ctx.out.result(r, `refunded ${r.id}: ${r.refundTxid}`);
      }),
    );

  channel
    .command('list')
    .description('the channels of this datadir, each as the chain shows it now')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, _args, opts) => {
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = await wallet.channels.list();
        ctx.out.result(r, r.channels.length === 0 ? 'no channels' : r.channels.map(listLine));
      }),
    );

  channel
    .command('recover')
    .description('check every channel journal; one that is damaged or older than the keystore recorded is rewritten from what can still be verified, the file kept beside it')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, _args, opts) => {
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = await wallet.channels.recover();
        ctx.out.result({ ...r }, recoveryLines(r));
      }),
    );

  channel
    .command('show')
    .description('one channel: status, paid, remaining, expiry in blocks, confirmations, txids')
    .argument('<channel-id>', 'the channel')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, [id = ''], opts) => {
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = await wallet.channels.show(id);
        ctx.out.result(r, fieldLines({ ...r }));
      }),
    );
}
