import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseConfig } from './load.js'
import { ConfigError } from './config-error.js'
import { KES_CONFIGS } from '../../test/support/fixtures.js'

const ROOT = '93cce9ac64dadc74b20b334b73e09dcbde4c378742b64a6a09471748e43807fd'
const APP = 'f2e99ecb3215bdb77f6b463647dfeca5124b9ec4be419a94189a9c051bbcc77f'
const OPS = '8b2ea0692c8e021acf49b1415113e768ff2096517758d839cb82357d14861519'
const BASE = '/srv/kes'

function parse(yaml: string, env: NodeJS.ProcessEnv = {}) {
  return parseConfig(yaml, { baseDir: BASE, env })
}

/** A minimal valid config with `extra` appended (top-level YAML). */
function minimal(extra = ''): string {
  return `admin:\n  identity: ${ROOT}\ntls:\n  key: ./server.key\n  cert: ./server.cert\n${extra}`
}

const FULL = `
address: 127.0.0.1:7373
admin:
  identity: ${ROOT}
tls:
  key: ./server.key
  cert: /etc/ssl/server.cert
  password: "hunter2"
  ca: ../ca/ca.cert
policy:
  my-app:
    allow: [ /v1/key/generate/my-*, /v1/key/decrypt/my-* ]
    paths: [ /v1/key/list/* ]
    deny:  [ /v1/key/generate/my-secret* ]
    identities: [ ${APP} ]
  ops:
    allow:
      - /v1/policy/*
    identities:
      - ${OPS.toUpperCase()}
cache:
  expiry:
    any: 5m0s
    unused: 30s
log:
  error: on
  audit: off
  audit_file: ./log/audit.log
keys:
  - name: my-key
  - name: other.key
keystore:
  fs:
    path: ./keys
`

test('a full valid config', () => {
  const c = parseConfig(FULL, { baseDir: BASE, env: {}, sourceFile: '/srv/kes/config.yml' })
  assert.equal(c.address, '127.0.0.1:7373')
  assert.equal(c.adminIdentity, ROOT)
  assert.equal(c.tls.keyFile, '/srv/kes/server.key')
  assert.equal(c.tls.certFile, '/etc/ssl/server.cert')
  assert.equal(c.tls.caFile, '/srv/ca/ca.cert')
  assert.equal(c.tls.password, 'hunter2')
  assert.deepEqual([...c.policies.keys()], ['my-app', 'ops'])
  assert.deepEqual(c.policies.get('my-app'), {
    allow: ['/v1/key/generate/my-*', '/v1/key/decrypt/my-*', '/v1/key/list/*'],
    deny: ['/v1/key/generate/my-secret*'],
    identities: [APP],
  })
  assert.deepEqual(c.policies.get('ops'), { allow: ['/v1/policy/*'], deny: [], identities: [OPS] })
  assert.deepEqual(c.cache, { expiryAnyMs: 300_000, expiryUnusedMs: 30_000 })
  assert.deepEqual(c.log, { error: true, audit: false, auditFile: '/srv/kes/log/audit.log' })
  assert.deepEqual(c.keys, ['my-key', 'other.key'])
  assert.deepEqual(c.keystore, { kind: 'fs', path: '/srv/kes/keys' })
  assert.equal(c.sourceFile, '/srv/kes/config.yml')
})

test('defaults for everything that is optional', () => {
  const c = parse(minimal())
  assert.equal(c.address, '0.0.0.0:7373')
  assert.equal(c.tls.password, undefined)
  assert.equal(c.tls.caFile, undefined)
  assert.equal(c.policies.size, 0)
  assert.deepEqual(c.cache, { expiryAnyMs: 300_000, expiryUnusedMs: 30_000 })
  assert.deepEqual(c.log, { error: true, audit: false, auditFile: undefined })
  assert.deepEqual(c.keys, [])
  // No keystore section: the fs store in ./keys next to the config file.
  assert.deepEqual(c.keystore, { kind: 'fs', path: '/srv/kes/keys' })
  assert.equal(c.sourceFile, undefined)
})

