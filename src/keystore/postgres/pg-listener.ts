/**
 * The LISTEN side of the PostgreSQL change feed: one dedicated connection per server that
 * hears the NOTIFY of every committed write and publishes it into the store's feed. It
 * reconnects by itself (with backoff) and, once back, publishes RESET: what happened while it
 * was away is unknown. A heartbeat finds a connection that died silently.
 */
import pg from 'pg'
import type { ClientConfig, Notification } from 'pg'
import { RESET, changed } from '../change-feed.js'
import type { LocalChangeFeed } from '../change-feed.js'
import { TABLE_NAMES } from '../keystore.js'
import type { TableName } from '../keystore.js'
import { describeError } from '../../log/describe-error.js'

/** The NOTIFY channel of every OpenKES store; the payload names the schema. */
export const CHANNEL = 'openkes_changes'

/** What a NOTIFY carries: where, who, which entry. Never a value. */
export interface ChangePayload {
  /** The schema, so that stores of different schemas in one database ignore each other. */
  readonly schema: string
  /** The writing store instance, so that a server ignores its own writes. */
  readonly sender: string
  readonly table: TableName
  readonly name: string
}

export function encodePayload(p: ChangePayload): string {
  return JSON.stringify({ schema: p.schema, sender: p.sender, table: p.table, name: p.name })
}

/** Parses a payload; undefined when it is not one of ours. */
export function decodePayload(text: string | undefined): ChangePayload | undefined {
  if (text === undefined) return undefined
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const { schema, sender, table, name } = v as Record<string, unknown>
  if (typeof schema !== 'string' || typeof sender !== 'string' || typeof name !== 'string') return undefined
  if (typeof table !== 'string' || !(TABLE_NAMES as readonly string[]).includes(table)) return undefined
  return { schema, sender, table: table as TableName, name }
}

const MIN_RETRY_MS = 100
const MAX_RETRY_MS = 2_000
const HEARTBEAT_MS = 5_000

export interface ListenerOptions {
  readonly config: ClientConfig
  readonly schema: string
  readonly sender: string
  readonly feed: LocalChangeFeed
  /** Error-log lines: connection lost, restored. */
  readonly log: (line: string) => void
  /** Where the database is, for log lines. */
  readonly location: string
}

export class PgListener {
  readonly #opts: ListenerOptions
  #client: pg.Client | undefined
  #closed = false
  #connected = false
  #retryMs = MIN_RETRY_MS
  #retryTimer: NodeJS.Timeout | undefined
  #heartbeat: NodeJS.Timeout | undefined
  #lostAt: string | undefined

  constructor(opts: ListenerOptions) {
    this.#opts = opts
  }

  /** Whether the LISTEN connection is up now. */
  get connected(): boolean {
    return this.#connected
  }

  /** Connects the first time; rejects when that fails (the store does not open then). */
  async start(): Promise<void> {
    await this.#connect()
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retryTimer)
    clearInterval(this.#heartbeat)
    const client = this.#client
    this.#client = undefined
    this.#connected = false
    if (client !== undefined) await endWithin(client, 2_000)
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#opts.config)
    // An error event without a listener would crash the process.
    client.on('error', (err) => this.#lost(client, err))
    client.on('end', () => this.#lost(client, new Error('connection ended')))
    client.on('notification', (msg) => this.#heard(msg))
    this.#client = client
    try {
      await client.connect()
      await client.query(`LISTEN ${CHANNEL}`)
    } catch (err) {
      if (this.#client === client) this.#client = undefined
      await endWithin(client, 1_000)
      throw err
    }
    if (this.#closed) {
      await endWithin(client, 1_000)
      return
    }
    this.#connected = true
    this.#retryMs = MIN_RETRY_MS
  }

  #heard(msg: Notification): void {
    if (msg.channel !== CHANNEL) return
    const p = decodePayload(msg.payload)
    if (p === undefined) {
      // Someone else's message on our channel, or a newer format: play safe.
      this.#opts.feed.publish(RESET)
      return
    }
    if (p.schema !== this.#opts.schema || p.sender === this.#opts.sender) return
    this.#opts.feed.publish(changed(p.table, p.name))
  }

  #lost(client: pg.Client, err: Error): void {
    if (this.#client !== client || this.#closed) return
    this.#client = undefined
    this.#connected = false
    this.#lostAt ??= describeError(err)
    this.#opts.log(`keystore: lost the change-feed connection to ${this.#opts.location}: ${describeError(err)}; reconnecting`)
    void endWithin(client, 1_000)
    this.#scheduleRetry()
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== undefined) return
    const delay = this.#retryMs
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      void this.#reconnect()
    }, delay)
    this.#retryTimer.unref()
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return
    try {
      await this.#connect()
    } catch {
      this.#scheduleRetry()
      return
    }
    if (!this.#connected) return
    this.#lostAt = undefined
    this.#opts.log(`keystore: change-feed connection to ${this.#opts.location} restored; caches dropped`)
    // Writes made while we were away were not heard: every cache starts over.
    this.#opts.feed.publish(RESET)
  }

  #beat(): void {
    const client = this.#client
    if (client === undefined || !this.#connected) return
    client.query('SELECT 1').catch((err: unknown) => {
      this.#lost(client, err instanceof Error ? err : new Error(String(err)))
    })
  }
}

/** Ends a client, giving up after `ms` (a dead server may never answer the goodbye). */
async function endWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms)
    timer.unref()
  })
  await Promise.race([client.end().catch(() => {}), timeout])
  clearTimeout(timer)
}
