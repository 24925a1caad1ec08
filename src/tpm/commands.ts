/**
 * TPM 2.0 commands (TCG Part 3), one typed description each: name and code, handles in
 * wire order, parameters, and the response's shape. `execute` in execute.ts runs any of
 * them. A handle the spec has authorized (an "@" handle in Part 3) is taken as an
 * AuthHandle, with its session; the others as plain Handles. Handles of objects and NV
 * indices may come with their names, which HMAC sessions need (Part 1, 16).
 */
import { TPM_ALG, TPM_CC, TPM_RH } from './constants.js';
import type { AuthHandle, Command, Handle } from './execute.js';
import {
  Reader,
  Writer,
  nameOfBytes,
  readDigestList,
  readPcrSelections,
  readPublic,
  readSignature,
  writePcrSelections,
  writePublic,
  writeSymDef,
  type PcrSelection,
  type Public,
  type Signature,
  type SymDef,
} from './marshal.js';

const NO_DATA = new Uint8Array(0);

/** Commands whose first parameter each way is a TPM2B, which a session may encrypt. */
const BOTH = { command: true, response: true } as const;
const COMMAND = { command: true } as const;
const RESPONSE = { response: true } as const;

/** TPMT_TK_CREATION after creationData and creationHash: nothing swarmpay needs. */
function skipCreationInfo(r: Reader): void {
  r.tpm2b(); // creationData
  r.tpm2b(); // creationHash
  r.u16(); // creationTicket.tag
  r.u32(); // creationTicket.hierarchy
  r.tpm2b(); // creationTicket.digest
}

/** Part 3, 9.3 TPM2_Startup. */
export function Startup(startupType: number): Command<void> {
  return { name: 'TPM2_Startup', code: TPM_CC.Startup, handles: [], params: (w) => w.u16(startupType) };
}

/** Part 3, 16.1 TPM2_GetRandom: up to a digest's worth of random bytes. */
export function GetRandom(bytesRequested: number): Command<Buffer> {
  return { name: 'TPM2_GetRandom', code: TPM_CC.GetRandom, handles: [], params: (w) => w.u16(bytesRequested), encryptable: RESPONSE, parse: (r) => r.tpm2b() };
}

export interface CapabilityData {
  moreData: boolean;
  /** TPM_CAP_TPM_PROPERTIES: property → value. */
  properties?: Map<number, number>;
  /** TPM_CAP_HANDLES. */
  handles?: number[];
}

/** Part 3, 30.2 TPM2_GetCapability (TPM_PROPERTIES and HANDLES). */
export function GetCapability(capability: number, property: number, propertyCount: number): Command<CapabilityData> {
  return {
    name: 'TPM2_GetCapability',
    code: TPM_CC.GetCapability,
    handles: [],
    params: (w) => w.u32(capability).u32(property).u32(propertyCount),
    parse: (r) => {
      const moreData = r.u8() === 1;
      const cap = r.u32();
      const n = r.u32();
      if (cap === 0x6) {
        const properties = new Map<number, number>();
        for (let i = 0; i < n; i++) properties.set(r.u32(), r.u32());
        return { moreData, properties };
      }
      if (cap === 0x1) return { moreData, handles: Array.from({ length: n }, () => r.u32()) };
      r.rest();
      return { moreData };
    },
  };
}

/** TPMS_SENSITIVE_CREATE inside its TPM2B: the object's auth value and, for sealed data, the data. */
function sensitiveCreate(userAuth: Uint8Array, data: Uint8Array): (w: Writer) => void {
  return (w) => w.sized((s) => s.tpm2b(userAuth).tpm2b(data));
}

export interface CreatedObject {
  outPrivate: Buffer;
  outPublic: Public;
  /** The marshalled TPM2B_PUBLIC contents, as the TPM returned them. */
  outPublicBytes: Buffer;
}

export interface CreatedPrimary {
  handle: number;
  outPublic: Public;
  name: Buffer;
}

/** Part 3, 24.1 TPM2_CreatePrimary under a hierarchy (owner: storage keys; endorsement: the AK). */
export function CreatePrimary(hierarchy: AuthHandle, template: Public): Command<CreatedPrimary> {
  return {
    name: 'TPM2_CreatePrimary',
    code: TPM_CC.CreatePrimary,
    handles: [hierarchy],
    encryptable: BOTH,
    params: (w) => {
      sensitiveCreate(NO_DATA, NO_DATA)(w);
      w.sized((p) => writePublic(p, template));
      w.tpm2b(NO_DATA); // outsideInfo
      writePcrSelections(w, []); // creationPCR
    },
    responseHandles: 1,
    parse: (r, [handle]) => {
      const outPublic = r.sized(readPublic);
      skipCreationInfo(r);
      return { handle: handle!, outPublic, name: r.tpm2b() };
    },
  };
}

