/** The files a user hands an escrow: the item, an offer with its ciphertext, an acceptance; read bounded, refused with the path and why. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SwarmpayError } from '../errors.js';
import { MAX_ITEM_BYTES, parseOffer, type Offer } from './offer.js';
import { parseAcceptance } from './seller.js';
import type { Acceptance } from './record.js';

/** A whole file of at most `max` bytes. */
export function readBoundedFile(file: string, what: string, max: number): Buffer {
  try {
    const size = statSync(file).size;
    if (size > max) throw new SwarmpayError('INVALID_FILE', `the ${what} ${file} is ${size} bytes; at most ${max} are accepted`);
    return readFileSync(file);
  } catch (e) {
    if (e instanceof SwarmpayError) throw e;
    throw new SwarmpayError('INVALID_FILE', `cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { hint: 'check the path' });
  }
}

/** Offers and acceptances are small: anything larger is not one. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;

function readJson(file: string, what: string): unknown {
  const text = readBoundedFile(file, what, MAX_DOCUMENT_BYTES).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SwarmpayError('INVALID_FILE', `the ${what} ${file} is not JSON: ${(e as Error).message}`, { hint: 'nothing was changed' });
  }
}

/**
 * An offer file and its ciphertext: `ciphertextFile`, else OFFER.enc (as `escrow offer
 * --out` writes them), else ID.enc beside the offer (as `escrow offer` names them).
 */
export function readOfferFiles(offerFile: string, ciphertextFile?: string): { offer: Offer; ciphertext: Buffer } {
  const offer = parseOffer(readJson(offerFile, 'offer'));
  const beside = [`${offerFile}.enc`, path.join(path.dirname(offerFile), `${offer.id}.enc`)];
  const file = ciphertextFile ?? beside.find((f) => existsSync(f)) ?? `${offerFile}.enc`;
  return { offer, ciphertext: readBoundedFile(file, 'ciphertext', MAX_ITEM_BYTES + 64) };
}

export function readAcceptanceFile(file: string): Acceptance {
  return parseAcceptance(readJson(file, 'acceptance'));
}
