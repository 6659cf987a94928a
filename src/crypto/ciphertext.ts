import { Buffer } from 'node:buffer'
import type { Aead } from './aead.js'
import { IV_BYTES, NONCE_BYTES, TAG_BYTES } from './aead.js'
import { decodePublicBase64Strict } from './base64.js'
import { InvalidCiphertextError } from './errors.js'

/** A ciphertext split into its parts; `id` is '' when the ciphertext names no key. */
export interface ParsedCiphertext {
  readonly aead: Aead
  readonly id: string
  readonly iv: Buffer
  readonly nonce: Buffer
  /** ciphertext || tag */
  readonly sealed: Buffer
}

/** The smallest raw ciphertext: an empty plaintext's tag, the iv and the nonce. */
export const MIN_RAW_BYTES = TAG_BYTES + IV_BYTES + NONCE_BYTES

const JSON_AEADS: ReadonlyMap<string, Aead> = new Map([
  ['AES-256-GCM-HMAC-SHA-256', 'AES-256-GCM-HMAC-SHA-256'],
  ['ChaCha20Poly1305', 'ChaCha20Poly1305'],
  ['AES-256-GCM', 'AES-256-GCM'],
])

// KES v0.19.2 - 2023-09-28 wrote the long names, 2023-10-03 - v0.23 the short ones.
const MSGPACK_AEADS: ReadonlyMap<string, Aead> = new Map([
  ['AES256', 'AES-256-GCM-HMAC-SHA-256'],
  ['AES256-GCM_SHA256', 'AES-256-GCM-HMAC-SHA-256'],
  ['ChaCha20', 'ChaCha20Poly1305'],
  ['XCHACHA20-POLY1305', 'ChaCha20Poly1305'],
])

const JSON_OBJECT_START = 0x7b
const MSGPACK_FIXARRAY_5 = 0x95

function isWellFormed(iv: Buffer, nonce: Buffer, sealed: Buffer): boolean {
  return iv.length === IV_BYTES && nonce.length === NONCE_BYTES && sealed.length >= TAG_BYTES
}

function stringField(value: unknown): Buffer | undefined {
  return typeof value === 'string' ? decodePublicBase64Strict(value) : undefined
}

// The field names of the JSON form, as KES and OpenKES write them.
const EXACT_NAMES: ReadonlySet<string> = new Set(['aead', 'id', 'iv', 'nonce', 'bytes'])

// True when every field name is one of EXACT_NAMES, as every ciphertext KES or OpenKES wrote
// has: then the object can be read as it is (the fast path of decrypt).
function hasOnlyExactNames(o: object): boolean {
  for (const name in o) if (!EXACT_NAMES.has(name)) return false
  return true
}

// KES decoded with Go's encoding/json, which matches field names case-insensitively; a later
// spelling of the same field wins, as in Go. Only the known names are kept.
function foldNames(o: object): Readonly<Record<string, unknown>> {
  const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>
  for (const [name, value] of Object.entries(o)) {
    const folded = name.toLowerCase()
    if (EXACT_NAMES.has(folded)) fields[folded] = value
  }
  return fields
}

// The JSON form of KES <= v0.19.1. Returns undefined whenever the bytes are not that form, so
// that the caller reads them as raw.
function parseJson(bytes: Buffer): ParsedCiphertext | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
  const fields = hasOnlyExactNames(parsed) ? (parsed as Readonly<Record<string, unknown>>) : foldNames(parsed)
  const aeadName = fields['aead']
  const aead = typeof aeadName === 'string' ? JSON_AEADS.get(aeadName) : undefined
  const id = fields['id'] ?? ''
  const iv = stringField(fields['iv'])
  const nonce = stringField(fields['nonce'])
  const sealed = stringField(fields['bytes'])
  if (aead === undefined || typeof id !== 'string' || iv === undefined || nonce === undefined || sealed === undefined) return undefined
  if (!isWellFormed(iv, nonce, sealed)) return undefined
  return { aead, id, iv, nonce, sealed }
}

