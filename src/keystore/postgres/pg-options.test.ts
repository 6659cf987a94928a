// How `keystore.postgres` settings become node-postgres options: libpq's sslmode
// meanings, files named by their setting when unreadable, a password file read
// at every connection, and locations that never show a password.
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { clientConfig, describeLocation, tlsOptions } from './pg-options.js'
import type { PostgresSettings, SslMode } from './pg-options.js'

let dir: string
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-pg-options-'))
  await writeFile(path.join(dir, 'ca.pem'), 'CA')
  await writeFile(path.join(dir, 'client.pem'), 'CERT')
  await writeFile(path.join(dir, 'client.key'), 'KEY')
  await writeFile(path.join(dir, 'password'), 'from-file\nsecond line ignored\n')
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

function settings(extra: Partial<PostgresSettings> = {}): PostgresSettings {
  return {
    kind: 'postgres',
    host: 'db.example',
    port: 5432,
    user: 'openkes',
    passwordFile: undefined,
    database: 'kms',
    schema: 'openkes',
    poolSize: 10,
    connectTimeoutMs: 5000,
    queryTimeoutMs: 10_000,
    sslMode: 'verify-full',
    sslRootCert: undefined,
    sslCert: undefined,
    sslKey: undefined,
    ...extra,
  }
}

describe('tlsOptions follows libpq sslmode', () => {
  test('disable: no TLS', async () => {
    assert.equal(await tlsOptions(settings({ sslMode: 'disable' })), false)
  })

  test('require: encrypted, the certificate unchecked', async () => {
    assert.deepEqual(await tlsOptions(settings({ sslMode: 'require' })), { rejectUnauthorized: false })
  })

  test('require with sslrootcert behaves as verify-ca: the chain is checked, any name accepted', async () => {
    const o = await tlsOptions(settings({ sslMode: 'require', sslRootCert: path.join(dir, 'ca.pem') }))
    assert.ok(o !== false)
    assert.equal(o.rejectUnauthorized, true)
    assert.equal(String(o.ca), 'CA')
    assert.equal(o.checkServerIdentity?.('db.example', {} as never), undefined)
  })

  test('verify-ca without a CA file uses the system CAs and skips the name check', async () => {
    const o = await tlsOptions(settings({ sslMode: 'verify-ca' }))
    assert.ok(o !== false)
    assert.equal(o.rejectUnauthorized, true)
    assert.equal('ca' in o, false)
    assert.equal(typeof o.checkServerIdentity, 'function')
  })

  test('verify-full checks the host name, and sends no SNI name for an IP address', async () => {
    const byName = await tlsOptions(settings({ sslMode: 'verify-full', sslRootCert: path.join(dir, 'ca.pem') }))
    assert.ok(byName !== false)
    assert.equal(byName.servername, 'db.example')
    assert.equal(byName.checkServerIdentity, undefined)
    for (const host of ['127.0.0.1', '::1']) {
      const byIp = await tlsOptions(settings({ host }))
      assert.ok(byIp !== false)
      assert.equal(byIp.servername, undefined, host)
    }
  })

  test('a client certificate and key are sent in every verifying mode', async () => {
    for (const sslMode of ['require', 'verify-ca', 'verify-full'] as SslMode[]) {
      const o = await tlsOptions(settings({ sslMode, sslCert: path.join(dir, 'client.pem'), sslKey: path.join(dir, 'client.key') }))
      assert.ok(o !== false)
      assert.equal(String(o.cert), 'CERT', sslMode)
      assert.equal(String(o.key), 'KEY', sslMode)
    }
  })

  test('an unreadable file is named with its setting', async () => {
    const missing = path.join(dir, 'missing.pem')
    for (const [field, setting] of [
      ['sslRootCert', 'sslrootcert'],
      ['sslCert', 'sslcert'],
      ['sslKey', 'sslkey'],
    ] as const) {
      await assert.rejects(tlsOptions(settings({ [field]: missing })), {
        message: `keystore.postgres.${setting}: cannot read '${missing}': ENOENT`,
      })
    }
  })
})

describe('clientConfig', () => {
  test('carries the connection settings and timeouts', async () => {
    const c = await clientConfig(settings({ sslMode: 'disable', password: 'inline' }), 'openkes-test')
    assert.equal(c.host, 'db.example')
    assert.equal(c.port, 5432)
    assert.equal(c.user, 'openkes')
    assert.equal(c.database, 'kms')
    assert.equal(c.password, 'inline')
    assert.equal(c.ssl, false)
    assert.equal(c.application_name, 'openkes-test')
    assert.equal(c.connectionTimeoutMillis, 5000)
    assert.equal(c.statement_timeout, 10_000)
    assert.equal(c.query_timeout, 11_000)
  })

  test('no password: none is sent', async () => {
    const c = await clientConfig(settings({ sslMode: 'disable' }), 'x')
    assert.equal('password' in c, false)
  })

  test('a password file is read at every connection: its first line', async () => {
    const file = path.join(dir, 'password')
    const c = await clientConfig(settings({ sslMode: 'disable', passwordFile: file }), 'x')
    assert.equal(typeof c.password, 'function')
    const read = c.password as () => Promise<string>
    assert.equal(await read(), 'from-file')
    await writeFile(file, 'rotated\n')
    assert.equal(await read(), 'rotated')
  })

  test('an unreadable password file is named with its setting', async () => {
    const missing = path.join(dir, 'no-password')
    const c = await clientConfig(settings({ sslMode: 'disable', passwordFile: missing }), 'x')
    const read = c.password as () => Promise<string>
    await assert.rejects(read(), { message: `keystore.postgres.password_file: cannot read '${missing}': ENOENT` })
  })
})

test('describeLocation shows user, host, port, database and schema — never a password', () => {
  assert.equal(describeLocation(settings({ password: 'secret' })), 'postgres://openkes@db.example:5432/kms (schema openkes)')
  assert.equal(describeLocation(settings({ host: '::1', user: 'a b', database: 'x/y' })), 'postgres://a%20b@[::1]:5432/x%2Fy (schema openkes)')
})
