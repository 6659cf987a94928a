import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { decodeBase64Strict } from './base64.js'
import { KeyFileError, formatKeyFile, parseKeyFile } from './key-version.js'
import { SecretKey } from './secret-key.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../../test/support/kes-key-files.js'
import type { KesKeyFileSample } from '../../test/support/kes-key-files.js'

const vectors = await readKesKeyFileVectors()

function open(key: SecretKey, sample: KesKeyFileSample): string {
  const ciphertext = decodeBase64Strict(sample.ciphertext)
  assert.ok(ciphertext)
  const context = Buffer.from(sample.context, 'base64')
  return key.decrypt(ciphertext, context).toString('base64')
}

test('every key file vector is present', () => assert.equal(vectors.length, 17))

for (const v of vectors) {
  test(`key file ${v.file}`, () => {
    const key = parseKeyFile(readFileSync(path.join(KES_KEY_FILES, v.file)))
    assert.equal(key.cipher, v.cipher)
    if (v.key !== null) assert.equal(key.exportBytesForStorage().toString('base64'), v.key)
    assert.equal(key.createdAt, v.created_at)
    assert.equal(key.createdBy, v.created_by)
    assert.equal(key.hasStoredHmacKey, v.hmac_key !== undefined)
    assert.equal(key.exportHmacKeyForStorage()?.toString('base64'), v.hmac_key)
    assert.ok(v.raw_sample)
    assert.equal(open(key, v.raw_sample), v.raw_sample.plaintext)
    if (v.sample !== undefined) assert.equal(open(key, v.sample), v.sample.plaintext)
  })
}

const keyBytes = Buffer.alloc(32, 0x11)
const identity = 'c0ffee'.repeat(10) + 'beef'

for (const cipher of ['AES256', 'ChaCha20'] as const) {
  test(`formatKeyFile then parseKeyFile keeps a ${cipher} key with its metadata`, () => {
    const original = new SecretKey(keyBytes, cipher, { createdAt: '2024-05-06T07:08:09.123Z', createdBy: identity })
    const file = formatKeyFile(original)
    assert.equal(
      file.toString(),
      `{"version":"v1","bytes":"${keyBytes.toString('base64')}","algorithm":"${cipher}","created_at":"2024-05-06T07:08:09.123Z","created_by":"${identity}"}`,
    )
    const read = parseKeyFile(file)
    assert.equal(read.cipher, cipher)
    assert.equal(read.id, original.id)
    assert.deepEqual(read.exportBytesForStorage(), keyBytes)
    assert.equal(read.createdAt, original.createdAt)
    assert.equal(read.createdBy, original.createdBy)
    assert.equal(read.hasStoredHmacKey, false)
    assert.equal(read.decrypt(original.encrypt(Buffer.from('payload'))).toString(), 'payload')
  })
}

test('formatKeyFile leaves out missing metadata and keeps a stored HMAC key', () => {
  const hmacKey = Buffer.alloc(32, 0x22)
  const original = new SecretKey(keyBytes, 'AES256', { hmacKey })
  const file = formatKeyFile(original)
  assert.deepEqual(Object.keys(JSON.parse(file.toString()) as object), ['version', 'bytes', 'algorithm', 'hmac_key'])
  const read = parseKeyFile(file)
  assert.deepEqual(read.exportHmacKeyForStorage(), hmacKey)
  assert.deepEqual(read.hmac(Buffer.from('m')), original.hmac(Buffer.from('m')))
  assert.equal(read.createdAt, undefined)
  assert.equal(read.createdBy, undefined)
})

test('formatKeyFile refuses a creation time it could not read back', () => {
  const key = new SecretKey(keyBytes, 'AES256', { createdAt: 'yesterday' })
  assert.throws(() => formatKeyFile(key), KeyFileError)
})

test('JSON key files: empty algorithm and null fields read as an untyped AES256 key', () => {
  const b64 = keyBytes.toString('base64')
  assert.equal(parseKeyFile(Buffer.from(`{"bytes":"${b64}","algorithm":""}`)).cipher, 'AES256')
  assert.equal(parseKeyFile(Buffer.from(`{"bytes":"${b64}","algorithm":null,"created_by":null,"extra":[1]}`)).cipher, 'AES256')
})

// A KeyVersion protobuf built by hand: field bytes are tag, then length or varint.
function keyVersion(...fields: Buffer[]): Buffer {
  return Buffer.from(Buffer.concat(fields).toString('base64'))
}
function len(field: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, body.length]), body])
}
const secretKeyField = (type: number): Buffer => len(1, Buffer.concat([len(1, keyBytes), Buffer.from([0x10, type])]))

