// How every client command (key, policy, identity assign|list|forget, log,
// metric, status) turns its connection flags and the environment into client
// options, and how it reports a failed call in one line.
import { access, constants } from 'node:fs/promises'
import path from 'node:path'
import { KesError } from '../api/errors.js'
import type { KesApi, KesClientOptions } from '../client/api.js'
import { KesClient } from '../client/kes-client.js'
import { UsageError } from './command-spec.js'
import type { OptionSpec, OptionValues } from './command-spec.js'
import { processIO } from './io.js'
import type { CommandIO } from './io.js'
import { describeFsError, errorCode } from './fs-errors.js'

/** Environment variables as a command sees them. */
export type Env = Readonly<Record<string, string | undefined>>

/** The server a client talks to when neither `--server` nor `KES_SERVER` names one (as with `kes`). */
export const DEFAULT_SERVER = 'https://127.0.0.1:7373'

/** What a client command needs from its surroundings; tests pass their own. */
export interface ClientContext {
  readonly io: CommandIO
  readonly env: Env
  /** Whether stdout is a terminal (colour, live views). */
  readonly stdoutIsTTY: boolean
  /** Whether stderr is a terminal (progress bars); false when not said. */
  readonly stderrIsTTY?: boolean
  /** Reads standard input to its end. */
  readStdin(): Promise<Buffer>
  /** Calls `listener` on Ctrl-C (SIGINT) or SIGTERM until the returned function is called. */
  onInterrupt(listener: () => void): () => void
  /** Makes the client for a set of options. */
  newClient(options: KesClientOptions): KesApi
}

/**
 * The context of the running process: its environment, stdin, signals and
 * the real client. The only place the CLI reads `process.env`.
 */
export function processContext(io: CommandIO = processIO): ClientContext {
  return {
    io,
    env: process.env,
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    async readStdin() {
      const chunks: Buffer[] = []
      for await (const chunk of process.stdin as AsyncIterable<unknown>) {
        chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
      }
      return Buffer.concat(chunks)
    },
    onInterrupt(listener) {
      process.on('SIGINT', listener)
      process.on('SIGTERM', listener)
      return () => {
        process.off('SIGINT', listener)
        process.off('SIGTERM', listener)
      }
    },
    newClient: (options) => new KesClient(options),
  }
}

export { UsageError }

/** The connection flags every client command takes, as given on the command line. */
export interface ClientFlags {
  /** `--server` values, each possibly a comma-separated list. */
  readonly servers: readonly string[]
  readonly cert?: string | undefined
  readonly key?: string | undefined
  readonly ca?: string | undefined
  readonly insecure: boolean
}

/**
 * Resolves connection flags and environment into client options. Flags win
 * over the environment: `KES_SERVER` (comma-separated list, default
 * https://127.0.0.1:7373), `KES_CLIENT_CERT` / `KES_CLIENT_KEY`, or the older
 * `KES_CLIENT_TLS_CERT_FILE` / `KES_CLIENT_TLS_KEY_FILE`. Relative file names
 * resolve against `cwd`. Throws UsageError for a missing certificate or key
 * and for a server that is not an https URL.
 */
export function clientOptions(flags: ClientFlags, env: Env, cwd: string): KesClientOptions {
  const fromFlags = flags.servers.flatMap(splitList)
  const servers = fromFlags.length > 0 ? fromFlags : splitList(env['KES_SERVER'] ?? '')
  const endpoints = (servers.length > 0 ? servers : [DEFAULT_SERVER]).map(endpointUrl)
  const cert = flags.cert ?? nonEmpty(env['KES_CLIENT_CERT']) ?? nonEmpty(env['KES_CLIENT_TLS_CERT_FILE'])
  const key = flags.key ?? nonEmpty(env['KES_CLIENT_KEY']) ?? nonEmpty(env['KES_CLIENT_TLS_KEY_FILE'])
  if (cert === undefined || cert === '') {
    throw new UsageError('no client certificate: give --cert FILE or set KES_CLIENT_CERT')
  }
  if (key === undefined || key === '') {
    throw new UsageError('no client private key: give --key FILE or set KES_CLIENT_KEY')
  }
  if (flags.ca === '') throw new UsageError('--ca needs a file name')
  return {
    endpoints: [...new Set(endpoints)],
    certFile: path.resolve(cwd, cert),
    keyFile: path.resolve(cwd, key),
    ...(flags.ca !== undefined ? { caFile: path.resolve(cwd, flags.ca) } : {}),
    ...(flags.insecure ? { insecure: true } : {}),
  }
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

// `host:port` without a scheme means https, as every KES server speaks only TLS.
function endpointUrl(server: string): string {
  const withScheme = server.includes('://') ? server : `https://${server}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new UsageError(`invalid server '${server}': want https://HOST:PORT`)
  }
  if (url.protocol !== 'https:') throw new UsageError(`invalid server '${server}': only https is supported`)
  if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '') {
    throw new UsageError(`invalid server '${server}': want https://HOST:PORT`)
  }
  return url.origin
}