test('empty sections and values count as absent', () => {
  const c = parse(minimal('address:\npolicy:\n  p:\ncache:\n  expiry:\nlog:\nkeys:\nkeystore:\n'))
  assert.equal(c.address, '0.0.0.0:7373')
  assert.deepEqual(c.policies.get('p'), { allow: [], deny: [], identities: [] })
  assert.deepEqual(c.cache, { expiryAnyMs: 300_000, expiryUnusedMs: 30_000 })
  assert.deepEqual(c.keystore, { kind: 'fs', path: '/srv/kes/keys' })
})

test('relative paths resolve against the base directory, absolute ones stay', () => {
  const c = parse(
    `admin: {identity: ${ROOT}}\ntls: {key: server.key, cert: ../x/../certs/s.cert, ca: /abs/ca.pem}\n` +
      'keystore: {fs: {path: ../data/keys}}\n',
  )
  assert.equal(c.tls.keyFile, '/srv/kes/server.key')
  assert.equal(c.tls.certFile, '/srv/certs/s.cert')
  assert.equal(c.tls.caFile, '/abs/ca.pem')
  assert.deepEqual(c.keystore, { kind: 'fs', path: '/srv/data/keys' })
})

test('a relative base directory becomes absolute', () => {
  const c = parseConfig(minimal(), { baseDir: 'conf', env: {} })
  assert.equal(c.tls.keyFile, `${process.cwd()}/conf/server.key`)
})

test('the older top-level root: is accepted as the admin identity', () => {
  const c = parse(`root: ${ROOT}\ntls: {key: k, cert: c}\n`)
  assert.equal(c.adminIdentity, ROOT)
})

// The KES config files of test/fixtures/kes-configs, as each KES layout wrote them.
const layoutEnv = { KES_ROOT_IDENTITY: ROOT, KES_APP_IDENTITY: APP }
const fixture = (file: string) =>
  parseConfig(readFileSync(path.join(KES_CONFIGS, file), 'utf8'), { baseDir: BASE, env: layoutEnv })
const minioPolicy = (allow: string[], deny: string[] = []) => ({ allow, deny, identities: [APP] })
const ksAllow = ['/v1/key/create/ks-*', '/v1/key/generate/ks-*', '/v1/key/decrypt/ks-*']

test('the KES v0.13/v0.14 layout: root, paths, the key store under keys', () => {
  const c = fixture('kes-v0.14.yml')
  assert.equal(c.adminIdentity, ROOT)
  // Read back in the form it was written in: `paths` (KES before v0.15).
  assert.deepEqual([...c.policies.entries()], [['minio', { ...minioPolicy(ksAllow), form: 'paths' }]])
  assert.deepEqual(c.keystore, { kind: 'fs', path: '/srv/kes/keys' })
  assert.deepEqual(c.keys, [])
  assert.deepEqual(c.cache, { expiryAnyMs: 300_000, expiryUnusedMs: 20_000 })
  assert.deepEqual(c.log, { error: true, audit: false, auditFile: undefined })
})

test('the KES v0.17 layout: the template with every other backend left empty', () => {
  const c = fixture('kes-v0.17.yml')
  assert.equal(c.adminIdentity, ROOT)
  assert.equal(c.tls.password, undefined)
  assert.deepEqual(c.policies.get('minio'), minioPolicy(ksAllow, ['/v1/key/decrypt/ks-imported-seq']))
  assert.deepEqual(c.policies.get('ops'), { allow: ['/v1/key/list/*', '/v1/policy/show/minio'], deny: [], identities: [] })
  assert.deepEqual(c.keys, ['minio-default-key'])
  assert.deepEqual(c.keystore, { kind: 'fs', path: '/srv/kes/keys' })
  assert.deepEqual(c.cache, { expiryAnyMs: 300_000, expiryUnusedMs: 20_000 })
})