/**
 * Part 3, 12.1 TPM2_Create: a child of `parent`; for a sealed data object, `data` is the
 * secret and `userAuth` the object's authValue. Both sit in the first parameter, the one a
 * session that decrypts keeps off the bus.
 */
export function Create(parent: AuthHandle, template: Public, data: Uint8Array = NO_DATA, userAuth: Uint8Array = NO_DATA): Command<CreatedObject> {
  return {
    name: 'TPM2_Create',
    code: TPM_CC.Create,
    handles: [parent],
    encryptable: BOTH,
    params: (w) => {
      sensitiveCreate(userAuth, data)(w);
      w.sized((p) => writePublic(p, template));
      w.tpm2b(NO_DATA);
      writePcrSelections(w, []);
    },
    parse: (r) => {
      const outPrivate = r.tpm2b();
      const outPublicBytes = r.tpm2b();
      skipCreationInfo(r);
      return { outPrivate, outPublic: new Reader(outPublicBytes).sizedAll(readPublic), outPublicBytes };
    },
  };
}

/** Part 3, 12.2 TPM2_Load: loads a child's private and public parts under `parent`. */
export function Load(parent: AuthHandle, inPrivate: Uint8Array, inPublicBytes: Uint8Array): Command<{ handle: number; name: Buffer }> {
  return {
    name: 'TPM2_Load',
    code: TPM_CC.Load,
    handles: [parent],
    encryptable: BOTH,
    params: (w) => w.tpm2b(inPrivate).tpm2b(inPublicBytes),
    responseHandles: 1,
    parse: (r, [handle]) => ({ handle: handle!, name: r.tpm2b() }),
  };
}

/** Part 3, 12.7 TPM2_Unseal. */
export function Unseal(item: AuthHandle): Command<Buffer> {
  return { name: 'TPM2_Unseal', code: TPM_CC.Unseal, handles: [item], encryptable: RESPONSE, parse: (r) => r.tpm2b() };
}

export interface StartAuthSessionOptions {
  /** The key the salt is encrypted to (see sessions.ts); none: unsalted. */
  tpmKey?: number | undefined;
  /** TPM2B_ENCRYPTED_SECRET contents: for an ECC tpmKey, the marshalled ephemeral TPMS_ECC_POINT. */
  encryptedSalt?: Uint8Array | undefined;
  /** The cipher for parameter encryption; none: the session cannot encrypt. */
  symmetric?: SymDef | null;
}

/** Part 3, 11.1 TPM2_StartAuthSession: unbound; salted and with a parameter cipher if asked. */
export function StartAuthSession(sessionType: number, nonceCaller: Uint8Array, authHash: number = TPM_ALG.SHA256, opts: StartAuthSessionOptions = {}): Command<{ handle: number; nonceTPM: Buffer }> {
  return {
    name: 'TPM2_StartAuthSession',
    code: TPM_CC.StartAuthSession,
    handles: [opts.tpmKey ?? TPM_RH.NULL, TPM_RH.NULL], // tpmKey, bind
    params: (w) => {
      w.tpm2b(nonceCaller).tpm2b(opts.encryptedSalt ?? NO_DATA).u8(sessionType);
      writeSymDef(w, opts.symmetric ?? null);
      w.u16(authHash);
    },
    responseHandles: 1,
    parse: (r, [handle]) => ({ handle: handle!, nonceTPM: r.tpm2b() }),
  };
}

/** Part 3, 23.17 TPM2_PolicyAuthValue: the policy then also asks for the entity's authValue, in the session's HMAC. */
export function PolicyAuthValue(session: number): Command<void> {
  return { name: 'TPM2_PolicyAuthValue', code: TPM_CC.PolicyAuthValue, handles: [session] };
}

/** Part 3, 23.7 TPM2_PolicyPCR: an empty pcrDigest means "the PCRs' current values". */
export function PolicyPCR(session: number, pcrDigest: Uint8Array, pcrs: PcrSelection[]): Command<void> {
  return {
    name: 'TPM2_PolicyPCR',
    code: TPM_CC.PolicyPCR,
    handles: [session],
    encryptable: COMMAND,
    params: (w) => {
      w.tpm2b(pcrDigest);
      writePcrSelections(w, pcrs);
    },
  };
}

/** Part 3, 23.19 TPM2_PolicyGetDigest. */
export function PolicyGetDigest(session: number): Command<Buffer> {
  return { name: 'TPM2_PolicyGetDigest', code: TPM_CC.PolicyGetDigest, handles: [session], encryptable: RESPONSE, parse: (r) => r.tpm2b() };
}

export interface PcrReadResult {
  updateCounter: number;
  selection: PcrSelection[];
  digests: Buffer[];
}

