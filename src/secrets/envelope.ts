import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { IntegrityError } from '../errors.js';

/**
 * Envelope encryption of bucket objects (DESIGN.md §4).
 *
 * Each object is AES-256-GCM under a layer's data key (from KMS GenerateDataKey with
 * encryption context {environment, layer}); the KMS-encrypted copy of the data key travels
 * in the object's header, so any object can be decrypted on its own by whoever may call
 * kms:Decrypt with that context. The additional authenticated data binds the
 * ciphertext to its environment, layer and object path: a ciphertext moved to another path,
 * layer or environment fails authentication.
 *
 * Wire format (all integers big-endian):
 *
 *   magic "KPE1" (4) | edkLen u16 (2) | edk (edkLen) | iv (12) | ciphertext (n) | tag (16)
 *
 * Sources: NIST SP 800-38D (GCM; 96-bit IVs, 128-bit tags; random IVs are safe for up to
 * 2^32 messages per key), AWS KMS "Encryption context" and "GenerateDataKey" docs.
 */

export const MAGIC = Buffer.from('KPE1');
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** What an object is bound to: the encryption context and the object path. */
export interface Binding {
  environment: string;
  layer: string;
  /** the object key in the bucket, e.g. `secure/manifests/etcd.yaml` or `index/secure` */
  path: string;
}

/** A plaintext data key and its KMS-encrypted form. */
export interface DataKey {
  /** 32 bytes (AES-256); never logged, never written anywhere */
  plaintext: Buffer;
  /** KMS CiphertextBlob of the key, stored in every object header */
  encrypted: Buffer;
}

/** KMS encryption context for a layer: `{environment, layer}`. */
export function encryptionContext(b: Pick<Binding, 'environment' | 'layer'>): Record<string, string> {
  return { environment: b.environment, layer: b.layer };
}

function aad(b: Binding): Buffer {
  return Buffer.from(`kube-platform/v1\0${b.environment}\0${b.layer}\0${b.path}`, 'utf8');
}

/**
 * Encrypts `plaintext` under `key`, bound to `binding`.
 * @returns the object bytes in the wire format above
 */
export function seal(plaintext: Buffer, key: DataKey, binding: Binding): Buffer {
  if (key.plaintext.length !== 32) throw new Error('data key must be 32 bytes');
  if (key.encrypted.length > 0xffff) throw new Error('encrypted data key too long');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.plaintext, iv);
  cipher.setAAD(aad(binding));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(key.encrypted.length);
  return Buffer.concat([MAGIC, len, key.encrypted, iv, body, cipher.getAuthTag()]);
}

/** The parts of a sealed object. */
export interface Envelope {
  encryptedKey: Buffer;
  iv: Buffer;
  body: Buffer;
  tag: Buffer;
}

/**
 * Splits an object into its parts without decrypting.
 * @throws IntegrityError when the bytes are not in the wire format (naming `what`)
 */
export function parseEnvelope(data: Buffer, what: string): Envelope {
  if (data.length < 6 || !data.subarray(0, 4).equals(MAGIC)) {
    throw new IntegrityError(`${what}: not an encrypted kube-platform object`);
  }
  const len = data.readUInt16BE(4);
  const start = 6 + len;
  if (data.length < start + IV_BYTES + TAG_BYTES) throw new IntegrityError(`${what}: truncated object`);
  return {
    encryptedKey: data.subarray(6, start),
    iv: data.subarray(start, start + IV_BYTES),
    body: data.subarray(start + IV_BYTES, data.length - TAG_BYTES),
    tag: data.subarray(data.length - TAG_BYTES),
  };
}

/**
 * Decrypts and authenticates an envelope with the already-decrypted data key.
 * @throws IntegrityError when authentication fails (tampered bytes, wrong path, layer or
 *   environment); the message names the object, never its content
 */
export function open(env: Envelope, plaintextKey: Buffer, binding: Binding): Buffer {
  try {
    const d = createDecipheriv('aes-256-gcm', plaintextKey, env.iv);
    d.setAAD(aad(binding));
    d.setAuthTag(env.tag);
    return Buffer.concat([d.update(env.body), d.final()]);
  } catch {
    throw new IntegrityError(
      `${binding.path}: authentication failed (tampered, moved from another path/layer, or from another environment)`,
    );
  }
}

/** Hex SHA-256 of bytes: the digest recorded in indexes (FIPS 180-4). */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
