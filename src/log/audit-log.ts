import { createWriteStream } from 'node:fs'
import type { WriteStream } from 'node:fs'
import { EventHub } from './event-hub.js'

/**
 * One completed request, as the audit log records it. The type has exactly
 * these fields, so nothing else (bodies, plaintexts, contexts, key bytes)
 * can end up in an audit event.
 */
export interface AuditRecord {
  readonly time: Date
  readonly method: string
  readonly path: string
  readonly identity: string
  readonly ip: string
  readonly status: number
  readonly durationNs: bigint
  /** The error message the client got, for failures. */
  readonly error: string | undefined
}

/**
 * One audit event as one nd-json line, in the seed's layout plus `method`
 * and `ip` in `request` and `error` in `response`:
 * `{"time":..,"request":{"path","identity","method","ip"},"response":{"code","time"(ns),"error"?}}`.
 */
export function formatAuditEvent(r: AuditRecord): string {
  const error = r.error === undefined ? '' : `,"error":${JSON.stringify(r.error)}`
  return (
    `{"time":"${r.time.toISOString()}","request":{"path":${JSON.stringify(r.path)},"identity":"${r.identity}",` +
    `"method":${JSON.stringify(r.method)},"ip":${JSON.stringify(r.ip)}},` +
    `"response":{"code":${r.status},"time":${r.durationNs}${error}}}\n`
  )
}

/** Where audit events go besides the trace streams. */
export interface AuditOutputs {
  /** Write every event to stdout (`log.audit: on`). */
  readonly stdout: boolean
  /** Append every event to this file (`log.audit_file`). */
  readonly file: string | undefined
}

/**
 * The audit log: exactly one event per completed request, written to the
 * live trace streams, stdout and an append-only file. SIGHUP reopens the file
 * so that log rotation works.
 */
export class AuditLog {
  readonly hub: EventHub
  readonly #onError: (message: string) => void
  readonly #onEvent: () => void
  #outputs: AuditOutputs = { stdout: false, file: undefined }
  #file: WriteStream | undefined

  constructor(opts: { hub: EventHub; onError: (message: string) => void; onEvent?: () => void }) {
    this.hub = opts.hub
    this.#onError = opts.onError
    this.#onEvent = opts.onEvent ?? (() => {})
  }

  /** Applies new outputs (start and config reload). Rejects when the file cannot be opened; the old outputs then stay. */
  async configure(outputs: AuditOutputs): Promise<void> {
    const file = outputs.file === undefined ? undefined : await openAppend(outputs.file, this.#onError)
    const old = this.#file
    this.#outputs = outputs
    this.#file = file
    old?.end()
  }

  /** Reopens the audit file (after a log rotation moved it away). */
  async reopen(): Promise<void> {
    await this.configure(this.#outputs)
  }

  /** Records one completed request. Never throws, never waits. */
  record(r: AuditRecord): void {
    this.#onEvent()
    // Every request passes here: don't build a line nobody will read.
    if (this.hub.size === 0 && !this.#outputs.stdout && this.#file === undefined) return
    const line = formatAuditEvent(r)
    this.hub.publish(line)
    if (this.#outputs.stdout) process.stdout.write(line)
    this.#file?.write(line)
  }

  /** Ends the trace streams and closes the file. */
  async close(): Promise<void> {
    this.hub.closeAll()
    const file = this.#file
    this.#file = undefined
    if (file !== undefined) await new Promise<void>((resolve) => file.end(resolve))
  }
}

function openAppend(file: string, onError: (message: string) => void): Promise<WriteStream> {
  return new Promise((resolve, reject) => {
    const stream = createWriteStream(file, { flags: 'a', mode: 0o600 })
    const failed = (err: Error): void => reject(new Error(`cannot open audit file '${file}': ${err.message}`))
    stream.once('error', failed)
    stream.once('open', () => {
      stream.off('error', failed)
      stream.on('error', (err) => onError(`audit: cannot write '${file}': ${err.message}`))
      resolve(stream)
    })
  })
}
