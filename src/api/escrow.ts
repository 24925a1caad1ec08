/** Fair exchange through the library: offer, accept, claim, refund, serve (issue 14: being written). */
import type { ContractContext } from '../wallet/contract-wallet.js';
import type { Environment } from './environment.js';

export class Escrows {
  constructor(
    readonly ctx: ContractContext,
    readonly env: Environment,
  ) {}
}
