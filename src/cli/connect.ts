// How every client command (key, policy, identity assign|list|forget, log,
// metric, status) turns its command line and the environment into a
// connected client, runs, and reports errors with the shared exit codes.
import { access, constants } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { KesError } from '../api/errors.js'
import type { KesApi, KesClientOptions } from '../client/api.js'
import { KesClient } from '../client/kes-client.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, processIO } from './io.js'
import type { CommandIO } from './io.js'
import { painter, shouldColor } from './output.js'
import type { Painter } from './output.js'
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

/** A bad command line or missing configuration: reported with a hint to `--help`, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

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

/** One option of a command (the shape `parseArgs` takes, plus help text). */
export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  readonly multiple?: boolean
  /** The placeholder of a string option's value in the help (`SECONDS`). */
  readonly value?: string
  readonly help: string
}

/** The connection and output flags of every client command. */
export const CLIENT_FLAGS: Readonly<Record<string, OptionSpec>> = {
  server: { type: 'string', short: 's', multiple: true, value: 'URL', help: 'server URL; repeatable or comma-separated (env KES_SERVER)' },
  cert: { type: 'string', value: 'FILE', help: 'client certificate (env KES_CLIENT_CERT)' },
  key: { type: 'string', value: 'FILE', help: 'client private key (env KES_CLIENT_KEY)' },
  ca: { type: 'string', value: 'FILE', help: "CA certificate(s) of the server (default: the system's)" },
  insecure: { type: 'boolean', short: 'k', help: "don't verify the server certificate" },
  json: { type: 'boolean', help: 'print JSON for scripts' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
}

/** Option values after parsing. */
export type OptionValues = Readonly<Record<string, string | boolean | Array<string | boolean> | undefined>>

/** One run of a client command: its arguments, output settings and client. */
export interface Invocation {
  /** The positional arguments, their count already checked. */
  readonly args: readonly string[]
  /** Every parsed option, the command's own and the shared ones. */
  readonly options: OptionValues
  readonly json: boolean
  readonly out: Painter
  readonly ctx: ClientContext
  /** The resolved connection options (every endpoint). */
  readonly clientOptions: KesClientOptions
  /** The client for every endpoint: made on first use, closed when the command ends. */
  client(): KesApi
  /** A further client (e.g. for one endpoint), also closed when the command ends. */
  newClient(options: KesClientOptions): KesApi
  /** Writes to stdout. */
  print(text: string): void
}

/** A client command: what it takes, its help, and what it does. */
export interface CommandSpec {
  /** The words that name it (`key create`). */
  readonly name: string
  /** Other names of the last word (`derive` for `generate`). */
  readonly aliases?: readonly string[]
  readonly summary: string
  /** Positional arguments in order; optional ones end with `?` (`name`, `base64 key?`). */
  readonly args: readonly string[]
  readonly description?: string
  readonly options?: Readonly<Record<string, OptionSpec>>
  readonly examples: readonly string[]
  /**
   * Checks arguments and options before anything connects, so that a usage
   * error is reported as one whatever the credentials. Throws UsageError.
   */
  validate?(args: readonly string[], options: OptionValues): void
  /** Runs the command and resolves to its exit code; throws UsageError, KesError or a network error. */
  run(inv: Invocation): Promise<number>
}

/** The positional argument at `index`, which `runCommand` has checked is there. Throws UsageError otherwise. */
export function requiredArg(inv: Invocation, index: number): string {
  const value = inv.args[index]
  if (value === undefined) throw new UsageError('missing argument')
  return value
}

/** A command with subcommands (`openkes key ...`). */
export interface CommandGroup {
  readonly name: string
  readonly summary: string
  readonly commands: readonly CommandSpec[]
}

/** The synopsis line of a command: `openkes key create <name> [<base64 key>] [options]`. */
export function synopsis(spec: CommandSpec): string {
  const args = spec.args.map((a) => (a.endsWith('?') ? `[<${a.slice(0, -1)}>]` : `<${a}>`))
  return ['openkes', spec.name, ...args, '[options]'].join(' ')
}

/** The `--help` text of a command. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: ${synopsis(spec)}`, '']
  lines.push(spec.summary.charAt(0).toUpperCase() + spec.summary.slice(1) + '.')
  if (spec.description !== undefined) lines.push('', spec.description.trimEnd())
  if (spec.aliases !== undefined && spec.aliases.length > 0) {
    const parent = spec.name.split(' ').slice(0, -1)
    lines.push('', `Also: ${spec.aliases.map((a) => ['openkes', ...parent, a].join(' ')).join(', ')}`)
  }
  lines.push('', 'Options:', ...optionLines({ ...spec.options, ...CLIENT_FLAGS }))
  lines.push('', 'Environment:', ...ENVIRONMENT_HELP)
  lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`), '')
  return lines.join('\n')
}

const ENVIRONMENT_HELP = [
  `  KES_SERVER       server URLs, comma-separated (default ${DEFAULT_SERVER})`,
  '  KES_CLIENT_CERT  client certificate file (older name: KES_CLIENT_TLS_CERT_FILE)',
  '  KES_CLIENT_KEY   client private key file (older name: KES_CLIENT_TLS_KEY_FILE)',
  '  NO_COLOR         set to turn colours off',
]

/** The `--help` text of a command group. */
export function groupHelp(group: CommandGroup): string {
  const width = Math.max(...group.commands.map((c) => lastWord(c.name).length))
  const lines = [
    `Usage: openkes ${group.name} <command> [options]`,
    '',
    group.summary.charAt(0).toUpperCase() + group.summary.slice(1) + '.',
    '',
    'Commands:',
    ...group.commands.map((c) => {
      const aliases = c.aliases !== undefined && c.aliases.length > 0 ? ` (also: ${c.aliases.join(', ')})` : ''
      return `  ${lastWord(c.name).padEnd(width)}  ${c.summary}${aliases}`
    }),
    '',
    `Run 'openkes ${group.name} <command> --help' for a command's arguments, options and examples.`,
    '',
  ]
  return lines.join('\n')
}

function lastWord(name: string): string {
  return name.split(' ').at(-1) ?? name
}

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const entries = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short !== undefined ? `-${o.short}, ` : '    '}--${name}${o.value !== undefined ? ` ${o.value}` : ''}`
    return [flag, o.help] as const
  })
  const width = Math.max(...entries.map(([flag]) => flag.length))
  return entries.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`)
}

