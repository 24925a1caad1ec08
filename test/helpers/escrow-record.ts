/** Escrow records in tests: a record read back, narrowed to the role and status the test expects. */
import type { EscrowRecord } from '../../src/escrow/record.js';
import type { ContractStore } from '../../src/keystore/keystore.js';
import type { Json } from '../../src/util/canonical-json.js';

export type RecordOf<R extends EscrowRecord['role'], S extends EscrowRecord['status']> = Extract<EscrowRecord, { role: R; status: S }>;

/** `rec`, which must be a `role` record in `status` (the test fails otherwise). */
export function recordIn<R extends EscrowRecord['role'], S extends EscrowRecord['status']>(rec: EscrowRecord, role: R, status: S): RecordOf<R, S> {
  if (rec.role !== role || rec.status !== status) throw new Error(`escrow ${rec.id} is a ${rec.role}'s ${rec.status}, not a ${role}'s ${status}`);
  // Checked just above: the members of the union with this role and status are exactly RecordOf<R, S>.
  return rec as RecordOf<R, S>;
}

/**
 * Writes `raw` as escrow `id` into the keystore as it is, shape and all: records as an
 * earlier swarmpay wrote them, or damaged ones. Its key index is taken, as saveEscrow does.
 */
export async function storeRawEscrow(session: ContractStore, id: string, keyIndex: number, raw: object): Promise<void> {
  // What the keystore holds is JSON: the record as JSON text reads back as exactly that.
  const json = JSON.parse(JSON.stringify(raw)) as Json;
  await session.update((secret) => {
    const t = secret.escrows;
    secret.escrows = { ...(typeof t === 'object' && t !== null && !Array.isArray(t) ? t : {}), [id]: json };
    secret.nextEscrowKey = Math.max(typeof secret.nextEscrowKey === 'number' ? secret.nextEscrowKey : 0, keyIndex + 1);
  }, { checkpoint: true });
}
