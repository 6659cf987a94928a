// A minimal DER (X.690 Distinguished Encoding Rules) writer, plus a reader that
// can walk TLV structures. It covers exactly what X.509 certificates need.

/** Universal tag bytes (class universal, primitive unless noted). */
export const Tag = {
  Boolean: 0x01,
  Integer: 0x02,
  BitString: 0x03,
  OctetString: 0x04,
  Null: 0x05,
  ObjectIdentifier: 0x06,
  Utf8String: 0x0c,
  PrintableString: 0x13,
  Ia5String: 0x16,
  UtcTime: 0x17,
  GeneralizedTime: 0x18,
  Sequence: 0x30,
  Set: 0x31,
} as const

const CLASS_CONTEXT = 0x80
const CONSTRUCTED = 0x20
// Tag numbers 31 and up need the multi-byte tag form, which X.509 never uses.
const MAX_LOW_TAG_NUMBER = 30

/**
 * Encodes a DER length: short form below 128, else long form (0x80 | byte count,
 * then the big-endian length without leading zeros).
 * Throws a RangeError for a negative or non-integer length.
 */
export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`x509/der: invalid length ${length}`)
  }
  if (length < 0x80) return Buffer.from([length])
  const bytes: number[] = []
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

/**
 * Encodes one tag-length-value element with a single-byte tag.
 * Throws a RangeError if the tag is not a byte.
 */
export function tlv(tag: number, content: Uint8Array): Buffer {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff) {
    throw new RangeError(`x509/der: invalid tag ${tag}`)
  }
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content])
}

/** Encodes a SEQUENCE of already-encoded elements, in the given order. */
export function sequence(elements: readonly Uint8Array[]): Buffer {
  return tlv(Tag.Sequence, Buffer.concat(elements))
}

/**
 * Encodes a SET OF already-encoded elements. DER requires the elements in
 * ascending order of their encodings, so they are sorted here.
 */
export function set(elements: readonly Uint8Array[]): Buffer {
  const sorted = elements.map((e) => Buffer.from(e)).sort(Buffer.compare)
  return tlv(Tag.Set, Buffer.concat(sorted))
}

/**
 * Encodes a non-negative INTEGER from a bigint or from unsigned big-endian bytes.
 * The encoding is minimal (no redundant leading zero bytes) and gets a leading
 * 0x00 when the high bit of the first byte is set, so it stays positive.
 * Throws a RangeError for a negative bigint.
 */
export function integer(value: bigint | Uint8Array): Buffer {
  let magnitude: Buffer
  if (typeof value === 'bigint') {
    if (value < 0n) throw new RangeError('x509/der: negative integers are not supported')
    const hex = value.toString(16)
    magnitude = Buffer.from(hex.length % 2 === 0 ? hex : '0' + hex, 'hex')
  } else {
    magnitude = Buffer.from(value)
  }
  let start = 0
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++
  let content = magnitude.subarray(start)
  if (content.length === 0) content = Buffer.from([0])
  if ((content[0] ?? 0) & 0x80) content = Buffer.concat([Buffer.from([0]), content])
  return tlv(Tag.Integer, content)
}

/**
 * Encodes an OBJECT IDENTIFIER from dotted decimal ('1.2.840.113549').
 * Throws a RangeError for a malformed OID (fewer than two arcs, a first arc
 * above 2, a second arc above 39 under arcs 0 and 1, non-decimal arcs).
 */
export function objectIdentifier(dotted: string): Buffer {
  const parts = dotted.split('.')
  if (parts.length < 2 || !parts.every((p) => /^(0|[1-9][0-9]*)$/.test(p))) {
    throw new RangeError(`x509/der: invalid object identifier '${dotted}'`)
  }
  const arcs = parts.map((p) => BigInt(p))
  const first = arcs[0] ?? 0n
  const second = arcs[1] ?? 0n
  if (first > 2n || (first < 2n && second > 39n)) {
    throw new RangeError(`x509/der: invalid object identifier '${dotted}'`)
  }
  const subidentifiers = [first * 40n + second, ...arcs.slice(2)]
  const bytes: number[] = []
  for (const sub of subidentifiers) {
    // base 128, most significant group first, continuation bit on all but the last
    const groups: number[] = [Number(sub & 0x7fn)]
    for (let rest = sub >> 7n; rest > 0n; rest >>= 7n) groups.unshift(Number(rest & 0x7fn) | 0x80)
    bytes.push(...groups)
  }
  return tlv(Tag.ObjectIdentifier, Buffer.from(bytes))
}