/** Makes the client for resolved options (`new KesClient(options)` outside tests). */
export function connect(options: KesClientOptions, ctx: ClientContext): KesApi {
  return ctx.newClient(options)
}

// Checked up front so that a typo in a file name gets a plain message rather
// than a TLS error from deep inside the first request.
async function checkReadable(file: string | undefined, what: string, shownName: string | undefined): Promise<void> {
  if (file === undefined) return
  try {
    await access(file, constants.R_OK)
  } catch (err) {
    throw new Error(`cannot read ${what} '${shownName ?? file}': ${describeFsError(err)}`)
  }
}

/** The connection and output flags of every client command. */
export const CLIENT_FLAGS: Readonly<Record<string, OptionSpec>> = {
  server: { type: 'string', short: 's', multiple: true, value: 'URL', help: 'server URL; repeatable or comma-separated (env KES_SERVER)' },
  cert: { type: 'string', value: 'FILE', help: 'client certificate (env KES_CLIENT_CERT)', complete: 'files' },
  key: { type: 'string', value: 'FILE', help: 'client private key (env KES_CLIENT_KEY)', complete: 'files' },
  ca: { type: 'string', value: 'FILE', help: "CA certificate(s) of the server (default: the system's)", complete: 'files' },
  insecure: { type: 'boolean', short: 'k', help: "don't verify the server certificate" },
  json: { type: 'boolean', help: 'print JSON for scripts' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
}

/** The one option of every command: `-h, --help`. */
export const HELP_FLAG: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
}

/**
 * The client options of parsed connection flags (CLIENT_FLAGS) and the
 * environment, with the certificate, key and CA files checked readable.
 * Throws UsageError for missing credentials or a bad server, an Error naming
 * an unreadable file.
 */
export async function resolveConnection(values: OptionValues, ctx: ClientContext): Promise<KesClientOptions> {
  const flags: ClientFlags = {
    servers: stringList(values['server']),
    cert: optionalString(values['cert']),
    key: optionalString(values['key']),
    ca: optionalString(values['ca']),
    insecure: values['insecure'] === true,
  }
  const options = clientOptions(flags, ctx.env, ctx.io.cwd ?? process.cwd())
  await checkReadable(options.certFile, 'client certificate', flags.cert)
  await checkReadable(options.keyFile, 'client private key', flags.key)
  await checkReadable(options.caFile, 'CA certificate', flags.ca)
  return options
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

// Codes of certificate verification failures, for which -k or --ca is the usual fix.
const CERT_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

const NETWORK_MESSAGES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the server',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
}

/**
 * One line saying what went wrong, for stderr: the server's message for an
 * API error (`key does not exist`), a short description of a network or TLS
 * error. Never a stack trace.
 */
export function describeError(err: unknown): string {
  if (err instanceof KesError) return err.message
  const inner = innermost(err)
  const code = errorCode(inner)
  const where = errorAddress(inner)
  if (code !== undefined && code in NETWORK_MESSAGES) {
    return `cannot reach the server${where}: ${NETWORK_MESSAGES[code] ?? code}`
  }
  const outer = err instanceof Error && err.message !== '' ? err.message : undefined
  const message = outer ?? (inner instanceof Error && inner.message !== '' ? inner.message : String(inner))
  if (code !== undefined && CERT_VERIFY_CODES.has(code)) {
    return `${message} (give the server's CA with --ca FILE, or -k to skip verification)`
  }
  return message
}

// Node reports a failed multi-address connect as an AggregateError with an
// empty message; clients may wrap network errors with a `cause`. The useful
// part is the first concrete error.
function innermost(err: unknown): unknown {
  let current = err
  for (let depth = 0; depth < 8; depth++) {
    if (current instanceof AggregateError && current.errors.length > 0) {
      current = current.errors[0]
    } else if (errorCode(current) === undefined && current instanceof Error && current.cause !== undefined) {
      current = current.cause
    } else {
      break
    }
  }
  return current
}

function errorAddress(err: unknown): string {
  if (typeof err !== 'object' || err === null || !('address' in err) || typeof err.address !== 'string') return ''
  const port = 'port' in err && typeof err.port === 'number' ? err.port : undefined
  const host = err.address.includes(':') ? `[${err.address}]` : err.address
  return port === undefined ? ` at ${host}` : ` at ${host}:${port}`
}
