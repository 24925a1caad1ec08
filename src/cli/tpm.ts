/** `swarmpay tpm provision|status|attest|verify`. */
import type { Command } from 'commander';
import { SwarmpayError } from '../errors.js';
import { keystorePath, provisionTpm, readKeystore } from '../keystore/keystore.js';
import { describeSpec } from '../tpm/tpm.js';
import { withContext } from './command.js';
import type { Context } from './context.js';
import { parsePcrs } from './args.js';

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
  return { exists: true, protector: 'tpm', sealed: true, pcrs: p.pcrs, counterIndex: `0x${p.counterIndex.toString(16)}`, fileCounter: doc.header.counter, provisionedOn: p.provisionedOn };
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
        const spec = ctx.tpmSpec;
        const keystore = await keystoreStatus(ctx);
        if (spec.kind === 'none') {
          ctx.out.warn('no TPM: the keystore falls back to a passphrase and attestation is unavailable');
          ctx.out.result({ tpm: null, attestation: 'unavailable', keystore }, ['TPM: none (attestation unavailable)', `keystore: ${keystore.exists ? keystore.protector : 'none'}`]);
          return;
        }
        const t = await ctx.tpm();
        const [info, lockout, ak] = [await t.info(), await t.lockout(), await t.akPublic()];
        if (keystore.protector === 'tpm') {
          const doc = readKeystore(keystorePath(ctx.networkDir), ctx.network);
          const p = doc.header.protector;
          if (p.type === 'tpm') keystore.tpmCounter = (await t.readCounter(p.counterIndex)).toString();
        }
        const doc = { tpm: describeSpec(spec), ...info, lockout, attestation: 'available', akName: ak.name.toString('hex'), keystore };
        ctx.out.result(doc, [
          `TPM:      ${t.describe} (${info.manufacturer} ${info.vendor}, firmware ${info.firmware})`,
          `lockout:  ${lockout.failedTries}/${lockout.maxTries} failed authorizations`,
          `AK name:  ${doc.akName}`,
          `keystore: ${keystore.exists ? `${keystore.protector}${keystore.protector === 'tpm' ? `, counter ${keystore.fileCounter} (TPM ${keystore.tpmCounter})${(keystore.pcrs as number[]).length ? `, PCRs ${(keystore.pcrs as number[]).join(',')}` : ''}` : ''}` : 'none'}`,
        ]);
      }),
    );
}
