/** The TPM through the library: provision, status, attest, verify, enroll, trust (issue 14: being written). */
import type { Environment } from './environment.js';

export class TpmApi {
  constructor(readonly env: Environment) {}
}
