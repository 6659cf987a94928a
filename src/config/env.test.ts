import { test } from 'node:test'
import assert from 'node:assert/strict'
import { expandEnv } from './env.js'
import { ConfigError } from './config-error.js'

const env = { ROOT: 'abc', EMPTY: '', _UNDER_1: 'u' }

const cases: ReadonlyArray<readonly [string, string]> = [
  ['${ROOT}', 'abc'],
  ['${EMPTY}', ''],
  ['${_UNDER_1}', 'u'],
  ['plain', 'plain'],
  ['', ''],
  ['a${ROOT}b', 'a${ROOT}b'],
  ['${ROOT}x', '${ROOT}x'],
  ['x${ROOT}', 'x${ROOT}'],
  ['$ROOT', '$ROOT'],
  ['${ROOT}${ROOT}', '${ROOT}${ROOT}'],
  ['${1X}', '${1X}'],
  ['${}', '${}'],
  ['${ ROOT }', '${ ROOT }'],
]
for (const [value, want] of cases) {
  test(`expandEnv('${value}') → '${want}'`, () => assert.equal(expandEnv(value, 'tls.key', env), want))
}

test('an unset variable is an error naming the path and the variable', () => {
  assert.throws(() => expandEnv('${MISSING}', 'admin.identity', env), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.message, "config: admin.identity: environment variable 'MISSING' is not set")
    assert.equal(err.path, 'admin.identity')
    return true
  })
})

test('inherited object properties are not variables', () => {
  assert.throws(() => expandEnv('${constructor}', 'root', {}), {
    message: "config: root: environment variable 'constructor' is not set",
  })
})