/** Part 3, 22.4 TPM2_PCR_Read: the TPM may return fewer PCRs than asked (see `selection`). */
export function PCR_Read(selection: PcrSelection[]): Command<PcrReadResult> {
  return {
    name: 'TPM2_PCR_Read',
    code: TPM_CC.PCR_Read,
    handles: [],
    params: (w) => writePcrSelections(w, selection),
    parse: (r) => ({ updateCounter: r.u32(), selection: readPcrSelections(r), digests: readDigestList(r) }),
  };
}

/** Part 3, 22.2 TPM2_PCR_Extend, one bank. */
export function PCR_Extend(pcr: AuthHandle, hashAlg: number, digest: Uint8Array): Command<void> {
  return { name: 'TPM2_PCR_Extend', code: TPM_CC.PCR_Extend, handles: [pcr], params: (w) => w.u32(1).u16(hashAlg).bytes(digest) };
}

export interface NvPublic {
  index: number;
  nameAlg: number;
  attributes: number;
  authPolicy: Uint8Array;
  dataSize: number;
}

/** TPMS_NV_PUBLIC, without the TPM2B around it. */
function marshalNvPublic(p: NvPublic): Buffer {
  return new Writer().u32(p.index).u16(p.nameAlg).u32(p.attributes).tpm2b(p.authPolicy).u16(p.dataSize).done();
}

/**
 * An NV index's name: nameAlg ‖ H(TPMS_NV_PUBLIC) (Part 1, 16). It covers the attributes, so
 * it changes when the index is first written (TPMA_NV_WRITTEN).
 */
export function nvName(p: NvPublic): Buffer {
  return nameOfBytes(p.nameAlg, marshalNvPublic(p));
}

/**
 * Part 3, 31.3 TPM2_NV_DefineSpace. With a session that decrypts, the new index's authValue
 * (the first parameter) crosses the bus encrypted.
 */
export function NV_DefineSpace(authHandle: AuthHandle, nvAuth: Uint8Array, pub: NvPublic): Command<void> {
  return {
    name: 'TPM2_NV_DefineSpace',
    code: TPM_CC.NV_DefineSpace,
    handles: [authHandle],
    encryptable: COMMAND,
    params: (w) => w.tpm2b(nvAuth).tpm2b(marshalNvPublic(pub)),
  };
}

/** Part 3, 31.4 TPM2_NV_UndefineSpace. */
export function NV_UndefineSpace(authHandle: AuthHandle, index: Handle): Command<void> {
  return { name: 'TPM2_NV_UndefineSpace', code: TPM_CC.NV_UndefineSpace, handles: [authHandle, index] };
}

/** Part 3, 31.8 TPM2_NV_Increment; `authHandle` is the index itself (AUTHWRITE) or a hierarchy. */
export function NV_Increment(authHandle: AuthHandle, index: Handle): Command<void> {
  return { name: 'TPM2_NV_Increment', code: TPM_CC.NV_Increment, handles: [authHandle, index] };
}

/** Part 3, 31.13 TPM2_NV_Read; `authHandle` is the index itself (AUTHREAD) or a hierarchy. */
export function NV_Read(authHandle: AuthHandle, index: Handle, size: number, offset = 0): Command<Buffer> {
  return {
    name: 'TPM2_NV_Read',
    code: TPM_CC.NV_Read,
    handles: [authHandle, index],
    encryptable: RESPONSE,
    params: (w) => w.u16(size).u16(offset),
    parse: (r) => r.tpm2b(),
  };
}

/** Part 3, 31.6 TPM2_NV_ReadPublic. */
export function NV_ReadPublic(index: number): Command<{ pub: NvPublic; name: Buffer }> {
  return {
    name: 'TPM2_NV_ReadPublic',
    code: TPM_CC.NV_ReadPublic,
    handles: [index],
    encryptable: RESPONSE,
    parse: (r) => ({
      pub: r.sized((n) => ({ index: n.u32(), nameAlg: n.u16(), attributes: n.u32(), authPolicy: n.tpm2b(), dataSize: n.u16() })),
      name: r.tpm2b(),
    }),
  };
}

export interface SignedAttestation {
  /** The TPMS_ATTEST bytes the signature covers. */
  attest: Buffer;
  signature: Signature;
}

/** TPMT_SIG_SCHEME: ECDSA or RSASSA with a hash, or NULL to use the key's own scheme. */
function writeScheme(w: Writer, scheme: { alg: number; hash: number } | null): void {
  if (scheme === null) w.u16(TPM_ALG.NULL);
  else w.u16(scheme.alg).u16(scheme.hash);
}

