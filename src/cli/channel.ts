/** `swarmpay channel serve|open|pay|close|refund|list|show`. */
import { createInterface } from 'node:readline';
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { parseSats } from '../bitcoin/amount.js';
import { Payee, DEFAULT_POLICY, type PayeePolicy } from '../channel/payee.js';
import { PayerSession, openChannel, refundChannel } from '../channel/payer.js';
import { peerStaticKey } from '../peer/keys.js';
import { getChannel, listChannels, readPaymentState, type ChannelRecord, type PeerAddress } from '../channel/store.js';
import type { WalletContext } from '../wallet/wallet.js';
import { withContext } from './command.js';
import { connect, peerOf, runServer, serverLog, unlockedContext } from './peer.js';
import { fieldLines } from './output.js';
import { feeRateFor, parseCount } from './args.js';

const DEFAULT_EXPIRY = 144;

/** A channel this wallet pays, with the address of its payee. */
function payerRecord(pc: WalletContext, id: string): ChannelRecord & { peer: PeerAddress } {
  const rec = getChannel(pc.session, id);
  if (rec.role !== 'payer' || rec.peer === null) throw new SwarmpayError('CHANNEL_STATE', `channel ${id} pays this wallet; only its payer pays or asks to close over it`, { hint: 'as the payee, `channel close` closes it here' });
  return rec as ChannelRecord & { peer: PeerAddress };
}

function summary(rec: ChannelRecord, paid: bigint | null): Record<string, unknown> {
  const capacity = BigInt(rec.terms.capacity);
  return {
    id: rec.id,
    role: rec.role,
    status: rec.status,
    capacity,
    paid,
    remaining: paid === null ? null : capacity - paid,
    closeFee: BigInt(rec.terms.closeFee),
    expiry: rec.terms.expiry,
    fundingTxid: rec.funding?.txid ?? null,
    closeTxid: rec.closeTxid,
    refundTxid: rec.refundTxid,
    peer: rec.peer,
    peerKey: rec.peerKey,
  };
}

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
  const ids = new Set<string>();
  for (const l of out) {
    if (ids.has(l.pid)) throw new SwarmpayError('INVALID_FILE', `batch id "${l.pid}" appears twice`, { hint: 'ids make a batch safe to run again: each must be unique; nothing was paid' });
    ids.add(l.pid);
  }
  return out;
}

