import { Buffer } from 'node:buffer'
import { decodeBase64Strict } from './base64.js'
import { ProtobufError, ProtobufReader, WireType } from './protobuf-reader.js'
import { KEY_BYTES, SecretKey } from './secret-key.js'
import type { Cipher } from './secret-key.js'
import { parseCiphertext } from './ciphertext.js'
import { NotAuthenticError } from './errors.js'

/** A key file is malformed or in an unknown format. The message never contains key bytes. */
export class KeyFileError extends Error {
  constructor(reason: string) {
    super(`invalid key file: ${reason}`)
    this.name = 'KeyFileError'
  }
}

// Every spelling of a key type that a KES file-system store ever wrote. Missing and "" are the
// untyped keys of older stores, which count as AES256.
const ALGORITHMS: ReadonlyMap<string, Cipher> = new Map([
  ['', 'AES256'],
  ['AES256', 'AES256'],
  ['AES256-GCM_SHA256', 'AES256'],
  ['ChaCha20', 'ChaCha20'],
  ['XCHACHA20-POLY1305', 'ChaCha20'],
])

// What Go's time.Time accepts from JSON: RFC 3339 with an optional fraction.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

// google.protobuf.Timestamp limits: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
const MIN_SECONDS = -62135596800n
const MAX_SECONDS = 253402300799n

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

/**
 * Reads a key file in any format a KES file-system key store wrote, or in ours
 * (test/fixtures/kes-vectors/keystore-fs/README.md): content starting with `{` is JSON, anything else is
 * the base64 of a protobuf `KeyVersion` (KES v0.24+).
 * Throws KeyFileError if the content is malformed, names an unknown algorithm or version, or
 * holds a key that is not 32 bytes.
 */
export function parseKeyFile(content: Uint8Array): SecretKey {
  const buf = asBuffer(content)
  if (buf[0] !== 0x7b) return parseProtobufKeyFile(buf)
  const parsed = parseJson(buf)
  return Object.hasOwn(parsed, VERSIONS_FIELD) ? parseVersionList(parsed).newest : parseJsonKey(parsed)
}

/**
 * Reads a key store entry: a key file in any single-version format (see parseKeyFile), or
 * OpenKES's versioned format (see formatKeyVersions). Throws KeyFileError like parseKeyFile.
 */
export function parseKeyEntry(content: Uint8Array): KeyVersions {
  const buf = asBuffer(content)
  if (buf[0] !== 0x7b) return new KeyVersions([parseProtobufKeyFile(buf)])
  const parsed = parseJson(buf)
  return Object.hasOwn(parsed, VERSIONS_FIELD) ? parseVersionList(parsed) : new KeyVersions([parseJsonKey(parsed)])
}

// The versioned entry: {"format":"openkes-key-versions/v1","versions":[<key object>, ...]}, oldest first.
const VERSIONS_FIELD = 'versions'
const VERSIONS_FORMAT = 'openkes-key-versions/v1'

/** The most versions one key keeps (about 250 bytes each, far below the store's value limit). */
export const MAX_KEY_VERSIONS = 1000

function parseVersionList(parsed: object): KeyVersions {
  if (optionalString(parsed, 'format') !== VERSIONS_FORMAT) throw new KeyFileError('unsupported versions format')
  const list: unknown = (parsed as Record<string, unknown>)[VERSIONS_FIELD]
  if (!Array.isArray(list) || list.length === 0) throw new KeyFileError(`'versions' is not a non-empty list`)
  if (list.length > MAX_KEY_VERSIONS) throw new KeyFileError(`more than ${MAX_KEY_VERSIONS} versions`)
  const versions = list.map((item: unknown) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new KeyFileError('a version is not a json object')
    return parseJsonKey(item)
  })
  return new KeyVersions(versions)
}

/**
 * Writes a key with all its versions (oldest first) in OpenKES's versioned format, compact JSON:
 * `{"format":"openkes-key-versions/v1","versions":[<v1>,<v2>,...]}` where each version is the
 * object formatKeyFile writes. The result holds key material: zero it once it is written.
 * Throws KeyFileError as formatKeyFile, and for an empty or too long list.
 */
