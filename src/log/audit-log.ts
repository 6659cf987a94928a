import { readFile } from 'node:fs/promises'
import { AuditChain } from './audit-chain.js'
import { AuditFile, describeWriteError, readChainTail } from './audit-file.js'
import type { AuditFileEvents } from './audit-file.js'
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
  /** Refuse requests while the file can't be written (`log.audit_fail_closed`). */
  readonly failClosed?: boolean
  /** A file holding the key that MACs the file's hash chain (`log.audit_chain_key`). */
  readonly chainKeyFile?: string | undefined
}

/** The shortest chain key accepted, in bytes (as the text of the key file, trimmed). */
export const MIN_CHAIN_KEY_BYTES = 32

/**
 * Reads a chain key file: its content with surrounding white space removed (so
 * `openssl rand -base64 32 > audit-chain.key` makes one), at least MIN_CHAIN_KEY_BYTES long.
 * The same function reads the key for `openkes audit verify --key`.
 */
export async function readChainKey(file: string): Promise<Buffer> {
  let text: Buffer
  try {
    text = await readFile(file)
  } catch (err) {
    throw new Error(`cannot read audit chain key '${file}': ${describeWriteError(err)}`, { cause: err })
  }
  const key = Buffer.from(text.toString('latin1').trim(), 'latin1')
  text.fill(0)
  if (key.length < MIN_CHAIN_KEY_BYTES) {
    throw new Error(`audit chain key '${file}' is too short: it needs at least ${MIN_CHAIN_KEY_BYTES} bytes (e.g. openssl rand -base64 32)`)
  }
  return key
}

/** What the audit log tells about itself (metrics). */
export interface AuditLogEvents {
  /** Called once per completed request. */
  onEvent?: () => void
  /** `n` events could not be written to the audit file. */
  onLost?: (n: number) => void
}

// While the audit file stays unwritable, a reminder at most this often.
const STILL_FAILING_EVERY_MS = 10_000

/**
 * The audit log: exactly one event per completed request, written to the
 * live trace streams, stdout and an append-only file. SIGHUP reopens the file
 * so that log rotation works. A file that can't be written (a full disk) is
 * retried with every event; every event it loses is counted, and the error
 * log says so when it starts failing, every 10 s while it fails, and when it
 * works again.
 */
export class AuditLog {
  readonly hub: EventHub
  readonly #onError: (message: string) => void
  readonly #onEvent: () => void
  readonly #onLost: (n: number) => void
  #outputs: AuditOutputs = { stdout: false, file: undefined }
  #file: AuditFile | undefined
  // The audit file's hash chain; it outlives the files (SIGHUP rotation goes on with it).
  #chain: AuditChain | undefined
  #lostSinceFailing = 0
  #lastReminderMs = 0

  constructor(opts: { hub: EventHub; onError: (message: string) => void } & AuditLogEvents) {
    this.hub = opts.hub
    this.#onError = opts.onError
    this.#onEvent = opts.onEvent ?? (() => {})
    this.#onLost = opts.onLost ?? (() => {})
  }

  /** Applies new outputs (start and config reload). Rejects when the file cannot be opened; the old outputs then stay. */
  async configure(outputs: AuditOutputs): Promise<void> {
    let file: AuditFile | undefined
    let release: (closed: Promise<void>) => void = () => {}
    if (outputs.file !== undefined) {
      const key = outputs.chainKeyFile === undefined ? undefined : await readChainKey(outputs.chainKeyFile)
      let chain = this.#chain
      if (chain === undefined) {
        // The first file: a restarted server goes on with the chain the file ends with.
        const tail = await readChainTail(outputs.file)
        chain = new AuditChain(tail.head, key)
        if (tail.tornCut) {
          chain.lose(1)
          this.#onError(`audit: '${outputs.file}' ended in a line cut off (a crash?); removed it, the chain records it as lost`)
        }
      }
      // The new file writes once the old one has written its last event, so it links to it.
      const after = new Promise<void>((resolve) => {
        release = (closed) => void closed.then(resolve, resolve)
      })
      file = await AuditFile.open(outputs.file, this.#fileEvents(outputs.file), { chain, after })
      chain.useKey(key)
      this.#chain = chain
    }
    const old = this.#file
    this.#outputs = outputs
    this.#file = file
    this.#lostSinceFailing = 0
    const closed = old?.close() ?? Promise.resolve()
    release(closed)
  }

  /** Reopens the audit file (after a log rotation moved it away). */
  async reopen(): Promise<void> {
    await this.configure(this.#outputs)
  }

  /** False while the audit file can't be written (no file counts as healthy). */
  get fileHealthy(): boolean {
    return this.#file?.healthy ?? true
  }

  /** True while requests must be refused: `log.audit_fail_closed` is on and the file can't be written. */
  get refusing(): boolean {
    return this.#outputs.failClosed === true && !this.fileHealthy
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

  /**
   * Writes one event already formatted by another process (a worker of `--workers N`, whose
   * primary is the one writer of the file and stdout). Not counted here: the worker counted it.
   */
  recordLine(line: string): void {
    this.hub.publish(line)
    if (this.#outputs.stdout) process.stdout.write(line)
    this.#file?.write(line)
  }

  /** Ends the trace streams and closes the file. */
  async close(): Promise<void> {
    this.hub.closeAll()
    const file = this.#file
    this.#file = undefined
    await file?.close()
  }

  #fileEvents(file: string): AuditFileEvents {
    return {
      onLost: (n) => {
        this.#onLost(n)
        this.#lostSinceFailing += n
        const now = Date.now()
        if (now - this.#lastReminderMs >= STILL_FAILING_EVERY_MS && this.#file?.path === file && !this.fileHealthy) {
          this.#lastReminderMs = now
          this.#onError(`audit: cannot write '${file}'; ${this.#lostSinceFailing} events lost so far`)
        }
      },
      onHealthChange: (healthy, err) => {
        if (healthy) {
          this.#onError(`audit: writing '${file}' again; ${this.#lostSinceFailing} events were lost`)
          this.#lostSinceFailing = 0
        } else {
          this.#lastReminderMs = Date.now()
          this.#onError(`audit: cannot write '${file}': ${describeWriteError(err)}; events are lost (and counted) until it works again`)
        }
      },
    }
  }
}
