/** `swarmpay tpm provision|status|attest|verify|enroll|trust list|trust remove`. */
import { generateStaticKey } from '../peer/keys.js';
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { counterStanding, keystorePath, provisionTpm, readKeystore, rollbackError } from '../keystore/keystore.js';
import { describeSpec } from '../tpm/tpm.js';
import { withContext } from './command.js';
import type { Context } from './context.js';
import { parseNonce, parsePcrs } from './args.js';
import { attest, parsePcrAllowList, verifyAttestation, verifyEnrolledAttestation, type VerifiedAttestation } from '../tpm/attestation.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { readTextFile } from './input-file.js';
import { connectPeer } from '../peer/connect.js';
import { parseCaBundle } from '../tpm/ek-certificate.js';
import { enrollPeer } from '../tpm/enroll.js';
import { listIdentities, removeIdentity, trustStorePath, type TrustedIdentity } from '../tpm/trust-store.js';
import { peerOf } from './peer.js';

/** The PC Client boot-chain PCRs: what a peer usually wants to see. */
export const DEFAULT_QUOTE_PCRS = '0,1,2,3,4,5,6,7';

async function keystoreStatus(ctx: Context): Promise<Record<string, unknown>> {
  let doc;
  try {
    doc = readKeystore(keystorePath(ctx.networkDir), ctx.network);
  } catch (e) {
    if (e instanceof SwarmpayError && e.code === 'WALLET_NOT_FOUND') return { exists: false };
    throw e;
  }
  const p = doc.header.protector;
  if (p.type === 'passphrase') return { exists: true, protector: 'passphrase', sealed: false };
  return { exists: true, protector: 'tpm', sealed: true, pcrs: p.pcrs, counterIndex: `0x${p.counterIndex.toString(16)}`, counterAuth: p.counterAuth === true, fileCounter: doc.header.counter, provisionedOn: p.provisionedOn };
}

