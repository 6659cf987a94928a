import { createHash, X509Certificate } from 'node:crypto'

const IDENTITY_PATTERN = /^[0-9a-f]{64}$/

/**
 * Identity: lowercase hex SHA-256 of the certificate's DER SubjectPublicKeyInfo
 * (docs/api.md, "Connecting: TLS and identities"), as KES computes it. Works for RSA, ECDSA and Ed25519 keys.
 */
export function identityOfCertificate(cert: X509Certificate): string {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('hex')
}

/**
 * Identity of the first certificate in a PEM text (a DER buffer works too);
 * other PEM blocks before it, such as a private key, are skipped.
 * Throws an Error `auth/identity: input is not an X.509 certificate` when no
 * certificate can be parsed; the message never quotes the input, which may
 * hold a private key.
 */
export function identityOfPem(pem: string | Buffer): string {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(pem)
  } catch (cause) {
    throw new Error('auth/identity: input is not an X.509 certificate', { cause })
  }
  return identityOfCertificate(cert)
}

/** Whether `s` has the shape of an identity: exactly 64 lowercase hex characters. */
export function isIdentity(s: string): boolean {
  return IDENTITY_PATTERN.test(s)
}
