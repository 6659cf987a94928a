import { Buffer } from 'node:buffer'
import * as nodeCrypto from 'node:crypto'
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto'
import type { CipherGCM, DecipherGCM, CipherChaCha20Poly1305, DecipherChaCha20Poly1305 } from 'node:crypto'
import { NotAuthenticError } from './errors.js'
import { hchacha20 } from './hchacha20.js'

/**
 * The algorithms a ciphertext can be sealed with, by their JSON names:
 * per-message key HMAC-SHA256(master, iv) + AES-256-GCM; HChaCha20(master, iv) +
 * ChaCha20-Poly1305; and the KES <= v0.6.0 legacy AES-derived key + AES-256-GCM (open only).
 */
export type Aead = 'AES-256-GCM-HMAC-SHA-256' | 'ChaCha20Poly1305' | 'AES-256-GCM'

/** Length of the random per-message iv that derives the per-message key. */
export const IV_BYTES = 16
/** Length of the AEAD nonce. */
export const NONCE_BYTES = 12
/** Length of the AEAD authentication tag. */
export const TAG_BYTES = 16

// KES <= v0.6.0: four AES-256 block encryptions under the master key; each block is a
// little-endian 32-bit counter followed by 12 iv bytes (alternately iv[0..12] and iv[4..16]),
// and key = (T0 xor T1) || (T2 xor T3).
function legacyAesSubkey(master: Buffer, iv: Buffer): Buffer {
  const blocks = Buffer.alloc(64)
  for (let i = 0; i < 4; i++) {
    blocks.writeUInt32LE(i, i * 16)
    const start = i % 2 === 0 ? 0 : 4
    iv.copy(blocks, i * 16 + 4, start, start + 12)
  }
  const ecb = createCipheriv('aes-256-ecb', master, null).setAutoPadding(false)
  const t = ecb.update(blocks)
  ecb.final()
  const subkey = Buffer.alloc(32)
  for (let i = 0; i < 16; i++) {
    subkey[i] = (t[i] ?? 0) ^ (t[16 + i] ?? 0)
    subkey[16 + i] = (t[32 + i] ?? 0) ^ (t[48 + i] ?? 0)
  }
  blocks.fill(0)
  t.fill(0)
  return subkey
}

const SHA256_BLOCK_BYTES = 64
const SHA256_BYTES = 32
const IPAD = 0x36
const OPAD = 0x5c

// crypto.hash (one call, no Hash object) exists from Node 20.12; older Node 20 releases use createHash.
const sha256: (data: Buffer) => Buffer =
  typeof nodeCrypto.hash === 'function'
    ? (data) => nodeCrypto.hash('sha256', data, 'buffer')
    : (data) => createHash('sha256').update(data).digest()

/**
 * A master key as the AEADs use it. The per-message subkey of AES-256-GCM-HMAC-SHA-256 is
 * HMAC-SHA256(master, iv) (RFC 2104): SHA256((K ⊕ opad) || SHA256((K ⊕ ipad) || iv)). The two
 * padded key blocks are prepared once per key, so a message costs two one-shot hashes instead
 * of an HMAC object; the result is the same bytes.
 */
export class AeadKey {
  readonly bytes: Buffer
  // (K ⊕ ipad) followed by room for the iv, and (K ⊕ opad) followed by room for the inner digest.
  #inner: Buffer | undefined
  #outer: Buffer | undefined

  /** Keeps a reference to `bytes` (the caller owns and zeroes them). */
  constructor(bytes: Buffer) {
    this.bytes = bytes
  }

  /** HMAC-SHA256(master, iv) for a 16-byte iv. */
  hmacSubkey(iv: Buffer): Buffer {
    if (iv.length !== IV_BYTES || this.bytes.length > SHA256_BLOCK_BYTES) return createHmac('sha256', this.bytes).update(iv).digest()
    if (this.#inner === undefined || this.#outer === undefined) {
      this.#inner = Buffer.alloc(SHA256_BLOCK_BYTES + IV_BYTES)
      this.#outer = Buffer.alloc(SHA256_BLOCK_BYTES + SHA256_BYTES)
      for (let i = 0; i < SHA256_BLOCK_BYTES; i++) {
        const k = this.bytes[i] ?? 0
        this.#inner[i] = k ^ IPAD
        this.#outer[i] = k ^ OPAD
      }
    }
    const inner = this.#inner
    const outer = this.#outer
    iv.copy(inner, SHA256_BLOCK_BYTES)
    const innerDigest = sha256(inner)
    innerDigest.copy(outer, SHA256_BLOCK_BYTES)
    innerDigest.fill(0)
    const subkey = sha256(outer)
    outer.fill(0, SHA256_BLOCK_BYTES)
    return subkey
  }