export function formatKeyVersions(versions: readonly SecretKey[]): Buffer {
  if (versions.length === 0 || versions.length > MAX_KEY_VERSIONS) throw new KeyFileError('invalid number of versions')
  const files = versions.map((v) => formatKeyFile(v))
  try {
    const parts: Buffer[] = [Buffer.from(`{"format":"${VERSIONS_FORMAT}","versions":[`, 'latin1')]
    files.forEach((file, i) => {
      if (i > 0) parts.push(Buffer.from(',', 'latin1'))
      parts.push(file)
    })
    parts.push(Buffer.from(']}', 'latin1'))
    // Buffer.concat of more than the pool size allocates its own memory, but small results come
    // from the shared pool; copy into an unpooled buffer the caller can zero.
    const total = parts.reduce((n, p) => n + p.length, 0)
    const out = Buffer.alloc(total)
    let at = 0
    for (const p of parts) at += p.copy(out, at)
    return out
  } finally {
    for (const f of files) f.fill(0)
  }
}

/** At most this many versions are tried for a ciphertext that names no key id (the raw format). */
export const MAX_RAW_TRIES = 16

/**
 * All versions of one key, oldest first. The newest seals (generate, encrypt); decrypt picks the
 * version by the key id the ciphertext carries, or, for the raw format that carries none, tries
 * the newest MAX_RAW_TRIES versions, newest first. A key with one version (every key never
 * rotated) decrypts exactly as a SecretKey does.
 */
export class KeyVersions {
  readonly versions: readonly SecretKey[]
  /** The version that seals new ciphertexts; its id is the key's id in describe. */
  readonly newest: SecretKey
  readonly #byId: ReadonlyMap<string, SecretKey> | undefined

  /** Throws RangeError for an empty list. */
  constructor(versions: readonly SecretKey[]) {
    const newest = versions[versions.length - 1]
    if (newest === undefined) throw new RangeError('a key needs at least one version')
    this.versions = Object.freeze([...versions])
    this.newest = newest
    this.#byId = versions.length === 1 ? undefined : new Map(versions.map((v) => [v.id, v]))
  }

  /**
   * Decrypts like SecretKey.decrypt with the version the ciphertext names. Throws
   * InvalidCiphertextError for bytes in no format, NotAuthenticError when no version opens it.
   */
  decrypt(ciphertext: Uint8Array, context?: Uint8Array): Buffer {
    const byId = this.#byId
    if (byId === undefined) return this.newest.decrypt(ciphertext, context)
    const id = parseCiphertext(asBuffer(ciphertext), 'AES-256-GCM-HMAC-SHA-256').id
    if (id !== '') {
      const version = byId.get(id)
      if (version === undefined) throw new NotAuthenticError()
      return version.decrypt(ciphertext, context)
    }
    const versions = this.versions
    const last = Math.max(0, versions.length - MAX_RAW_TRIES)
    for (let i = versions.length - 1; i >= last; i--) {
      try {
        return (versions[i] as SecretKey).decrypt(ciphertext, context)
      } catch (err) {
        if (!(err instanceof NotAuthenticError)) throw err
      }
    }
    throw new NotAuthenticError()
  }

  /**
   * HMAC under the key's first version, so MACs clients stored stay valid after a rotation
   * (a MAC names no version, so verifying could not pick one).
   */
  hmac(message: Uint8Array): Buffer {
    return (this.versions[0] as SecretKey).hmac(message)
  }
}

/**
 * Writes a key in our key file format, compact JSON:
 * `{"version":"v1","bytes":"<b64 key>","algorithm":"AES256"|"ChaCha20","created_at":"<RFC 3339>","created_by":"<hex identity>","hmac_key":"<b64>"}`.
 * `created_at`, `created_by` and `hmac_key` are left out when the key has none. It follows the
 * JSON layout of KES v0.22.3 - 2024-01-11 key files, always names the algorithm (so the type
 * survives), and adds `hmac_key`.
 * The result holds key material: zero it (`fill(0)`) once it is written.
 * Throws KeyFileError if `createdAt` is not an RFC 3339 time (the file could not be read back).
 */
