// The client's TLS credentials: read once from inline PEM or files and turned
// into one secure context that every connection of a client shares.
import { Buffer } from 'node:buffer'
import { readFile } from 'node:fs/promises'
import tls from 'node:tls'
import { checkTlsPair, unreadable } from '../x509/tls-pair.js'

/** TLS settings shared by every connection of a client: the credentials are parsed once. */
export interface TlsMaterial {
  readonly secureContext: tls.SecureContext
  readonly rejectUnauthorized: boolean
}

/** Where the credentials come from; file contents are read on first use. */
export interface Credentials {
  readonly cert: string | Buffer | undefined
  readonly key: string | Buffer | undefined
  readonly certFile: string | undefined
  readonly keyFile: string | undefined
  readonly keyPassword: string | undefined
  readonly ca: string | Buffer | undefined
  readonly caFile: string | undefined
  readonly insecure: boolean
}

/**
 * Reads the credential files and builds the TLS context. A bad PEM or a wrong key
 * password fails here, once, instead of on every connection attempt. Rejects with
 * the file system's error for an unreadable file, or TLS's for bad material.
 */
export async function loadTlsMaterial(c: Credentials): Promise<TlsMaterial> {
  const read = (setting: string, file: string): Promise<Buffer> =>
    readFile(file).catch((err: unknown) => Promise.reject(unreadable(setting, file, err)))
  const [cert, key, ca] = await Promise.all([
    c.certFile === undefined ? c.cert : read('client certificate', c.certFile),
    c.keyFile === undefined ? c.key : read('client key', c.keyFile),
    c.caFile === undefined ? c.ca : read('CA certificate', c.caFile),
  ])

  const options: tls.SecureContextOptions = { minVersion: 'TLSv1.2' }
  if (cert !== undefined) options.cert = cert
  if (key !== undefined) options.key = key
  if (c.keyPassword !== undefined) options.passphrase = c.keyPassword
  // Without a CA, Node verifies against its built-in roots.
  if (ca !== undefined) options.ca = ca
  try {
    // A key that isn't the certificate's would only show as a handshake the server resets.
    if (cert !== undefined && key !== undefined) {
      checkTlsPair(
        { pem: cert, file: c.certFile, setting: 'client certificate' },
        { pem: key, file: c.keyFile, setting: 'client key' },
        c.keyPassword,
        'the key password',
      )
    }
    return { secureContext: tls.createSecureContext(options), rejectUnauthorized: !c.insecure }
  } finally {
    if (Buffer.isBuffer(key) && c.keyFile !== undefined) key.fill(0)
  }
}

/** The connection options (`tls.connect`, `https.Agent`) that apply the material. */
export function tlsOptions(m: TlsMaterial): tls.ConnectionOptions {
  return { secureContext: m.secureContext, rejectUnauthorized: m.rejectUnauthorized }
}