test('protobuf key files: ChaCha20 type, unknown fields of every wire type are skipped, no metadata', () => {
  const unknown = Buffer.from([
    0x28, 0x96, 0x01, // field 5 varint
    0x31, 1, 2, 3, 4, 5, 6, 7, 8, // field 6 fixed64
    0x3d, 1, 2, 3, 4, // field 7 fixed32
    0x43, 0x08, 0x01, 0x44, // field 8 group { field 1 varint }
  ])
  const key = parseKeyFile(keyVersion(unknown, secretKeyField(2), len(9, Buffer.from('x'))))
  assert.equal(key.cipher, 'ChaCha20')
  assert.deepEqual(key.exportBytesForStorage(), keyBytes)
  assert.equal(key.createdAt, undefined)
  assert.equal(key.createdBy, undefined)
  assert.equal(key.hasStoredHmacKey, false)
})

test('protobuf key files: a zero timestamp and a trailing newline are accepted', () => {
  const key = parseKeyFile(Buffer.concat([keyVersion(secretKeyField(1), len(3, Buffer.alloc(0))), Buffer.from('\n')]))
  assert.equal(key.createdAt, '1970-01-01T00:00:00.000000000Z')
})

const malformed: Array<[string, Buffer]> = [
  ['empty file', Buffer.alloc(0)],
  ['bad json', Buffer.from('{"bytes":')],
  ['json array', Buffer.from('[1]')],
  ['trailing garbage after json', Buffer.from('{}x')],
  ['base64 text that is no KeyVersion', Buffer.from('null')],
  ['missing bytes', Buffer.from('{"algorithm":"AES256"}')],
  ['bytes not base64', Buffer.from('{"bytes":"not base64!"}')],
  ['bytes not a string', Buffer.from('{"bytes":42}')],
  ['key of 16 bytes', Buffer.from(`{"bytes":"${Buffer.alloc(16).toString('base64')}"}`)],
  ['unknown algorithm', Buffer.from(`{"bytes":"${keyBytes.toString('base64')}","algorithm":"AES128"}`)],
  ['version v2', Buffer.from(`{"version":"v2","bytes":"${keyBytes.toString('base64')}"}`)],
  ['created_at not RFC 3339', Buffer.from(`{"bytes":"${keyBytes.toString('base64')}","created_at":"today"}`)],
  ['hmac_key of 31 bytes', Buffer.from(`{"bytes":"${keyBytes.toString('base64')}","hmac_key":"${Buffer.alloc(31).toString('base64')}"}`)],
  ['neither json nor base64', Buffer.from('hello world')],
  ['protobuf without a key', keyVersion(len(4, Buffer.from('me')))],
  ['protobuf with an unknown key type', keyVersion(secretKeyField(3))],
  ['protobuf without a key type', keyVersion(len(1, len(1, keyBytes)))],
  ['protobuf with a short key', keyVersion(len(1, Buffer.concat([len(1, Buffer.alloc(31)), Buffer.from([0x10, 1])])))],
  ['protobuf with an unsupported hmac hash', keyVersion(secretKeyField(1), len(2, Buffer.concat([len(1, keyBytes), Buffer.from([0x10, 2])])))],
  ['protobuf truncated', Buffer.from(Buffer.concat([secretKeyField(1)]).subarray(0, 20).toString('base64'))],
  ['protobuf with a wrong wire type', keyVersion(Buffer.from([0x08, 0x01]))],
  ['protobuf with an end-group tag alone', keyVersion(Buffer.from([0x44]))],
  ['protobuf with nanos out of range', keyVersion(secretKeyField(1), len(3, Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x0f])))],
]
for (const [what, content] of malformed) {
  test(`parseKeyFile rejects: ${what}`, () => {
    assert.throws(
      () => parseKeyFile(content),
      (err: unknown) => err instanceof KeyFileError && err.message.startsWith('invalid key file: ') && !err.message.includes(keyBytes.toString('base64')),
    )
  })
}

test('random content only ever throws KeyFileError', () => {
  const valid = keyVersion(secretKeyField(2), len(4, Buffer.from(identity)))
  const inputs: Buffer[] = []
  for (let n = 0; n < 100; n++) inputs.push(randomBytes(n), Buffer.from(randomBytes(n).toString('base64')))
  const raw = decodeBase64Strict(valid.toString())
  assert.ok(raw)
  for (let n = 0; n < raw.length; n++) inputs.push(Buffer.from(raw.subarray(0, n).toString('base64')))
  for (let i = 0; i < raw.length; i++) {
    const flipped = Buffer.from(raw)
    flipped[i] = (flipped[i] ?? 0) ^ 0x80
    inputs.push(Buffer.from(flipped.toString('base64')))
  }
  let parsed = 0
  for (const input of inputs) {
    try {
      parseKeyFile(input)
      parsed++
    } catch (err) {
      assert.ok(err instanceof KeyFileError, `unexpected ${String(err)}`)
    }
  }
  assert.ok(parsed < inputs.length)
  assert.equal(parseKeyFile(valid).createdBy, identity)
})
