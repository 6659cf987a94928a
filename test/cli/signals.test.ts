// Operations on a running `openkes server` process: SIGHUP reloads the
// configuration without dropping connections, SIGTERM drains and exits 0
// without losing an acknowledged write.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import tls from 'node:tls'
import { parseKeyFile } from '../../src/crypto/key-version.js'
import { createCertificate } from '../../src/x509/certificate.js'
import { TestEnv, makeClient } from '../integration/harness.js'
import { startCli } from './run.js'
import type { Running } from './run.js'

const root = makeClient('root')
const app = makeClient('app')

function peerFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, cert: root.cert.certPem, key: root.cert.keyPem, rejectUnauthorized: false }, () => {
      resolve(s.getPeerX509Certificate()?.fingerprint256 ?? '')
      s.destroy()
    })
    s.on('error', reject)
  })
}

const policyYaml = (allow: string): string =>
  `admin:\n  identity: ${root.identity}\npolicy:\n  app:\n    allow: [${allow}]\n    identities: [${app.identity}]\n`

describe('SIGHUP reloads the configuration', () => {
  let env: TestEnv
  let server: Running
  before(async () => {
    env = await TestEnv.create()
    const file = await env.writeConfig(policyYaml('/v1/key/create/*'))
    server = startCli(['server', '--config', file])
    const [, port] = await server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/)
    env.useExternalPort(Number(port))
  })
  after(async () => {
    await server.stop()
    await env.dispose()
  })

  test('a new certificate and policy apply; established connections stay; a bad config is refused', async (t) => {
    const oldFingerprint = await peerFingerprint(env.port)
    // An established HTTP/2 connection, which must survive the reload.
    const established = http2.connect(`https://localhost:${env.port}`, { cert: root.cert.certPem, key: root.cert.keyPem, ca: env.serverCert.certPem, host: '127.0.0.1' })
    established.on('error', () => {})
    t.after(() => established.destroy())
    const get = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const s = established.request({ ':path': path })
        s.on('response', (h) => resolve(Number(h[':status'])))
        s.on('error', reject)
        s.resume()
        s.end()
      })
    assert.equal(await get('/version'), 200)
    assert.equal((await env.request(app, '/v1/key/list/*')).status, 403)

    // New certificate and a policy change, then SIGHUP.
    const next = createCertificate('ecdsa-p256', { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], extKeyUsage: ['serverAuth'] })
    await writeFile(path.join(env.dir, 'server.key'), next.keyPem)
    await writeFile(path.join(env.dir, 'server.cert'), next.certPem)
    await env.writeConfig(policyYaml('/v1/key/list/*'))
    const reloads = server.stdout().split('configuration reloaded').length
    server.child.kill('SIGHUP')
    await server.waitFor(new RegExp(`(configuration reloaded[^]*){${reloads}}`))

    const newFingerprint = await peerFingerprint(env.port)
    assert.notEqual(newFingerprint, oldFingerprint)
    assert.equal(newFingerprint, new (await import('node:crypto')).X509Certificate(next.certPem).fingerprint256)
    env.serverCert = next
    env.resetConnections()
    assert.equal((await env.request(app, '/v1/key/list/*')).status, 200)
    assert.equal((await env.request(app, '/v1/key/create/x', { method: 'POST' })).status, 403)
    assert.equal(await get('/version'), 200, 'the established connection still works')

    // A broken config is refused; the previous one stays in force.
    await writeFile(path.join(env.dir, 'config.yml'), 'address: [oops\n')
    server.child.kill('SIGHUP')
    await server.waitForStderr(/reload refused/)
    assert.equal((await env.request(app, '/v1/key/list/*')).status, 200)
    assert.equal(await get('/version'), 200)
  })
})

describe('SIGTERM during a burst', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
  })
  after(async () => {
    await env.dispose()
  })

  test('exits 0 and loses no acknowledged write', async (t) => {
    const file = await env.writeConfig(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./keys\nlog:\n  audit_file: ./audit.log\n`)
    const server = startCli(['server', '--config', file])
    // Stopped whatever happens (a no-op once it exited by itself).
    t.after(() => server.stop('SIGKILL'))
    const [, port] = await server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/)
    env.useExternalPort(Number(port))
    const acknowledged: string[] = []
    let signalled = false
    const burst = Array.from({ length: 300 }, async (_, i) => {
      const name = `burst-${i}`
      try {
        const res = await env.request(root, `/v1/key/create/${name}`, { method: 'POST', http2: i % 2 === 0 })
        if (res.status === 200) acknowledged.push(name)
      } catch {
        // Refused or cut off by the shutdown: not acknowledged, so nothing is promised.
      }
      if (!signalled && acknowledged.length >= 50) {
        signalled = true
        server.child.kill('SIGTERM')
      }
    })
    await Promise.all(burst)
    assert.equal(await server.exited(), 0, server.stderr())
    assert.ok(signalled)
    assert.ok(acknowledged.length >= 50)
    for (const name of acknowledged) {
      const key = parseKeyFile(await readFile(path.join(env.dir, 'keys', name)))
      assert.equal(key.cipher, 'AES256')
    }
    // Every acknowledged request was audited, including those that finished during the shutdown.
    const audited = (await readFile(path.join(env.dir, 'audit.log'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { request: { path: string }; response: { code: number } })
      .filter((e) => e.response.code === 200)
      .map((e) => e.request.path.replace('/v1/key/create/', ''))
    assert.deepEqual(audited.sort(), [...acknowledged].sort())
  })
})
