// Start-up says what is wrong with the files it is given (issue 9 items 9 and
// 10): secret files open to other users are warned about (refused with
// --strict), and every unusable TLS file or key directory is named with its
// config setting.
import assert from 'node:assert/strict'
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { loadTlsMaterial } from '../../src/client/tls-material.js'
import { loadConfigFile } from '../../src/config/load.js'
import { startServer } from '../../src/server/server.js'
import { createCertificate } from '../../src/x509/certificate.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const other = makeClient('other')
const base = `admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./keys\n`
const posix = process.platform !== 'win32'

describe('unsafe file permissions', { skip: posix ? false : 'POSIX modes only' }, () => {
  let env: TestEnv
  beforeEach(async () => {
    env = await TestEnv.create()
    await mkdir(path.join(env.dir, 'keys'), { mode: 0o700 })
    await chmod(path.join(env.dir, 'keys'), 0o700)
    await writeFile(path.join(env.dir, 'keys', 'k1'), 'not read by this test', { mode: 0o600 })
  })
  afterEach(async () => {
    await env.dispose()
  })

  // [what, make it unsafe, the warning]
  const cases: Array<[string, (dir: string) => Promise<void>, RegExp]> = [
    ['a world-readable server.key', (d) => chmod(path.join(d, 'server.key'), 0o644), /security: tls\.key '.*server\.key' is readable by every user \(mode 0644\)/],
    ['a world-writable server.key', (d) => chmod(path.join(d, 'server.key'), 0o666), /security: tls\.key '.*server\.key' is writable by every user \(mode 0666\)/],
    ['a world-open key directory', (d) => chmod(path.join(d, 'keys'), 0o777), /security: keystore\.fs\.path '.*keys' is writable by every user \(mode 0777\)/],
    ['a group-writable key directory', (d) => chmod(path.join(d, 'keys'), 0o770), /security: keystore\.fs\.path '.*keys' is writable by its group \(mode 0770\)/],
    ['a world-readable key file', (d) => chmod(path.join(d, 'keys', 'k1'), 0o644), /security: keystore\.fs\.path '.*keys': 1 key file open to other users \('k1' is readable by every user, mode 0644\)/],
  ]
  for (const [what, makeUnsafe, warning] of cases) {
    test(`${what} is warned about, and refused with --strict`, async () => {
      await makeUnsafe(env.dir)
      await env.start(base)
      assert.equal(env.errorLines.filter((l) => warning.test(l)).length, 1, env.errorLines.join(''))
      await env.stop()
      await assert.rejects(env.start(base, { strictFiles: true }), (err: Error) => {
        assert.match(err.message, /^unsafe file permissions \(--strict\): /)
        assert.match(err.message, new RegExp(warning.source.replace(/^security: /, '')))
        return true
      })
    })
  }

  test('safe files start without a word, also with --strict', async () => {
    await env.start(base, { strictFiles: true })
    assert.deepEqual(env.errorLines.filter((l) => l.includes('security:')), [])
  })
})

describe('errors at the TLS edge name the file and the setting', () => {
  let env: TestEnv
  beforeEach(async () => {
    env = await TestEnv.create()
  })
  afterEach(async () => {
    await env.dispose()
  })

  test('a certificate given as the key', async () => {
    await copyFile(path.join(env.dir, 'server.cert'), path.join(env.dir, 'server.key'))
    await assert.rejects(env.start(base), /tls\.key '.*server\.key' holds a certificate, not a private key$/)
  })

  test('a key that is not the certificate\'s', async () => {
    const stranger = createCertificate('ecdsa-p256', { commonName: 'x', extKeyUsage: ['serverAuth'] })
    await writeFile(path.join(env.dir, 'server.key'), stranger.keyPem, { mode: 0o600 })
    await assert.rejects(env.start(base), /tls\.key '.*server\.key' is not the private key of tls\.cert '.*server\.cert'/)
  })

  test('garbage as the key', async () => {
    await writeFile(path.join(env.dir, 'server.key'), 'not a key\n', { mode: 0o600 })
    await assert.rejects(env.start(base), /tls\.key '.*server\.key' holds no usable private key \(PEM\)/)
  })

  test('a missing tls.cert file', async () => {
    const yaml = `address: 127.0.0.1:0\ntls:\n  key: ./server.key\n  cert: ./missing.cert\n${base}`
    await writeFile(path.join(env.dir, 'config.yml'), yaml)
    const config = await loadConfigFile(path.join(env.dir, 'config.yml'), {})
    await assert.rejects(startServer(config, { errorSink: () => {} }), /tls\.cert: cannot read '.*missing\.cert': ENOENT$/)
  })

  test('keystore.fs.path on /proc is refused at once, naming the setting', { skip: process.platform === 'linux' ? false : 'Linux /proc' }, async () => {
    await assert.rejects(env.start(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: /proc\n`), /keystore\.fs\.path: keystore\/fs: '\/proc' is on the kernel's proc file system, not a place for keys$/)
  })

  test('the client: a key that is not its certificate\'s, and a certificate given as the key', async () => {
    const certFile = path.join(env.dir, 'client.cert')
    const keyFile = path.join(env.dir, 'client.key')
    await writeFile(certFile, root.cert.certPem)
    await writeFile(keyFile, other.cert.keyPem)
    const creds = { cert: undefined, key: undefined, certFile, keyFile, keyPassword: undefined, ca: undefined, caFile: undefined, insecure: true }
    await assert.rejects(loadTlsMaterial(creds), /client key '.*client\.key' is not the private key of client certificate '.*client\.cert'/)
    await writeFile(keyFile, root.cert.certPem)
    await assert.rejects(loadTlsMaterial(creds), /client key '.*client\.key' holds a certificate, not a private key/)
    await assert.rejects(loadTlsMaterial({ ...creds, keyFile: path.join(env.dir, 'nope.key') }), /client key: cannot read '.*nope\.key': ENOENT/)
  })
})
