/**
 * The TPM through the library: seal the keystore to it, report its state, quote PCRs for a
 * verifier's nonce, verify a peer's quote, enroll a peer's TPM identity, and manage the
 * trust store of enrolled attestation keys.
 */
import type { X509Certificate } from 'node:crypto';
import { SwarmpayError } from '../errors.js';
import { counterStanding, keystorePath, provisionTpm, readKeystore, rollbackError, type CounterStanding } from '../keystore/keystore.js';
import { describeSpec } from '../tpm/tpm.js';
import { DEFAULT_QUOTE_PCRS, attest, verifyAttestation, verifyEnrolledAttestation, type AttestationDoc, type EnrolledAttestation, type PcrAllowList, type VerifiedAttestation } from '../tpm/attestation.js';
import { enrollPeer, type EnrollResult } from '../tpm/enroll.js';
import { listIdentities, removeIdentity, trustStorePath, type TrustedIdentity } from '../tpm/trust-store.js';
import { connectPeer } from '../peer/connect.js';
import { generateStaticKey } from '../peer/keys.js';
import type { Environment } from './environment.js';
import { peerAddress, type PeerLocation } from './server.js';
import { unlockerFor, type Credentials } from './credentials.js';

export type { AttestationDoc, EnrolledAttestation, PcrAllowList, TrustedIdentity, VerifiedAttestation };

export { DEFAULT_QUOTE_PCRS };

export interface Provisioned {
  provisioned: true;
  migrated: boolean;
  tpm: string;
  pcrs: number[];
  counterIndex: string;
  counter: string;
  srkName: string;
  srkPersisted: boolean;
}

export type KeystoreStatus =
  | { exists: false }
  | { exists: true; protector: 'passphrase'; sealed: false }
  | { exists: true; protector: 'tpm'; sealed: true; pcrs: number[]; counterIndex: string; counterAuth: boolean; fileCounter: string; provisionedOn: string; tpmCounter?: string; counterState?: CounterStanding };

export type TpmStatus =
  | { tpm: null; attestation: 'unavailable'; keystore: KeystoreStatus }
  | { tpm: string; manufacturer: string; vendor: string; firmware: string; lockout: { failedTries: number; maxTries: number; [k: string]: unknown }; attestation: 'available'; akName: string; keystore: KeystoreStatus };

export interface VerifyOptions {
  nonce: Uint8Array;
  expectPcrs?: PcrAllowList;
  /** The AK public key (PEM) trusted for this peer. */
  ak?: string;
  /** Require an AK enrolled in the trust store. */
  enrolled?: boolean;
}

export class TpmApi {
  constructor(readonly env: Environment) {}

  /** Seals the keystore's data key to the TPM (a passphrase keystore moves under it), optionally bound to `pcrs`. */
  async provision(o: Credentials & { pcrs?: number[]; force?: boolean }): Promise<Provisioned> {
    const pcrs = o.pcrs ?? [];
    const r = await provisionTpm(keystorePath(this.env.networkDir), this.env.network, unlockerFor(this.env, o, 'other'), pcrs, !!o.force);
    const p = r.header.protector;
    if (p.type !== 'tpm') throw new SwarmpayError('INTERNAL', 'provisioning left a passphrase keystore');
    return { provisioned: true, migrated: r.migrated, tpm: p.provisionedOn, pcrs, counterIndex: `0x${p.counterIndex.toString(16)}`, counter: r.header.counter, srkName: p.srkName, srkPersisted: r.srkPersisted };
  }

  /** The keystore as sealed on disk (no TPM needed). */
  keystore(): KeystoreStatus {
    let doc;
    try {
      doc = readKeystore(keystorePath(this.env.networkDir), this.env.network);
    } catch (e) {
      if (e instanceof SwarmpayError && e.code === 'WALLET_NOT_FOUND') return { exists: false };
      throw e;
    }
    const p = doc.header.protector;
    if (p.type === 'passphrase') return { exists: true, protector: 'passphrase', sealed: false };
    return { exists: true, protector: 'tpm', sealed: true, pcrs: p.pcrs, counterIndex: `0x${p.counterIndex.toString(16)}`, counterAuth: p.counterAuth === true, fileCounter: doc.header.counter, provisionedOn: p.provisionedOn };
  }

