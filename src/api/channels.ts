/** Payment channels through the library: open, pay, close, refund, serve (issue 14: being written). */
import type { ContractContext } from '../wallet/contract-wallet.js';
import type { Environment } from './environment.js';

export class Channels {
  constructor(
    readonly ctx: ContractContext,
    readonly env: Environment,
  ) {}
}
