// Checks a TLS certificate and private key before they are used, so that a
// wrong file gives an error naming the file and the setting it came from
// instead of an OpenSSL decoder code or a connection reset by the peer.
import { X509Certificate, createPrivateKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

/** PEM text and where it came from. */
export interface PemSource {
  readonly pem: Buffer | string
  /** The file it was read from, if any. */
  readonly file: string | undefined
  /** The setting that names it (`tls.key`, `KES_CLIENT_KEY`). */
  readonly setting: string
}

/** A certificate or key that can't be used, with a message naming the file and setting. */
export class TlsMaterialError extends Error {
  /** The file system's error code (ENOENT, EACCES) when the file could not be read. */
  readonly code: string | undefined
  constructor(message: string, options?: ErrorOptions & { code?: string | undefined }) {
    super(message, options)
    this.name = 'TlsMaterialError'
    this.code = options?.code
  }
}

/** `tls.key '/etc/kes/server.key'` (or only the setting, for inline PEM). */
export function describeSource(s: { readonly file: string | undefined; readonly setting: string }): string {
  return s.file === undefined ? s.setting : `${s.setting} '${s.file}'`
}

const CERT_BEGIN = '-----BEGIN CERTIFICATE-----'
const KEY_BEGIN = /-----BEGIN [A-Z ]*PRIVATE KEY-----/

/**
 * Parses `key` (decrypting it with `passphrase` if given) and `cert`, and
 * checks that the key is the certificate's. Throws TlsMaterialError.
 */
export function checkTlsPair(cert: PemSource, key: PemSource, passphrase: string | undefined, passphraseSetting = 'password'): void {
  const certText = cert.pem.toString()
  const keyText = key.pem.toString()
  if (!KEY_BEGIN.test(keyText) && keyText.includes(CERT_BEGIN)) {
    throw new TlsMaterialError(`${describeSource(key)} holds a certificate, not a private key`)
  }
  if (!certText.includes(CERT_BEGIN) && KEY_BEGIN.test(certText)) {
    throw new TlsMaterialError(`${describeSource(cert)} holds a private key, not a certificate`)
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(passphrase === undefined ? { key: key.pem } : { key: key.pem, passphrase })
  } catch (err) {
    const code = codeOf(err)
    if (code === 'ERR_MISSING_PASSPHRASE') {
      throw new TlsMaterialError(`${describeSource(key)} is encrypted: set ${passphraseSetting}`, { cause: err })
    }
    if (passphrase !== undefined && /bad decrypt/i.test(messageOf(err))) {
      throw new TlsMaterialError(`${describeSource(key)} cannot be decrypted with ${passphraseSetting}`, { cause: err })
    }
    throw new TlsMaterialError(`${describeSource(key)} holds no usable private key (PEM)`, { cause: err })
  }
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert.pem)
  } catch (err) {
    throw new TlsMaterialError(`${describeSource(cert)} holds no usable certificate (PEM)`, { cause: err })
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new TlsMaterialError(`${describeSource(key)} is not the private key of ${describeSource(cert)}`)
  }
}

/** An error reading a file, as `tls.cert: cannot read '/etc/kes/server.cert': ENOENT`. */
export function unreadable(setting: string, file: string, err: unknown): TlsMaterialError {
  const code = codeOf(err)
  return new TlsMaterialError(`${setting}: cannot read '${file}': ${code ?? messageOf(err)}`, { cause: err, code })
}

function codeOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
