import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isValidIdentity, isValidName } from './names.js'

const nameCases: ReadonlyArray<readonly [string, boolean]> = [
  ['my-key', true],
  ['a', true],
  ['A-Z_a-z.0-9', true],
  ['_hidden', true],
  ['-dash', true],
  ['key.', true],
  ['a..b', true],
  ['0', true],
  ['x'.repeat(255), true],
  ['x'.repeat(256), false],
  ['', false],
  ['.hidden', false],
  ['.', false],
  ['..', false],
  ['a/b', false],
  ['/', false],
  ['has space', false],
  ['glob*', false],
  ['ke?', false],
  ['[a]', false],
  ['back\\slash', false],
  ['quote"q', false],
  ['unicöde', false],
  ['✓', false],
  ['tab\t', false],
  ['new\nline', false],
  ['key\n', false],
  ['nul\0', false],
  ['a:b', false],
  ['a%2Fb', false],
]
for (const [s, want] of nameCases) {
  test(`isValidName(${JSON.stringify(s.length > 20 ? `${s.slice(0, 8)}…(${s.length})` : s)}) → ${want}`, () => {
    assert.equal(isValidName(s), want)
  })
}

const hex64 = '93cce9ac64dadc74b20b334b73e09dcbde4c378742b64a6a09471748e43807fd'
const identityCases: ReadonlyArray<readonly [string, boolean]> = [
  [hex64, true],
  ['0'.repeat(64), true],
  ['f'.repeat(64), true],
  [hex64.toUpperCase(), false],
  [hex64.slice(0, 63), false],
  [hex64 + '0', false],
  [hex64.slice(0, 63) + 'g', false],
  [hex64 + '\n', false],
  ['', false],
  ['not-a-hex-identity', false],
  [' ' + hex64.slice(1), false],
]
for (const [s, want] of identityCases) {
  test(`isValidIdentity('${s.length > 20 ? `${s.slice(0, 8)}…(${s.length})` : s}') → ${want}`, () => {
    assert.equal(isValidIdentity(s), want)
  })
}

test('non-strings are neither names nor identities', () => {
  assert.equal(isValidName(undefined as unknown as string), false)
  assert.equal(isValidIdentity(7 as unknown as string), false)
})