// A minimal reader for the one MessagePack shape KES v0.19.2 - v0.23 wrote:
// fixarray(5) [str aead, str id, bin iv, bin nonce, bin bytes], with nothing after it.
function parseMsgpack(bytes: Buffer): ParsedCiphertext | undefined {
  let pos = 1 // after the fixarray(5) marker

  const readLength = (width: number): number | undefined => {
    if (pos + width > bytes.length) return undefined
    const n = bytes.readUIntBE(pos, width)
    pos += width
    return n
  }
  const readStr = (): string | undefined => {
    const marker = bytes[pos++]
    let n: number | undefined
    if (marker === undefined) return undefined
    if (marker >= 0xa0 && marker <= 0xbf) n = marker & 0x1f // fixstr
    else if (marker === 0xd9) n = readLength(1) // str8
    if (n === undefined || pos + n > bytes.length) return undefined
    const s = bytes.toString('utf8', pos, pos + n)
    pos += n
    return s
  }
  const readBin = (): Buffer | undefined => {
    const marker = bytes[pos++]
    let n: number | undefined
    if (marker === 0xc4) n = readLength(1) // bin8
    else if (marker === 0xc5) n = readLength(2) // bin16
    else if (marker === 0xc6) n = readLength(4) // bin32
    if (n === undefined || pos + n > bytes.length) return undefined
    const b = bytes.subarray(pos, pos + n)
    pos += n
    return b
  }

  const aeadName = readStr()
  const id = readStr()
  const iv = readBin()
  const nonce = readBin()
  const sealed = readBin()
  const aead = aeadName === undefined ? undefined : MSGPACK_AEADS.get(aeadName)
  if (aead === undefined || id === undefined || iv === undefined || nonce === undefined || sealed === undefined) return undefined
  if (pos !== bytes.length || !isWellFormed(iv, nonce, sealed)) return undefined
  return { aead, id, iv, nonce, sealed }
}

/**
 * Splits ciphertext bytes into their parts, recognising the JSON form (first byte `{`), the
 * MessagePack form (first byte 0x95) and the raw form `sealed || iv(16) || nonce(12)` of KES
 * v0.24+. Bytes that start like JSON or MessagePack but do not parse as that form are raw,
 * because a raw ciphertext may start with any byte. A raw ciphertext names no algorithm, so it
 * gets `rawAead`.
 * Throws InvalidCiphertextError if the bytes are in no form (raw and shorter than 44 bytes).
 */
export function parseCiphertext(bytes: Buffer, rawAead: Aead): ParsedCiphertext {
  const first = bytes[0]
  const structured =
    first === JSON_OBJECT_START ? parseJson(bytes) : first === MSGPACK_FIXARRAY_5 ? parseMsgpack(bytes) : undefined
  if (structured !== undefined) return structured
  if (bytes.length < MIN_RAW_BYTES) throw new InvalidCiphertextError()
  const nonceStart = bytes.length - NONCE_BYTES
  const ivStart = nonceStart - IV_BYTES
  return {
    aead: rawAead,
    id: '',
    iv: bytes.subarray(ivStart, nonceStart),
    nonce: bytes.subarray(nonceStart),
    sealed: bytes.subarray(0, ivStart),
  }
}

/**
 * Writes the seed-era JSON ciphertext that every KES release can open:
 * `{"aead":..,"id":..,"iv":..,"nonce":..,"bytes":..}` as compact UTF-8 JSON, in that field order.
 */
export function formatJsonCiphertext(aead: Aead, id: string, iv: Buffer, nonce: Buffer, sealed: Buffer): Buffer {
  return Buffer.from(jsonCiphertextText(aead, id, iv.toString('base64'), nonce.toString('base64'), sealed.toString('base64')), 'latin1')
}

/**
 * The text of formatJsonCiphertext from the base64 of its parts. Every value is ASCII without
 * characters JSON must escape, so the string is built directly.
 */
export function jsonCiphertextText(aead: Aead, id: string, ivBase64: string, nonceBase64: string, sealedBase64: string): string {
  return '{"aead":"' + aead + '","id":"' + id + '","iv":"' + ivBase64 + '","nonce":"' + nonceBase64 + '","bytes":"' + sealedBase64 + '"}'
}
