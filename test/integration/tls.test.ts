// Transport: mutual TLS with a required client certificate, TLS 1.2+,
// HTTP/1.1 and HTTP/2 by ALPN, identity = SHA-256 of the public key, and
// optional chain verification with tls.ca.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { TLSSocket } from 'node:tls'
import { createCertificate } from '../../src/x509/certificate.js'
import { TestEnv, makeClient } from './harness.js'
import type { Client } from './harness.js'

const root = makeClient('root')

/** Resolves when the server closes the connection, rejects if it ever answers a request. */
function closedWithoutAnswer(socket: TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    let data = ''
    socket.on('data', (c: Buffer) => (data += c.toString()))
    socket.on('error', () => {})
    socket.on('close', () => (data === '' ? resolve() : reject(new Error(`server answered: ${data}`))))
    socket.write('GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n')
  })
}

/** Waits (up to 10 s, then fails with `describe()`) until `done()` holds: for log lines written as a connection fails. */
async function until(done: () => boolean, describe: () => string): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(done(), `not seen within 10 s; got: ${describe()}`)
}

describe('TLS', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\n`)
  })
  after(async () => {
    await env.dispose()
  })

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    test(`a client without a certificate gets no answer (${version})`, async () => {
      const from = env.errorLines.length
      // Depending on the version the client sees the handshake complete and then
      // the connection closed, or the connection reset before it completes.
      const outcome = await env.connectTls({ ALPNProtocols: ['http/1.1'], minVersion: version, maxVersion: version }).then(
        async (socket) => {
          await closedWithoutAnswer(socket)
          return 'closed'
        },
        (err: unknown) => {
          assert.equal((err as { code?: unknown }).code, 'ECONNRESET', String(err))
          return 'reset'
        },
      )
      assert.ok(outcome === 'closed' || outcome === 'reset')
      // Whichever the client saw, the server refused it for the missing certificate.
      await until(() => env.errorLines.slice(from).some((l) => l.includes('no client certificate')), () => env.errorLines.slice(from).join(''))
      // The request did not get through over HTTP/2 either.
      const h2 = await env.connectTls({ ALPNProtocols: ['h2'], minVersion: version, maxVersion: version }).then(
        (socket) => closedWithoutAnswer(socket).then(() => 'closed'),
        (err: unknown) => String((err as { code?: unknown }).code),
      )
      assert.ok(h2 === 'closed' || h2 === 'ECONNRESET', h2)
    })
  }

  test('TLS 1.1 is refused', async () => {
    const from = env.errorLines.length
    await assert.rejects(
      env.connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
      { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' },
    )
    await until(() => env.errorLines.slice(from).some((l) => /tls: handshake with .* failed: .*unsupported protocol/.test(l)), () => env.errorLines.slice(from).join(''))
  })

  test('TLS 1.2 with an ECDHE AEAD suite works, CBC suites are refused', async () => {
    const ok = await env.connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, maxVersion: 'TLSv1.2' })
    assert.equal(ok.getProtocol(), 'TLSv1.2')
    assert.match(ok.getCipher().name, /GCM|CHACHA20/)
    ok.destroy()
    const from = env.errorLines.length
    await assert.rejects(
      env.connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA' }),
      // OpenSSL 3.0 (Node 20, 22) names the alert SSLV3_..., OpenSSL 3.5 (Node 24) SSL/TLS_...
      { code: /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/ },
    )
    await until(() => env.errorLines.slice(from).some((l) => /tls: handshake with .* failed: .*no shared cipher/.test(l)), () => env.errorLines.slice(from).join(''))
  })

  test('TLS 1.0 is refused, and so are TLS 1.2 suites without forward secrecy (RSA key exchange)', async () => {
    await assert.rejects(
      env.connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    )
    await assert.rejects(
      env.connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256:AES256-GCM-SHA384' }),
    )
  })

  test('ALPN offers h2 and http/1.1', async () => {
    for (const proto of ['h2', 'http/1.1']) {
      const s = await env.connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, ALPNProtocols: [proto] })
      assert.equal(s.alpnProtocol, proto)
      s.destroy()
    }
  })

  test('the identity is the SHA-256 of the public key, for RSA, ECDSA and Ed25519 certificates', async () => {
    for (const type of ['rsa-2048', 'ecdsa-p256', 'ed25519'] as const) {
      const cert = createCertificate(type, { commonName: `c-${type}`, extKeyUsage: ['clientAuth'] })
      const spki = new (await import('node:crypto')).X509Certificate(cert.certPem).publicKey.export({ type: 'spki', format: 'der' })
      const identity = createHash('sha256').update(spki).digest('hex')
      assert.equal(cert.identity, identity)
      const client: Client = { name: `id-${type}`, cert, identity }
      // Without a policy only /version answers; the refusal proves the server knew who this was not.
      assert.equal((await env.request(client, '/version')).status, 200)
      assert.equal((await env.request(client, '/v1/key/list/*')).status, 403)
      await env.request(root, `/v1/policy/write/p-${type}`, { method: 'POST', body: { allow: ['/v1/key/list/*'] } })
      await env.request(root, `/v1/identity/assign/p-${type}/${identity}`, { method: 'POST' })
      assert.equal((await env.request(client, '/v1/key/list/*')).status, 200)
    }
  })

  test('a self-signed certificate marked as a CA is a valid client certificate', async () => {
    const cert = createCertificate('ecdsa-p256', { commonName: 'ca-like', isCA: true })
    const client: Client = { name: 'ca-like', cert, identity: cert.identity }
    await env.request(root, '/v1/policy/write/p-ca-like', { method: 'POST', body: { allow: ['/v1/key/list/*'] } })
    await env.request(root, `/v1/identity/assign/p-ca-like/${cert.identity}`, { method: 'POST' })
    assert.equal((await env.request(client, '/v1/key/list/*')).status, 200)
  })
})

describe('TLS with tls.ca: client certificates must chain to the CA', () => {
  let env: TestEnv
  const ca = createCertificate('ecdsa-p256', { commonName: 'test client CA', isCA: true })
  const issued = createCertificate('ed25519', { commonName: 'issued', extKeyUsage: ['clientAuth'], issuer: ca })
  const issuedClient: Client = { name: 'issued', cert: issued, identity: issued.identity }
  before(async () => {
    env = await TestEnv.create()
    await writeFile(path.join(env.dir, 'ca.cert'), ca.certPem)
    await env.start(`admin:\n  identity: ${issued.identity}\n`, {}, '  ca: ./ca.cert\n')
  })
  after(async () => {
    await env.dispose()
  })

  test('a CA-issued certificate is served, a self-signed one is refused', async () => {
    assert.equal((await env.request(issuedClient, '/v1/key/list/*')).status, 200)
    assert.equal((await env.request(issuedClient, '/v1/key/list/*', { http2: true })).status, 200)
    // The server ends the handshake of a certificate it can't verify: HTTP/1.1 sees
    // the connection reset, HTTP/2 a session that ends before any answer.
    await assert.rejects(env.request(root, '/version'), (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'ECONNRESET', String(err))
      return true
    })
    await assert.rejects(env.request(root, '/version', { http2: true }), /HTTP\/2 stream (ended|closed) without a response|ECONNRESET|ERR_HTTP2/)
    const self = createCertificate('ed25519', { commonName: 'self-signed', extKeyUsage: ['clientAuth'] })
    await assert.rejects(env.request({ name: 'self', cert: self, identity: self.identity }, '/version'), { code: 'ECONNRESET' })
  })

  test('a certificate issued by an unrelated CA is refused, over HTTP/1.1 and HTTP/2', async () => {
    const otherCa = createCertificate('ecdsa-p256', { commonName: 'unrelated CA', isCA: true })
    const foreign = createCertificate('ed25519', { commonName: 'foreign', extKeyUsage: ['clientAuth'], issuer: otherCa })
    const client: Client = { name: 'foreign', cert: foreign, identity: foreign.identity }
    // Refused: the request fails, or (TLS 1.3 finishes the client's side first) it is never answered.
    const refused = (p: Promise<{ status: number }>): Promise<boolean> => p.then((r) => r.status === 0, () => true)
    assert.ok(await refused(env.request(client, '/version')), 'HTTP/1.1 answered')
    assert.ok(await refused(env.request(client, '/version', { http2: true })), 'HTTP/2 answered')
    // The CA-issued one still works over both.
    assert.equal((await env.request(issuedClient, '/version', { http2: true })).status, 200)
  })
})
