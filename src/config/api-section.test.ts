// The `api:` section (KES 2023 layout): which APIs may be opened to probes, and timeouts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError } from './config-error.js'
import { parseConfig } from './load.js'

const ROOT = '93cce9ac64dadc74b20b334b73e09dcbde4c378742b64a6a09471748e43807fd'

function parse(api: string) {
  return parseConfig(`admin:\n  identity: ${ROOT}\ntls:\n  key: k\n  cert: c\napi:\n${api}`, { baseDir: '/srv', env: { T: '20s' } })
}

test('no api section: no settings', () => {
  const config = parseConfig(`admin:\n  identity: ${ROOT}\ntls:\n  key: k\n  cert: c\n`, { baseDir: '/srv', env: {} })
  assert.equal(config.api.size, 0)
})

test('the KES 2023 template layout is read, with and without trailing slashes', () => {
  const config = parse(
    [
      '  /v1/ready:',
      '    skip_auth: true',
      '    timeout: 15s',
      '  /v1/status: {skip_auth: "false", timeout: 1m}',
      '  /v1/metrics: {skip_auth: TRUE}',
      '  /v1/api: {}',
      '  /version: {skip_auth: true}',
      '  /v1/key/generate/: {timeout: "${T}"}',
      '  /v1/key/create: {skip_auth: false, timeout: 0}',
      '  /v1/log/audit: {timeout: 0s}',
      '',
    ].join('\n'),
  )
  assert.deepEqual([...config.api], [
    ['/v1/ready', { skipAuth: true, timeoutMs: 15_000 }],
    ['/v1/status', { skipAuth: false, timeoutMs: 60_000 }],
    ['/v1/metrics', { skipAuth: true, timeoutMs: undefined }],
    ['/v1/api', { skipAuth: false, timeoutMs: undefined }],
    ['/version', { skipAuth: true, timeoutMs: undefined }],
    ['/v1/key/generate', { skipAuth: false, timeoutMs: 20_000 }],
    ['/v1/key/create', { skipAuth: false, timeoutMs: undefined }],
    ['/v1/log/audit', { skipAuth: false, timeoutMs: undefined }],
  ])
  assert.ok(Object.isFrozen(config.api.get('/v1/ready')))
})

// skip_auth opens an API to every identity: refused on everything but probes and introspection.
const refused: ReadonlyArray<[string, string, string]> = [
  ['skip_auth on a key API', '  /v1/key/generate/: {skip_auth: true}\n', 'config: api./v1/key/generate/.skip_auth: not allowed'],
  ['skip_auth on key decrypt', '  /v1/key/decrypt: {skip_auth: true}\n', 'config: api./v1/key/decrypt.skip_auth: not allowed'],
  ['skip_auth on policy write', '  /v1/policy/write/: {skip_auth: true}\n', 'config: api./v1/policy/write/.skip_auth: not allowed'],
  ['skip_auth on the audit log', '  /v1/log/audit: {skip_auth: true}\n', 'config: api./v1/log/audit.skip_auth: not allowed'],
  ['skip_auth on identity describe', '  /v1/identity/describe/: {skip_auth: true}\n', 'config: api./v1/identity/describe/.skip_auth: not allowed'],
  ['an unknown path', '  /v1/readyz: {skip_auth: true}\n', "config: api./v1/readyz: unknown API path '/v1/readyz'"],
  ['a path with arguments', '  /v1/key/create/my-key: {timeout: 1s}\n', "config: api./v1/key/create/my-key: unknown API path '/v1/key/create/my-key'"],
  ['a path without its slash', '  v1/status: {skip_auth: true}\n', "config: api.v1/status: unknown API path 'v1/status'"],
  ['a path given twice', '  /v1/status: {}\n  /v1/status/: {}\n', "config: api./v1/status/: '/v1/status' is configured twice"],
  ['an unknown field', '  /v1/status: {skip_auth: true, public: true}\n', 'config: api./v1/status.public: unknown field'],
  ['skip_auth not a boolean', '  /v1/status: {skip_auth: yes please}\n', 'config: api./v1/status.skip_auth: expected true or false'],
  ['skip_auth a list', '  /v1/status: {skip_auth: [true]}\n', 'config: api./v1/status.skip_auth: expected true or false'],
  ['a bad timeout', '  /v1/status: {timeout: soon}\n', "config: api./v1/status.timeout: invalid duration 'soon'"],
  ['a negative timeout', '  /v1/status: {timeout: -1s}\n', "config: api./v1/status.timeout: invalid duration '-1s'"],
  ['a timeout on a log stream', '  /v1/log/error: {timeout: 10s}\n', 'config: api./v1/log/error.timeout: not supported: log streams have no timeout'],
  ['settings not a mapping', '  /v1/status: true\n', 'config: api./v1/status: expected a mapping'],
]
for (const [name, api, message] of refused) {
  test(`refused: ${name}`, () => {
    assert.throws(
      () => parse(api),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(message),
      `expected ${message}`,
    )
  })
}

test('the api section must be a mapping', () => {
  assert.throws(
    () => parseConfig(`admin:\n  identity: ${ROOT}\ntls:\n  key: k\n  cert: c\napi: [/v1/status]\n`, { baseDir: '/srv', env: {} }),
    (err: unknown) => err instanceof ConfigError && err.message === 'config: api: expected a mapping',
  )
})