  /**
   * The TPM found, its lockout state, the AK, and the keystore against the TPM's counter.
   * A keystore the counter refuses is ROLLBACK_DETECTED, the whole status in its details.
   */
  async status(): Promise<TpmStatus> {
    const spec = this.env.tpmSpec;
    const keystore = this.keystore();
    if (spec.kind === 'none') return { tpm: null, attestation: 'unavailable', keystore };
    const t = await this.env.tpm();
    const [info, lockout, ak] = [await t.info(), await t.lockout(), await t.akPublic()];
    let refused: { file: string; written: bigint; now: bigint } | null = null;
    if (keystore.exists && keystore.protector === 'tpm') {
      const file = keystorePath(this.env.networkDir);
      const doc = readKeystore(file, this.env.network);
      const p = doc.header.protector;
      if (p.type === 'tpm') {
        const [written, now] = [BigInt(doc.header.counter), await t.peekCounter(p.counterIndex)];
        keystore.tpmCounter = now.toString();
        keystore.counterState = counterStanding(written, now);
        if (keystore.counterState === 'rolled-back' || keystore.counterState === 'ahead') refused = { file, written, now };
      }
    }
    const status: TpmStatus = { tpm: describeSpec(spec), ...info, lockout, attestation: 'available', akName: ak.name.toString('hex'), keystore };
    if (refused) throw rollbackError(refused.file, refused.written, refused.now, { status });
    return status;
  }

  /** A quote over `pcrs` (SHA-256 bank) with the verifier's `nonce`, by the AK. */
  async attest(nonce: Uint8Array, pcrs: number[] = DEFAULT_QUOTE_PCRS): Promise<AttestationDoc> {
    if (pcrs.length === 0) throw new SwarmpayError('USAGE', 'a quote needs at least one PCR', { hint: `e.g. --pcrs ${DEFAULT_QUOTE_PCRS.join(',')}` });
    return attest(await this.env.tpm(), nonce, pcrs);
  }

  /** This TPM's PCR values now (SHA-256 bank), as an allow list a verifier expects (`--expect-pcrs`). */
  async pcrValues(pcrs: number[] = DEFAULT_QUOTE_PCRS): Promise<PcrAllowList> {
    const values = await (await this.env.tpm()).pcrRead(pcrs);
    return Object.fromEntries([...values].map(([p, v]) => [String(p), v.toString('hex')]));
  }

  /** Verifies a peer's attestation document; with `enrolled`, its AK must be in the trust store. */
  verify(doc: unknown, o: VerifyOptions): VerifiedAttestation | EnrolledAttestation {
    if (o.enrolled && o.ak !== undefined) throw new SwarmpayError('USAGE', 'give --ak or --enrolled, not both', { hint: '--enrolled trusts every AK `tpm trust list` shows; --ak one key' });
    const base = { nonce: o.nonce, ...(o.expectPcrs ? { expectPcrs: o.expectPcrs } : {}) };
    if (o.enrolled) return verifyEnrolledAttestation(doc, { ...base, enrolled: listIdentities(this.env.networkDir) });
    return verifyAttestation(doc, { ...base, ...(o.ak !== undefined ? { ak: o.ak } : {}) });
  }

  /**
   * Enrolls a peer's TPM: its EK certificate must chain to `cas`, and its AK is bound to
   * that EK by credential activation. The link key is a one-time one: what is proven is
   * the peer's TPM, not who we are.
   */
  async enroll(peer: PeerLocation, cas: readonly X509Certificate[], o: { peerKey?: string; label?: string | null } = {}): Promise<EnrollResult & { trustStore: string }> {
    const link = await connectPeer(peerAddress(peer), generateStaticKey(), o.peerKey, this.env.opts.peerStderr);
    try {
      const r = await enrollPeer(link, cas, { networkDir: this.env.networkDir, label: o.label ?? null });
      return { ...r, trustStore: trustStorePath(this.env.networkDir) };
    } finally {
      await link.close();
    }
  }

  trusted(): TrustedIdentity[] {
    return listIdentities(this.env.networkDir);
  }

  untrust(akName: string): TrustedIdentity {
    return removeIdentity(this.env.networkDir, akName);
  }
}