test('the KES 2023 and 2024 layouts: version v1, empty ca and auth, log levels', () => {
  for (const file of ['kes-2023.yml', 'kes-2024.yml']) {
    const c = fixture(file)
    assert.equal(c.adminIdentity, ROOT, file)
    assert.equal(c.tls.caFile, undefined, file)
    assert.deepEqual(c.policies.get('minio'), minioPolicy(ksAllow, ['/v1/key/decrypt/ks-imported-seq']), file)
    assert.deepEqual(c.log, { error: true, audit: false, auditFile: undefined }, file)
    assert.deepEqual(c.keystore, { kind: 'fs', path: '/srv/kes/keys' }, file)
    assert.deepEqual(c.api.get('/v1/ready'), { skipAuth: false, timeoutMs: 15_000 }, file)
  }
  assert.deepEqual(fixture('kes-2024.yml').keys, ['minio-default-key', 'minio-backup-key'])
})

// Template leftovers KES ignored: accepted, and they change nothing.
const inert: ReadonlyArray<readonly [string, string]> = [
  ['tls.proxy without identities', minimal('').replace('tls:\n', 'tls:\n  proxy:\n    identities: []\n    header: {cert: X-Tls-Client-Cert}\n')],
  ['a top-level proxy (KES v0.13 examples)', minimal(`proxy:\n  identities: [${APP}]\n  header: {cert: X-Tls-Client-Cert}\n`)],
  ['an empty tls.password and tls.ca', minimal('').replace('tls:\n', 'tls:\n  password: ""\n  ca: ""\n  auth: ""\n')],
  ['tls.auth on with a ca', minimal('').replace('tls:\n', 'tls:\n  auth: "on"\n  ca: /ca.pem\n')],
  ['version v1', minimal('version: v1\n')],
  ['cache.expiry.offline 0s', minimal('cache:\n  expiry:\n    offline: 0s\n')],
  ['a vault section with an empty endpoint', minimal('keystore:\n  fs: {path: ./keys}\n  vault: {endpoint: "", approle: {retry: 15s}, status: {ping: 10s}}\n')],
  ['empty sections of other backends', minimal('keystore:\n  fs: {path: ./keys}\n  aws: {secretsmanager: {endpoint: ""}}\n  gemalto: {}\n  entrust:\n')],
]
for (const [what, yaml] of inert) {
  test(`accepted as KES did: ${what}`, () => {
    const c = parse(yaml)
    assert.equal(c.adminIdentity, ROOT)
    assert.deepEqual(c.keystore, { kind: 'fs', path: '/srv/kes/keys' })
    assert.deepEqual(c.log, { error: true, audit: false, auditFile: undefined })
    assert.deepEqual(c.cache, { expiryAnyMs: 300_000, expiryUnusedMs: 30_000 })
  })
}

test("admin identity 'disabled' means no admin", () => {
  assert.equal(parse(`admin: {identity: disabled}\ntls: {key: k, cert: c}\n`).adminIdentity, undefined)
  assert.equal(parse(`root: disabled\ntls: {key: k, cert: c}\n`).adminIdentity, undefined)
})

test('uppercase hex identities are normalised to lowercase', () => {
  const c = parse(`admin: {identity: ${ROOT.toUpperCase()}}\ntls: {key: k, cert: c}\n`)
  assert.equal(c.adminIdentity, ROOT)
})

test('scalars keep their YAML spelling (an all-digit identity is not turned into a number)', () => {
  const digits = '1'.repeat(64)
  const expo = '1e' + '2'.repeat(62)
  const c = parse(`admin: {identity: ${digits}}\ntls: {key: k, cert: c}\npolicy:\n  p: {identities: [${expo}]}\n`)
  assert.equal(c.adminIdentity, digits)
  assert.deepEqual(c.policies.get('p')?.identities, [expo])
})

const addresses: readonly string[] = [
  '127.0.0.1:7373',
  '[::1]:7373',
  '[fe80::1]:0',
  ':7373',
  '0.0.0.0:65535',
  'localhost:7373',
  'kes.example.com:443',
]
for (const address of addresses) {
  test(`address '${address}' is accepted`, () => assert.equal(parse(minimal(`address: "${address}"\n`)).address, address))
}

