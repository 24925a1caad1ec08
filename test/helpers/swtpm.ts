/** A real swtpm per test suite, on free loopback ports with a temporary state folder. */
import { startSwtpm, stopSwtpm, type SwtpmState } from '../../src/tpm/swtpm-process.js';
import { Tpm, type TpmSpec } from '../../src/tpm/tpm.js';
import { tempDir } from './tmp.js';

export interface TestTpm {
  dir: string;
  state: SwtpmState;
  spec: TpmSpec & { kind: 'swtpm' };
  /** The --tpm argument for the CLI. */
  arg: string;
  /** TCTI for tpm2-tools (TPM2TOOLS_TCTI). */
  tcti: string;
  /** The PEM file of the local CA that certified this TPM's EK (`tpm enroll --tpm-ca`); null without an EK certificate. */
  ekCa: string | null;
  open(): Promise<Tpm>;
  stop(): Promise<void>;
}

/**
 * Starts a swtpm manufactured as `swarmpay node start` does it: with an EK certificate from
 * a local CA of its own (so two test TPMs are certified by two different CAs). `ekCert:
 * false` leaves the manufacturing to swtpm, as before swarmpay made EK certificates.
 */
export async function startTestTpm(opts: { ekCert?: boolean } = {}): Promise<TestTpm> {
  const tmp = tempDir('swarmpay-swtpm-');
  const { state } = await startSwtpm(tmp.dir, { ekCert: opts.ekCert ?? true });
  const kill = () => {
    try {
      process.kill(state.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', kill);
  const spec: TpmSpec & { kind: 'swtpm' } = { kind: 'swtpm', host: state.host, port: state.port };
  return {
    dir: tmp.dir,
    state,
    spec,
    arg: `swtpm:${state.host}:${state.port}`,
    tcti: `swtpm:host=${state.host},port=${state.port}`,
    ekCa: state.ekCa,
    open: () => Tpm.open(spec),
    async stop() {
      await stopSwtpm(tmp.dir);
      process.removeListener('exit', kill);
      tmp.remove();
    },
  };
}