export function formatKeyFile(key: SecretKey): Buffer {
  if (key.createdAt !== undefined && !RFC3339.test(key.createdAt)) throw new KeyFileError('created_at is not an RFC 3339 time')
  const bytes = key.exportBytesForStorage()
  const hmacKey = key.exportHmacKeyForStorage()
  try {
    const file: Record<string, string> = { version: 'v1', bytes: bytes.toString('base64'), algorithm: key.cipher }
    if (key.createdAt !== undefined) file['created_at'] = key.createdAt
    if (key.createdBy !== undefined) file['created_by'] = key.createdBy
    if (hmacKey !== undefined) file['hmac_key'] = hmacKey.toString('base64')
    // Not Buffer.from: small buffers come from Node's shared pool, which is
    // never cleared; the caller zeroes this one once it is stored.
    const text = JSON.stringify(file)
    const out = Buffer.alloc(Buffer.byteLength(text))
    out.write(text, 'utf8')
    return out
  } finally {
    bytes.fill(0)
    hmacKey?.fill(0)
  }
}

// JSON null counts as absent, as it does for Go's encoding/json.
function optionalString(obj: object, name: string): string | undefined {
  const value: unknown = Object.hasOwn(obj, name) ? (obj as Record<string, unknown>)[name] : undefined
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new KeyFileError(`'${name}' is not a string`)
  return value
}

function decodeKeyField(b64: string, name: string): Buffer {
  const decoded = decodeBase64Strict(b64)
  if (decoded === undefined) throw new KeyFileError(`'${name}' is not base64`)
  if (decoded.length !== KEY_BYTES) {
    decoded.fill(0)
    throw new KeyFileError(`'${name}' is not ${KEY_BYTES} bytes`)
  }
  return decoded
}

function parseJson(buf: Buffer): object {
  let parsed: unknown
  try {
    parsed = JSON.parse(buf.toString('utf8'))
  } catch {
    throw new KeyFileError('malformed json')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new KeyFileError('not a json object')
  return parsed
}

// One key in the JSON layout (a whole key file, or one element of a versioned entry).
function parseJsonKey(parsed: object): SecretKey {
  const version = optionalString(parsed, 'version')
  if (version !== undefined && version !== 'v1') throw new KeyFileError('unsupported version')
  const algorithm = optionalString(parsed, 'algorithm') ?? ''
  const cipher = ALGORITHMS.get(algorithm)
  if (cipher === undefined) throw new KeyFileError('unknown algorithm')
  const createdAt = optionalString(parsed, 'created_at')
  if (createdAt !== undefined && !RFC3339.test(createdAt)) throw new KeyFileError(`'created_at' is not an RFC 3339 time`)
  const createdBy = optionalString(parsed, 'created_by')
  const keyB64 = optionalString(parsed, 'bytes')
  if (keyB64 === undefined) throw new KeyFileError(`'bytes' is missing`)
  const hmacB64 = optionalString(parsed, 'hmac_key')

  const bytes = decodeKeyField(keyB64, 'bytes')
  const hmacKey = hmacB64 === undefined ? undefined : decodeKeyField(hmacB64, 'hmac_key')
  try {
    return new SecretKey(bytes, cipher, { hmacKey, createdAt, createdBy })
  } finally {
    bytes.fill(0)
    hmacKey?.fill(0)
  }
}

// KES v0.24+ KeyVersion:
//   1 SecretKey { 1 bytes key, 2 enum type (1 AES256, 2 ChaCha20) }
//   2 HMACKey   { 1 bytes key, 2 enum hash (1 SHA-256) }
//   3 google.protobuf.Timestamp created_at { 1 int64 seconds, 2 int32 nanos }
//   4 string created_by
// Embedded messages that occur twice are merged and later scalars win, as protobuf specifies.
interface KeyVersionFields {
  key?: Buffer
  keyType?: bigint
  hmacKey?: Buffer
  hmacHash?: bigint
  seconds?: bigint
  nanos?: bigint
  createdBy?: string
}

function expectWireType(actual: number, expected: number, field: string): void {
  if (actual !== expected) throw new KeyFileError(`unexpected wire type for ${field}`)
}

function readMessage(bytes: Buffer, onField: (r: ProtobufReader, field: number, wireType: number) => boolean): void {
  const r = new ProtobufReader(bytes)
  while (!r.done) {
    const tag = r.readTag()
    if (!onField(r, tag.field, tag.wireType)) r.skip(tag.wireType, tag.field)
  }
}

function readKeyVersion(bytes: Buffer): KeyVersionFields {
  const out: KeyVersionFields = {}
  readMessage(bytes, (r, field, wireType) => {
    if (field === 1) {
      expectWireType(wireType, WireType.Len, 'key')
      readMessage(r.readBytes(), (k, f, w) => {
        if (f === 1) {
          expectWireType(w, WireType.Len, 'key bytes')
          out.key = k.readBytes()
        } else if (f === 2) {
          expectWireType(w, WireType.Varint, 'key type')
          out.keyType = k.readVarint()
        } else return false
        return true
      })
    } else if (field === 2) {
      expectWireType(wireType, WireType.Len, 'hmac key')
      readMessage(r.readBytes(), (h, f, w) => {
        if (f === 1) {
          expectWireType(w, WireType.Len, 'hmac key bytes')
          out.hmacKey = h.readBytes()
        } else if (f === 2) {
          expectWireType(w, WireType.Varint, 'hmac hash')
          out.hmacHash = h.readVarint()
        } else return false
        return true
      })
    } else if (field === 3) {
      expectWireType(wireType, WireType.Len, 'created_at')
      out.seconds ??= 0n
      out.nanos ??= 0n
      readMessage(r.readBytes(), (t, f, w) => {
        if (f === 1) {
          expectWireType(w, WireType.Varint, 'created_at seconds')
          out.seconds = BigInt.asIntN(64, t.readVarint())
        } else if (f === 2) {
          expectWireType(w, WireType.Varint, 'created_at nanos')
          out.nanos = BigInt.asIntN(32, t.readVarint())
        } else return false
        return true
      })
    } else if (field === 4) {
      expectWireType(wireType, WireType.Len, 'created_by')
      out.createdBy = r.readBytes().toString('utf8')
    } else return false
    return true
  })
  return out
}

// RFC 3339 in UTC with all nine fraction digits (test/fixtures/kes-vectors/keystore-fs/expected.json).
function formatTimestamp(seconds: bigint, nanos: bigint): string {
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS || nanos < 0n || nanos > 999_999_999n) {
    throw new KeyFileError('created_at is out of range')
  }
  const whole = new Date(Number(seconds) * 1000).toISOString().slice(0, 19)
  return `${whole}.${nanos.toString().padStart(9, '0')}Z`
}

