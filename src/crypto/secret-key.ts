import { Buffer } from 'node:buffer'
import { createHash, createHmac, hkdfSync } from 'node:crypto'
import { inspect } from 'node:util'
import type { Aead } from './aead.js'
import { AeadKey, IV_BYTES, NONCE_BYTES, open, seal, sealInto } from './aead.js'
import { formatJsonCiphertext, jsonCiphertextText, parseCiphertext } from './ciphertext.js'
import { NotAuthenticError } from './errors.js'
import { randomPool } from './random-pool.js'

export { InvalidCiphertextError, NotAuthenticError } from './errors.js'

/** The type of a master key: which AEAD it seals with. */
export type Cipher = 'AES256' | 'ChaCha20'

/** Optional metadata and a separately stored HMAC key (KES v0.24+ key files carry one). */
export interface SecretKeyOptions {
  hmacKey?: Uint8Array
  /** RFC 3339 timestamp */
  createdAt?: string
  /** hex identity of the creator */
  createdBy?: string
}

/** The length of every master key and stored HMAC key. */
export const KEY_BYTES = 32

const REDACTED = 'SecretKey(redacted)'

// The HMAC key of a key whose file carries none (every KES key file before v0.24, and ours
// without `hmac_key`) is derived from the master key:
//   HKDF-SHA256(ikm = master key, salt = empty, info = "OpenKES HMAC-SHA256 key v1", L = 32)
// (RFC 5869; an empty salt means 32 zero bytes). HKDF with its own info label separates this
// key from every other use of the master key (the AEAD subkeys HMAC-SHA256(master, random iv)),
// and it is deterministic, so every server on the same key store computes the same MACs.
// Changing the label would change every MAC clients have stored: it is part of the format.
const HMAC_KEY_INFO = Buffer.from('OpenKES HMAC-SHA256 key v1', 'latin1')
const HMAC_KEY_SALT = Buffer.alloc(0)

const SEALING_AEAD: Readonly<Record<Cipher, Aead>> = {
  AES256: 'AES-256-GCM-HMAC-SHA-256',
  ChaCha20: 'ChaCha20Poly1305',
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

function copyKey(bytes: Uint8Array, what: string): Buffer {
  if (bytes.length !== KEY_BYTES) throw new RangeError(`invalid ${what} length`)
  const copy = Buffer.alloc(KEY_BYTES)
  copy.set(bytes)
  return copy
}

/**
 * The key id KES puts into ciphertexts: lowercase hex of the first 16 bytes of SHA-256(key).
 * Key ids are public (they identify, they do not reveal).
 */
export function keyIdOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest().toString('hex', 0, 16)
}

// Where encryptToBase64 assembles a ciphertext: iv, nonce and sealed bytes, then the JSON text.
// All of it is public (what the client gets) and used synchronously, so one buffer serves every call.
const SCRATCH_BYTES = 4096
// Plaintexts up to this size fit the scratch buffer as JSON ciphertext (larger ones take encrypt's way).
const MAX_SCRATCH_PLAINTEXT = 1024
const scratch = Buffer.alloc(SCRATCH_BYTES)

/**
 * A 256-bit master key. The key bytes live in a private field and never appear in errors,
 * `JSON.stringify` or `util.inspect` output.
 */
export class SecretKey {
  readonly #bytes: Buffer
  readonly #aeadKey: AeadKey
  readonly #storedHmacKey: Buffer | undefined
  #derivedHmacKey: Buffer | undefined
  #id: string | undefined

  /** The AEAD this key seals with, and opens raw ciphertexts with. */
  readonly cipher: Cipher
  /** RFC 3339 creation time, if known. */
  readonly createdAt: string | undefined
  /** Hex identity of the creator, if known. */
  readonly createdBy: string | undefined

  /**
   * Copies `bytes` into a new key of type `cipher`.
   * Throws a RangeError (`invalid key length`, `invalid hmac key length`) if the key or the
   * HMAC key is not 32 bytes, and a TypeError for an unknown cipher.
   */
  constructor(bytes: Uint8Array, cipher: Cipher, options?: SecretKeyOptions) {
    if (cipher !== 'AES256' && cipher !== 'ChaCha20') throw new TypeError('invalid cipher')
    this.#bytes = copyKey(bytes, 'key')
    this.#aeadKey = new AeadKey(this.#bytes)
    this.#storedHmacKey = options?.hmacKey === undefined ? undefined : copyKey(options.hmacKey, 'hmac key')
    this.cipher = cipher
    this.createdAt = options?.createdAt
    this.createdBy = options?.createdBy
  }

  /** Creates a key of type `cipher` from 32 fresh random bytes. */
  static generate(cipher: Cipher, options?: SecretKeyOptions): SecretKey {
    const bytes = randomPool.take(KEY_BYTES)
    try {
      return new SecretKey(bytes, cipher, options)
    } finally {
      bytes.fill(0)
    }
  }

  /** Lowercase hex of the first 16 bytes of SHA-256(key bytes), as KES computes it. */
  get id(): string {
    this.#id ??= keyIdOf(this.#bytes)
    return this.#id
  }

