/** `swarmpay escrow offer|accept|claim|refund|serve|list|show`: flags in, one library call, the result out. */
import path from 'node:path';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { parseSats } from '../bitcoin/amount.js';
import { parsePcrAllowList } from '../tpm/attestation.js';
import type { AcceptConsent, AcceptedEscrow, AcceptFrom, AcceptInput, ClaimProgress } from '../api/escrow.js';
import { DEFAULT_ACCEPT_TIMEOUT, DEFAULT_BUMP_AFTER, DEFAULT_CLAIM_MARGIN, MAX_ITEM_BYTES } from '../escrow/defaults.js';
import { withContext } from './command.js';
import { timeoutOption, waitHooks } from './wait.js';
import { feeRateFor, parseCount, parseFeeRate, parsePcrs } from './args.js';
import { readTextFile } from './input-file.js';
import { runUntilSignal, serverLimits, serverLog, withServerLimits, type LimitFlags } from './peer.js';
import { fieldLines } from './fields.js';
import { DEFAULT_QUOTE_PCRS } from './tpm.js';

const DEFAULT_TIMEOUT = 144;
const DEFAULT_MAX_TIMEOUT = 4032;

/** What the buyer is asked to agree to, one fact a line. */
function acceptSummaryLines(s: AcceptConsent): string[] {
  const hours = (s.timeoutBlocks * 10) / 60;
  const a = s.attestation;
  return [
    `offer ${s.id}: ${s.item.name} (${s.item.size} bytes)`,
    `price:    ${s.price} sats`,
    `fee:      ${s.fee} sats (${s.feeRate} sat/vB)`,
    `timeout:  ${s.timeoutBlocks} blocks, height ${s.timeoutHeight} (about ${hours < 48 ? `${Math.round(hours)} hours` : `${Math.round(hours / 24)} days`}): if the seller never claims, the coins come back after that`,
    `seller:   ${s.seller}${s.learnedKey !== null ? ` (its link key ${s.learnedKey.slice(0, 16)}… learned on first use)` : ''}`,
    `attested: ${a ? `yes, TPM key ${a.akName}${vouchNote(a)}; ${freshNote(a.fresh)}` : 'no'}`,
  ];
}

/** Whether the quote was made for this buyer, as the consent summary says it. */
function freshNote(fresh: boolean): string {
  return fresh ? 'quoted now for your nonce' : "the offer's own quote (its nonce is the offer digest): it can be replayed, it does not show the device's state now";
}

/** Who vouches for an offer's AK, as a note after its name. */
function vouchNote(a: Pick<AcceptedEscrow, 'vouchedBy' | 'akPinned'>): string {
  if (a.vouchedBy !== null) return ` (enrolled${a.vouchedBy.label ? `: ${a.vouchedBy.label}` : ''}, EK certified by "${a.vouchedBy.ek.issuer}")`;
  return a.akPinned ? ' (pinned with --ak)' : ' (nobody vouches for this key: not enrolled, not pinned)';
}

/** What an accepted escrow says, one fact a line. */
function acceptedLines(r: AcceptedEscrow): string[] {
  const seller = !r.sellerTook
    ? `give the seller ${r.acceptance}`
    : r.sellerMustRun === null
      ? 'the seller took the acceptance and claims once the funding confirms'
      : `the seller took the acceptance, but its server ends with this link: the seller must run \`${r.sellerMustRun}\` once the funding has the confirmations its offer asks, before height ${r.timeout} (or keep \`escrow serve\` running)`;
  return [
    `escrow ${r.id}: funded ${r.price} sats in ${r.fundingTxid}${r.fee === null ? ' (accepted before)' : ` (fee ${r.fee} sats)`}`,
    r.attested && r.quoteFresh !== null ? `offer attested by TPM key ${r.akName}${vouchNote(r)}; ${freshNote(r.quoteFresh)}` : 'offer not attested',
    seller,
    `then: swarmpay escrow claim ${r.id} --out FILE (the item), or after height ${r.timeout}: swarmpay escrow refund ${r.id}`,
  ];
}

function claimProgress(p: ClaimProgress): string {
  return p.waitingFor === 'claim' ? `waiting for the seller's claim (tip ${p.tip}, refund possible at ${p.timeout})` : `funding: ${p.confirmations}/${p.wanted} confirmations`;
}

