/** `swarmpay wallet create|address|utxos|balance|history|info|send|bump`. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { parseSats, formatBtc } from '../bitcoin/amount.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { withContext } from './command.js';
import { feeRateFor, parseCount, parseFeeRate } from './args.js';
import { timeoutOption, waitHooks } from './wait.js';
import type { HistoryEntry, SendAmount, SendSummary, WalletCoin } from '../api/swarmpay.js';

/** SATS, SATS less the fee (--subtract-fee), or everything (--max): exactly one of them. */
function sendAmount(sats: string | undefined, o: { max?: boolean; subtractFee?: boolean }): SendAmount {
  if (o.max) {
    if (sats !== undefined || o.subtractFee) throw new SwarmpayError('USAGE', '--max sends everything: give no amount and no --subtract-fee', { hint: 'swarmpay wallet send ADDRESS --max' });
    return 'max';
  }
  if (sats === undefined) throw new SwarmpayError('USAGE', 'no amount given: give SATS, or --max for everything', { hint: 'see `swarmpay wallet send --help`' });
  return { sats: parseSats(sats), subtractFee: o.subtractFee === true };
}

/** One history line: when, confirmations, what, the net amount, the fee, the txid, and the addresses paid. */
function historyLine(t: HistoryEntry): string {
  const when = t.time === undefined ? 'unconfirmed     ' : t.time.slice(0, 16).replace('T', ' ');
  const amount = `${t.amount > 0n ? '+' : ''}${t.amount}`;
  const whose = [...(t.channels ?? []).map((id) => `channel ${id}`), ...(t.escrows ?? []).map((id) => `escrow ${id}`), ...(t.replaces ? [`replaces ${t.replaces}`] : [])];
  // What a payment paid others, else where the wallet was paid.
  const paid = t.debits.length > 0 && t.others.length > 0 ? `to ${t.others.map((o) => o.address ?? `script ${o.script}`).join(', ')}` : t.credits.length > 0 ? `at ${t.credits.map((c) => c.address).join(', ')}` : '';
  return [when, `${String(t.confirmations).padStart(6)} conf`, t.kind.padEnd(15), `${amount.padStart(15)} sats`, t.fee === undefined ? '' : `fee ${t.fee}`, t.txid, paid, ...whose].filter((x) => x !== '').join('  ');
}

/** `--fee-rate auto`: the node's estimate, looked up by the library. */
const isAuto = (feeRate: string | undefined) => feeRate?.trim().toLowerCase() === 'auto';