  /** Whether the key carries its own HMAC key (read from a KES v0.24+ key file or our format). */
  get hasStoredHmacKey(): boolean {
    return this.#storedHmacKey !== undefined
  }

  /**
   * Encrypts `plaintext` with `context` as associated data (absent and empty are the same).
   * Returns the UTF-8 bytes of the seed-era JSON ciphertext
   * `{"aead":..,"id":..,"iv":..,"nonce":..,"bytes":..}` (not base64), which every KES release opens.
   */
  encrypt(plaintext: Uint8Array, context?: Uint8Array): Buffer {
    // Safe random 96-bit nonces: every message gets a fresh subkey derived from a random
    // 128-bit iv (HMAC-SHA256(key, iv) or HChaCha20(key, iv)), so a nonce only has to be unique
    // under that one subkey, where it is used exactly once.
    const ivAndNonce = randomPool.take(IV_BYTES + NONCE_BYTES)
    const iv = ivAndNonce.subarray(0, IV_BYTES)
    const nonce = ivAndNonce.subarray(IV_BYTES)
    const aead = SEALING_AEAD[this.cipher]
    const sealed = seal(aead, this.#aeadKey, iv, nonce, plaintext, context)
    return formatJsonCiphertext(aead, this.id, iv, nonce, sealed)
  }

  /**
   * The base64 text of `encrypt(plaintext, context)` (what generate and encrypt answer), without
   * the intermediate buffers: the ciphertext is assembled in a reused scratch buffer.
   */
  encryptToBase64(plaintext: Uint8Array, context?: Uint8Array): string {
    if (plaintext.length > MAX_SCRATCH_PLAINTEXT) return this.encrypt(plaintext, context).toString('base64')
    const sealedStart = IV_BYTES + NONCE_BYTES
    randomPool.takeInto(scratch, 0, sealedStart)
    const aead = SEALING_AEAD[this.cipher]
    const sealedEnd =
      sealedStart + sealInto(aead, this.#aeadKey, scratch.subarray(0, IV_BYTES), scratch.subarray(IV_BYTES, sealedStart), plaintext, context, scratch, sealedStart)
    const json = jsonCiphertextText(
      aead,
      this.id,
      scratch.toString('base64', 0, IV_BYTES),
      scratch.toString('base64', IV_BYTES, sealedStart),
      scratch.toString('base64', sealedStart, sealedEnd),
    )
    const length = scratch.write(json, 0, 'latin1')
    return scratch.toString('base64', 0, length)
  }

  /**
   * Decrypts ciphertext bytes (already base64-decoded) in any format KES ever produced: JSON,
   * MessagePack or raw (rules: test/fixtures/kes-vectors/README.md). `context` is the associated data
   * (absent and empty are the same). Returns the plaintext, an empty buffer for an empty one.
   * Throws InvalidCiphertextError for bytes in no known format and NotAuthenticError when the
   * ciphertext names another key id or does not authenticate; never anything else.
   */
  decrypt(ciphertext: Uint8Array, context?: Uint8Array): Buffer {
    const parsed = parseCiphertext(asBuffer(ciphertext), SEALING_AEAD[this.cipher])
    // The id is public, so a plain comparison leaks nothing. A mismatch means another key.
    if (parsed.id !== '' && parsed.id !== this.id) throw new NotAuthenticError()
    return open(parsed.aead, this.#aeadKey, parsed.iv, parsed.nonce, parsed.sealed, context)
  }

  /**
   * HMAC-SHA256 of `message` under the stored HMAC key, or, for keys without one, under the key
   * derived from the master key by HKDF-SHA256 (see HMAC_KEY_INFO). The derived key is computed
   * once per SecretKey (the key cache keeps the instance), not once per call.
   */
  hmac(message: Uint8Array): Buffer {
    let key = this.#storedHmacKey ?? this.#derivedHmacKey
    if (key === undefined) {
      key = Buffer.alloc(KEY_BYTES)
      key.set(new Uint8Array(hkdfSync('sha256', this.#bytes, HMAC_KEY_SALT, HMAC_KEY_INFO, KEY_BYTES)))
      this.#derivedHmacKey = key
    }
    return createHmac('sha256', key).update(message).digest()
  }

  /**
   * Returns a copy of the key bytes. Only crypto/key-version.ts may call this, to write key
   * files; nothing else needs key bytes outside this class.
   */
  exportBytesForStorage(): Buffer {
    return copyKey(this.#bytes, 'key')
  }

  /**
   * Returns a copy of the stored HMAC key, or undefined if the key has none. Only
   * crypto/key-version.ts may call this, to write key files.
   */
  exportHmacKeyForStorage(): Buffer | undefined {
    return this.#storedHmacKey === undefined ? undefined : copyKey(this.#storedHmacKey, 'hmac key')
  }

  /** Redacted: key material never reaches JSON. */
  toJSON(): string {
    return REDACTED
  }

  /** Redacted: key material never reaches strings. */
  toString(): string {
    return REDACTED
  }

  /** Redacted: key material never reaches logs through util.inspect / console.log. */
  [inspect.custom](): string {
    return REDACTED
  }
}
