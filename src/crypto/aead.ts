import { Buffer } from 'node:buffer'
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto'
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

function subkeyFor(aead: Aead, master: Buffer, iv: Buffer): Buffer {
  switch (aead) {
    case 'AES-256-GCM-HMAC-SHA-256':
      return createHmac('sha256', master).update(iv).digest()
    case 'ChaCha20Poly1305':
      return hchacha20(master, iv)
    case 'AES-256-GCM':
      return legacyAesSubkey(master, iv)
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
export function seal(aead: Aead, master: Buffer, iv: Buffer, nonce: Buffer, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const subkey = subkeyFor(aead, master, iv)
  try {
    const cipher = createSealer(aead, subkey, nonce)
    if (aad !== undefined && aad.length > 0) cipher.setAAD(aad, { plaintextLength: plaintext.length })
    const body = cipher.update(plaintext)
    const tail = cipher.final()
    return Buffer.concat([body, tail, cipher.getAuthTag()], body.length + tail.length + TAG_BYTES)
  } finally {
    subkey.fill(0)
  }
}

/**
 * Opens `sealed` (ciphertext || tag) under the per-message key derived from `master` and `iv`.
 * Returns the plaintext (an empty buffer for an empty plaintext).
 * Throws NotAuthenticError if the tag does not verify, and for any other failure.
 */
export function open(aead: Aead, master: Buffer, iv: Buffer, nonce: Buffer, sealed: Buffer, aad?: Uint8Array): Buffer {
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
