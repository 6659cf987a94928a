import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  bitString,
  boolean,
  encodeLength,
  explicit,
  generalizedTime,
  implicit,
  integer,
  namedBitString,
  nullValue,
  objectIdentifier,
  octetString,
  printableString,
  readChildren,
  readElement,
  sequence,
  set,
  tlv,
  utcTime,
  utf8String,
  x509Time,
} from './der.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bytes = (h: string): Buffer => Buffer.from(h, 'hex')

const lengthCases = [
  { length: 0, want: '00' },
  { length: 127, want: '7f' },
  { length: 128, want: '8180' },
  { length: 255, want: '81ff' },
  { length: 256, want: '820100' },
  { length: 65535, want: '82ffff' },
  { length: 65536, want: '83010000' },
]
for (const c of lengthCases) {
  test(`length ${c.length} encodes as ${c.want}`, () => assert.equal(hex(encodeLength(c.length)), c.want))
}

test('negative and fractional lengths are rejected', () => {
  assert.throws(() => encodeLength(-1), RangeError)
  assert.throws(() => encodeLength(1.5), RangeError)
})

test('an element with 128 content bytes gets a long-form length header', () => {
  const encoded = octetString(Buffer.alloc(128, 0xaa))
  assert.equal(hex(encoded.subarray(0, 3)), '048180')
  assert.equal(encoded.length, 131)
})

test('an element with 256 content bytes gets a two-byte long-form length', () => {
  const encoded = tlv(0x04, Buffer.alloc(256))
  assert.equal(hex(encoded.subarray(0, 4)), '04820100')
  assert.equal(encoded.length, 260)
})

const integerCases: { name: string; value: bigint | Uint8Array; want: string }[] = [
  { name: '0n', value: 0n, want: '020100' },
  { name: '127n', value: 127n, want: '02017f' },
  { name: '128n (high bit set)', value: 128n, want: '02020080' },
  { name: '256n', value: 256n, want: '02020100' },
  { name: '65535n', value: 65535n, want: '020300ffff' },
  { name: 'bytes 00 00 01 (leading zeros dropped)', value: bytes('000001'), want: '020101' },
  { name: 'bytes ff (high bit set)', value: bytes('ff'), want: '020200ff' },
  { name: 'bytes 00 80 (kept zero is the sign byte)', value: bytes('0080'), want: '02020080' },
  { name: 'no bytes', value: Buffer.alloc(0), want: '020100' },
  { name: 'all zero bytes', value: Buffer.alloc(4), want: '020100' },
]
for (const c of integerCases) {
  test(`INTEGER ${c.name} → ${c.want}`, () => assert.equal(hex(integer(c.value)), c.want))
}

test('a 16-byte serial with the high bit set gets a 0x00 prefix', () => {
  const serial = Buffer.alloc(16, 0xff)
  const encoded = integer(serial)
  assert.equal(hex(encoded.subarray(0, 3)), '021100')
  assert.equal(encoded.length, 19)
})

test('negative INTEGERs are rejected', () => assert.throws(() => integer(-1n), RangeError))

const oidCases = [
  { oid: '1.2.840.113549', want: '06062a864886f70d' },
  { oid: '1.2.840.113549.1.1.11', want: '06092a864886f70d01010b' },
  { oid: '2.5.4.3', want: '0603550403' },
  { oid: '1.3.101.112', want: '06032b6570' },
  { oid: '1.2.840.10045.4.3.2', want: '06082a8648ce3d040302' },
  { oid: '2.999.3', want: '0603883703' }, // X.690 §8.19.5 example
  { oid: '0.0', want: '060100' },
]
for (const c of oidCases) {
  test(`OID ${c.oid} → ${c.want}`, () => assert.equal(hex(objectIdentifier(c.oid)), c.want))
}

for (const bad of ['', '1', '3.1', '1.40', '0.40', '1.2.a', '1..2', '1.02', '-1.2']) {
  test(`malformed OID '${bad}' is rejected`, () => assert.throws(() => objectIdentifier(bad), RangeError))
}

test('NULL and BOOLEAN use their fixed DER forms', () => {
  assert.equal(hex(nullValue()), '0500')
  assert.equal(hex(boolean(true)), '0101ff')
  assert.equal(hex(boolean(false)), '010100')
})

test('BIT STRING carries the unused-bit count first', () => {
  assert.equal(hex(bitString(bytes('6e5dc0'), 6)), '0304066e5dc0') // X.690 §8.6.4.2 example
  assert.equal(hex(bitString(bytes('01'))), '03020001')
  assert.throws(() => bitString(bytes('01'), 8), RangeError)
  assert.throws(() => bitString(Buffer.alloc(0), 1), RangeError)
})

