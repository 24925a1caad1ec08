/** `swarmpay tpm provision|status|attest|verify|enroll|trust list|trust remove`. */
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import type { TrustedIdentity } from '../api/tpm.js';
import { withContext } from './command.js';
import { parseNonce, parsePcrs } from './args.js';
import { DEFAULT_QUOTE_PCRS as QUOTE_PCRS, parsePcrAllowList } from '../tpm/attestation.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { readTextFile } from './input-file.js';
import { peerLocation } from './peer.js';

/** The PC Client boot-chain PCRs: what a peer usually wants to see. */
export const DEFAULT_QUOTE_PCRS = QUOTE_PCRS.join(',');

export function registerTpm(program: Command): void {
  const tpm = program.command('tpm').description('the TPM 2.0: seal the keystore, anti-rollback counter, attestation');

  tpm
    .command('provision')
    .description('seal the keystore\'s key to the TPM, define its anti-rollback counter (moves a passphrase wallet under the TPM)')
    .option('--pcrs <list>', 'bind the key to these PCRs\' current values (SHA-256 bank), e.g. 7,16', '')
    .option('--force', 'seal again a keystore the TPM already seals (e.g. to other PCRs)')
    .option('--passphrase-file <file>', 'read the current keystore passphrase from FILE, or - for stdin')
    .action(
      withContext<{ pcrs: string; force?: boolean; passphraseFile?: string }>(async (ctx, _args, opts) => {
        const pcrs = parsePcrs(opts.pcrs);
        const r = await ctx.swarmpay.tpm.provision({ pcrs, force: !!opts.force, passphrase: ctx.passphrase(opts.passphraseFile) });
        ctx.out.warn('the keystore now opens only with this TPM' + (pcrs.length ? ` and these PCR values (${pcrs.join(',')})` : '') + ': keep the mnemonic safe, it is the way back if the TPM is lost, cleared or the device boots differently');
        ctx.out.result(r, [`keystore sealed by ${r.tpm}${pcrs.length ? ` to PCRs ${pcrs.join(',')}` : ''}`, `anti-rollback counter ${r.counterIndex} at ${r.counter}`]);
      }),
    );

  tpm
    .command('status')
    .description('the TPM found, its lockout state, the attestation key, and how the keystore is sealed')
    .action(
      withContext(async (ctx) => {
        const st = await ctx.swarmpay.tpm.status();
        const keystore = st.keystore;
        if (st.tpm === null) {
          ctx.out.warn(
            keystore.exists && keystore.protector === 'tpm'
              ? 'no TPM found, but the keystore is sealed by one: it cannot be opened until that TPM is reachable (see --tpm)'
              : 'no TPM: the keystore falls back to a passphrase and attestation is unavailable',
          );
          ctx.out.result(st, ['TPM: none (attestation unavailable)', `keystore: ${keystore.exists ? keystore.protector : 'none'}`]);
          return;
        }
        if (keystore.exists && keystore.protector === 'tpm' && !keystore.counterAuth) ctx.out.warn('the anti-rollback counter was defined without an auth: anyone with access to this TPM can advance it and lock the wallet out; `swarmpay tpm provision --force` moves the keystore to a counter only it can advance');
        const sealed = keystore.exists && keystore.protector === 'tpm' ? `, counter ${keystore.fileCounter} (TPM ${keystore.tpmCounter}${keystore.counterState === 'interrupted' ? ': a checkpoint a crash cut short, finished at the next open' : ''})${keystore.pcrs.length ? `, PCRs ${keystore.pcrs.join(',')}` : ''}` : '';
        ctx.out.result(st, [
          `TPM:      ${st.tpm} (${st.manufacturer} ${st.vendor}, firmware ${st.firmware})`,
          `lockout:  ${st.lockout.failedTries}/${st.lockout.maxTries} failed authorizations`,
          `AK name:  ${st.akName}`,
          `keystore: ${keystore.exists ? `${keystore.protector}${sealed}` : 'none'}`,
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
        const doc = await ctx.swarmpay.tpm.attest(nonce, parsePcrs(opts.pcrs));
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
        const nonce = parseNonce(opts.nonce);
        const file = args[0] ?? '';
        const text = readTextFile(file, 'attestation document');
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch (e) {
          throw new SwarmpayError('ATTESTATION_INVALID', `${file} is not JSON: ${(e as Error).message}`, { hint: 'ask the peer for the file `swarmpay tpm attest --out` wrote' });
        }
        const v = ctx.swarmpay.tpm.verify(doc, {
          nonce,
          enrolled: !!opts.enrolled,
          ...(opts.expectPcrs !== undefined ? { expectPcrs: parsePcrAllowList(readTextFile(opts.expectPcrs, 'PCR allow list')) } : {}),
          ...(opts.ak !== undefined ? { ak: readTextFile(opts.ak, 'AK public key') } : {}),
        });
        const how = 'vouchedBy' in v ? ` (enrolled${v.vouchedBy.label ? `: ${v.vouchedBy.label}` : ''}, EK by ${v.vouchedBy.ek.issuer})` : v.akPinned ? ' (pinned)' : '';
        if (!v.akPinned && !('vouchedBy' in v)) ctx.out.warn('no --ak or --enrolled given: the quote is consistent, but nothing ties its AK to a TPM you trust');
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
        const peer = peerLocation(opts);
        const label = opts.label === undefined ? null : parseLabel(opts.label);
        const { parseCaBundle } = await import('../tpm/ek-certificate.js');
        const cas = parseCaBundle(readTextFile(opts.tpmCa, 'TPM CA'), opts.tpmCa);
        const r = await ctx.swarmpay.tpm.enroll(peer, cas, { label, ...(opts.peerKey === undefined ? {} : { peerKey: opts.peerKey }) });
        const id = r.identity;
        ctx.out.result({ enrolled: true, replaced: r.replaced, ...id, trustStore: r.trustStore }, [
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
        const ids = ctx.swarmpay.tpm.trusted();
        ctx.out.result({ identities: ids }, ids.length === 0 ? 'no TPM identity enrolled' : ids.map(identityLine));
      }),
    );

  trust
    .command('remove')
    .description('stop trusting an enrolled AK')
    .argument('<ak-name>', 'the AK name, as `tpm trust list` shows it')
    .action(
      withContext(async (ctx, args) => {
        const id = ctx.swarmpay.tpm.untrust(args[0] ?? '');
        ctx.out.result({ removed: true, akName: id.akName, label: id.label }, `removed AK ${id.akName}${id.label ? ` (${id.label})` : ''}`);
      }),
    );
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
