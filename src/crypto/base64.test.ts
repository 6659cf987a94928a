import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeBase64Strict, encodeBase64 } from './base64.js'

test('standard padded base64 decodes', () => {
  assert.deepEqual(decodeBase64Strict('aGVsbG8='), Buffer.from('hello'))
  assert.deepEqual(decodeBase64Strict('aGVsbG8h'), Buffer.from('hello!'))
  assert.deepEqual(decodeBase64Strict('aGk='), Buffer.from('hi'))
  assert.deepEqual(decodeBase64Strict('aA=='), Buffer.from('h'))
  assert.deepEqual(decodeBase64Strict('+/+/'), Buffer.from([0xfb, 0xff, 0xbf]))
})

test('the empty string decodes to an empty buffer', () => {
  assert.deepEqual(decodeBase64Strict(''), Buffer.alloc(0))
})

const rejected = [
  ['unpadded', 'aGVsbG8'],
  ['url-safe alphabet', '-_-_'],
  ['whitespace', 'aGVs bG8='],
  ['trailing newline', 'aGVsbG8=\n'],
  ['stray character', 'aGVs*bG8'],
  ['padding inside', 'aA==aA=='],
  ['padding in the middle of a quantum', 'A=A='],
  ['three padding characters', 'A==='],
  ['only padding', '===='],
  ['length not a multiple of 4', 'aGVsbG8=a'],
  ['non-ascii', 'aGVsbG8é'],
  ['non-zero bits after the last byte', 'aB=='],
] as const
for (const [what, s] of rejected) {
  test(`${what} is rejected`, () => assert.equal(decodeBase64Strict(s), undefined))
}

test('encodeBase64 round-trips any bytes, also views into larger buffers', () => {
  const all = Buffer.alloc(256)
  for (let i = 0; i < 256; i++) all[i] = i
  for (let n = 0; n < 10; n++) {
    const view = new Uint8Array(all.buffer, all.byteOffset + 7, 200 + n)
    const s = encodeBase64(view)
    assert.deepEqual(decodeBase64Strict(s), Buffer.from(view))
  }
})