const badAddresses: readonly string[] = [
  'localhost',
  '7373',
  '127.0.0.1:65536',
  '127.0.0.1:',
  '127.0.0.1:http',
  '::1:7373',
  '[::1:7373',
  '[127.0.0.1]:7373',
  'a b:7373',
  'host/x:7373',
]
for (const address of badAddresses) {
  test(`address '${address}' is refused`, () => {
    assert.throws(() => parse(minimal(`address: "${address}"\n`)), {
      message: `config: address: invalid address '${address}'`,
    })
  })
}

const logCases: ReadonlyArray<readonly [string, boolean]> = [
  ['on', true],
  ['off', false],
  ['true', true],
  ['false', false],
  ['"on"', true],
  ['"off"', false],
  ['True', true],
  ['OFF', false],
  // KES 2024+ log levels: any level turns the log on.
  ['DEBUG', true],
  ['info', true],
  ['WARN', true],
  ['ERROR+4', true],
  ['INFO-2', true],
]
for (const [value, want] of logCases) {
  test(`log value ${value} → ${want}`, () => {
    const c = parse(minimal(`log:\n  error: ${value}\n  audit: ${value}\n`))
    assert.deepEqual(c.log, { error: want, audit: want, auditFile: undefined })
  })
}

const durationCases: ReadonlyArray<readonly [string, number, number]> = [
  ['any: 1h\n    unused: 1h30m', 3_600_000, 5_400_000],
  ['any: 0\n    unused: 0', 0, 0],
  ['all: 10m', 600_000, 30_000],
  ['any: 1.5s\n    unused: 300ms', 1500, 300],
  // Rounded up: a non-zero expiry never becomes 0, which would disable it.
  ['any: 1us\n    unused: 1ns', 1, 1],
]
for (const [expiry, any, unused] of durationCases) {
  test(`cache expiry '${expiry.replace(/\n\s*/g, ', ')}'`, () => {
    assert.deepEqual(parse(minimal(`cache:\n  expiry:\n    ${expiry}\n`)).cache, {
      expiryAnyMs: any,
      expiryUnusedMs: unused,
    })
  })
}

test('allow and the older paths are concatenated; duplicate identities in one policy collapse', () => {
  const c = parse(
    minimal(`policy:\n  p:\n    paths: [/b]\n    allow: [/a]\n    identities: [${APP}, ${APP.toUpperCase()}]\n`),
  )
  assert.deepEqual(c.policies.get('p'), { allow: ['/a', '/b'], deny: [], identities: [APP] })
})

test('duplicate key names collapse, in order', () => {
  assert.deepEqual(parse(minimal('keys:\n  - name: b\n  - name: a\n  - name: b\n')).keys, ['b', 'a'])
})

test('a __proto__ policy name is just a name', () => {
  const c = parse(minimal('policy:\n  __proto__:\n    allow: [/v1/status]\n'))
  assert.deepEqual([...c.policies.keys()], ['__proto__'])
  assert.equal(({} as Record<string, unknown>)['allow'], undefined)
})

test('whole-value ${VAR} is substituted in every string, partial values are kept', () => {
  const env = { ROOT: ROOT, KEY: './from-env.key', PATTERN: '/v1/key/*/x', ID: APP, AUDIT: 'on', ANY: '1m' }
  const c = parse(
    'admin:\n  identity: ${ROOT}\ntls:\n  key: "${KEY}"\n  cert: a${KEY}b\n' +
      'policy:\n  p:\n    allow: ["${PATTERN}"]\n    identities: [ "${ID}" ]\n' +
      'log: {audit: "${AUDIT}"}\ncache: {expiry: {any: "${ANY}"}}\n',
    env,
  )
  assert.equal(c.adminIdentity, ROOT)
  assert.equal(c.tls.keyFile, '/srv/kes/from-env.key')
  assert.equal(c.tls.certFile, '/srv/kes/a${KEY}b')
  assert.deepEqual(c.policies.get('p'), { allow: ['/v1/key/*/x'], deny: [], identities: [APP] })
  assert.equal(c.log.audit, true)
  assert.equal(c.cache.expiryAnyMs, 60_000)
})