export function registerWallet(program: Command): void {
  const wallet = program.command('wallet').description('the HD wallet (BIP39 seed, BIP84 native segwit account)');

  wallet
    .command('create')
    .description('create a wallet (24 words), or restore one with --restore (a mnemonic of 12, 15, 18, 21 or 24 words)')
    .option('--restore', 'restore from an existing BIP39 mnemonic of 12, 15, 18, 21 or 24 words (from --mnemonic-file or a prompt)')
    .option('--mnemonic-file <file>', 'with --restore: read the mnemonic from FILE; else: write the new mnemonic to FILE (mode 0600)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .option('--bip39-passphrase-file <file>', 'read an optional BIP39 passphrase ("25th word") from FILE, or - for stdin: part of the seed, NOT the keystore passphrase; the mnemonic restores this wallet only with it')
    .option('--bip39-passphrase', 'ask for an optional BIP39 passphrase ("25th word") on the terminal (twice); NOT the keystore passphrase')
    .action(
      withContext<{ restore?: boolean; mnemonicFile?: string; passphraseFile?: string; bip39PassphraseFile?: string; bip39Passphrase?: boolean }>(async (ctx, _args, opts) => {
        // Checked again when the keystore is written; here so that nothing is asked for in vain.
        ctx.swarmpay.checkNoWallet();
        const showOnTerminal = !opts.restore && opts.mnemonicFile === undefined;
        if (showOnTerminal && !process.stderr.isTTY) {
          throw new SwarmpayError('USAGE', 'the new mnemonic must go to a file or a terminal, never to a log', { hint: 'pass --mnemonic-file FILE' });
        }
        if (!opts.restore && opts.mnemonicFile !== undefined && existsSync(opts.mnemonicFile)) {
          throw new SwarmpayError('INVALID_FILE', `${opts.mnemonicFile} already exists`, { hint: 'choose a new file for the mnemonic; swarmpay does not overwrite files' });
        }
        const withBip39 = opts.bip39Passphrase === true || opts.bip39PassphraseFile !== undefined;
        if (opts.bip39Passphrase && opts.bip39PassphraseFile !== undefined) {
          throw new SwarmpayError('USAGE', '--bip39-passphrase asks on the terminal, --bip39-passphrase-file reads a file: give one of them', { hint: 'see `swarmpay wallet create --help`' });
        }
        const fromStdin = [opts.passphraseFile, opts.bip39PassphraseFile, opts.restore ? opts.mnemonicFile : undefined].filter((f) => f === '-');
        if (fromStdin.length > 1) throw new SwarmpayError('USAGE', 'stdin (-) can give only one of the passphrase, the BIP39 passphrase and the mnemonic', { hint: 'read the others from files' });
        const restore = opts.restore ? await ctx.prompt.mnemonic(opts.mnemonicFile) : undefined;
        const bip39Passphrase = withBip39 ? await ctx.prompt.bip39Passphrase(opts.bip39PassphraseFile) : undefined;
        ctx.warnPassphraseOnly(ctx.swarmpay.passphraseOnly('create'));
        const passphrase = await ctx.prompt.passphrase(opts.passphraseFile, { confirm: true });
        const file = opts.mnemonicFile;
        const created = ctx.swarmpay.createWallet({
          passphrase,
          ...(restore === undefined ? {} : { mnemonic: restore }),
          ...(bip39Passphrase === undefined ? {} : { bip39Passphrase }),
          ...(file === undefined ? {} : { backup: (_m: string, text: string) => writeFileAtomic(file, text, 0o600) }),
        });
        const { mnemonic, ...pub } = created;
        if (mnemonic !== null && showOnTerminal) {
          const also = pub.bip39Passphrase ? `\n${ctx.out.color.bold('This wallet also needs its BIP39 passphrase: keep it too, apart from the words. The words without it restore a different, empty wallet.')}\n` : '';
          process.stderr.write(`\n${ctx.out.color.bold('Write down these 24 words. They are shown once, and they are the only backup of this wallet:')}\n\n${mnemonic}\n${also}\n`);
          await ctx.prompt.pause('Press enter when you have written them down');
        }
        ctx.out.result(
          { ...pub, mnemonicFile: opts.restore ? null : (opts.mnemonicFile ?? null) },
          [`${pub.restored ? 'restored' : 'created'} ${pub.network} wallet ${pub.fingerprint} (${pub.path})${pub.bip39Passphrase ? ', with a BIP39 passphrase: the mnemonic restores it only with that passphrase' : ''}`, `keystore: ${pub.keystore}`],
        );
      }),
    );

  wallet
    .command('address')
    .description('the first receive address not yet paid; with --new, one never given out before')
    .option('--new', 'a fresh address each call, paid or not (its index is kept in the datadir)')
    .action(
      withContext<{ new?: boolean }>(async (ctx, _args, opts) => {
        const a = opts.new ? await ctx.swarmpay.newAddress() : await ctx.swarmpay.address();
        ctx.out.result({ address: a.address, path: a.path }, a.address);
      }),
    );

  wallet
    .command('utxos')
    .description('the wallet\'s coins: outpoint, value, confirmations, address, and whether a payment may spend them')
    .action(
      withContext(async (ctx) => {
        const coins = await ctx.swarmpay.utxos();
        const line = (c: WalletCoin) => `${c.txid}:${c.vout}  ${String(c.value).padStart(16)} sats  ${String(c.confirmations).padStart(6)} conf  ${c.kind.padEnd(7)}  ${c.address}  ${c.spendable ? 'spendable' : c.reason}`;
        ctx.out.result({ utxos: coins }, coins.length === 0 ? 'no coins' : coins.map(line));
      }),
    );

  wallet
    .command('balance')
    .description('confirmed and unconfirmed balance, in sats')
    .action(
      withContext(async (ctx) => {
        const b = await ctx.swarmpay.balance();
        ctx.out.result(b, [
          `confirmed:   ${b.confirmed} sats (${formatBtc(b.confirmed)} BTC)`,
          `unconfirmed: ${b.unconfirmed} sats`,
          ...(b.immature > 0n ? [`immature:    ${b.immature} sats`] : []),
        ]);
      }),
    );

  wallet
    .command('history')
    .description('the wallet\'s transactions, newest first: net amount, fee, confirmations, addresses, and which are channel and escrow steps or bumps (needs btcd\'s address index)')
    .option('--limit <n>', 'only the newest N')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin: to label channel and escrow transactions (a TPM keystore needs none)')
    .action(
      withContext<{ limit?: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const limit = opts.limit === undefined ? undefined : parseCount(opts.limit, '--limit', 1, 1_000_000);
        const h = await ctx.swarmpay.history({ ...(limit === undefined ? {} : { limit }), ...(opts.passphraseFile === undefined ? {} : { passphrase: ctx.passphrase(opts.passphraseFile) }) });
        const unlabelled = 'channel and escrow transactions are not labelled (they show as sends and receives)';
        if (h.contracts === 'locked') ctx.out.warn(`${unlabelled}: their records are in the locked keystore; give --passphrase-file to label them`);
        if (h.contractsError) ctx.out.warn(`${unlabelled}: the keystore could not be opened: ${h.contractsError.code}: ${h.contractsError.message}${h.contractsError.hint ? ` (${h.contractsError.hint})` : ''}`);
        ctx.out.result(h, h.transactions.length === 0 ? 'no transactions' : h.transactions.map(historyLine));
      }),
    );

  wallet
    .command('info')
    .description('the wallet\'s network, account path, xpub (and zpub or vpub), whether a BIP39 passphrase is in use, and keystore')
    .action(
      withContext(async (ctx) => {
        const doc = ctx.swarmpay.info();
        const bip39 = doc.bip39Passphrase ? 'a passphrase is in use: the mnemonic restores this wallet only with it' : 'no passphrase';
        ctx.out.result(doc, [`network:     ${doc.network}`, `fingerprint: ${doc.fingerprint}`, `path:        ${doc.path}`, `xpub:        ${doc.xpub}`, `${doc.zpub.slice(0, 4)}:        ${doc.zpub}`, `bip39:       ${bip39}`, `keystore:    ${doc.keystore} (${doc.protector})`, `created:     ${doc.created}`]);
      }),
    );

  wallet
    .command('send')
    .description('pay an address; the fee is shown before anything is signed')
    .argument('<address>', 'the address to pay')
    .argument('[sats]', 'the amount, in whole satoshis (not with --max)')
    .option('--max', 'send every spendable coin, less the fee (no change)')
    .option('--subtract-fee', 'the fee comes out of SATS: the payee gets SATS less the fee')
    .option('--fee-rate <sat/vB>', 'fee rate in sat/vB (up to 3 decimals, e.g. 2.5), or "auto" for the node\'s estimate (default: $SWARMPAY_FEE_RATE, fee-rate= in swarmpay.conf, else 2 on regtest; required elsewhere)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .option('--wait <confirmations>', 'wait until the payment has this many confirmations (its txid is printed first)')
    .addOption(timeoutOption())
    .action(
      withContext<{ max?: boolean; subtractFee?: boolean; feeRate?: string; passphraseFile?: string; wait?: string; timeout?: string }>(async (ctx, args, opts) => {
        const [to = '', satsText] = args;
        const amount = sendAmount(satsText, opts);
        const feeRate = isAuto(opts.feeRate) ? 'auto' : feeRateFor(ctx.env, opts.feeRate);
        const confirmations = opts.wait === undefined ? 0 : parseCount(opts.wait, '--wait', 1, 1000);
        const summary = (s: SendSummary) => `send ${s.amount} sats to ${s.to}, fee ${s.fee} sats (${s.feeRate} sat/vB)${s.change ? `, change ${s.change.value} sats to ${s.change.address}` : ''}`;
        const r = await ctx.swarmpay.send(to, amount, {
          feeRate,
          passphrase: ctx.passphrase(opts.passphraseFile),
          confirm: (s) => ctx.prompt.confirm(`${summary(s)}?`),
          confirmations,
          onProgress: (c, w) => ctx.out.progress(`waiting for confirmations: ${c}/${w}`),
          ...waitHooks(ctx, opts, (txid) => `sent ${txid}; waiting for ${confirmations} confirmation${confirmations === 1 ? '' : 's'}`),
        });
        ctx.out.result(r, [`sent: ${r.txid}`, `${summary(r)}, ${r.vsize} vB`]);
      }),
    );

  wallet
    .command('bump')
    .description('replace an unconfirmed payment of this wallet by the same payment at a higher fee rate (RBF), the extra fee from its change')
    .argument('<txid>', 'the payment to replace')
    .option('--fee-rate <sat/vB>', 'the new fee rate in sat/vB (up to 3 decimals, e.g. 2.5), or "auto" for the node\'s estimate; above the payment\'s own (required)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ feeRate?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const [txid = ''] = args;
        if (opts.feeRate === undefined) throw new SwarmpayError('FEE_RATE_REQUIRED', 'a bump needs the new fee rate', { hint: 'pass --fee-rate <sat/vB> (or auto), above the payment\'s own' });
        const feeRate = isAuto(opts.feeRate) ? 'auto' : parseFeeRate(opts.feeRate);
        const r = await ctx.swarmpay.bump(txid, {
          feeRate,
          passphrase: ctx.passphrase(opts.passphraseFile),
          confirm: (s) => ctx.prompt.confirm(`replace ${s.replaces} (fee ${s.oldFee} sats) by the same payment at ${s.feeRate} sat/vB, fee ${s.fee} sats?`),
        });
        ctx.out.result(r, [`sent: ${r.txid}`, `replaces ${r.replaces}: fee ${r.oldFee} sats, now ${r.fee} sats (${r.feeRate} sat/vB), ${r.vsize} vB${r.change ? `, change ${r.change.value} sats to ${r.change.address}` : ', no change left'}`]);
      }),
    );
}