export function registerChannel(program: Command): void {
  const channel = program.command('channel').description('payment channels: thousands of payments a second, settled with two transactions');

  channel
    .command('serve')
    .description('the payee: accept channels and payments until SIGINT/SIGTERM')
    .option('--listen <host:port>', 'listen for payers on TCP', '127.0.0.1:9735')
    .option('--stdio', 'serve one payer on stdin/stdout (for --peer-cmd, e.g. over ssh)')
    .option('--min-capacity <sats>', 'smallest channel accepted', String(DEFAULT_POLICY.minCapacity))
    .option('--max-capacity <sats>', 'largest channel accepted', String(DEFAULT_POLICY.maxCapacity))
    .option('--min-expiry <blocks>', 'the expiry must be at least this many blocks away', String(DEFAULT_POLICY.minExpiryBlocks))
    .option('--confirmations <n>', 'funding confirmations before payments count', String(DEFAULT_POLICY.confirmations))
    .option('--close-margin <blocks>', 'close this many blocks before the expiry', String(DEFAULT_POLICY.closeMargin))
    .option('--poll <seconds>', 'how often to look for channels to close', '10')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ listen: string; stdio?: boolean; minCapacity: string; maxCapacity: string; minExpiry: string; confirmations: string; closeMargin: string; poll: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const policy: PayeePolicy = {
          minCapacity: parseSats(opts.minCapacity, '--min-capacity'),
          maxCapacity: parseSats(opts.maxCapacity, '--max-capacity'),
          minExpiryBlocks: parseCount(opts.minExpiry, '--min-expiry', 1, 100_000),
          confirmations: parseCount(opts.confirmations, '--confirmations', 0, 100),
          closeMargin: parseCount(opts.closeMargin, '--close-margin', 1, 10_000),
        };
        const pollMs = parseCount(opts.poll, '--poll', 1, 86_400) * 1000;
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const payee = new Payee({ ...pc, policy, log: serverLog });
        try {
          await runServer(ctx, {
            listen: opts.listen, stdio: !!opts.stdio, key: peerStaticKey(pc.seed), pollMs, log: serverLog, what: 'payer',
            serve: (link) => payee.serve(link),
            tick: () => payee.closeExpiring().catch((e: unknown) => serverLog(`auto-close: ${(e as Error).message}`)),
          });
        } finally {
          await payee.shutdown();
          serverLog('stopped; every acknowledged payment is stored');
        }
      }),
    );

  channel
    .command('open')
    .description('the payer: fund a channel to a payee from this wallet')
    .option('--peer <host:port>', 'the payee\'s `channel serve --listen` address')
    .option('--peer-cmd <command>', 'run COMMAND and speak to the payee over its stdin/stdout')
    .option('--peer-key <hex>', 'the payee\'s static key (as `channel serve` prints it): refuse any other')
    .requiredOption('--capacity <sats>', 'sats to lock in the channel')
    .option('--expiry <blocks>', 'blocks until the payer may take back what was not paid', String(DEFAULT_EXPIRY))
    .option('--fee-rate <sat/vB>', 'fee rate of the funding and close transactions (default 2 on regtest)')
    .option('--wait', 'wait until the funding has the confirmations the payee asked for')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ peer?: string; peerCmd?: string; peerKey?: string; capacity: string; expiry: string; feeRate?: string; wait?: boolean; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const peer = peerOf(opts);
        const capacity = parseSats(opts.capacity, '--capacity');
        const expiryBlocks = parseCount(opts.expiry, '--expiry', 1, 52_560);
        const feeRate = feeRateFor(ctx.network, opts.feeRate);
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const link = await connect(peer, pc.seed, opts.peerKey);
        try {
          const r = await openChannel(pc, link, peer, { capacity, expiryBlocks, feeRate });
          if (opts.wait) {
            await pc.chain.waitForConfirmations(r.fundingTxid, r.rec.confirmations, { onProgress: (c, w) => ctx.out.progress(`funding: ${c}/${w} confirmations`), pollMs: ctx.network === 'regtest' ? 200 : 5000 });
          }
          ctx.out.result({ ...summary(r.rec, 0n), fundingFee: r.fee }, [`channel ${r.rec.id} open: ${capacity} sats to ${r.rec.peerKey.slice(0, 16)}…`, `funding ${r.fundingTxid} (fee ${r.fee} sats), expiry at height ${r.rec.terms.expiry}`]);
        } finally {
          await link.close();
        }
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
        const plan: { channel: string; items: { sats: bigint; pid: string | null }[] }[] = [];
        if (opts.batch !== undefined) {
          if (args.length > 0) throw new SwarmpayError('USAGE', 'with --batch the channels and amounts come from the batch');
          for (const l of await readBatch(opts.batch)) {
            const g = plan.find((p) => p.channel === l.channel) ?? plan[plan.push({ channel: l.channel, items: [] }) - 1]!;
            g.items.push({ sats: l.sats, pid: l.pid });
          }
        } else {
          if (args.length !== 2) throw new SwarmpayError('USAGE', 'give a channel id and an amount, or --batch FILE');
          const sats = parseSats(args[1]!);
          const count = parseCount(opts.count, '--count', 1, 10_000_000);
          plan.push({ channel: args[0]!, items: Array.from({ length: count }, () => ({ sats, pid: null })) });
        }
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const totals = { payments: plan.reduce((n, g) => n + g.items.length, 0), sent: 0, acked: 0, skipped: 0, sats: 0n, seconds: 0 };
        let failure: unknown = null;
        for (const group of plan) {
          const rec = payerRecord(pc, group.channel);
          const link = await connect(rec.peer, pc.seed, rec.peerKey);
          try {
            const s = await PayerSession.start(pc, link, rec.id);
            const known = group.items.some((i) => i.pid !== null) ? await s.known(group.items.flatMap((i) => (i.pid === null ? [] : [i.pid]))) : new Set<string>();
            const todo = group.items.filter((i) => i.pid === null || !known.has(i.pid));
            for (const i of group.items) if (i.pid !== null && known.has(i.pid) && ctx.out.json) ctx.out.jsonLine({ id: i.pid, channel: rec.id, sats: i.sats, skipped: 'already paid' });
            totals.skipped += group.items.length - todo.length;
            let done = 0;
            const r = await s.pay(todo, () => {
              done++;
              if (done % 500 === 0) ctx.out.progress(`${rec.id}: ${done}/${todo.length} payments acknowledged`);
            });
            for (const p of r.payments) {
              totals.sent++;
              if (p.acked) (totals.acked++, (totals.sats += p.sats));
              if (ctx.out.json) ctx.out.jsonLine({ ...(p.pid === null ? {} : { id: p.pid }), channel: rec.id, seq: p.seq, sats: p.sats, acked: p.acked });
            }
            totals.seconds += r.seconds;
            if (r.error !== undefined) failure = r.error;
          } finally {
            await link.close();
          }
          if (failure) break;
        }
        const perSec = totals.seconds > 0 ? Math.round(totals.acked / totals.seconds) : 0;
        if (ctx.out.json) ctx.out.jsonLine({ summary: { ...totals, payments_per_sec: perSec } });
        else ctx.out.info(`${totals.acked} of ${totals.payments} payments acknowledged (${totals.sats} sats)${totals.skipped ? `, ${totals.skipped} already paid` : ''}, ${perSec}/s`);
        if (failure) throw failure;
        if (!ctx.out.json) ctx.out.result({}, `paid ${totals.sats} sats in ${totals.acked} payments`);
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
        const rec = getChannel(pc.session, args[0]!);
        let txid: string;
        if (rec.role === 'payee') {
          const payee = new Payee({ ...pc, policy: DEFAULT_POLICY, log: (m) => ctx.out.info(m) });
          try {
            txid = await payee.closeChannel(rec.id);
          } finally {
            await payee.shutdown();
          }
        } else {
          const link = await connect(payerRecord(pc, rec.id).peer, pc.seed, rec.peerKey);
          try {
            txid = await (await PayerSession.start(pc, link, rec.id)).close();
          } finally {
            await link.close();
          }
        }
        ctx.out.result({ id: rec.id, closeTxid: txid }, `closing ${rec.id}: ${txid}`);
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
    .description('the channels of this datadir')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, _args, opts) => {
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const rows = listChannels(pc.session).map((r) => summary(r, null));
        ctx.out.result({ channels: rows }, rows.length === 0 ? 'no channels' : rows.map((r) => `${r.id}  ${r.role}  ${r.status}  ${r.capacity} sats  expiry ${r.expiry}`));
      }),
    );

  channel
    .command('show')
    .description('one channel: capacity, paid, remaining, expiry, state, txids')
    .argument('<channel-id>', 'the channel')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, args, opts) => {
        const pc = await unlockedContext(ctx, opts.passphraseFile);
        const rec = getChannel(pc.session, args[0]!);
        let paid: bigint | null = null;
        if (rec.role === 'payee' && rec.funding) paid = readPaymentState(pc.session, ctx.networkDir, rec.id).cumulative;
        const doc = summary(rec, paid);
        ctx.out.result(doc, fieldLines(doc));
      }),
    );
}