/**
 * Runs `openkes <group> <args>`: dispatches to the subcommand named by the
 * first argument (or an alias of it). Resolves to the exit code: 0 ok,
 * 1 API or network error, 2 usage error. Never throws.
 */
export async function runGroup(group: CommandGroup, args: readonly string[], ctx: ClientContext): Promise<number> {
  const [word, ...rest] = args
  if (word === '-h' || word === '--help' || word === 'help') {
    ctx.io.stdout(groupHelp(group))
    return EXIT_OK
  }
  const names = group.commands.map((c) => lastWord(c.name)).join(', ')
  if (word === undefined) {
    ctx.io.stderr(`openkes ${group.name}: missing command: want one of ${names}\n\n${groupHelp(group)}`)
    return EXIT_USAGE
  }
  const spec = group.commands.find((c) => lastWord(c.name) === word || (c.aliases ?? []).includes(word))
  if (spec === undefined) {
    ctx.io.stderr(`openkes ${group.name}: unknown command '${word}': want one of ${names}\n\n${groupHelp(group)}`)
    return EXIT_USAGE
  }
  return runCommand(spec, rest, ctx)
}

/**
 * Runs one client command with `args` (after its name): parses the shared
 * and its own options, checks the argument count, resolves the connection,
 * runs it and closes its clients. Resolves to the exit code; never throws.
 */
export async function runCommand(spec: CommandSpec, args: readonly string[], ctx: ClientContext): Promise<number> {
  const clients: KesApi[] = []
  try {
    const { values, positionals } = parseCommandLine(args, { ...spec.options, ...CLIENT_FLAGS })
    if (values['help'] === true) {
      ctx.io.stdout(commandHelp(spec))
      return EXIT_OK
    }
    const required = spec.args.filter((a) => !a.endsWith('?')).length
    if (positionals.length < required) throw new UsageError(`missing ${spec.args[positionals.length] ?? 'argument'}`)
    if (positionals.length > spec.args.length) {
      throw new UsageError(`unexpected argument '${positionals[spec.args.length] ?? ''}'`)
    }
    spec.validate?.(positionals, values)
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

    let main: KesApi | undefined
    const newClient = (o: KesClientOptions): KesApi => {
      const c = connect(o, ctx)
      clients.push(c)
      return c
    }
    return await spec.run({
      args: positionals,
      options: values,
      json: values['json'] === true,
      out: painter(shouldColor(ctx.stdoutIsTTY, ctx.env)),
      ctx,
      clientOptions: options,
      client: () => (main ??= newClient(options)),
      newClient,
      print: (text) => ctx.io.stdout(text),
    })
  } catch (err) {
    if (err instanceof UsageError) {
      ctx.io.stderr(`openkes ${spec.name}: ${err.message}\nRun 'openkes ${spec.name} --help' for usage.\n`)
      return EXIT_USAGE
    }
    ctx.io.stderr(`openkes: ${describeError(err)}\n`)
    return EXIT_FAILURE
  } finally {
    // a failing close must not turn a finished command into an error
    await Promise.allSettled(clients.map((c) => c.close()))
  }
}

function parseCommandLine(
  args: readonly string[],
  options: Readonly<Record<string, OptionSpec>>,
): { values: OptionValues; positionals: string[] } {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}
  for (const [name, o] of Object.entries(options)) {
    config[name] = { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.multiple === true ? { multiple: true } : {}) }
  }
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: config, strict: true, allowPositionals: true })
    return { values, positionals }
  } catch (err) {
    // parseArgs explains at length; its first sentence names the bad option
    const message = err instanceof Error ? (err.message.split('. ')[0] ?? err.message) : String(err)
    throw new UsageError(message.charAt(0).toLowerCase() + message.slice(1))
  }
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