/** Encodes NULL (05 00). */
export function nullValue(): Buffer {
  return Buffer.from([Tag.Null, 0x00])
}

/** Encodes a BOOLEAN; DER requires 0xff for true. */
export function boolean(value: boolean): Buffer {
  return Buffer.from([Tag.Boolean, 0x01, value ? 0xff : 0x00])
}

/**
 * Encodes a BIT STRING from whole bytes, with `unusedBits` (0–7) unused low
 * bits in the last byte. Throws a RangeError for a bad unused-bit count, or
 * unused bits on an empty string.
 */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw new RangeError(`x509/der: invalid unused bit count ${unusedBits}`)
  }
  return tlv(Tag.BitString, Buffer.concat([Buffer.from([unusedBits]), bytes]))
}

/**
 * Encodes a named-bit-list BIT STRING (such as keyUsage) from the numbers of
 * the bits that are set, bit 0 being the most significant bit of the first
 * byte. DER drops trailing zero bits, so the string ends at the highest set bit.
 * Throws a RangeError for a negative or non-integer bit number.
 */
export function namedBitString(setBits: readonly number[]): Buffer {
  for (const bit of setBits) {
    if (!Number.isInteger(bit) || bit < 0) throw new RangeError(`x509/der: invalid bit number ${bit}`)
  }
  if (setBits.length === 0) return bitString(Buffer.alloc(0))
  const highest = Math.max(...setBits)
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1)
  for (const bit of setBits) {
    const index = Math.floor(bit / 8)
    bytes[index] = (bytes[index] ?? 0) | (0x80 >> bit % 8)
  }
  return bitString(bytes, 7 - (highest % 8))
}

/** Encodes an OCTET STRING. */
export function octetString(bytes: Uint8Array): Buffer {
  return tlv(Tag.OctetString, bytes)
}

/** Encodes a UTF8String. */
export function utf8String(text: string): Buffer {
  return tlv(Tag.Utf8String, Buffer.from(text, 'utf8'))
}

/**
 * Encodes a PrintableString. Throws a RangeError if the text has a character
 * outside the PrintableString set (A–Z a–z 0–9 space ' ( ) + , - . / : = ?).
 */
export function printableString(text: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) {
    throw new RangeError('x509/der: text has characters not allowed in a PrintableString')
  }
  return tlv(Tag.PrintableString, Buffer.from(text, 'ascii'))
}

/**
 * Encodes an IA5String (7-bit ASCII), used for dNSName.
 * Throws a RangeError for characters above 0x7f.
 */
export function ia5String(text: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new RangeError('x509/der: text has characters not allowed in an IA5String')
  return tlv(Tag.Ia5String, Buffer.from(text, 'ascii'))
}

function checkedDate(date: Date): Date {
  if (Number.isNaN(date.getTime())) throw new RangeError('x509/der: invalid date')
  return date
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0')
}

// Seconds precision and 'Z' (UTC) are what RFC 5280 §4.1.2.5 mandates; any
// milliseconds are dropped (truncated), never rounded up.
function timeDigits(date: Date): string {
  return (
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2) +
    'Z'
  )
}

/**
 * Encodes a UTCTime (YYMMDDHHMMSSZ). Throws a RangeError for an invalid date
 * or a year outside 1950–2049, which UTCTime cannot represent.
 */
