// The `seal:` section (root key of sealed master keys) and log.audit_chain_key.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { parseConfig } from './load.js'

const ROOT = '93cce9ac64dadc74b20b334b73e09dcbde4c378742b64a6a09471748e43807fd'
const KEY = 'q'.repeat(43) + '='

function parse(extra: string, env: NodeJS.ProcessEnv = {}) {
  return parseConfig(`admin:\n  identity: ${ROOT}\ntls:\n  key: k\n  cert: c\n${extra}`, { baseDir: '/srv', env })
}

test('no seal section: no seal', () => {
  assert.equal(parse('').seal, undefined)
})

test('each root key source is read; secrets are not shown when the config is printed', () => {
  const fromEnv = parse('seal:\n  key: ${SEAL}\n', { SEAL: KEY })
  assert.deepEqual({ ...fromEnv.seal }, { kind: 'key' })
  assert.equal(fromEnv.seal?.kind === 'key' ? fromEnv.seal.key : '', KEY)
  assert.doesNotMatch(inspect(fromEnv, { depth: 9 }) + JSON.stringify(fromEnv.seal), /qqqq/)
  assert.deepEqual(parse('seal:\n  key_file: ./seal.key\n').seal, { kind: 'key_file', file: '/srv/seal.key' })
  const p11 = parse('seal:\n  pkcs11:\n    library: /usr/lib/softhsm/libsofthsm2.so\n    token_label: openkes\n    pin: ${PIN}\n    key_label: root\n', { PIN: '1234' })
  assert.deepEqual({ ...p11.seal }, { kind: 'pkcs11', library: '/usr/lib/softhsm/libsofthsm2.so', slot: undefined, tokenLabel: 'openkes', pinFile: undefined, keyLabel: 'root' })
  assert.equal(p11.seal?.kind === 'pkcs11' ? p11.seal.pin : '', '1234')
  assert.doesNotMatch(inspect(p11, { depth: 9 }), /1234/)
  const bySlot = parse('seal:\n  pkcs11: {library: libsofthsm2.so, slot: 1, pin_file: pin.txt, key_label: root}\n')
  assert.deepEqual({ ...bySlot.seal }, { kind: 'pkcs11', library: 'libsofthsm2.so', slot: 1, tokenLabel: undefined, pinFile: '/srv/pin.txt', keyLabel: 'root' })
})

const REFUSED: ReadonlyArray<[string, string, RegExp]> = [
  ['two sources', `seal:\n  key: ${KEY}\n  key_file: f\n`, /config: seal: needs exactly one of key, key_file or pkcs11/],
  ['no source', 'seal:\n  other: x\n', /config: seal\.other: unknown field/],
  ['a short key', 'seal:\n  key: abc\n', /config: seal\.key: expected 32 bytes/],
  ['no library', 'seal:\n  pkcs11: {token_label: t, pin: p, key_label: k}\n', /seal\.pkcs11\.library: missing/],
  ['no key label', 'seal:\n  pkcs11: {library: l, token_label: t, pin: p}\n', /seal\.pkcs11\.key_label: missing/],
  ['slot and token label', 'seal:\n  pkcs11: {library: l, slot: 0, token_label: t, pin: p, key_label: k}\n', /seal\.pkcs11: needs exactly one of slot or token_label/],
  ['a slot that is no number', 'seal:\n  pkcs11: {library: l, slot: first, pin: p, key_label: k}\n', /seal\.pkcs11\.slot: expected a slot number/],
  ['no pin', 'seal:\n  pkcs11: {library: l, slot: 0, key_label: k}\n', /seal\.pkcs11: needs exactly one of pin/],
  ['an unset pin variable', 'seal:\n  pkcs11: {library: l, slot: 0, pin: "${NOPE}", key_label: k}\n', /seal\.pkcs11\.pin: environment variable 'NOPE' is not set/],
  ['a chain key without an audit file', 'log:\n  audit_chain_key: k\n', /log\.audit_chain_key: needs log\.audit_file/],
]

for (const [what, yaml, message] of REFUSED) {
  test(`refused: ${what}`, () => assert.throws(() => parse(yaml), message))
}

test('log.audit_chain_key is a file next to the config', () => {
  assert.equal(parse('log:\n  audit_file: a.log\n  audit_chain_key: chain.key\n').log.auditChainKeyFile, '/srv/chain.key')
  assert.equal(parse('log:\n  audit_file: a.log\n').log.auditChainKeyFile, undefined)
})