/** The offer's source as the arguments name it: a file, or a seller with --peer or --peer-cmd. */
function acceptFrom(arg: string | undefined, o: { ciphertext?: string; peer?: string; peerCmd?: string; peerKey?: string }): AcceptFrom {
  if (o.peer !== undefined && o.peerCmd !== undefined) throw new SwarmpayError('USAGE', 'give exactly one of --peer HOST:PORT and --peer-cmd "CMD"');
  const peer = o.peer ?? (o.peerCmd === undefined ? undefined : { command: o.peerCmd });
  if (peer === undefined) {
    if (arg === undefined) throw new SwarmpayError('USAGE', 'give the offer file, or --peer / --peer-cmd to fetch it from the seller');
    return { offer: arg, ...(o.ciphertext === undefined ? {} : { ciphertext: o.ciphertext }) };
  }
  return { peer, ...(o.peerKey === undefined ? {} : { peerKey: o.peerKey }), ...(arg === undefined ? {} : { id: arg }) };
}

export function registerEscrow(program: Command): void {
  const escrow = program.command('escrow').description('fair exchange: an item for bitcoin through a hash-locked contract, no trusted escrow');

  escrow
    .command('offer')
    .description('the seller: encrypt an item under a fresh key K and sign an offer of it for H = SHA-256(K)')
    .requiredOption('--item <file>', 'the item to sell')
    .requiredOption('--price <sats>', 'what the buyer pays')
    .option('--name <name>', 'the item\'s name in the offer (default: the file name)')
    .option('--timeout <blocks>', 'the fewest blocks from acceptance to the buyer\'s refund that the seller accepts', String(DEFAULT_TIMEOUT))
    .option('--max-timeout <blocks>', 'the most blocks from acceptance to the timeout that the seller accepts', String(DEFAULT_MAX_TIMEOUT))
    .option('--confirmations <n>', 'confirmations of the funding before the seller claims', '1')
    .option('--expires <hours>', 'hours until the offer expires', '24')
    .option('--attest', 'add a TPM quote whose nonce is the offer\'s digest (online, `escrow serve` quotes afresh for each buyer\'s nonce)')
    .option('--pcrs <list>', 'PCRs the quote covers (SHA-256 bank)', DEFAULT_QUOTE_PCRS)
    .option('--out <file>', 'write the offer to FILE and its ciphertext to FILE.enc')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ item: string; price: string; name?: string; timeout: string; maxTimeout: string; confirmations: string; expires: string; attest?: boolean; pcrs: string; out?: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const price = parseSats(opts.price, '--price');
        const timeout = { min: parseCount(opts.timeout, '--timeout', 1, 52_560), max: parseCount(opts.maxTimeout, '--max-timeout', 1, 52_560) };
        const { Escrows } = await import('../api/escrow.js');
        Escrows.checkOffer({ timeout }); // before the passphrase is asked for
        const confirmations = parseCount(opts.confirmations, '--confirmations', 1, 100);
        const expiresIn = parseCount(opts.expires, '--expires', 1, 24 * 365) * 3600;
        const pcrs = parsePcrs(opts.pcrs);
        const { readBoundedFile } = await import('../escrow/files.js');
        const item = readBoundedFile(opts.item, 'item', MAX_ITEM_BYTES);
        const name = opts.name ?? path.basename(opts.item);
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = await wallet.escrow.offer({ item, name, price, timeout, confirmations, expiresIn, ...(opts.attest ? { attest: { pcrs } } : {}), ...(opts.out === undefined ? {} : { out: opts.out }) });
        ctx.out.result(r, [`offer ${r.id}: ${name} (${item.length} bytes) for ${price} sats${r.attested ? ', attested by the TPM' : ''}`, `give the buyer ${r.offer} and ${r.ciphertext}`]);
      }),
    );

  escrow
    .command('accept')
    .description('the buyer: check an offer and its ciphertext, then fund the hash-locked contract')
    .argument('[offer]', 'the offer file; with --peer or --peer-cmd, the offer id (default: the seller\'s only offer)')
    .option('--ciphertext <file>', 'the ciphertext that came with the offer (default: OFFER.enc, else ID.enc beside the offer)')
    .option('--peer <host:port>', 'fetch the offer from the seller\'s `escrow serve --listen` and hand it the acceptance')
    .option('--peer-cmd <command>', 'run COMMAND and speak to the seller over its stdin/stdout')
    .option('--peer-key <hex>', 'the seller\'s static key (as `escrow serve` prints it): refuse any other')
    .option('--max-price <sats>', 'refuse an offer that asks more')
    .option('--timeout <blocks>', `blocks until the refund is possible (default ${DEFAULT_ACCEPT_TIMEOUT}, within what the offer accepts; an offer that wants more needs it named)`)
    .option('--require-attestation', 'refuse an offer without a valid TPM attestation by an AK you enrolled (`tpm enroll`) or pinned (--ak)')
    .option('--expect-pcrs <file>', 'JSON allow list of the seller\'s PCR values: {"7": "<hex>"} or {"7": ["<hex>", ...]} (implies --require-attestation)')
    .option('--ak <pem-file>', 'the seller TPM\'s AK public key (PEM) you trust (implies --require-attestation)')
    .option('--enrolled', 'require the attestation to be by a TPM enrolled with `tpm enroll` (implies --require-attestation)')
    .option('--fee-rate <sat/vB>', 'fee rate of the funding (default: $SWARMPAY_FEE_RATE, fee-rate= in swarmpay.conf, else 2 on regtest; required elsewhere)')
    .option('--out <file>', 'also write the acceptance for the seller to FILE')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ ciphertext?: string; peer?: string; peerCmd?: string; peerKey?: string; maxPrice?: string; timeout?: string; requireAttestation?: boolean; expectPcrs?: string; ak?: string; enrolled?: boolean; feeRate?: string; out?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const from = acceptFrom(args[0], opts);
        const feeRate = feeRateFor(ctx.env, opts.feeRate);
        const maxPrice = opts.maxPrice === undefined ? undefined : parseSats(opts.maxPrice, '--max-price');
        const timeoutBlocks = opts.timeout === undefined ? undefined : parseCount(opts.timeout, '--timeout', 1, 52_560);
        const expectPcrs = opts.expectPcrs === undefined ? undefined : parsePcrAllowList(readTextFile(opts.expectPcrs, 'PCR allow list'));
        const ak = opts.ak === undefined ? undefined : readTextFile(opts.ak, 'AK public key');
        const input: AcceptInput = {
          feeRate, maxPrice, timeoutBlocks, expectPcrs, ak, requireAttestation: !!opts.requireAttestation, enrolled: !!opts.enrolled, out: opts.out,
          warn: (message) => ctx.out.warn(message),
          // Consent is asked on a terminal; without one (or with --yes) the price must be capped beforehand.
          ...(ctx.prompt.interactive
            ? {
                confirm: (s: AcceptConsent) => ctx.prompt.confirmFacts(acceptSummaryLines(s), `Pay ${s.price} sats (and ${s.fee} sats fee) into escrow ${s.id}?`),
              }
            : {}),
        };
        const { Escrows } = await import('../api/escrow.js');
        Escrows.checkAccept(from, input); // before the passphrase is asked for
        const wallet = await ctx.unlockWallet(opts.passphraseFile, 'spend');
        const r = await wallet.escrow.accept(from, input);
        ctx.out.result(r, acceptedLines(r));
      }),
    );

  escrow
    .command('claim')
    .description('the seller: take the coins by revealing K; the buyer: read K from the chain and recover the item')
    .argument('<escrow-id>', 'the escrow (the offer id)')
    .option('--acceptance <file>', 'seller: the acceptance the buyer sent')
    .option('--out <file>', 'buyer: write the item to FILE')
    .option('--wait', 'seller: wait for the funding\'s confirmations; buyer: wait for the seller\'s claim (the funding\'s txid is printed first)')
    .addOption(timeoutOption())
    .option('--force', 'seller: claim even within the safety margin of the timeout (races the buyer\'s refund)')
    .option('--margin <blocks>', 'seller: blocks before the timeout from which claiming is refused', String(DEFAULT_CLAIM_MARGIN))
    .option('--fee-rate <sat/vB>', 'seller: fee rate of the claim (default: the node\'s estimate, at least 2)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ acceptance?: string; out?: string; wait?: boolean; timeout?: string; force?: boolean; margin: string; feeRate?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const margin = parseCount(opts.margin, '--margin', 1, 10_000);
        const feeRate = opts.feeRate === undefined ? undefined : parseFeeRate(opts.feeRate);
        const hooks = waitHooks(ctx, opts, (txid) => `escrow funding ${txid}; waiting`);
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = await wallet.escrow.claim(args[0]!, { margin, feeRate, acceptance: opts.acceptance, out: opts.out, wait: !!opts.wait, force: !!opts.force, onProgress: (p) => ctx.out.progress(claimProgress(p)), ...hooks });
        ctx.out.result(
          r,
          r.role === 'buyer'
            ? [`escrow ${r.id}: the seller claimed in ${r.claimTxid}`, `item written to ${r.item} (${r.size} bytes, SHA-256 matches the offer)`]
            : `escrow ${r.id}: claimed ${r.price} sats in ${r.claimTxid}${r.fee === null ? ' (claimed before)' : ` (fee ${r.fee} sats, ${r.feeRate} sat/vB)`}`,
        );
      }),
    );

  escrow
    .command('refund')
    .description('the buyer: take the coins back after the timeout if the seller never claimed')
    .argument('<escrow-id>', 'the escrow (the offer id)')
    .option('--fee-rate <sat/vB>', 'fee rate of the refund (default: $SWARMPAY_FEE_RATE, fee-rate= in swarmpay.conf, else 2 on regtest; required elsewhere)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ feeRate?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const feeRate = feeRateFor(ctx.env, opts.feeRate);
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = await wallet.escrow.refund(args[0]!, feeRate);
        ctx.out.result(r, `escrow ${r.id}: refunded in ${r.refundTxid}${r.fee === null ? ' (refunded before)' : ` (fee ${r.fee} sats)`}`);
      }),
    );

  withServerLimits(escrow
    .command('serve'))
    .description('the seller: serve open offers over the peer link, take acceptances, claim once funded, answer TPM enrollment (`tpm enroll`), until SIGINT/SIGTERM')
    .option('--listen <host:port>', 'listen for buyers on TCP', '127.0.0.1:9736')
    .option('--stdio', 'serve one buyer on stdin/stdout (for --peer-cmd, e.g. over ssh)')
    .option('--poll <seconds>', 'how often to look at the escrows: fundings confirmed (claim) or gone (offer again), claims to send again or bump', '5')
    .option('--margin <blocks>', 'refuse acceptances and claims this near the timeout', String(DEFAULT_CLAIM_MARGIN))
    .option('--fee-rate <sat/vB>', 'fee rate of the claims (default: the node\'s estimate at each claim, at least 2)')
    .option('--bump-after <blocks>', 'bump a claim by CPFP once it has waited this many blocks unconfirmed (every block within --margin of the timeout)', String(DEFAULT_BUMP_AFTER))
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<LimitFlags & { listen: string; stdio?: boolean; poll: string; margin: string; feeRate?: string; bumpAfter: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const pollMs = parseCount(opts.poll, '--poll', 1, 86_400) * 1000;
        const limits = serverLimits(opts);
        const margin = parseCount(opts.margin, '--margin', 1, 10_000);
        const feeRate = opts.feeRate === undefined ? undefined : parseFeeRate(opts.feeRate);
        const bumpAfter = parseCount(opts.bumpAfter, '--bump-after', 1, 1000);
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const listen = opts.stdio ? { stdio: true as const } : { tcp: opts.listen };
        await runUntilSignal(ctx, await wallet.escrow.serve({ listen, margin, feeRate, bumpAfter, limits, pollMs, log: serverLog }));
        serverLog('stopped');
      }),
    );

  escrow
    .command('list')
    .description('the escrows of this datadir')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, _args, opts) => {
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const r = wallet.escrow.list();
        ctx.out.result(r, r.escrows.length === 0 ? 'no escrows' : r.escrows.map((e) => `${e.id}  ${e.role}  ${e.status}  ${e.price} sats  ${e.item.name}`));
      }),
    );

  escrow
    .command('show')
    .description('one escrow: offer, state and each step\'s txid')
    .argument('<escrow-id>', 'the escrow (the offer id)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, args, opts) => {
        const wallet = await ctx.unlockWallet(opts.passphraseFile);
        const doc = wallet.escrow.show(args[0]!);
        ctx.out.result(doc, fieldLines({ ...doc }));
      }),
    );
}
