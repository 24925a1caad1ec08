/** A real swtpm per test suite, on free loopback ports with a temporary state folder. */
import { startSwtpm, stopSwtpm, type SwtpmState } from '../../src/tpm/swtpm-process.js';
import { Tpm, type TpmSpec } from '../../src/tpm/tpm.js';
import { tempDir } from './tmp.js';

export interface TestTpm {
  dir: string;
  state: SwtpmState;
  spec: TpmSpec;
  /** The --tpm argument for the CLI. */
  arg: string;
  /** TCTI for tpm2-tools (TPM2TOOLS_TCTI). */
  tcti: string;
  open(): Promise<Tpm>;
  stop(): Promise<void>;
}

export async function startTestTpm(): Promise<TestTpm> {
  const tmp = tempDir('swarmpay-swtpm-');
  const { state } = await startSwtpm(tmp.dir);
  const kill = () => {
    try {
      process.kill(state.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', kill);
  const spec: TpmSpec = { kind: 'swtpm', host: state.host, port: state.port };
  return {
    dir: tmp.dir,
    state,
    spec,
    arg: `swtpm:${state.host}:${state.port}`,
    tcti: `swtpm:host=${state.host},port=${state.port}`,
    open: () => Tpm.open(spec),
    async stop() {
      await stopSwtpm(tmp.dir);
      process.removeListener('exit', kill);
      tmp.remove();
    },
  };
}
