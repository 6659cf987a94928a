import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import tls from 'node:tls'
import { identityOfCertificate } from '../auth/identity.js'
import { createCertificate, ipAddressBytes } from './certificate.js'
import type { IssuedCertificate, KeyType } from './certificate.js'
import { hasOpenssl } from '../../test/support/openssl.js'

const keyTypes: KeyType[] = ['ed25519', 'ecdsa-p256', 'rsa-2048']
const DAY_MS = 86_400_000
// certificate times have whole seconds; allow for that and a slow machine
const TIME_SLACK_MS = 10_000

function spkiSha256(cert: X509Certificate): string {
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex')
}

for (const keyType of keyTypes) {
  test(`${keyType}: self-signed certificate parses, verifies and carries the requested fields`, () => {
    const before = Date.now()
    const issued = createCertificate(keyType, {
      commonName: `test ${keyType}`,
      dnsNames: ['localhost', '*.example.com'],
      ipAddresses: ['127.0.0.1', '::1'],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    })
    const cert = new X509Certificate(issued.certPem)
    assert.equal(cert.verify(cert.publicKey), true)
    assert.equal(cert.subject, `CN=test ${keyType}`)
    assert.equal(cert.issuer, cert.subject)
    assert.equal(cert.ca, false)
    assert.equal(cert.checkHost('localhost'), 'localhost')
    assert.equal(cert.checkHost('api.example.com'), '*.example.com')
    assert.equal(cert.checkHost('example.org'), undefined)
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
    assert.equal(cert.checkIP('::1'), '::1')
    assert.equal(cert.checkIP('127.0.0.2'), undefined)
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])

    const validFrom = new Date(cert.validFrom).getTime()
    const validTo = new Date(cert.validTo).getTime()
    assert.ok(Math.abs(validFrom - (before - 60_000)) < TIME_SLACK_MS, `notBefore ${cert.validFrom}`)
    assert.ok(Math.abs(validTo - (before + 365 * DAY_MS)) < TIME_SLACK_MS, `notAfter ${cert.validTo}`)

    // the serial is 16 bytes and positive: 32 hex digits, the first one 4–7
    assert.match(cert.serialNumber, /^[4-7][0-9A-F]{31}$/)

    const privateKey = createPrivateKey(issued.keyPem)
    assert.match(issued.keyPem, /^-----BEGIN PRIVATE KEY-----\n/)
    assert.ok(createPublicKey(privateKey).equals(cert.publicKey))
    assert.equal(issued.identity, spkiSha256(cert))
  })

  test(`${keyType}: a CA certificate is marked as CA and signs a leaf that chains to it`, () => {
    const ca = createCertificate(keyType, { commonName: `ca ${keyType}`, isCA: true })
    const caCert = new X509Certificate(ca.certPem)
    assert.equal(caCert.ca, true)
    assert.equal(caCert.verify(caCert.publicKey), true)

    const leaf = createCertificate('ed25519', {
      commonName: 'leaf',
      extKeyUsage: ['clientAuth'],
      issuer: { certPem: ca.certPem, keyPem: ca.keyPem },
    })
    const leafCert = new X509Certificate(leaf.certPem)
    assert.equal(leafCert.ca, false)
    assert.equal(leafCert.issuer, `CN=ca ${keyType}`)
    assert.equal(leafCert.verify(caCert.publicKey), true)
    assert.equal(leafCert.verify(leafCert.publicKey), false)
    assert.equal(leafCert.checkIssued(caCert), true)
    assert.equal(leafCert.checkIssued(leafCert), false)
  })
}

test('validDays sets notAfter, and far-future dates switch to GeneralizedTime', () => {
  const now = Date.now()
  const short = new X509Certificate(createCertificate('ed25519', { commonName: 'short', validDays: 2 }).certPem)
  assert.ok(Math.abs(new Date(short.validTo).getTime() - (now + 2 * DAY_MS)) < TIME_SLACK_MS)
  const long = new X509Certificate(createCertificate('ed25519', { commonName: 'long', validDays: 365 * 40 }).certPem)
  assert.ok(new Date(long.validTo).getUTCFullYear() >= 2050)
  assert.equal(long.verify(long.publicKey), true)
})

test('a DNS name longer than 127 bytes gets a long-form length and still matches', () => {
  const longName = ['a', 'b', 'c', 'd'].map((c) => c.repeat(60)).join('.') // 243 characters
  const cert = new X509Certificate(createCertificate('ed25519', { commonName: 'long', dnsNames: [longName] }).certPem)
  assert.equal(cert.subjectAltName, `DNS:${longName}`)
  assert.equal(cert.checkHost(longName), longName)
})

