import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { identityOfPem } from '../auth/identity.js'
import { DEFAULT_LIMITS } from '../config/limits-section.js'
import { DEFAULT_DELETED_RETENTION_MS } from '../config/validate.js'
import type { Config } from '../config/validate.js'
import { createCertificate } from '../x509/certificate.js'
import { errorCode } from './fs-errors.js'

/** The files of a development environment. */
export interface DevEnvironment {
  readonly dir: string
  readonly serverKey: string
  readonly serverCert: string
  readonly rootKey: string
  readonly rootCert: string
  readonly keysDir: string
  readonly rootIdentity: string
  /** True when this call created the certificates (first start). */
  readonly created: boolean
}

/**
 * Creates, once, what `openkes server --dev` needs in `dir`: a server
 * certificate for localhost, a root client certificate and a key directory.
 * Later calls reuse them. Both certificates are ECDSA P-256, which every TLS
 * client accepts (`openkes identity new` makes Ed25519 identities, as KES did).
 */
export async function prepareDevEnvironment(dir: string): Promise<DevEnvironment> {
  const abs = path.resolve(dir)
  const files = {
    serverKey: path.join(abs, 'server.key'),
    serverCert: path.join(abs, 'server.cert'),
    rootKey: path.join(abs, 'root.key'),
    rootCert: path.join(abs, 'root.cert'),
    keysDir: path.join(abs, 'keys'),
  }
  await mkdir(abs, { recursive: true, mode: 0o700 })
  let created = false
  if (!(await pairExists(files.serverKey, files.serverCert))) {
    const server = createCertificate('ecdsa-p256', {
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
      extKeyUsage: ['serverAuth'],
      validDays: 3650,
    })
    await writePair(files.serverKey, server.keyPem, files.serverCert, server.certPem)
    created = true
  }
  if (!(await pairExists(files.rootKey, files.rootCert))) {
    const root = createCertificate('ecdsa-p256', { commonName: 'root', extKeyUsage: ['clientAuth'], validDays: 3650 })
    await writePair(files.rootKey, root.keyPem, files.rootCert, root.certPem)
    created = true
  }
  const rootIdentity = identityOfPem(await readFile(files.rootCert))
  return { dir: abs, ...files, rootIdentity, created }
}

/** The server configuration of the development environment. */
export function devConfig(env: DevEnvironment, address: string): Config {
  return Object.freeze({
    address,
    adminIdentity: env.rootIdentity,
    tls: Object.freeze({ keyFile: env.serverKey, certFile: env.serverCert, password: undefined, caFile: undefined }),
    policies: new Map(),
    cache: Object.freeze({ expiryAnyMs: 5 * 60_000, expiryUnusedMs: 30_000 }),
    log: Object.freeze({ error: true, audit: false, auditFile: undefined }),
    keys: Object.freeze([]),
    rotation: Object.freeze([]),
    deletedKeys: Object.freeze({ retentionMs: DEFAULT_DELETED_RETENTION_MS }),
    keystore: Object.freeze({ kind: 'fs' as const, path: env.keysDir }),
    api: new Map(),
    limits: DEFAULT_LIMITS,
    sourceFile: undefined,
  })
}

async function pairExists(keyFile: string, certFile: string): Promise<boolean> {
  const [k, c] = await Promise.all([exists(keyFile), exists(certFile)])
  if (k !== c) throw new Error(`'${k ? certFile : keyFile}' is missing: remove '${k ? keyFile : certFile}' to create a new pair`)
  return k
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file)
    return true
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false
    throw err
  }
}

async function writePair(keyFile: string, keyPem: string, certFile: string, certPem: string): Promise<void> {
  await writeFile(keyFile, keyPem, { mode: 0o600, flag: 'wx' })
  await writeFile(certFile, certPem, { mode: 0o644, flag: 'wx' })
}
