/** `swarmpay escrow offer|accept|claim|refund|serve|list|show`. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { parseSats } from '../bitcoin/amount.js';
import { attest, parsePcrAllowList } from '../tpm/attestation.js';
import { listIdentities } from '../tpm/trust-store.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { DEFAULT_ACCEPT_TIMEOUT, acceptOffer, recoverItem, refundEscrow, type AcceptOptions, type AcceptSummary } from '../escrow/buyer.js';
import { DEFAULT_BUMP_AFTER, EscrowServer, fetchOffer, sendAcceptance } from '../escrow/online.js';
import { MAX_ITEM_BYTES, parseOffer, type Offer, type OfferAttestation } from '../escrow/offer.js';
import { DEFAULT_CLAIM_MARGIN, claimConfirmations, claimEscrow, createOffer, parseAcceptance, takeAcceptance } from '../escrow/seller.js';
import { getEscrow, listEscrows, writeEscrowFile, type EscrowRecord } from '../escrow/store.js';
import { withContext } from './command.js';
import type { Context } from './context.js';
import { feeRateFor, parseCount, parseFeeRate, parsePcrs } from './args.js';
import { readTextFile } from './input-file.js';
import { peerOf, runServer, serverLimits, serverLog, unlockedContext, withServerLimits, type LimitFlags } from './peer.js';
import { connectPeer } from '../peer/connect.js';
import { fieldLines } from './output.js';
import { DEFAULT_QUOTE_PCRS } from './tpm.js';

const DEFAULT_TIMEOUT = 144;
const DEFAULT_MAX_TIMEOUT = 4032;

function readBytes(file: string, what: string, max: number): Buffer {
  try {
    const size = statSync(file).size;
    if (size > max) throw new SwarmpayError('INVALID_FILE', `the ${what} ${file} is ${size} bytes; at most ${max} are accepted`);
    return readFileSync(file);
  } catch (e) {
    if (e instanceof SwarmpayError) throw e;
    throw new SwarmpayError('INVALID_FILE', `cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { hint: 'check the path' });
  }
}

function readJson(file: string, what: string): unknown {
  const text = readTextFile(file, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SwarmpayError('INVALID_FILE', `the ${what} ${file} is not JSON: ${(e as Error).message}`, { hint: 'nothing was changed' });
  }
}

function summary(rec: EscrowRecord): Record<string, unknown> {
  return {
    id: rec.id,
    role: rec.role,
    status: rec.status,
    item: rec.offer.item,
    price: BigInt(rec.offer.price),
    attested: rec.offer.attestation !== undefined,
    expires: rec.offer.expires,
    timeout: rec.acceptance?.timeout ?? null,
    fundingTxid: rec.acceptance?.funding.txid ?? null,
    claimTxid: rec.claimTxid,
    refundTxid: rec.refundTxid,
  };
}

/** What the buyer is asked to agree to, one fact a line. */
function acceptSummaryLines(s: AcceptSummary, learnedKey: string | null): string[] {
  const hours = (s.timeoutBlocks * 10) / 60;
  const a = s.attestation;
  return [
    `offer ${s.id}: ${s.item.name} (${s.item.size} bytes)`,
    `price:    ${s.price} sats`,
    `fee:      ${s.fee} sats (${s.feeRate} sat/vB)`,
    `timeout:  ${s.timeoutBlocks} blocks, height ${s.timeoutHeight} (about ${hours < 48 ? `${Math.round(hours)} hours` : `${Math.round(hours / 24)} days`}): if the seller never claims, the coins come back after that`,
    `seller:   ${s.seller}${learnedKey !== null ? ` (its link key ${learnedKey.slice(0, 16)}… learned on first use)` : ''}`,
    `attested: ${a ? `yes, TPM key ${a.akName}${vouchNote(a)}; ${freshNote(a)}` : 'no'}`,
  ];
}

/** Whether the quote was made for this buyer, as the consent summary says it. */
function freshNote(a: OfferAttestation): string {
  return a.fresh ? 'quoted now for your nonce' : "the offer's own quote (its nonce is the offer digest): it can be replayed, it does not show the device's state now";
}

/** Said whenever an attested offer is accepted from a file: its quote proves less than a fresh one. */
function replayableWarning(): string {
  return `the TPM quote of offer files is the one made with the offer (its nonce is the offer digest): anyone holding the offer can replay it, so it shows the device's state when the offer was made, not now; accept online (--peer/--peer-cmd) for a quote made for your nonce`;
}