test('two certificates never share a key or serial', () => {
  const a = new X509Certificate(createCertificate('ed25519', { commonName: 'same' }).certPem)
  const b = new X509Certificate(createCertificate('ed25519', { commonName: 'same' }).certPem)
  assert.notEqual(a.serialNumber, b.serialNumber)
  assert.notEqual(identityOfCertificate(a), identityOfCertificate(b))
})

test('invalid requests are rejected with a clear message', () => {
  assert.throws(() => createCertificate('ed25519', { commonName: '' }), /common name must have 1 to 64 characters/)
  assert.throws(() => createCertificate('ed25519', { commonName: 'x'.repeat(65) }), /common name/)
  assert.throws(() => createCertificate('ed25519', { commonName: 'a', dnsNames: ['bad name'] }), /invalid dns name 'bad name'/)
  assert.throws(() => createCertificate('ed25519', { commonName: 'a', dnsNames: ['-x.com'] }), /invalid dns name/)
  assert.throws(() => createCertificate('ed25519', { commonName: 'a', ipAddresses: ['1.2.3'] }), /invalid ip address '1.2.3'/)
  assert.throws(() => createCertificate('ed25519', { commonName: 'a', ipAddresses: ['fe80::1%eth0'] }), /invalid ip address/)
  assert.throws(() => createCertificate('ed25519', { commonName: 'a', validDays: 0 }), /validity must be a positive/)
  assert.throws(() => createCertificate('ed25519', { commonName: 'a', validDays: Number.NaN }), /validity/)
  assert.throws(() => createCertificate('ed25519', { commonName: 'a', validDays: 4_000_000 }), /year 9999/)
})

test('an issuer must be a CA whose key matches its certificate', () => {
  const notCa = createCertificate('ed25519', { commonName: 'leaf' })
  assert.throws(
    () => createCertificate('ed25519', { commonName: 'x', issuer: { certPem: notCa.certPem, keyPem: notCa.keyPem } }),
    /issuer certificate is not a CA/,
  )
  const ca = createCertificate('ed25519', { commonName: 'ca', isCA: true })
  const other = createCertificate('ed25519', { commonName: 'other', isCA: true })
  assert.throws(
    () => createCertificate('ed25519', { commonName: 'x', issuer: { certPem: ca.certPem, keyPem: other.keyPem } }),
    /issuer key does not match issuer certificate/,
  )
  assert.throws(
    () => createCertificate('ed25519', { commonName: 'x', issuer: { certPem: 'nope', keyPem: ca.keyPem } }),
    /issuer certificate is not a valid certificate/,
  )
  let message = ''
  try {
    createCertificate('ed25519', { commonName: 'x', issuer: { certPem: ca.certPem, keyPem: 'secret-ish-bytes' } })
  } catch (err) {
    message = err instanceof Error ? err.message : ''
  }
  assert.equal(message, 'x509/certificate: issuer key is not a valid private key')
})

const ipCases = [
  { ip: '192.0.2.1', want: 'c0000201' },
  { ip: '::1', want: '00000000000000000000000000000001' },
  { ip: '::', want: '00000000000000000000000000000000' },
  { ip: '2001:db8::1', want: '20010db8000000000000000000000001' },
  { ip: '1::', want: '00010000000000000000000000000000' },
  { ip: 'fe80::1:2', want: 'fe800000000000000000000000010002' },
  { ip: '1:2:3:4:5:6:7:8', want: '00010002000300040005000600070008' },
  { ip: '::ffff:192.0.2.1', want: '00000000000000000000ffffc0000201' },
  { ip: '64:ff9b::10.0.0.1', want: '0064ff9b0000000000000000' + '0a000001' },
]
for (const c of ipCases) {
  test(`ip address '${c.ip}' is encoded as ${c.want}`, () => assert.equal(ipAddressBytes(c.ip).toString('hex'), c.want))
}

test('a leaf issued by a CA made with openssl copies its subject and key identifier', { skip: !hasOpenssl() && 'openssl not on PATH' }, async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'openkes-x509-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  const keyFile = path.join(dir, 'ca.key')
  const certFile = path.join(dir, 'ca.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-subj', '/C=US/O=Test Org/CN=Other CA', '-days', '2',
  ], { stdio: 'ignore' })
  const caPem = await fs.readFile(certFile, 'utf8')
  const leaf = createCertificate('rsa-2048', {
    commonName: 'leaf',
    issuer: { certPem: caPem, keyPem: await fs.readFile(keyFile, 'utf8') },
  })
  const leafFile = path.join(dir, 'leaf.pem')
  await fs.writeFile(leafFile, leaf.certPem)
  const out = execFileSync('openssl', ['verify', '-CAfile', certFile, leafFile], { encoding: 'utf8' })
  assert.equal(out.trim(), `${leafFile}: OK`)
  assert.equal(new X509Certificate(leaf.certPem).issuer, new X509Certificate(caPem).subject)
})

