import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash, X509Certificate } from 'node:crypto'
import { test } from 'node:test'
import { createCertificate } from '../x509/certificate.js'
import type { KeyType } from '../x509/certificate.js'
import { identityOfCertificate, identityOfPem, isIdentity } from './identity.js'
import { hasOpenssl } from '../../test/support/openssl.js'

const keyTypes: KeyType[] = ['rsa-2048', 'ecdsa-p256', 'ed25519']

// What the KES docs tell users to run:
// openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum
function opensslIdentity(certPem: string): string {
  const publicKeyPem = execFileSync('openssl', ['x509', '-pubkey', '-noout'], { input: certPem })
  const spki = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'DER'], { input: publicKeyPem })
  return createHash('sha256').update(spki).digest('hex')
}

for (const keyType of keyTypes) {
  test(`${keyType}: the identity is the SHA-256 of the DER SubjectPublicKeyInfo`, () => {
    const { certPem } = createCertificate(keyType, { commonName: keyType })
    const cert = new X509Certificate(certPem)
    const want = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex')
    assert.equal(identityOfCertificate(cert), want)
    assert.equal(identityOfPem(certPem), want)
    assert.equal(identityOfPem(Buffer.from(certPem)), want)
    assert.equal(identityOfPem(cert.raw), want)
    assert.equal(isIdentity(want), true)
  })

  test(`${keyType}: the identity matches the openssl pipeline`, { skip: !hasOpenssl() && 'openssl not on PATH' }, () => {
    const { certPem } = createCertificate(keyType, { commonName: keyType })
    assert.equal(identityOfPem(certPem), opensslIdentity(certPem))
  })
}

const opensslKeyArgs = [
  ['rsa:2048'],
  ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  ['ed25519'],
]
for (const keyArgs of opensslKeyArgs) {
  test(`a certificate made by openssl with key ${keyArgs.join(' ')} has the openssl identity`, { skip: !hasOpenssl() && 'openssl not on PATH' }, () => {
    // the key goes to stdout ahead of the certificate, so identityOfPem must skip it
    const out = execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', ...keyArgs, '-nodes', '-keyout', '-', '-subj', '/CN=openssl', '-days', '1'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
    const certPem = out.slice(out.indexOf('-----BEGIN CERTIFICATE-----'))
    assert.equal(identityOfPem(out), opensslIdentity(certPem))
  })
}

test('the identity comes from the first certificate, skipping a key block before it', () => {
  const first = createCertificate('ed25519', { commonName: 'first' })
  const second = createCertificate('ed25519', { commonName: 'second' })
  assert.equal(identityOfPem(first.certPem + second.certPem), first.identity)
  assert.equal(identityOfPem(second.certPem + first.certPem), second.identity)
  assert.equal(identityOfPem(first.keyPem + first.certPem), first.identity)
})

test('input that is not a certificate throws without echoing the input', () => {
  const { keyPem } = createCertificate('ed25519', { commonName: 'k' })
  const keyBody = keyPem.split('\n')[1] ?? ''
  assert.ok(keyBody.length > 20)
  for (const input of [keyPem, 'hello', '', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])]) {
    assert.throws(
      () => identityOfPem(input),
      (err: unknown) => {
        assert.ok(err instanceof Error)
        assert.equal(err.message, 'auth/identity: input is not an X.509 certificate')
        assert.ok(!err.message.includes(keyBody))
        return true
      },
    )
  }
})

const identityShapes = [
  { s: '93cce9ac64dadc74b20b334b73e09dcbde4c378742b64a6a09471748e43807fd', want: true },
  { s: '0'.repeat(64), want: true },
  { s: '93CCE9AC64DADC74B20B334B73E09DCBDE4C378742B64A6A09471748E43807FD', want: false },
  { s: '0'.repeat(63), want: false },
  { s: '0'.repeat(65), want: false },
  { s: 'g'.repeat(64), want: false },
  { s: ' ' + '0'.repeat(63), want: false },
  { s: '0'.repeat(64) + '\n', want: false },
  { s: '', want: false },
]
for (const c of identityShapes) {
  test(`isIdentity(${JSON.stringify(c.s)}) → ${c.want}`, () => assert.equal(isIdentity(c.s), c.want))
}