/** Who vouches for an offer's AK, as a note after its name. */
function vouchNote(a: OfferAttestation): string {
  if (a.vouchedBy !== null) return ` (enrolled${a.vouchedBy.label ? `: ${a.vouchedBy.label}` : ''}, EK certified by "${a.vouchedBy.ek.issuer}")`;
  return a.akPinned ? ' (pinned with --ak)' : ' (nobody vouches for this key: not enrolled, not pinned)';
}

/** Said loudly whenever an offer is accepted on a quote by an AK nobody vouches for. */
function unvouchedWarning(a: OfferAttestation): string {
  return `nobody vouches for the TPM key ${a.akName} that attested this offer: it is neither enrolled (\`swarmpay tpm enroll\`) nor pinned with --ak, so the quote does not show which device made the offer; --require-attestation refuses such an offer`;
}

/** The buyer's checks as the flags give them. */
function acceptChecks(opts: { maxPrice?: string; requireAttestation?: boolean; expectPcrs?: string; ak?: string; enrolled?: boolean; timeout?: string; feeRate?: string }, ctx: Context): AcceptOptions {
  if (opts.enrolled && opts.ak !== undefined) throw new SwarmpayError('USAGE', 'give --ak or --enrolled, not both', { hint: '--enrolled trusts every AK `tpm trust list` shows; --ak one key' });
  // Expecting PCR values or an AK of a quote is asking for one: an offer without it is refused.
  // The trust store is always consulted: an enrolled AK is vouched for. --enrolled accepts only such a one.
  const checks: AcceptOptions['checks'] = { requireAttestation: !!opts.requireAttestation || opts.expectPcrs !== undefined || opts.ak !== undefined || !!opts.enrolled, enrolled: listIdentities(ctx.networkDir) };
  if (opts.enrolled) checks.requireEnrolled = true;
  if (opts.maxPrice !== undefined) checks.maxPrice = parseSats(opts.maxPrice, '--max-price');
  if (opts.expectPcrs !== undefined) checks.expectPcrs = parsePcrAllowList(readTextFile(opts.expectPcrs, 'PCR allow list'));
  if (opts.ak !== undefined) checks.ak = readTextFile(opts.ak, 'AK public key');
  const o: AcceptOptions = { checks, feeRate: feeRateFor(ctx.network, opts.feeRate) };
  if (opts.timeout !== undefined) o.timeoutBlocks = parseCount(opts.timeout, '--timeout', 1, 52_560);
  return o;
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
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ item: string; price: string; name?: string; timeout: string; maxTimeout: string; confirmations: string; expires: string; attest?: boolean; pcrs: string; out?: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const price = parseSats(opts.price, '--price');
        const timeout = { min: parseCount(opts.timeout, '--timeout', 1, 52_560), max: parseCount(opts.maxTimeout, '--max-timeout', 1, 52_560) };
        if (timeout.min > timeout.max) throw new SwarmpayError('USAGE', `--timeout ${timeout.min} is above --max-timeout ${timeout.max}`);
        const confirmations = parseCount(opts.confirmations, '--confirmations', 1, 100);
        const expiresIn = parseCount(opts.expires, '--expires', 1, 24 * 365) * 3600;
        const pcrs = parsePcrs(opts.pcrs);
        const item = readBytes(opts.item, 'item', MAX_ITEM_BYTES);
        const wc = await unlockedContext(ctx, opts.passphraseFile);
        const tpm = opts.attest ? await ctx.env.tpm() : null;
        const r = await createOffer(wc, {
          name: opts.name ?? path.basename(opts.item), item, price, timeout, confirmations, expiresIn,
          ...(tpm ? { attest: (nonce: Buffer) => attest(tpm, nonce, pcrs) } : {}),
        });
        const offerText = JSON.stringify(r.offer, null, 2) + '\n';
        const offerFile = opts.out ?? writeEscrowFile(ctx.networkDir, `${r.offer.id}.offer.json`, offerText);
        if (opts.out !== undefined) {
          writeFileAtomic(opts.out, offerText, 0o644);
          writeFileAtomic(`${opts.out}.enc`, r.ciphertext, 0o644);
        }
        const ciphertextFile = opts.out !== undefined ? `${opts.out}.enc` : r.ciphertextFile;
        ctx.out.result({ id: r.offer.id, offer: offerFile, ciphertext: ciphertextFile, price, hash: r.offer.hash, attested: r.offer.attestation !== undefined, expires: r.offer.expires }, [
          `offer ${r.offer.id}: ${r.offer.item.name} (${r.offer.item.size} bytes) for ${price} sats${r.offer.attestation ? ', attested by the TPM' : ''}`,
          `give the buyer ${offerFile} and ${ciphertextFile}`,
        ]);
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
    .option('--fee-rate <sat/vB>', 'fee rate of the funding (default 2 on regtest)')
    .option('--out <file>', 'also write the acceptance for the seller to FILE')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ ciphertext?: string; peer?: string; peerCmd?: string; peerKey?: string; maxPrice?: string; timeout?: string; requireAttestation?: boolean; expectPcrs?: string; ak?: string; enrolled?: boolean; feeRate?: string; out?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const online = opts.peer !== undefined || opts.peerCmd !== undefined;
        // Consent: asked on a terminal; without one (or with --yes) the price must be capped beforehand.
        if (!ctx.prompt.interactive && opts.maxPrice === undefined) {
          throw new SwarmpayError('USAGE', 'escrow accept needs --max-price when it cannot ask (no terminal, or --yes): it would pay whatever the offer names', { hint: 'pass --max-price SATS; nothing was paid' });
        }
        const ao = acceptChecks(opts, ctx);
        let offer: Offer;
        let ciphertext: Buffer;
        if (online && args[0] !== undefined && !/^[0-9a-f]{16}$/.test(args[0])) throw new SwarmpayError('USAGE', `with --peer or --peer-cmd, "${args[0]}" must be an offer id (16 hex digits)`);
        if (!online) {
          if (args[0] === undefined) throw new SwarmpayError('USAGE', 'give the offer file, or --peer / --peer-cmd to fetch it from the seller');
          offer = parseOffer(readJson(args[0], 'offer'));
          // OFFER.enc (as `escrow offer --out` writes), else ID.enc beside it (as `escrow offer` names them without --out).
          const beside = [`${args[0]}.enc`, path.join(path.dirname(args[0]), `${offer.id}.enc`)];
          ciphertext = readBytes(opts.ciphertext ?? beside.find((f) => existsSync(f)) ?? beside[0]!, 'ciphertext', MAX_ITEM_BYTES + 64);
        }
        const peer = online ? peerOf(opts) : null;
        const wc = await unlockedContext(ctx, opts.passphraseFile);
        const link = peer ? await connectPeer(peer, wc.wallet.peerKey, opts.peerKey) : null;
        try {
          let it: AsyncIterator<Buffer> | undefined;
          if (link) {
            let quote: unknown;
            let nonce: Buffer;
            ({ offer, ciphertext, it, quote, nonce } = await fetchOffer(link, args[0] ?? null));
            ao.checks.fresh = { nonce, quote };
            // A buyer who requires attestation is refused by checkOffer; any other is told.
            if (offer.attestation !== undefined && quote === null && !ao.checks.requireAttestation) {
              ctx.out.warn(`offer ${offer.id} is attested, but the seller sent no fresh quote for your nonce (its \`escrow serve\` has no TPM at hand): it is accepted as not attested`);
            }
          }
          const learned = link !== null && opts.peerKey === undefined ? link.remoteKey.toString('hex') : null;
          if (learned !== null) ctx.out.warn(`the seller's link key ${learned} was learned on first use: nothing proves this is the seller you meant; pass --peer-key to pin it`);
          let warned = false;
          const warnUnvouched = (a: OfferAttestation | null) => {
            if (a === null || warned) return;
            warned = true;
            if (!a.fresh) ctx.out.warn(replayableWarning());
            if (!a.akVouched) ctx.out.warn(unvouchedWarning(a));
          };
          // Before anything is paid: the warning, then (on a terminal) the summary and the question.
          ao.confirm = async (sm) => {
            warnUnvouched(sm.attestation);
            if (!ctx.prompt.interactive) return true;
            ctx.out.info(acceptSummaryLines(sm, learned).join('\n'));
            return ctx.prompt.confirm(`Pay ${sm.price} sats (and ${sm.fee} sats fee) into escrow ${sm.id}?`);
          };
          const r = await acceptOffer(wc, offer!, ciphertext!, ao);
          warnUnvouched(r.attestation); // accepted before: no question was asked
          const acceptanceText = JSON.stringify(r.acceptance, null, 2) + '\n';
          const acceptanceFile = writeEscrowFile(ctx.networkDir, `${r.rec.id}.acceptance.json`, acceptanceText);
          if (opts.out !== undefined) writeFileAtomic(opts.out, acceptanceText, 0o644);
          if (link && it) {
            try {
              await sendAcceptance(link, it, r.acceptance);
            } catch (e) {
              // The coins are in the contract already: say how the seller can still learn of it.
              if (!(e instanceof SwarmpayError)) throw e;
              throw new SwarmpayError(e.code, `escrow ${r.rec.id} is funded (${r.acceptance.funding.txid}), but the seller did not take the acceptance: ${e.message}`, {
                hint: `run the same command again (it does not pay twice), or give the seller ${opts.out ?? acceptanceFile}; from height ${r.acceptance.timeout} on, \`escrow refund\` takes the coins back`,
                cause: e,
              });
            }
          }
          const a = r.attestation;
          // Over --peer-cmd the seller's `escrow serve --stdio` ends with this link, before the funding confirms: it claims only if told to.
          const sellerMustRun = link !== null && opts.peerCmd !== undefined ? `swarmpay escrow claim ${r.rec.id}` : null;
          ctx.out.result(
            { id: r.rec.id, fundingTxid: r.acceptance.funding.txid, fee: r.fee, price: BigInt(r.rec.offer.price), timeout: r.acceptance.timeout, acceptance: opts.out ?? acceptanceFile, attested: a !== null, akName: a?.akName ?? null, akPinned: a?.akPinned ?? null, akVouched: a?.akVouched ?? null, vouchedBy: a?.vouchedBy ?? null, quoteFresh: a?.fresh ?? null, pcrs: a?.pcrs ?? null, sellerTook: link !== null, sellerKeyLearned: learned !== null, sellerMustRun },
            [
              `escrow ${r.rec.id}: funded ${r.rec.offer.price} sats in ${r.acceptance.funding.txid}${r.fee === null ? ' (accepted before)' : ` (fee ${r.fee} sats)`}`,
              a ? `offer attested by TPM key ${a.akName}${vouchNote(a)}; ${freshNote(a)}` : 'offer not attested',
              !link ? `give the seller ${opts.out ?? acceptanceFile}` : sellerMustRun === null ? 'the seller took the acceptance and claims once the funding confirms' : `the seller took the acceptance, but its server ends with this link: the seller must run \`${sellerMustRun}\` once the funding has ${claimConfirmations(r.rec)} confirmation(s), before height ${r.acceptance.timeout} (or keep \`escrow serve\` running)`,
              `then: swarmpay escrow claim ${r.rec.id} --out FILE (the item), or after height ${r.acceptance.timeout}: swarmpay escrow refund ${r.rec.id}`,
            ],
          );
        } finally {
          await link?.close();
        }
      }),
    );

  escrow
    .command('claim')
    .description('the seller: take the coins by revealing K; the buyer: read K from the chain and recover the item')
    .argument('<escrow-id>', 'the escrow (the offer id)')
    .option('--acceptance <file>', 'seller: the acceptance the buyer sent')
    .option('--out <file>', 'buyer: write the item to FILE')
    .option('--wait', 'seller: wait for the funding\'s confirmations; buyer: wait for the seller\'s claim')
    .option('--force', 'seller: claim even within the safety margin of the timeout (races the buyer\'s refund)')
    .option('--margin <blocks>', 'seller: blocks before the timeout from which claiming is refused', String(DEFAULT_CLAIM_MARGIN))
    .option('--fee-rate <sat/vB>', 'seller: fee rate of the claim (default: the node\'s estimate, at least 2)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ acceptance?: string; out?: string; wait?: boolean; force?: boolean; margin: string; feeRate?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const margin = parseCount(opts.margin, '--margin', 1, 10_000);
        const acceptance = opts.acceptance === undefined ? null : parseAcceptance(readJson(opts.acceptance, 'acceptance'));
        const wc = await unlockedContext(ctx, opts.passphraseFile);
        const rec = getEscrow(wc.session, args[0]!);
        const pollMs = ctx.network === 'regtest' ? 200 : 10_000;
        if (rec.role === 'buyer') {
          if (opts.out === undefined) throw new SwarmpayError('USAGE', 'as the buyer, give --out FILE for the item');
          const r = await recoverItem(wc, rec.id, opts.out, opts.wait ? { wait: { pollMs, onWait: (tip, t) => ctx.out.progress(`waiting for the seller's claim (tip ${tip}, refund possible at ${t})`) } } : {});
          ctx.out.result({ id: rec.id, role: 'buyer', claimTxid: r.claimTxid, item: r.file, size: r.size, sha256: r.sha256, itemMatches: true }, [`escrow ${rec.id}: the seller claimed in ${r.claimTxid}`, `item written to ${r.file} (${r.size} bytes, SHA-256 matches the offer)`]);
          return;
        }
        if (acceptance !== null) {
          if (acceptance.offer !== rec.id) throw new SwarmpayError('INVALID_FILE', `the acceptance is for offer ${acceptance.offer}, not ${rec.id}`, { hint: 'nothing was changed' });
          await takeAcceptance(wc, acceptance, margin);
        }
        // Without --fee-rate, the node's estimate when the claim is made (after any --wait).
        const feeRate = opts.feeRate === undefined ? null : parseFeeRate(opts.feeRate);
        const r = await claimEscrow(wc, rec.id, { feeRate, margin, force: !!opts.force, ...(opts.wait ? { wait: { pollMs, onProgress: (c, w) => ctx.out.progress(`funding: ${c}/${w} confirmations`) } } : {}) });
        ctx.out.result({ id: rec.id, role: 'seller', claimTxid: r.txid, fee: r.fee, feeRate: r.feeRate, price: BigInt(rec.offer.price) }, `escrow ${rec.id}: claimed ${rec.offer.price} sats in ${r.txid}${r.fee === null ? ' (claimed before)' : ` (fee ${r.fee} sats, ${r.feeRate} sat/vB)`}`);
      }),
    );

  escrow
    .command('refund')
    .description('the buyer: take the coins back after the timeout if the seller never claimed')
    .argument('<escrow-id>', 'the escrow (the offer id)')
    .option('--fee-rate <sat/vB>', 'fee rate of the refund (default 2 on regtest)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ feeRate?: string; passphraseFile?: string }>(async (ctx, args, opts) => {
        const feeRate = feeRateFor(ctx.network, opts.feeRate);
        const wc = await unlockedContext(ctx, opts.passphraseFile);
        const r = await refundEscrow(wc, args[0]!, feeRate);
        ctx.out.result({ id: args[0], refundTxid: r.txid, fee: r.fee }, `escrow ${args[0]}: refunded in ${r.txid}${r.fee === null ? ' (refunded before)' : ` (fee ${r.fee} sats)`}`);
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
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<LimitFlags & { listen: string; stdio?: boolean; poll: string; margin: string; feeRate?: string; bumpAfter: string; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const pollMs = parseCount(opts.poll, '--poll', 1, 86_400) * 1000;
        const limits = serverLimits(opts);
        const margin = parseCount(opts.margin, '--margin', 1, 10_000);
        const feeRate = opts.feeRate === undefined ? null : parseFeeRate(opts.feeRate);
        const bumpAfter = parseCount(opts.bumpAfter, '--bump-after', 1, 1000);
        const wc = await unlockedContext(ctx, opts.passphraseFile);
        // The TPM is reached only when a buyer enrolls it or asks for an attested offer (a fresh quote over its nonce);
        // a seller without one refuses enrollment (TPM_UNAVAILABLE) and sends attested offers without a fresh quote.
        const server = new EscrowServer(wc, { feeRate, margin, bumpAfter, log: serverLog, tpm: async () => (ctx.env.tpmSpec.kind === 'none' ? null : ctx.env.tpm()) });
        await runServer(ctx, { listen: opts.listen, stdio: !!opts.stdio, key: wc.wallet.peerKey, limits, pollMs, log: serverLog, what: 'buyer', serve: (link) => server.serve(link), tick: () => server.claimReady() });
        await server.claimReady();
        serverLog('stopped');
      }),
    );

  escrow
    .command('list')
    .description('the escrows of this datadir')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, _args, opts) => {
        const wc = await unlockedContext(ctx, opts.passphraseFile);
        const rows = listEscrows(wc.session).map(summary);
        ctx.out.result({ escrows: rows }, rows.length === 0 ? 'no escrows' : rows.map((r) => `${r.id}  ${r.role}  ${r.status}  ${r.price} sats  ${(r.item as { name: string }).name}`));
      }),
    );

  escrow
    .command('show')
    .description('one escrow: offer, state and each step\'s txid')
    .argument('<escrow-id>', 'the escrow (the offer id)')
    .option('--passphrase-file <file>', 'read the keystore passphrase from FILE')
    .action(
      withContext<{ passphraseFile?: string }>(async (ctx, args, opts) => {
        const wc = await unlockedContext(ctx, opts.passphraseFile);
        const doc = summary(getEscrow(wc.session, args[0]!));
        ctx.out.result(doc, fieldLines(doc));
      }),
    );
}