function parseProtobufKeyFile(buf: Buffer): SecretKey {
  // Tolerate a trailing newline an editor may have added; KES writes none.
  const decoded = decodeBase64Strict(buf.toString('latin1').trimEnd())
  if (decoded === undefined || decoded.length === 0) throw new KeyFileError('neither json nor base64 protobuf')
  try {
    let fields: KeyVersionFields
    try {
      fields = readKeyVersion(decoded)
    } catch (err) {
      if (err instanceof ProtobufError) throw new KeyFileError(`malformed protobuf: ${err.message}`)
      throw err
    }
    if (fields.key === undefined) throw new KeyFileError('key is missing')
    if (fields.key.length !== KEY_BYTES) throw new KeyFileError(`key is not ${KEY_BYTES} bytes`)
    const cipher = fields.keyType === 1n ? 'AES256' : fields.keyType === 2n ? 'ChaCha20' : undefined
    if (cipher === undefined) throw new KeyFileError('unknown key type')
    if (fields.hmacKey !== undefined || fields.hmacHash !== undefined) {
      if (fields.hmacHash !== 1n) throw new KeyFileError('unsupported hmac hash')
      if (fields.hmacKey?.length !== KEY_BYTES) throw new KeyFileError(`hmac key is not ${KEY_BYTES} bytes`)
    }
    const createdAt =
      fields.seconds === undefined || fields.nanos === undefined ? undefined : formatTimestamp(fields.seconds, fields.nanos)
    const createdBy = fields.createdBy === '' ? undefined : fields.createdBy
    return new SecretKey(fields.key, cipher, { hmacKey: fields.hmacKey, createdAt, createdBy })
  } finally {
    // key and hmac key are views into this buffer
    decoded.fill(0)
  }
}
