/** Payer sessions a test keeps open: one at a time per channel, as the payer's ledger is. */
import { PayerSession } from '../../src/channel/payer.js';
import type { PeerLink } from '../../src/peer/link.js';
import type { ContractContext } from '../../src/wallet/contract-wallet.js';

export class Sessions {
  private readonly open: PayerSession[] = [];

  constructor(
    private readonly pc: ContractContext,
    private readonly link: () => Promise<PeerLink>,
  ) {}

  /** A session on channel `id`; an earlier one on it disconnects first. */
  async start(id: string, link?: PeerLink): Promise<PayerSession> {
    const earlier = this.open.findIndex((x) => x.rec.id === id);
    if (earlier >= 0) await this.open.splice(earlier, 1)[0]!.disconnect();
    const s = await PayerSession.start(this.pc, link ?? (await this.link()), id);
    this.open.push(s);
    return s;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((s) => s.disconnect().catch(() => undefined)));
  }
}