export function registerTpm(program: Command): void {
  const tpm = program.command('tpm').description('the TPM 2.0: seal the keystore, anti-rollback counter, attestation');

  tpm
    .command('provision')
    .description('seal the keystore\'s key to the TPM, define its anti-rollback counter (moves a passphrase wallet under the TPM)')
    .option('--pcrs <list>', 'bind the key to these PCRs\' current values (SHA-256 bank), e.g. 7,16', '')
    .option('--force', 'seal again a keystore the TPM already seals (e.g. to other PCRs)')
    .option('--passphrase-file <file>', 'read the current keystore passphrase from FILE')
    .action(
      withContext<{ pcrs: string; force?: boolean; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const pcrs = parsePcrs(opts.pcrs);
        const file = keystorePath(ctx.networkDir);
        const r = await provisionTpm(file, ctx.network, ctx.unlocker(opts.passphraseFile), pcrs, !!opts.force);
        const p = r.header.protector;
        if (p.type !== 'tpm') throw new SwarmpayError('INTERNAL', 'provisioning left a passphrase keystore');
        ctx.out.warn('the keystore now opens only with this TPM' + (pcrs.length ? ` and these PCR values (${pcrs.join(',')})` : '') + ': keep the mnemonic safe, it is the way back if the TPM is lost, cleared or the device boots differently');
        ctx.out.result(
          { provisioned: true, migrated: r.migrated, tpm: p.provisionedOn, pcrs, counterIndex: `0x${p.counterIndex.toString(16)}`, counter: r.header.counter, srkName: p.srkName, srkPersisted: r.srkPersisted },
          [`keystore sealed by ${p.provisionedOn}${pcrs.length ? ` to PCRs ${pcrs.join(',')}` : ''}`, `anti-rollback counter 0x${p.counterIndex.toString(16)} at ${r.header.counter}`],
        );
      }),
    );

  tpm
    .command('status')
    .description('the TPM found, its lockout state, the attestation key, and how the keystore is sealed')
    .action(
      withContext(async (ctx) => {
        const spec = ctx.env.tpmSpec;
        const keystore = await keystoreStatus(ctx);
        if (spec.kind === 'none') {
          ctx.out.warn(
            keystore.protector === 'tpm'
              ? 'no TPM found, but the keystore is sealed by one: it cannot be opened until that TPM is reachable (see --tpm)'
              : 'no TPM: the keystore falls back to a passphrase and attestation is unavailable',
          );
          ctx.out.result({ tpm: null, attestation: 'unavailable', keystore }, ['TPM: none (attestation unavailable)', `keystore: ${keystore.exists ? keystore.protector : 'none'}`]);
          return;
        }
        const t = await ctx.env.tpm();
        const [info, lockout, ak] = [await t.info(), await t.lockout(), await t.akPublic()];
        let refused: { file: string; written: bigint; now: bigint } | null = null;
        if (keystore.protector === 'tpm') {
          const file = keystorePath(ctx.networkDir);
          const doc = readKeystore(file, ctx.network);
          const p = doc.header.protector;
          if (p.type === 'tpm') {
            const [written, now] = [BigInt(doc.header.counter), await t.peekCounter(p.counterIndex)];
            keystore.tpmCounter = now.toString();
            keystore.counterState = counterStanding(written, now);
            if (keystore.counterState === 'rolled-back' || keystore.counterState === 'ahead') refused = { file, written, now };
          }
        }
        const doc = { tpm: describeSpec(spec), ...info, lockout, attestation: 'available', akName: ak.name.toString('hex'), keystore };
        if (keystore.counterAuth === false) ctx.out.warn('the anti-rollback counter was defined without an auth: anyone with access to this TPM can advance it and lock the wallet out; `swarmpay tpm provision --force` moves the keystore to a counter only it can advance');
        // A status that finds the keystore refused says so as that error (exit 5), the whole status in its details.
        if (refused) throw rollbackError(refused.file, refused.written, refused.now, { status: doc });
        ctx.out.result(doc, [
          `TPM:      ${t.describe} (${info.manufacturer} ${info.vendor}, firmware ${info.firmware})`,
          `lockout:  ${lockout.failedTries}/${lockout.maxTries} failed authorizations`,
          `AK name:  ${doc.akName}`,
          `keystore: ${keystore.exists ? `${keystore.protector}${keystore.protector === 'tpm' ? `, counter ${keystore.fileCounter} (TPM ${keystore.tpmCounter}${keystore.counterState === 'interrupted' ? ': a checkpoint a crash cut short, finished at the next open' : ''})${(keystore.pcrs as number[]).length ? `, PCRs ${(keystore.pcrs as number[]).join(',')}` : ''}` : ''}` : 'none'}`,
        ]);
      }),
    );

  tpm
    .command('attest')
    .description('a TPM quote over PCRs with a peer\'s nonce, signed by the attestation key')
    .requiredOption('--nonce <hex>', 'the verifier\'s fresh nonce (1 to 64 bytes of hex)')
    .option('--pcrs <list>', 'PCRs to quote (SHA-256 bank)', DEFAULT_QUOTE_PCRS)
    .option('--out <file>', 'write the attestation document to FILE instead of stdout')
    .action(
      withContext<{ nonce: string; pcrs: string; out?: string }>(async (ctx, _args, opts) => {
        const nonce = parseNonce(opts.nonce);
        const pcrs = parsePcrs(opts.pcrs);
        if (pcrs.length === 0) throw new SwarmpayError('USAGE', 'a quote needs at least one PCR', { hint: `e.g. --pcrs ${DEFAULT_QUOTE_PCRS}` });
        const doc = await attest(await ctx.env.tpm(), nonce, pcrs);
        if (opts.out === undefined) {
          ctx.out.result(doc, JSON.stringify(doc, null, 2));
          return;
        }
        writeFileAtomic(opts.out, JSON.stringify(doc, null, 2) + '\n', 0o644);
        ctx.out.result({ out: opts.out, akName: doc.akName, pcrs: Object.keys(doc.pcrs.values).map(Number) }, `attestation written to ${opts.out} (AK ${doc.akName})`);
      }),
    );

  tpm
    .command('verify')
    .description('verify a peer\'s attestation document: AK signature, nonce, PCR digest, allowed PCR values')
    .argument('<quote-file>', 'the attestation document `tpm attest` wrote')
    .requiredOption('--nonce <hex>', 'the nonce you gave the peer')
    .option('--expect-pcrs <file>', 'JSON allow list of PCR values: {"7": "<hex>"} or {"7": ["<hex>", ...]}')
    .option('--ak <pem-file>', 'the AK public key (PEM) you trust for this peer')
    .option('--enrolled', 'require the AK to be one enrolled in the trust store (`tpm enroll`)')
    .action(
      withContext<{ nonce: string; expectPcrs?: string; ak?: string; enrolled?: boolean }>(async (ctx, args, opts) => {
        if (opts.enrolled && opts.ak !== undefined) throw new SwarmpayError('USAGE', 'give --ak or --enrolled, not both', { hint: '--enrolled trusts every AK `tpm trust list` shows; --ak one key' });
        const nonce = parseNonce(opts.nonce);
        const text = readTextFile(args[0]!, 'attestation document');
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch (e) {
          throw new SwarmpayError('ATTESTATION_INVALID', `${args[0]} is not JSON: ${(e as Error).message}`, { hint: 'ask the peer for the file `swarmpay tpm attest --out` wrote' });
        }
        const verifyOpts: Parameters<typeof verifyAttestation>[1] = { nonce };
        if (opts.expectPcrs !== undefined) verifyOpts.expectPcrs = parsePcrAllowList(readTextFile(opts.expectPcrs, 'PCR allow list'));
        if (opts.ak !== undefined) verifyOpts.ak = readTextFile(opts.ak, 'AK public key');
        let v: VerifiedAttestation & { vouchedBy?: unknown };
        let how = pinnedNote(opts.ak);
        if (opts.enrolled) {
          const e = verifyEnrolledAttestation(doc, { ...verifyOpts, enrolled: listIdentities(ctx.networkDir) });
          v = e;
          how = ` (enrolled${e.vouchedBy.label ? `: ${e.vouchedBy.label}` : ''}, EK by ${e.vouchedBy.ek.issuer})`;
        } else {
          v = verifyAttestation(doc, verifyOpts);
          if (!v.akPinned) ctx.out.warn('no --ak or --enrolled given: the quote is consistent, but nothing ties its AK to a TPM you trust');
        }
        ctx.out.result({ valid: true, ...v }, [`valid: quote by AK ${v.akName}${how}`, ...Object.entries(v.pcrs).map(([p, val]) => `PCR ${p.padStart(2)}: ${val}`)]);
      }),
    );

  tpm
    .command('enroll')
    .description('the verifier: check a peer\'s TPM identity (EK certificate chained to a CA you trust, AK proven by credential activation) and enroll its AK in the trust store')
    .option('--peer <host:port>', 'the peer to enroll (a seller\'s `escrow serve --listen`)')
    .option('--peer-cmd <command>', 'run COMMAND and speak to the peer over its stdin/stdout')
    .option('--peer-key <hex>', 'the peer\'s static key: refuse any other')
    .requiredOption('--tpm-ca <file>', 'PEM file of the TPM manufacturer CA certificates you trust (root and intermediates, one after another)')
    .option('--label <text>', 'a name for this identity in `tpm trust list`')
    .action(
      withContext<{ peer?: string; peerCmd?: string; peerKey?: string; tpmCa: string; label?: string }>(async (ctx, _args, opts) => {
        const peer = peerOf(opts);
        const label = opts.label === undefined ? null : parseLabel(opts.label);
        const cas = parseCaBundle(readTextFile(opts.tpmCa, 'TPM CA'), opts.tpmCa);
        // The link needs no wallet: the verifier's key is a one-time one, since what is proven is the peer's TPM, not who we are.
        const link = await connectPeer(peer, generateStaticKey(), opts.peerKey);
        let r;
        try {
          r = await enrollPeer(link, cas, { networkDir: ctx.networkDir, label });
        } finally {
          await link.close();
        }
        const id = r.identity;
        ctx.out.result({ enrolled: true, replaced: r.replaced, ...id, trustStore: trustStorePath(ctx.networkDir) }, [
          `enrolled AK ${id.akName}${id.label ? ` (${id.label})` : ''}${r.replaced ? ', replacing its earlier enrollment' : ''}`,
          `EK:  ${id.ek.kind}, certificate ${id.ek.serial} by "${id.ek.issuer}"${id.ek.tpm ? ` (TPM ${id.ek.tpm.manufacturer} ${id.ek.tpm.model})` : ''}`,
          `CA:  "${id.ca.subject}" ${id.ca.fingerprint}`,
        ]);
      }),
    );

  const trust = tpm.command('trust').description('the TPM trust store: attestation keys enrolled with `tpm enroll`');

  trust
    .command('list')
    .description('the enrolled TPM identities')
    .action(
      withContext(async (ctx) => {
        const ids = listIdentities(ctx.networkDir);
        ctx.out.result({ identities: ids }, ids.length === 0 ? 'no TPM identity enrolled' : ids.map(identityLine));
      }),
    );

  trust
    .command('remove')
    .description('stop trusting an enrolled AK')
    .argument('<ak-name>', 'the AK name, as `tpm trust list` shows it')
    .action(
      withContext(async (ctx, args) => {
        const id = removeIdentity(ctx.networkDir, args[0]!);
        ctx.out.result({ removed: true, akName: id.akName, label: id.label }, `removed AK ${id.akName}${id.label ? ` (${id.label})` : ''}`);
      }),
    );
}

function pinnedNote(ak: string | undefined): string {
  return ak === undefined ? '' : ' (pinned)';
}

/** A label: printable, one line, at most 100 characters. */
function parseLabel(text: string): string {
  const t = text.trim();
  if (t.length === 0 || t.length > 100 || /[\u0000-\u001f\u007f]/.test(t)) throw new SwarmpayError('USAGE', '--label must be 1 to 100 printable characters on one line');
  return t;
}

function identityLine(i: TrustedIdentity): string {
  return `${i.akName}  ${i.label ?? '-'}  ${i.ek.kind} EK by "${i.ek.issuer}"  enrolled ${i.enrolledAt}`;
}
