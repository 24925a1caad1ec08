/** tpm2-tools, the independent check of our TPM client, run against a test swtpm. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/**
 * Runs a tpm2-tools command in `cwd`; resolves with stdout, rejects with an error that
 * carries stderr. Without a resource manager the tools leave what they load (objects,
 * sessions) in the TPM's few slots, so both are flushed after each command.
 */
export async function tpm2(tcti: string, cwd: string, cmd: string, ...args: string[]): Promise<string> {
  const opts = { cwd, env: { ...process.env, TPM2TOOLS_TCTI: tcti }, timeout: 30_000, encoding: 'utf8' as const };
  try {
    return (await exec(cmd, args, opts)).stdout;
  } finally {
    await exec('tpm2_flushcontext', ['--transient-object'], opts);
    await exec('tpm2_flushcontext', ['--loaded-session'], opts);
  }
}

/** Fails the suite with what to do when tpm2-tools are missing. */
export async function requireTpm2Tools(): Promise<void> {
  try {
    await exec('tpm2_startup', ['--version']);
  } catch (e) {
    throw new Error(`tpm2-tools are missing (${(e as Error).message}); run \`npm run setup\` to install them`);
  }
}