test('the config is deep-frozen', () => {
  const c = parse(FULL)
  for (const part of [c, c.tls, c.cache, c.log, c.keys, c.keystore, c.policies]) {
    assert.equal(Object.isFrozen(part), true)
  }
  for (const p of c.policies.values()) {
    assert.equal(Object.isFrozen(p), true)
    assert.equal(Object.isFrozen(p.allow), true)
    assert.equal(Object.isFrozen(p.deny), true)
    assert.equal(Object.isFrozen(p.identities), true)
  }
  assert.throws(() => {
    ;(c as { address: string }).address = 'x'
  }, TypeError)
  assert.throws(() => (c.keys as string[]).push('x'), TypeError)
  assert.throws(() => (c.policies.get('ops')?.allow as string[]).push('/v1/*'), TypeError)
  assert.equal('set' in c.policies, false)
})

test('the tls password is readable but never printed or serialised', () => {
  const c = parse(FULL)
  assert.equal(c.tls.password, 'hunter2')
  assert.doesNotMatch(JSON.stringify(c), /hunter2/)
  assert.doesNotMatch(inspect(c, { depth: 10 }), /hunter2/)
  assert.doesNotMatch(JSON.stringify({ ...c.tls }), /hunter2/)
})

const HINT = "export the keys into a directory and bring them in with 'openkes migrate' (see docs/migrating.md)"
const LOG_EXPECTED = 'expected on, off or a log level (DEBUG, INFO, WARN, ERROR)'

