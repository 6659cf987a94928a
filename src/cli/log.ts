// `openkes log`: streams the server's audit or error log: `log audit|error`,
// the bare `log [--error]` of the current kes CLI, and `log trace --type` of
// the older one.
import type { AuditEvent, ErrorEvent, KesApi, LogStream } from '../client/api.js'
import { UsageError } from './command-spec.js'
import type { ClientCommand, CommandGroup, Invocation } from './command-spec.js'
import { EXIT_OK } from './io.js'
import { formatNanos, jsonLine, statusStyle } from './output.js'
import type { Painter } from './output.js'

const LOG_TYPES = ['audit', 'error'] as const
type LogType = (typeof LOG_TYPES)[number]

// Paths vary in length; padding the usual ones keeps status and latency in a column.
const PATH_COLUMN = 32

/**
 * One audit event as a line for people: time, the first 8 characters of the
 * identity, method, path, status and latency (colouring the status).
 */
export function formatAuditEvent(event: AuditEvent, p: Painter): string {
  const identity = event.request.identity.slice(0, 8).padEnd(8)
  const method = (event.request.method ?? '-').padEnd(6)
  const code = event.response.code
  const style = statusStyle(code)
  const status = style === undefined ? String(code) : p.paint(style, String(code))
  const error = event.response.error !== undefined && event.response.error !== '' ? `  ${p.paint('dim', event.response.error)}` : ''
  return `${p.paint('dim', event.time)}  ${identity}  ${method} ${event.request.path.padEnd(PATH_COLUMN)} ${status}  ${formatNanos(event.response.time)}${error}\n`
}

/** One error-log event as a line for people: its message. */
export function formatErrorEvent(event: ErrorEvent, p: Painter): string {
  return `${p.paint('red', event.message)}\n`
}

function logType(value: unknown): LogType {
  if (value === undefined) return 'audit'
  const type = LOG_TYPES.find((t) => t === value)
  if (type === undefined) throw new UsageError(`invalid log type '${String(value)}': want audit or error`)
  return type
}

// Prints events until the user interrupts (exit 0) or the stream ends or fails (an error).
async function follow<T>(inv: Invocation, open: (c: KesApi) => Promise<LogStream<T>>, format: (event: T) => string): Promise<number> {
  const client = inv.client()
  let stream: LogStream<T> | undefined
  let interrupted = false
  const stopListening = inv.ctx.onInterrupt(() => {
    interrupted = true
    stream?.close()
    // also ends a stream that is still connecting
    void client.close()
  })
  try {
    stream = await open(client)
    if (interrupted) {
      stream.close()
      return EXIT_OK
    }
    for await (const event of stream) inv.print(format(event))
  } catch (err) {
    if (!interrupted) throw err
  } finally {
    stopListening()
  }
  if (interrupted) return EXIT_OK
  throw new Error('the server closed the log stream')
}

const trace: ClientCommand = {
  name: 'trace',
  summary: 'print log events as they happen, until Ctrl-C',
  args: [],
  options: {
    type: { type: 'string', value: 'TYPE', help: 'which log: audit (every request, the default) or error', complete: LOG_TYPES },
  },
  description: `Audit events show time, identity (short), method, path, status and latency.
--json prints the server's events as they come, one JSON object per line.`,
  examples: ['openkes log trace', 'openkes log trace --type error', 'openkes log trace --json > audit.ndjson'],
  validate: (_args, options) => void logType(options['type']),
  run: (inv) => (logType(inv.options['type']) === 'audit' ? followAudit(inv) : followError(inv)),
}

function followAudit(inv: Invocation): Promise<number> {
  return follow(inv, (c) => c.auditLog(), (e) => (inv.json ? jsonLine(e) : formatAuditEvent(e, inv.out)))
}

function followError(inv: Invocation): Promise<number> {
  return follow(inv, (c) => c.errorLog(), (e) => (inv.json ? jsonLine(e) : formatErrorEvent(e, inv.out)))
}

const audit: ClientCommand = {
  name: 'audit',
  summary: 'print audit events (one per request) as they happen, until Ctrl-C',
  args: [],
  description: `Each event shows time, identity (short), method, path, status and latency.
--json prints the server's events as they come, one JSON object per line.`,
  examples: ['openkes log audit', 'openkes log audit --json > audit.ndjson'],
  run: followAudit,
}

const error: ClientCommand = {
  name: 'error',
  summary: 'print error-log messages as they happen, until Ctrl-C',
  args: [],
  description: "--json prints the server's events as they come, one JSON object per line.",
  examples: ['openkes log error', 'openkes log error --json'],
  run: followError,
}

// `kes log [--audit|--error]`: the bare word follows the audit log.
const bare: ClientCommand = {
  name: 'log',
  summary: 'follow the audit log, or with --error the error log, until Ctrl-C',
  args: [],
  options: {
    audit: { type: 'boolean', help: 'follow the audit log (the default)' },
    error: { type: 'boolean', help: 'follow the error log' },
  },
  examples: ['openkes log', 'openkes log --error', 'openkes log --json > audit.ndjson'],
  validate(_args, options) {
    if (options['audit'] === true && options['error'] === true) throw new UsageError('give --audit or --error, not both')
  },
  run: (inv) => (inv.options['error'] === true ? followError(inv) : followAudit(inv)),
}

/** `openkes log`: its subcommands, as data. */
export const logCommands: CommandGroup = {
  name: 'log',
  summary: "follow the server's audit or error log",
  commands: [audit, error, trace],
  default: bare,
  examples: ['openkes log', 'openkes log error', 'openkes log trace --type error --json'],
}