const namedBitCases = [
  { bits: [0], want: '03020780' }, // keyUsage digitalSignature
  { bits: [0, 2], want: '030205a0' }, // digitalSignature + keyEncipherment
  { bits: [5, 6], want: '03020106' }, // keyCertSign + cRLSign
  { bits: [8], want: '0303070080' }, // decipherOnly
  { bits: [], want: '030100' },
]
for (const c of namedBitCases) {
  test(`named bits [${c.bits.join(',')}] → ${c.want}`, () => assert.equal(hex(namedBitString(c.bits)), c.want))
}

test('strings use their own tags and encodings', () => {
  assert.equal(hex(utf8String('é')), '0c02c3a9')
  assert.equal(hex(printableString('Ab 1')), '130441622031')
  assert.throws(() => printableString('a@b'), RangeError)
  assert.equal(hex(octetString(bytes('0102'))), '04020102')
})

test('SET OF sorts its elements by encoding while SEQUENCE keeps order', () => {
  const two = integer(2n)
  const one = integer(1n)
  assert.equal(hex(set([two, one])), '3106020101020102')
  assert.equal(hex(sequence([two, one])), '3006020102020101')
})

test('context-specific tags: explicit is constructed, implicit is primitive', () => {
  assert.equal(hex(explicit(0, integer(2n))), 'a003020102')
  assert.equal(hex(explicit(3, sequence([]))), 'a3023000')
  assert.equal(hex(implicit(2, Buffer.from('ab'))), '82026162')
  assert.equal(hex(implicit(7, bytes('7f000001'))), '87047f000001')
  assert.throws(() => explicit(31, nullValue()), RangeError)
  assert.throws(() => implicit(-1, Buffer.alloc(0)), RangeError)
})

const timeCases = [
  { date: '2049-12-31T23:59:59Z', tag: 0x17, text: '491231235959Z' },
  { date: '1950-01-01T00:00:00Z', tag: 0x17, text: '500101000000Z' },
  { date: '2024-02-29T12:34:56.999Z', tag: 0x17, text: '240229123456Z' },
  { date: '2050-01-01T00:00:00Z', tag: 0x18, text: '20500101000000Z' },
  { date: '1949-12-31T23:59:59Z', tag: 0x18, text: '19491231235959Z' },
  { date: '9999-12-31T23:59:59Z', tag: 0x18, text: '99991231235959Z' },
]
for (const c of timeCases) {
  test(`time ${c.date} → ${c.tag === 0x17 ? 'UTCTime' : 'GeneralizedTime'} ${c.text}`, () => {
    const encoded = x509Time(new Date(c.date))
    assert.equal(encoded[0], c.tag)
    assert.equal(encoded[1], c.text.length)
    assert.equal(encoded.subarray(2).toString('ascii'), c.text)
  })
}

test('UTCTime refuses years it cannot represent, and invalid dates are rejected', () => {
  assert.throws(() => utcTime(new Date('2050-01-01T00:00:00Z')), RangeError)
  assert.throws(() => utcTime(new Date('1949-12-31T23:59:59Z')), RangeError)
  assert.equal(generalizedTime(new Date('2020-01-02T03:04:05Z')).subarray(2).toString('ascii'), '20200102030405Z')
  assert.throws(() => x509Time(new Date('not a date')), RangeError)
})

test('the reader walks nested elements with long-form lengths', () => {
  const inner = octetString(Buffer.alloc(300, 1))
  const outer = sequence([integer(5n), inner])
  const root = readElement(outer, 0)
  assert.equal(root.tag, 0x30)
  assert.equal(root.end, outer.length)
  const [first, second] = readChildren(outer, root)
  assert.equal(first?.tag, 0x02)
  assert.equal(second?.tag, 0x04)
  assert.equal((second?.end ?? 0) - (second?.contentStart ?? 0), 300)
})

test('the reader rejects indefinite, non-minimal and truncated lengths', () => {
  assert.throws(() => readElement(bytes('30800000'), 0), /indefinite/)
  assert.throws(() => readElement(bytes('04810101'), 0), /non-minimal/)
  assert.throws(() => readElement(bytes('0405010203'), 0), /truncated/)
  assert.throws(() => readElement(bytes('1f0100'), 0), /multi-byte/)
  const junk = bytes('3004020101ff') // a stray byte after the INTEGER
  assert.throws(() => readChildren(junk, readElement(junk, 0)), /truncated/)
})
