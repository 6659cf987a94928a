/**
 * The root key that seals a key store: AES-256-GCM, by a key in memory (a key file or an
 * environment variable) or by a PKCS#11 token that never lets the key out (pkcs11-root.ts).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto'

/** The IV length of every seal (96 bits, the GCM standard). */
export const SEAL_IV_BYTES = 12
/** The GCM tag length (128 bits), appended to the ciphertext. */
export const SEAL_TAG_BYTES = 16

/** What seals and unseals. One call each; the token variant does one token call each. */
export interface SealRoot {
  /** For messages: 'key file /etc/openkes/seal.key', 'PKCS#11 token "x" key "y"'. Never key bytes. */
  readonly description: string
  /** AES-256-GCM of `plaintext` under the root key; returns ciphertext ‖ tag. */
  encrypt(iv: Buffer, plaintext: Buffer, aad: Buffer): Promise<Buffer>
  /** The inverse; rejects when the tag does not verify (wrong key, data or associated data). */
  decrypt(iv: Buffer, sealed: Buffer, aad: Buffer): Promise<Buffer>
  /** Releases the root (logs out of the token). Idempotent. */
  close(): Promise<void>
}

/** A root key held in memory: for development and small setups. */
export class MemoryRoot implements SealRoot {
  readonly description: string
  readonly #key: Buffer

  /** `key` (32 bytes) is copied; the caller may wipe its own copy. */
  constructor(key: Uint8Array, description: string) {
    if (key.length !== 32) throw new Error(`${description}: the root key must be 32 bytes, not ${key.length}`)
    this.#key = Buffer.from(key)
    this.description = description
  }

  async encrypt(iv: Buffer, plaintext: Buffer, aad: Buffer): Promise<Buffer> {
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: SEAL_TAG_BYTES })
    cipher.setAAD(aad)
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  }

  async decrypt(iv: Buffer, sealed: Buffer, aad: Buffer): Promise<Buffer> {
    if (sealed.length < SEAL_TAG_BYTES) throw new Error('sealed value too short')
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: SEAL_TAG_BYTES })
    decipher.setAAD(aad)
    decipher.setAuthTag(sealed.subarray(sealed.length - SEAL_TAG_BYTES))
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - SEAL_TAG_BYTES)), decipher.final()])
  }

  async close(): Promise<void> {
    this.#key.fill(0)
  }
}

/**
 * Decodes a root key written as text: base64 (44 characters, `openssl rand -base64 32`) or
 * hex (64 characters) of 32 bytes, surrounded white space ignored. Throws saying what is wrong
 * (never the text itself).
 */
export function decodeRootKey(text: string, where: string): Buffer {
  const t = text.trim()
  let key: Buffer | undefined
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex')
  else if (/^[A-Za-z0-9+/]{43}=$/.test(t)) key = Buffer.from(t, 'base64')
  if (key?.length !== 32) throw new Error(`${where}: expected 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits`)
  return key
}
