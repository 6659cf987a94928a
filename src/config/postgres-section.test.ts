// keystore.postgres and cache.expiry.offline: what is accepted, the defaults, and every refusal.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { parseConfig } from './load.js'

const ROOT = '93cce9ac64dadc74b20b334b73e09dcbde4c378742b64a6a09471748e43807fd'

function parse(yaml: string, env: NodeJS.ProcessEnv = {}) {
  return parseConfig(yaml, { baseDir: '/etc/openkes', env })
}

function withStore(section: string, extra = ''): string {
  return `admin:\n  identity: ${ROOT}\ntls:\n  key: ./server.key\n  cert: ./server.cert\nkeystore:\n  postgres:\n${section
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => `    ${l}`)
    .join('\n')}\n${extra}`
}

test('keystore.postgres with host/user only: the defaults', () => {
  const c = parse(withStore('host: db.example\nuser: openkes'))
  assert.deepEqual(c.keystore, {
    kind: 'postgres',
    host: 'db.example',
    port: 5432,
    user: 'openkes',
    passwordFile: undefined,
    database: 'openkes',
    schema: 'openkes',
    poolSize: 10,
    connectTimeoutMs: 5_000,
    queryTimeoutMs: 10_000,
    sslMode: 'verify-full',
    sslRootCert: undefined,
    sslCert: undefined,
    sslKey: undefined,
  })
})

test('keystore.postgres: every setting, the password from the environment and never printed', () => {
  const c = parse(
    withStore(
      'host: 10.0.0.5\nport: "6432"\nuser: kes\npassword: ${DB_PW}\ndatabase: kms\nschema: kes_prod\npool_size: 25\n' +
        'connect_timeout: 2s\nquery_timeout: 3s\nsslmode: verify-ca\nsslrootcert: ./db-ca.pem\nsslcert: /pki/c.pem\nsslkey: /pki/c.key',
    ),
    { DB_PW: 's3cret-pw' },
  )
  assert.equal(c.keystore.kind, 'postgres')
  if (c.keystore.kind !== 'postgres') return
  assert.equal(c.keystore.password, 's3cret-pw')
  assert.equal(c.keystore.port, 6432)
  assert.equal(c.keystore.poolSize, 25)
  assert.equal(c.keystore.connectTimeoutMs, 2_000)
  assert.equal(c.keystore.queryTimeoutMs, 3_000)
  assert.equal(c.keystore.sslMode, 'verify-ca')
  assert.equal(c.keystore.sslRootCert, '/etc/openkes/db-ca.pem')
  assert.equal(c.keystore.schema, 'kes_prod')
  const printed = JSON.stringify(c) + inspect(c, { depth: 10 })
  assert.ok(!printed.includes('s3cret-pw'))
})

test('keystore.postgres.url: host, port, user, database, password and sslmode from the URL', () => {
  const c = parse(withStore('url: ${DB_URL}'), { DB_URL: 'postgresql://kes:p%40ss@[::1]:5433/kms?sslmode=require' })
  assert.equal(c.keystore.kind, 'postgres')
  if (c.keystore.kind !== 'postgres') return
  assert.deepEqual(
    { host: c.keystore.host, port: c.keystore.port, user: c.keystore.user, database: c.keystore.database, sslMode: c.keystore.sslMode, password: c.keystore.password },
    { host: '::1', port: 5433, user: 'kes', database: 'kms', sslMode: 'require', password: 'p@ss' },
  )
})

test('keystore.postgres.password_file is resolved against the config directory', () => {
  const c = parse(withStore('host: db\nuser: u\npassword_file: secrets/db-password'))
  assert.equal(c.keystore.kind === 'postgres' ? c.keystore.passwordFile : '', '/etc/openkes/secrets/db-password')
})

const refused: Array<[string, string, string]> = [
  ['no host', 'user: u', 'config: keystore.postgres.host: missing'],
  ['no user', 'host: h', 'config: keystore.postgres.user: missing'],
  ['url and host', 'url: postgres://u@h/db\nhost: h', 'config: keystore.postgres.host: cannot be used together with keystore.postgres.url'],
  ['not a postgres url', 'url: mysql://u@h/db', 'config: keystore.postgres.url: expected a URL postgres://user@host:port/database'],
  ['an unknown url parameter', 'url: postgres://u@h/db?sslcert=x', "config: keystore.postgres.url: the URL parameter 'sslcert' is not supported; use the setting keystore.postgres.sslcert where there is one"],
  ['password twice', 'host: h\nuser: u\npassword: a\npassword_file: /f', 'config: keystore.postgres.password_file: cannot be used together with keystore.postgres.password'],
  ['sslmode prefer', 'host: h\nuser: u\nsslmode: prefer', 'config: keystore.postgres.sslmode: expected disable, require, verify-ca, verify-full (allow and prefer may fall back to plaintext and are not supported)'],
  ['disable with a CA', 'host: h\nuser: u\nsslmode: disable\nsslrootcert: /ca.pem', 'config: keystore.postgres.sslmode: disable cannot be used together with sslrootcert, sslcert or sslkey'],
  ['sslcert without sslkey', 'host: h\nuser: u\nsslcert: /c.pem', 'config: keystore.postgres.sslkey: missing: sslcert and sslkey go together'],
  ['bad port', 'host: h\nuser: u\nport: 70000', "config: keystore.postgres.port: invalid port '70000'"],
  ['bad pool size', 'host: h\nuser: u\npool_size: 0', 'config: keystore.postgres.pool_size: expected a whole number from 1 to 1000'],
  ['quoted schema', 'host: h\nuser: u\nschema: Bad-Name', "config: keystore.postgres.schema: invalid schema name 'Bad-Name': lowercase letters, digits and _, at most 63"],
  ['unknown setting', 'host: h\nuser: u\nsslmode_x: 1', 'config: keystore.postgres.sslmode_x: unknown field'],
  ['unset password variable', 'host: h\nuser: u\npassword: ${NOPE}', "config: keystore.postgres.password: environment variable 'NOPE' is not set"],
]
for (const [what, section, message] of refused) {
  test(`keystore.postgres refused: ${what}`, () => {
    assert.throws(() => parse(withStore(section)), { message })
  })
}

test('keystore.postgres together with keystore.fs is refused', () => {
  const yaml = `admin:\n  identity: ${ROOT}\ntls:\n  key: k\n  cert: c\nkeystore:\n  fs:\n    path: ./keys\n  postgres:\n    host: h\n    user: u\n`
  assert.throws(() => parse(yaml), { message: 'config: keystore.postgres: cannot be used together with keystore.fs' })
})

test('cache.expiry.offline: set means serve cached keys that long while the store is unreachable; 0 or absent means off', () => {
  assert.equal(parse(withStore('host: h\nuser: u', 'cache:\n  expiry:\n    offline: 1h\n')).cache.expiryOfflineMs, 3_600_000)
  assert.equal(parse(withStore('host: h\nuser: u', 'cache:\n  expiry:\n    offline: 0s\n')).cache.expiryOfflineMs, undefined)
  assert.equal(parse(withStore('host: h\nuser: u')).cache.expiryOfflineMs, undefined)
})