  /** Zeroes the prepared pads (the key bytes belong to the caller). */
  wipe(): void {
    this.#inner?.fill(0)
    this.#outer?.fill(0)
    this.#inner = undefined
    this.#outer = undefined
  }
}

function subkeyFor(aead: Aead, key: AeadKey, iv: Buffer): Buffer {
  switch (aead) {
    case 'AES-256-GCM-HMAC-SHA-256':
      return key.hmacSubkey(iv)
    case 'ChaCha20Poly1305':
      return hchacha20(key.bytes, iv)
    case 'AES-256-GCM':
      return legacyAesSubkey(key.bytes, iv)
  }
}

function createSealer(aead: Aead, subkey: Buffer, nonce: Buffer): CipherGCM | CipherChaCha20Poly1305 {
  return aead === 'ChaCha20Poly1305'
    ? createCipheriv('chacha20-poly1305', subkey, nonce, { authTagLength: TAG_BYTES })
    : createCipheriv('aes-256-gcm', subkey, nonce, { authTagLength: TAG_BYTES })
}

function createOpener(aead: Aead, subkey: Buffer, nonce: Buffer): DecipherGCM | DecipherChaCha20Poly1305 {
  return aead === 'ChaCha20Poly1305'
    ? createDecipheriv('chacha20-poly1305', subkey, nonce, { authTagLength: TAG_BYTES })
    : createDecipheriv('aes-256-gcm', subkey, nonce, { authTagLength: TAG_BYTES })
}

/**
 * Seals `plaintext` under a per-message key derived from `master` and `iv`, with `aad` as
 * associated data (absent and empty are the same). Returns ciphertext || tag.
 * Throws only on programming errors (wrong key, iv or nonce lengths).
 */
export function seal(aead: Aead, master: AeadKey, iv: Buffer, nonce: Buffer, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + TAG_BYTES)
  const n = sealInto(aead, master, iv, nonce, plaintext, aad, out, 0)
  return n === out.length ? out : out.subarray(0, n)
}

/**
 * `seal`, writing ciphertext || tag into `out` at `offset` (which must have room for
 * plaintext.length + TAG_BYTES); returns the number of bytes written. The output is public, so
 * `out` may be a buffer reused between calls.
 */
export function sealInto(
  aead: Aead,
  master: AeadKey,
  iv: Buffer,
  nonce: Buffer,
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
  out: Buffer,
  offset: number,
): number {
  if (offset + plaintext.length + TAG_BYTES > out.length) throw new RangeError('sealed bytes do not fit the output')
  const subkey = subkeyFor(aead, master, iv)
  try {
    const cipher = createSealer(aead, subkey, nonce)
    if (aad !== undefined && aad.length > 0) cipher.setAAD(aad, { plaintextLength: plaintext.length })
    let at = offset + cipher.update(plaintext).copy(out, offset)
    at += cipher.final().copy(out, at)
    at += cipher.getAuthTag().copy(out, at)
    return at - offset
  } finally {
    subkey.fill(0)
  }
}

/**
 * Opens `sealed` (ciphertext || tag) under the per-message key derived from `master` and `iv`.
 * Returns the plaintext (an empty buffer for an empty plaintext).
 * Throws NotAuthenticError if the tag does not verify, and for any other failure.
 */
export function open(aead: Aead, master: AeadKey, iv: Buffer, nonce: Buffer, sealed: Buffer, aad?: Uint8Array): Buffer {
  if (sealed.length < TAG_BYTES || iv.length !== IV_BYTES || nonce.length !== NONCE_BYTES) throw new NotAuthenticError()
  let subkey: Buffer | undefined
  let body: Buffer | undefined
  try {
    subkey = subkeyFor(aead, master, iv)
    const decipher = createOpener(aead, subkey, nonce)
    const tagStart = sealed.length - TAG_BYTES
    decipher.setAuthTag(sealed.subarray(tagStart))
    if (aad !== undefined && aad.length > 0) decipher.setAAD(aad, { plaintextLength: tagStart })
    body = decipher.update(sealed.subarray(0, tagStart))
    const tail = decipher.final()
    return tail.length === 0 ? body : Buffer.concat([body, tail])
  } catch {
    // Unauthenticated plaintext must not linger. Node reports a bad tag as a generic Error;
    // every failure here means "does not open".
    body?.fill(0)
    throw new NotAuthenticError()
  } finally {
    subkey?.fill(0)
  }
}
