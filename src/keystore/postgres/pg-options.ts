/**
 * The settings of a PostgreSQL key store (config `keystore.postgres`) and how they become
 * node-postgres connection options, including TLS with libpq's `sslmode` meanings.
 */
import { readFile } from 'node:fs/promises'
import type { ConnectionOptions } from 'node:tls'
import type { ClientConfig } from 'pg'

/** libpq's sslmode values OpenKES supports ('allow' and 'prefer' fall back to plaintext silently, so they are not offered). */
export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full'

export const SSL_MODES: readonly SslMode[] = ['disable', 'require', 'verify-ca', 'verify-full']

/** A validated `keystore.postgres` section. File paths are absolute. */
export interface PostgresSettings {
  readonly kind: 'postgres'
  readonly host: string
  readonly port: number
  readonly user: string
  /** Inline (usually `${VAR}`-expanded) password. Not enumerable, so printing the config never shows it. */
  readonly password?: string | undefined
  /** A file holding the password (its first line); read at every new connection, so it can be rotated. */
  readonly passwordFile: string | undefined
  readonly database: string
  /** The PostgreSQL schema holding OpenKES's tables. */
  readonly schema: string
  /** Connections in the pool (besides the one LISTEN connection). */
  readonly poolSize: number
  readonly connectTimeoutMs: number
  /** A statement running longer than this is cancelled (and counts as "unreachable"). */
  readonly queryTimeoutMs: number
  readonly sslMode: SslMode
  /** CA certificates (PEM) the server certificate must chain to; the system's CAs when absent. */
  readonly sslRootCert: string | undefined
  /** Client certificate and key (PEM) for certificate authentication. */
  readonly sslCert: string | undefined
  readonly sslKey: string | undefined
}

/** Where a store is, for messages: `postgres://user@host:port/database (schema openkes)` — never a password. */
export function describeLocation(s: PostgresSettings): string {
  const host = s.host.includes(':') ? `[${s.host}]` : s.host
  return `postgres://${encodeURIComponent(s.user)}@${host}:${s.port}/${encodeURIComponent(s.database)} (schema ${s.schema})`
}

/** Reads the password file: its first line, without the line break. */
async function readPasswordFile(file: string): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new Error(`keystore.postgres.password_file: cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  return text.split(/\r?\n/, 1)[0] ?? ''
}

/**
 * The TLS options for node-postgres, by libpq's sslmode rules:
 * disable = plaintext; require = encrypted, the certificate unchecked — unless sslrootcert is
 * set, which makes it verify-ca (as libpq does); verify-ca = the chain is checked, not the
 * name; verify-full = chain and host name.
 */
export async function tlsOptions(s: PostgresSettings): Promise<false | ConnectionOptions> {
  if (s.sslMode === 'disable') return false
  const read = async (setting: string, file: string | undefined): Promise<Buffer | undefined> => {
    if (file === undefined) return undefined
    try {
      return await readFile(file)
    } catch (err) {
      throw new Error(`keystore.postgres.${setting}: cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
  }
  const [ca, cert, key] = await Promise.all([read('sslrootcert', s.sslRootCert), read('sslcert', s.sslCert), read('sslkey', s.sslKey)])
  const clientAuth = { ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) }
  const mode = s.sslMode === 'require' && ca !== undefined ? 'verify-ca' : s.sslMode
  switch (mode) {
    case 'require':
      return { rejectUnauthorized: false, ...clientAuth }
    case 'verify-ca':
      // The chain is verified; any name is accepted.
      return { rejectUnauthorized: true, ...(ca !== undefined ? { ca } : {}), checkServerIdentity: () => undefined, ...clientAuth }
    default:
      return { rejectUnauthorized: true, ...(ca !== undefined ? { ca } : {}), servername: isIp(s.host) ? undefined : s.host, ...clientAuth }
  }
}

function isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':')
}

/** node-postgres client options for these settings (TLS material read once, the password file at every connect). */
export async function clientConfig(s: PostgresSettings, applicationName: string): Promise<ClientConfig> {
  const ssl = await tlsOptions(s)
  const passwordFile = s.passwordFile
  const password = passwordFile !== undefined ? () => readPasswordFile(passwordFile) : s.password
  return {
    host: s.host,
    port: s.port,
    user: s.user,
    database: s.database,
    ...(password !== undefined ? { password } : {}),
    ssl,
    application_name: applicationName,
    connectionTimeoutMillis: s.connectTimeoutMs,
    statement_timeout: s.queryTimeoutMs,
    // Client side too: a server that stops answering mid-query must not hold a request forever.
    query_timeout: s.queryTimeoutMs + 1000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  }
}