// [description, yaml, exact message]
const errors: ReadonlyArray<readonly [string, string, string]> = [
  ['empty document', '', 'config: admin.identity: missing'],
  ['no admin identity', 'tls: {key: k, cert: c}\n', 'config: admin.identity: missing'],
  ['empty admin identity', 'admin: {identity: ""}\ntls: {key: k, cert: c}\n', 'config: admin.identity: missing'],
  [
    'both admin.identity and root',
    `root: ${ROOT}\nadmin: {identity: ${ROOT}}\ntls: {key: k, cert: c}\n`,
    'config: root: cannot be used together with admin.identity',
  ],
  ['invalid admin identity', 'admin: {identity: xyz}\n', "config: admin.identity: invalid identity 'xyz'"],
  ['invalid root', 'root: abc\n', "config: root: invalid identity 'abc'"],
  ['unknown admin field', `admin: {identity: ${ROOT}, name: x}\n`, 'config: admin.name: unknown field'],
  ['admin not a mapping', 'admin: x\n', 'config: admin: expected a mapping'],
  ['no tls section', `admin: {identity: ${ROOT}}\n`, 'config: tls.key: missing'],
  ['no tls key', `admin: {identity: ${ROOT}}\ntls: {cert: c}\n`, 'config: tls.key: missing'],
  ['no tls cert', `admin: {identity: ${ROOT}}\ntls: {key: k}\n`, 'config: tls.cert: missing'],
  ['tls not a mapping', `admin: {identity: ${ROOT}}\ntls: [k]\n`, 'config: tls: expected a mapping'],
  ['tls key not a string', `admin: {identity: ${ROOT}}\ntls: {key: [k], cert: c}\n`, 'config: tls.key: expected a string'],
  ['unknown tls field', minimal('').replace('tls:\n', 'tls:\n  foo: 1\n'), 'config: tls.foo: unknown field'],
  [
    'tls proxy identities',
    minimal('').replace('tls:\n', `tls:\n  proxy: {identities: [${APP}]}\n`),
    'config: tls.proxy.identities: not supported; OpenKES does not accept client certificates forwarded by a proxy; ' +
      'let the proxy pass TLS through (TCP mode) so that clients present their certificates to OpenKES, or remove the proxy identities',
  ],
  ['unknown tls proxy field', minimal('').replace('tls:\n', 'tls:\n  proxy: {hosts: []}\n'), 'config: tls.proxy.hosts: unknown field'],
  ['tls auth value', minimal('').replace('tls:\n', 'tls:\n  auth: maybe\n'), 'config: tls.auth: expected on or off'],
  [
    'tls auth on without ca',
    minimal('').replace('tls:\n', 'tls:\n  auth: on\n'),
    'config: tls.auth: on needs tls.ca: OpenKES verifies client certificates against tls.ca only',
  ],
  [
    'tls auth off with ca',
    minimal('').replace('tls:\n', 'tls:\n  auth: off\n  ca: ./ca.cert\n'),
    'config: tls.auth: off cannot be used together with tls.ca: OpenKES verifies client certificates whenever tls.ca is set; remove tls.ca or set tls.auth: on',
  ],
  ['config version', minimal('version: v2\n'), "config: version: unsupported config version 'v2': OpenKES reads v1"],
  ['unknown top-level field', minimal('foo: bar\n'), 'config: foo: unknown field'],
  ['api section with an unknown path', minimal('api:\n  /v1/nope: {skip_auth: true}\n'), "config: api./v1/nope: unknown API path '/v1/nope'"],
  ['top level is a list', '- a\n', 'config: expected a mapping at the top level'],
  ['top level is a string', 'hello\n', 'config: expected a mapping at the top level'],
  // Environment
  ['unset variable', 'admin:\n  identity: ${ROOT}\n', "config: admin.identity: environment variable 'ROOT' is not set"],
  [
    'unset variable in a list',
    minimal('policy:\n  p:\n    identities: ["${NOPE}"]\n'),
    "config: policy.p.identities[0]: environment variable 'NOPE' is not set",
  ],
  // Cache
  ['bad duration', minimal('cache:\n  expiry:\n    any: 5x\n'), "config: cache.expiry.any: invalid duration '5x'"],
  ['negative duration', minimal('cache:\n  expiry:\n    unused: -1s\n'), "config: cache.expiry.unused: invalid duration '-1s'"],
  ['duration without unit', minimal('cache:\n  expiry:\n    all: 5\n'), "config: cache.expiry.all: invalid duration '5'"],
  [
    'any and all',
    minimal('cache:\n  expiry:\n    any: 1m\n    all: 2m\n'),
    'config: cache.expiry.all: cannot be used together with cache.expiry.any',
  ],
  ['bad offline expiry', minimal('cache:\n  expiry:\n    offline: soon\n'), "config: cache.expiry.offline: invalid duration 'soon'"],
  ['unknown cache field', minimal('cache:\n  size: 1\n'), 'config: cache.size: unknown field'],
  ['unknown expiry field', minimal('cache:\n  expiry:\n    never: 1h\n'), 'config: cache.expiry.never: unknown field'],
  // Log
  ['log value', minimal('log:\n  audit: maybe\n'), `config: log.audit: ${LOG_EXPECTED}`],
  ['log level with a bad suffix', minimal('log:\n  error: WARN+x\n'), `config: log.error: ${LOG_EXPECTED}`],
  ['log audit file', minimal('log:\n  audit_file: [a]\n'), 'config: log.audit_file: expected a string'],
  ['log yes', minimal('log:\n  error: yes\n'), `config: log.error: ${LOG_EXPECTED}`],
  ['log as a KES 0.7 mapping', minimal('log:\n  error:\n    file: []\n'), `config: log.error: ${LOG_EXPECTED}`],
  ['unknown log field', minimal('log:\n  trace: on\n'), 'config: log.trace: unknown field'],
  // Policies
  [
    'bad pattern',
    minimal('policy:\n  p:\n    allow: [/v1/key/*, "/v1/["]\n'),
    "config: policy.p.allow[1]: syntax error in pattern '/v1/['",
  ],
  ['bad paths pattern', minimal('policy:\n  p:\n    paths: ["\\\\"]\n'), "config: policy.p.paths[0]: syntax error in pattern '\\'"],
  ['bad deny pattern', minimal('policy:\n  p:\n    deny: [a, "[]"]\n'), "config: policy.p.deny[1]: syntax error in pattern '[]'"],
  ['allow not a list', minimal('policy:\n  p:\n    allow: /v1/key/*\n'), 'config: policy.p.allow: expected a list of strings'],
  ['allow with a list inside', minimal('policy:\n  p:\n    allow: [[a]]\n'), 'config: policy.p.allow: expected a list of strings'],
  ['allow with a null item', minimal('policy:\n  p:\n    allow: [~]\n'), 'config: policy.p.allow: expected a list of strings'],
  ['identities not a list', minimal(`policy:\n  p:\n    identities: ${APP}\n`), 'config: policy.p.identities: expected a list of strings'],
  ['policy not a mapping', minimal('policy:\n  p: [a]\n'), 'config: policy.p: expected a mapping'],
  ['policy section not a mapping', minimal('policy: [a]\n'), 'config: policy: expected a mapping'],
  ['invalid policy name', minimal('policy:\n  a b:\n    allow: []\n'), "config: policy.a b: invalid policy name 'a b'"],
  ['policy name with a dot first', minimal('policy:\n  .p:\n    allow: []\n'), "config: policy..p: invalid policy name '.p'"],
  ['unknown policy field', minimal('policy:\n  p:\n    allw: []\n'), 'config: policy.p.allw: unknown field'],
  [
    'invalid identity in a policy',
    minimal('policy:\n  p:\n    identities: [not-hex]\n'),
    "config: policy.p.identities[0]: invalid identity 'not-hex'",
  ],
  [
    'admin identity in a policy',
    minimal(`policy:\n  p:\n    identities: [${ROOT.toUpperCase()}]\n`),
    'config: policy.p.identities[0]: identity is the admin identity',
  ],
  [
    'identity under two policies',
    minimal(`policy:\n  p:\n    identities: [${APP}]\n  q:\n    identities: [${OPS}, ${APP}]\n`),
    `config: policy.q.identities[1]: identity '${APP}' is already assigned to policy 'p'`,
  ],
  // Keys
  ['invalid key name', minimal('keys:\n  - name: a/b\n'), "config: keys[0].name: invalid key name 'a/b'"],
  ['key name missing', minimal('keys:\n  - name: a\n  - {}\n'), 'config: keys[1].name: missing'],
  ['key entry not a mapping', minimal('keys:\n  - a\n'), 'config: keys[0]: expected a mapping'],
  ['unknown key field', minimal('keys:\n  - name: a\n    cipher: x\n'), 'config: keys[0].cipher: unknown field'],
  ['keys a string', minimal('keys: k\n'), 'config: keys: expected a list'],
  [
    'v0.13 key store under keys and keystore',
    minimal('keys:\n  fs:\n    path: ./a\nkeystore:\n  fs:\n    path: ./b\n'),
    'config: keys: a key store under keys (the KES v0.13 layout) cannot be used together with keystore',
  ],
  ['v0.13 vault under keys', minimal('keys:\n  vault:\n    endpoint: https://v\n'), `config: keys.vault: not supported; ${HINT}`],
  ['v0.13 fs under keys without path', minimal('keys:\n  fs:\n    path: ""\n'), 'config: keys.fs.path: missing'],
  // Keystore
  ['vault', minimal('keystore:\n  vault:\n    endpoint: https://v\n'), `config: keystore.vault: not supported; ${HINT}`],
  ['vault from a variable', minimal('keystore:\n  vault:\n    endpoint: ${VAULT}\n'), `config: keystore.vault: not supported; ${HINT}`],
  ['aws', minimal('keystore:\n  aws:\n    secretsmanager: {endpoint: x, region: y}\n'), `config: keystore.aws: not supported; ${HINT}`],
  ['gcp', minimal('keystore:\n  gcp:\n    secretmanager: {project_id: p}\n'), `config: keystore.gcp: not supported; ${HINT}`],
  ['gemalto', minimal('keystore:\n  gemalto: {keysecure: {endpoint: https://g}}\n'), `config: keystore.gemalto: not supported; ${HINT}`],
  ['an unknown backend', minimal('keystore:\n  hsm: {slot: 1}\n'), `config: keystore.hsm: not supported; ${HINT}`],
  ['fs and another', minimal('keystore:\n  fs: {path: k}\n  azure: {keyvault: {endpoint: https://a}}\n'), `config: keystore.azure: not supported; ${HINT}`],
  ['fs without path', minimal('keystore:\n  fs: {}\n'), 'config: keystore.fs.path: missing'],
  ['fs empty', minimal('keystore:\n  fs:\n'), 'config: keystore.fs.path: missing'],
  ['unknown fs field', minimal('keystore:\n  fs: {path: k, mode: 1}\n'), 'config: keystore.fs.mode: unknown field'],
  ['keystore not a mapping', minimal('keystore: fs\n'), 'config: keystore: expected a mapping'],
  // YAML itself
  ['duplicate key', minimal('log: {}\nlog: {}\n'), 'config: invalid yaml at line 7, column 1: Map keys must be unique'],
  ['non-string key', minimal('policy:\n  ? [a]\n  : {}\n'), 'config: policy: mapping keys must be strings'],
]
for (const [what, yaml, message] of errors) {
  test(`config error: ${what}`, () => {
    assert.throws(() => parse(yaml), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`)
      assert.equal(err.message, message)
      return true
    })
  })
}

test('a YAML syntax error names the position and not the source line', () => {
  assert.throws(() => parse('tls:\n  password: [hunter2\n  key: x\n'), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.match(err.message, /^config: invalid yaml at line \d+, column \d+: /)
    assert.doesNotMatch(err.message, /hunter2|\n/)
    return true
  })
})

test('alias bombs are refused', () => {
  let yaml = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n'
  for (let i = 1; i <= 6; i++) {
    const prev = `*a${i - 1}`
    yaml += `a${i}: &a${i} [${Array(10).fill(prev).join(', ')}]\n`
  }
  assert.throws(() => parse(yaml), { message: 'config: document too large' })
})

test('key lifecycle: rotation rules and deleted-key retention, with defaults', () => {
  const none = parse(minimal())
  assert.deepEqual(none.rotation, [])
  assert.equal(none.deletedKeys.retentionMs, 7 * 24 * 3600_000)
  const c = parse(minimal('rotation:\n  - pattern: "minio-*"\n    every: 8760h\n  - pattern: app\n    every: 30m\ndeleted_keys:\n  retention: 0\n'))
  assert.deepEqual(c.rotation, [
    { pattern: 'minio-*', everyMs: 8760 * 3600_000 },
    { pattern: 'app', everyMs: 30 * 60_000 },
  ])
  assert.equal(c.deletedKeys.retentionMs, 0)
  assert.equal(parse(minimal('deleted_keys:\n  retention: 36h\n')).deletedKeys.retentionMs, 36 * 3600_000)
  // KES `keys:` lists still mean keys to create, beside rotation.
  assert.deepEqual(parse(minimal('keys:\n  - name: k1\nrotation:\n  - pattern: k*\n    every: 1h\n')).keys, ['k1'])
})

test('key lifecycle: invalid settings name their YAML path', () => {
  const cases: Array<[string, RegExp]> = [
    ['rotation:\n  - pattern: "a*"\n', /rotation\[0\]\.every/],
    ['rotation:\n  - pattern: "a*"\n    every: 0\n', /rotation\[0\]\.every/],
    ['rotation:\n  - every: 1h\n', /rotation\[0\]\.pattern/],
    ['rotation:\n  - pattern: "a["\n    every: 1h\n', /rotation\[0\]\.pattern/],
    ['rotation:\n  - pattern: a\n    every: 1h\n    often: yes\n', /rotation\[0\]\.often/],
    ['rotation:\n  pattern: a\n', /rotation/],
    ['deleted_keys:\n  retention: 7d\n', /deleted_keys\.retention/],
    ['deleted_keys:\n  keep: 1h\n', /deleted_keys\.keep/],
  ]
  for (const [yaml, path] of cases) {
    assert.throws(() => parse(minimal(yaml)), (err: unknown) => err instanceof ConfigError && path.test(err.message), yaml)
  }
})