export function utcTime(date: Date): Buffer {
  const year = checkedDate(date).getUTCFullYear()
  if (year < 1950 || year > 2049) throw new RangeError(`x509/der: year ${year} does not fit a UTCTime`)
  return tlv(Tag.UtcTime, Buffer.from(pad(year % 100, 2) + timeDigits(date), 'ascii'))
}

/**
 * Encodes a GeneralizedTime (YYYYMMDDHHMMSSZ). Throws a RangeError for an
 * invalid date or a year outside 0–9999.
 */
export function generalizedTime(date: Date): Buffer {
  const year = checkedDate(date).getUTCFullYear()
  if (year < 0 || year > 9999) throw new RangeError(`x509/der: year ${year} does not fit a GeneralizedTime`)
  return tlv(Tag.GeneralizedTime, Buffer.from(pad(year, 4) + timeDigits(date), 'ascii'))
}

/**
 * Encodes an X.509 Time: UTCTime for years 1950–2049, else GeneralizedTime, as
 * RFC 5280 §4.1.2.5 requires. Throws a RangeError for an invalid date.
 */
export function x509Time(date: Date): Buffer {
  const year = checkedDate(date).getUTCFullYear()
  return year >= 1950 && year <= 2049 ? utcTime(date) : generalizedTime(date)
}

function contextTag(tagNumber: number, constructed: boolean): number {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > MAX_LOW_TAG_NUMBER) {
    throw new RangeError(`x509/der: invalid context tag number ${tagNumber}`)
  }
  return CLASS_CONTEXT | (constructed ? CONSTRUCTED : 0) | tagNumber
}

/**
 * Wraps an encoded element in a context-specific EXPLICIT tag `[n]`
 * (constructed). Throws a RangeError for a tag number outside 0–30.
 */
export function explicit(tagNumber: number, element: Uint8Array): Buffer {
  return tlv(contextTag(tagNumber, true), element)
}

/**
 * Encodes content under a context-specific IMPLICIT primitive tag `[n]`, for
 * example `implicit(2, bytes)` for a dNSName. Throws a RangeError for a tag
 * number outside 0–30.
 */
export function implicit(tagNumber: number, content: Uint8Array): Buffer {
  return tlv(contextTag(tagNumber, false), content)
}

/** One decoded TLV element: where its parts sit in the buffer it was read from. */
export interface DerElement {
  /** The tag byte. */
  readonly tag: number
  /** Offset of the tag byte. */
  readonly start: number
  /** Offset of the first content byte. */
  readonly contentStart: number
  /** Offset just past the element. */
  readonly end: number
}

/**
 * Reads the DER element that starts at `offset` and must end by `limit`.
 * Throws an Error for multi-byte tags, indefinite or non-minimal lengths, and
 * truncated input.
 */
export function readElement(buf: Uint8Array, offset: number, limit: number = buf.length): DerElement {
  const fail = (why: string): never => {
    throw new Error(`x509/der: malformed DER at offset ${offset}: ${why}`)
  }
  if (limit > buf.length || offset + 2 > limit) fail('truncated')
  const tag = buf[offset] ?? 0
  if ((tag & 0x1f) === 0x1f) fail('multi-byte tags are not supported')
  const first = buf[offset + 1] ?? 0
  let length = first
  let cursor = offset + 2
  if (first & 0x80) {
    const count = first & 0x7f
    if (count === 0) fail('indefinite length')
    if (count > 4) fail('length too large')
    if (cursor + count > limit) fail('truncated')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + (buf[cursor + i] ?? 0)
    if ((buf[cursor] ?? 0) === 0 || length < 0x80) fail('non-minimal length')
    cursor += count
  }
  if (cursor + length > limit) fail('truncated')
  return { tag, start: offset, contentStart: cursor, end: cursor + length }
}

/**
 * Reads the elements inside a constructed element, in order.
 * Throws like `readElement` when the content is not a clean run of elements.
 */
export function readChildren(buf: Uint8Array, parent: DerElement): DerElement[] {
  const children: DerElement[] = []
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readElement(buf, offset, parent.end)
    children.push(child)
    offset = child.end
  }
  return children
}