interface Handshake {
  serverIdentity: string
  authorized: boolean
  clientSaw: string
}

// Starts a TLS server on 127.0.0.1:0, connects one client and reports what the
// server saw (peer identity, chain verification) and what the client received.
async function handshake(
  t: { after: (fn: () => unknown) => void },
  server: { cert: IssuedCertificate; ca?: string },
  client: IssuedCertificate,
): Promise<Handshake> {
  const seen: { identity: string; authorized: boolean }[] = []
  const tlsServer = tls.createServer(
    {
      key: server.cert.keyPem,
      cert: server.cert.certPem,
      requestCert: true,
      rejectUnauthorized: server.ca !== undefined,
      ...(server.ca !== undefined ? { ca: server.ca } : {}),
    },
    (socket) => {
      const peer = socket.getPeerX509Certificate()
      const identity = peer ? identityOfCertificate(peer) : ''
      seen.push({ identity, authorized: socket.authorized })
      socket.end(identity)
    },
  )
  tlsServer.listen(0, '127.0.0.1')
  await once(tlsServer, 'listening')
  t.after(() => tlsServer.close())
  const { port } = tlsServer.address() as AddressInfo

  // the client trusts the generated server certificate itself and checks its IP SAN
  const socket = tls.connect({ host: '127.0.0.1', port, key: client.keyPem, cert: client.certPem, ca: server.cert.certPem })
  t.after(() => socket.destroy())
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (received += chunk))
  await once(socket, 'end')
  const first = seen[0]
  assert.ok(first, 'the server saw no connection')
  return { serverIdentity: first.identity, authorized: first.authorized, clientSaw: received }
}

for (const serverKeyType of ['ecdsa-p256', 'ed25519'] as const) {
  test(`TLS handshake with a ${serverKeyType} server: the server sees the client's identity`, async (t) => {
    const serverCert = createCertificate(serverKeyType, {
      commonName: 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      extKeyUsage: ['serverAuth'],
    })
    const clientCert = createCertificate('ed25519', { commonName: 'client', extKeyUsage: ['clientAuth'] })
    const result = await handshake(t, { cert: serverCert }, clientCert)
    assert.equal(result.serverIdentity, clientCert.identity)
    assert.equal(result.clientSaw, clientCert.identity)
  })
}

test('TLS with chain verification accepts a client certificate issued by the configured CA', async (t) => {
  const ca = createCertificate('ecdsa-p256', { commonName: 'client ca', isCA: true })
  const serverCert = createCertificate('ecdsa-p256', { commonName: 'server', ipAddresses: ['127.0.0.1'], extKeyUsage: ['serverAuth'] })
  const clientCert = createCertificate('ed25519', {
    commonName: 'client',
    extKeyUsage: ['clientAuth'],
    issuer: { certPem: ca.certPem, keyPem: ca.keyPem },
  })
  const result = await handshake(t, { cert: serverCert, ca: ca.certPem }, clientCert)
  assert.equal(result.authorized, true)
  assert.equal(result.serverIdentity, clientCert.identity)
})

test('TLS with chain verification rejects a client certificate from another issuer', async (t) => {
  const ca = createCertificate('ecdsa-p256', { commonName: 'client ca', isCA: true })
  const serverCert = createCertificate('ecdsa-p256', { commonName: 'server', ipAddresses: ['127.0.0.1'] })
  const stranger = createCertificate('ed25519', { commonName: 'stranger', extKeyUsage: ['clientAuth'] })
  const tlsServer = tls.createServer({
    key: serverCert.keyPem,
    cert: serverCert.certPem,
    requestCert: true,
    rejectUnauthorized: true,
    ca: ca.certPem,
  })
  tlsServer.on('secureConnection', (socket) => socket.end('accepted'))
  tlsServer.listen(0, '127.0.0.1')
  await once(tlsServer, 'listening')
  t.after(() => tlsServer.close())
  const { port } = tlsServer.address() as AddressInfo
  const outcome = Promise.race([
    once(tlsServer, 'tlsClientError').then(() => 'rejected'),
    once(tlsServer, 'secureConnection').then(() => 'accepted'),
  ])
  const socket = tls.connect({ host: '127.0.0.1', port, key: stranger.keyPem, cert: stranger.certPem, ca: serverCert.certPem })
  // with TLS 1.3 the client finishes its side first and then sees the server hang up
  socket.on('error', () => {})
  t.after(() => socket.destroy())
  let received = ''
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()))
  assert.equal(await outcome, 'rejected')
  await once(socket, 'close')
  assert.equal(received, '')
})
