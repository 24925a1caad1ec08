/** `swarmpay wallet create|address|balance|info|send`. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { parseSats, formatBtc } from '../bitcoin/amount.js';
import { addressToScript } from '../bitcoin/address.js';
import { keystorePath, readKeystore } from '../keystore/keystore.js';
import { newMnemonic } from '../wallet/mnemonic.js';
import { createWallet, receiveAddress, unlockSeed, walletAccount, walletBalance, walletPublic } from '../wallet/wallet.js';
import { planSend, signSend } from '../wallet/send.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { withContext } from './command.js';
import { feeRateFor, parseCount } from './args.js';

export const MIN_PASSPHRASE_LENGTH = 8;
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
        const file = keystorePath(ctx.networkDir);
        // Checked again under the lock when writing; here so that nothing is asked for in vain.
        if (existsSync(file)) throw new SwarmpayError('KEYSTORE_EXISTS', `a wallet already exists at ${file}`, { hint: 'use another --datadir; swarmpay never overwrites a keystore' });
        const showOnTerminal = !opts.restore && opts.mnemonicFile === undefined;
        if (showOnTerminal && !process.stderr.isTTY) {
          throw new SwarmpayError('USAGE', 'the new mnemonic must go to a file or a terminal, never to a log', { hint: 'pass --mnemonic-file FILE' });
        }
        if (!opts.restore && opts.mnemonicFile !== undefined && existsSync(opts.mnemonicFile)) {
          throw new SwarmpayError('INVALID_FILE', `${opts.mnemonicFile} already exists`, { hint: 'choose a new file for the mnemonic; swarmpay does not overwrite files' });
        }
        const mnemonic = opts.restore ? await ctx.prompt.mnemonic(opts.mnemonicFile) : newMnemonic();
        const passphrase = await ctx.prompt.passphrase(opts.passphraseFile, { confirm: true });
        if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
          throw new SwarmpayError('WEAK_PASSPHRASE', `the passphrase has ${passphrase.length} characters; it needs at least ${MIN_PASSPHRASE_LENGTH}`, { hint: 'choose a longer passphrase' });
        }
        if (!opts.restore && opts.mnemonicFile !== undefined) writeFileAtomic(opts.mnemonicFile, mnemonic + '\n', 0o600);
        const pub = createWallet(ctx.networkDir, ctx.network, passphrase, mnemonic);
        if (showOnTerminal) {
          process.stderr.write(`\n${ctx.out.color.bold('Write down these 24 words. They are shown once, and they are the only backup of this wallet:')}\n\n${mnemonic}\n\n`);
          await ctx.prompt.pause('Press enter when you have written them down');
        }
        ctx.out.result(
          { network: ctx.network, restored: !!opts.restore, keystore: file, xpub: pub.xpub, fingerprint: pub.fingerprint, path: pub.path, mnemonicFile: opts.restore ? null : (opts.mnemonicFile ?? null) },
          [`${opts.restore ? 'restored' : 'created'} ${ctx.network} wallet ${pub.fingerprint} (${pub.path})`, `keystore: ${file}`],
        );
      }),
    );

  wallet
    .command('address')
    .description('the first receive address not yet paid')
    .action(
      withContext(async (ctx) => {
        const a = await receiveAddress(ctx.env.chain(), ctx.networkDir, ctx.network);
        ctx.out.result({ address: a.address, path: a.path }, a.address);
      }),
    );

  wallet
    .command('balance')
    .description('confirmed and unconfirmed balance, in sats')
    .action(
      withContext(async (ctx) => {
        const b = await walletBalance(ctx.env.chain(), ctx.networkDir, ctx.network);
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
        const p = walletPublic(ctx.networkDir, ctx.network);
        const protector = readKeystore(keystorePath(ctx.networkDir), ctx.network).header.protector.type;
        const doc = { network: ctx.network, keystore: keystorePath(ctx.networkDir), protector, ...p };
        ctx.out.result(doc, [`network:     ${doc.network}`, `fingerprint: ${p.fingerprint}`, `path:        ${p.path}`, `xpub:        ${p.xpub}`, `keystore:    ${doc.keystore} (${protector})`, `created:     ${p.created}`]);
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
        const [to, satsText] = args as [string, string];
        const amount = parseSats(satsText);
        const feeRate = feeRateFor(ctx.network, opts.feeRate);
        const wait = opts.wait === undefined ? 0 : parseCount(opts.wait, '--wait', 1, 1000);
        addressToScript(to, ctx.network); // a bad address fails before the node is asked anything
        const chain = ctx.env.chain();
        const plan = await planSend(chain, walletAccount(ctx.networkDir, ctx.network), ctx.network, to, amount, feeRate);
        const summary = `send ${amount} sats to ${to}, fee ${plan.spend.fee} sats (${feeRate} sat/vB)`;
        if (!(await ctx.prompt.confirm(`${summary}?`))) throw new SwarmpayError('USAGE', 'cancelled; nothing was sent');
        const seed = await unlockSeed(ctx.networkDir, ctx.network, ctx.unlocker(opts.passphraseFile));
        const signed = signSend(plan, seed, ctx.network);
        await chain.broadcast(signed.hex);
        let confirmations = 0;
        if (wait > 0) {
          const tx = await chain.waitForConfirmations(signed.txid, wait, {
            onProgress: (c, w) => ctx.out.progress(`waiting for confirmations: ${c}/${w}`),
            pollMs: ctx.network === 'regtest' ? 200 : 5000,
          });
          confirmations = tx.confirmations;
        }
        ctx.out.result(
          { txid: signed.txid, to, amount, fee: signed.fee, feeRate, vsize: signed.vsize, change: plan.change, confirmations },
          [`sent: ${signed.txid}`, `${summary}, ${signed.vsize} vB`],
        );
      }),
    );
}