/** Part 3, 18.4 TPM2_Quote: the AK signs the selected PCRs' digest and the caller's nonce. */
export function Quote(signKey: AuthHandle, qualifyingData: Uint8Array, pcrs: PcrSelection[], scheme: { alg: number; hash: number } | null = null): Command<SignedAttestation> {
  return {
    name: 'TPM2_Quote',
    code: TPM_CC.Quote,
    handles: [signKey],
    encryptable: BOTH,
    params: (w) => {
      w.tpm2b(qualifyingData);
      writeScheme(w, scheme);
      writePcrSelections(w, pcrs);
    },
    parse: (r) => ({ attest: r.tpm2b(), signature: readSignature(r) }),
  };
}

/** Part 3, 18.2 TPM2_Certify: the AK vouches that `object` is loaded in the same TPM. */
export function Certify(object: AuthHandle, signKey: AuthHandle, qualifyingData: Uint8Array): Command<SignedAttestation> {
  return {
    name: 'TPM2_Certify',
    code: TPM_CC.Certify,
    handles: [object, signKey],
    encryptable: BOTH,
    params: (w) => {
      w.tpm2b(qualifyingData);
      writeScheme(w, null);
    },
    parse: (r) => ({ attest: r.tpm2b(), signature: readSignature(r) }),
  };
}

/** Part 3, 12.4 TPM2_ReadPublic. */
export function ReadPublic(object: number): Command<{ outPublic: Public; name: Buffer }> {
  return {
    name: 'TPM2_ReadPublic',
    code: TPM_CC.ReadPublic,
    handles: [object],
    encryptable: RESPONSE,
    parse: (r) => {
      const outPublic = r.sized(readPublic);
      const name = r.tpm2b();
      r.tpm2b(); // qualifiedName
      return { outPublic, name };
    },
  };
}

/** Part 3, 28.4 TPM2_FlushContext: the handle is a parameter, not in the handle area. */
export function FlushContext(handle: number): Command<void> {
  return { name: 'TPM2_FlushContext', code: TPM_CC.FlushContext, handles: [], params: (w) => w.u32(handle) };
}

/** Part 3, 28.5 TPM2_EvictControl: makes a transient object persistent at `persistentHandle` (or evicts it). */
export function EvictControl(authHandle: AuthHandle, object: Handle, persistentHandle: number): Command<void> {
  return { name: 'TPM2_EvictControl', code: TPM_CC.EvictControl, handles: [authHandle, object], params: (w) => w.u32(persistentHandle) };
}

/**
 * Part 3, 23.4 TPM2_PolicySecret: the policy then requires that `authHandle` (here a
 * hierarchy) was authorized in this command. No nonce, cpHash, reference or expiry: what
 * the EK's policy asks for is only that the endorsement authorization was given.
 */
export function PolicySecret(authHandle: AuthHandle, policySession: number): Command<void> {
  return {
    name: 'TPM2_PolicySecret',
    code: TPM_CC.PolicySecret,
    handles: [authHandle, policySession],
    encryptable: BOTH,
    params: (w) => w.tpm2b(NO_DATA).tpm2b(NO_DATA).tpm2b(NO_DATA).u32(0), // nonceTPM, cpHashA, policyRef, expiration
    parse: (r) => {
      r.tpm2b(); // timeout
      r.u16(); // policyTicket.tag
      r.u32(); // policyTicket.hierarchy
      r.tpm2b(); // policyTicket.digest
    },
  };
}

/**
 * Part 3, 12.5 TPM2_ActivateCredential: `key` (the EK, a storage key) recovers the seed
 * from `secret`, checks that `credentialBlob` was made for the name of `activate` (the AK,
 * loaded in the same TPM), and returns the credential inside. `activate` needs its ADMIN
 * role, `key` its USER role (for an EK: a policy session that ran PolicySecret).
 */
export function ActivateCredential(activate: AuthHandle, key: AuthHandle, credentialBlob: Uint8Array, secret: Uint8Array): Command<Buffer> {
  return {
    name: 'TPM2_ActivateCredential',
    code: TPM_CC.ActivateCredential,
    handles: [activate, key],
    encryptable: BOTH,
    params: (w) => w.tpm2b(credentialBlob).tpm2b(secret),
    parse: (r) => r.tpm2b(),
  };
}

/**
 * Part 3, 12.3 TPM2_LoadExternal of a public area alone (no sensitive part), in
 * `hierarchy`: the TPM can then verify with it, and it has a name, but nothing can be
 * authorized for it.
 */
export function LoadExternal(pub: Public, hierarchy: number = TPM_RH.NULL): Command<{ handle: number; name: Buffer }> {
  return {
    name: 'TPM2_LoadExternal',
    code: TPM_CC.LoadExternal,
    handles: [],
    params: (w) => {
      w.u16(0); // inPrivate: none
      w.sized((p) => writePublic(p, pub));
      w.u32(hierarchy);
    },
    responseHandles: 1,
    parse: (r, [handle]) => ({ handle: handle!, name: r.tpm2b() }),
  };
}
