/** `swarmpay wallet create|address|balance|info|send`. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { parseSats, formatBtc } from '../bitcoin/amount.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { withContext } from './command.js';
import { feeRateFor, parseCount } from './args.js';

export function registerWallet(program: Command): void {
  const wallet = program.command('wallet').description('the HD wallet (BIP39 seed, BIP84 native segwit account)');

  wallet
    .command('create')
    .description('create a wallet (24 words), or restore one with --restore')
    .option('--restore', 'restore from an existing mnemonic (from --mnemonic-file or a prompt)')
    .option('--mnemonic-file <file>', 'with --restore: read the mnemonic from FILE; else: write the new mnemonic to FILE (mode 0600)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ restore?: boolean; mnemonicFile?: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        // Checked again when the keystore is written; here so that nothing is asked for in vain.
        ctx.swarmpay.checkNoWallet();
        const showOnTerminal = !opts.restore && opts.mnemonicFile === undefined;
        if (showOnTerminal && !process.stderr.isTTY) {
          throw new SwarmpayError('USAGE', 'the new mnemonic must go to a file or a terminal, never to a log', { hint: 'pass --mnemonic-file FILE' });
        }
        if (!opts.restore && opts.mnemonicFile !== undefined && existsSync(opts.mnemonicFile)) {
          throw new SwarmpayError('INVALID_FILE', `${opts.mnemonicFile} already exists`, { hint: 'choose a new file for the mnemonic; swarmpay does not overwrite files' });
        }
        const restore = opts.restore ? await ctx.prompt.mnemonic(opts.mnemonicFile) : undefined;
        const passphrase = await ctx.prompt.passphrase(opts.passphraseFile, { confirm: true });
        const file = opts.mnemonicFile;
        const created = ctx.swarmpay.createWallet({ passphrase, ...(restore === undefined ? {} : { mnemonic: restore }), ...(file === undefined ? {} : { backup: (m: string) => writeFileAtomic(file, m + '\n', 0o600) }) });
        const { mnemonic, ...pub } = created;
        if (mnemonic !== null && showOnTerminal) {
          process.stderr.write(`\n${ctx.out.color.bold('Write down these 24 words. They are shown once, and they are the only backup of this wallet:')}\n\n${mnemonic}\n\n`);
          await ctx.prompt.pause('Press enter when you have written them down');
        }
        ctx.out.result(
          { ...pub, mnemonicFile: opts.restore ? null : (opts.mnemonicFile ?? null) },
          [`${pub.restored ? 'restored' : 'created'} ${pub.network} wallet ${pub.fingerprint} (${pub.path})`, `keystore: ${pub.keystore}`],
        );
      }),
    );

  wallet
    .command('address')
    .description('the first receive address not yet paid')
    .action(
      withContext(async (ctx) => {
        const a = await ctx.swarmpay.address();
        ctx.out.result({ address: a.address, path: a.path }, a.address);
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
    .command('info')
    .description('the wallet\'s network, account path, xpub and keystore')
    .action(
      withContext(async (ctx) => {
        const doc = ctx.swarmpay.info();
        ctx.out.result(doc, [`network:     ${doc.network}`, `fingerprint: ${doc.fingerprint}`, `path:        ${doc.path}`, `xpub:        ${doc.xpub}`, `keystore:    ${doc.keystore} (${doc.protector})`, `created:     ${doc.created}`]);
      }),
    );

  wallet
    .command('send')
    .description('pay an address; the fee is shown before anything is signed')
    .argument('<address>', 'the address to pay')
    .argument('<sats>', 'the amount, in whole satoshis')
    .option('--fee-rate <sat/vB>', 'fee rate in whole sat/vB (default 2 on regtest; required elsewhere)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .option('--wait <confirmations>', 'wait until the payment has this many confirmations')
    .action(
      withContext<{ feeRate?: string; passphraseFile?: string; wait?: string }>(async (ctx, args, opts) => {
        const [to = '', satsText = ''] = args;
        const amount = parseSats(satsText);
        const feeRate = feeRateFor(ctx.network, opts.feeRate);
        const confirmations = opts.wait === undefined ? 0 : parseCount(opts.wait, '--wait', 1, 1000);
        const summary = (s: { to: string; amount: bigint; fee: bigint; feeRate: bigint }) => `send ${s.amount} sats to ${s.to}, fee ${s.fee} sats (${s.feeRate} sat/vB)`;
        const r = await ctx.swarmpay.send(to, amount, {
          feeRate,
          passphrase: ctx.passphrase(opts.passphraseFile),
          confirm: (s) => ctx.prompt.confirm(`${summary(s)}?`),
          confirmations,
          onProgress: (c, w) => ctx.out.progress(`waiting for confirmations: ${c}/${w}`),
        });
        ctx.out.result(r, [`sent: ${r.txid}`, `${summary(r)}, ${r.vsize} vB`]);
      }),
    );
}
