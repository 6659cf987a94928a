/**
 * The PostgreSQL key store: several OpenKES servers share one database. Every table of
 * TABLE_NAMES is one SQL table (name → bytea), the values the same bytes the fs store keeps in
 * its files. Each write is one statement that also sends NOTIFY (payload: schema, writer,
 * table, name — never bytes), so the notification is delivered exactly when the write commits;
 * every server LISTENs (pg-listener.ts) and its caches drop what others changed.
 */
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { LocalChangeFeed } from '../change-feed.js'
import { EntryExistsError, MAX_VALUE_BYTES, PING_OP, StoreError, StoreUnavailableError, checkName, compareNames, operation } from '../keystore.js'
import type { KeyStore, Table, TableName, TableVerb } from '../keystore.js'
import { UNIQUE_VIOLATION, sqlState, storeErrorOf } from './pg-errors.js'
import { CHANNEL, PgListener, encodePayload } from './pg-listener.js'
import { clientConfig, describeLocation } from './pg-options.js'
import type { PostgresSettings } from './pg-options.js'
import { ident, prepareSchema } from './pg-schema.js'

/** Options of `openPostgresStore`. */
export interface PostgresStoreOptions {
  /** Error-log lines about the database connection (lost, restored). Default: none. */
  readonly log?: (line: string) => void
}

/**
 * Connects, brings the schema up to date (see pg-schema.ts) and starts listening for changes.
 * Rejects, with a message naming the database (never the password), when any of it fails.
 */
export async function openPostgresStore(settings: PostgresSettings, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const location = describeLocation(settings)
  const pool = new pg.Pool({ ...(await clientConfig(settings, 'openkes')), max: settings.poolSize, idleTimeoutMillis: 30_000 })
  // An idle connection the server drops emits 'error' on the pool; unhandled, it would end the process.
  pool.on('error', () => {})
  const sender = randomUUID()
  const feed = new LocalChangeFeed()
  const log = opts.log ?? (() => {})
  const listener = new PgListener({
    config: await clientConfig(settings, 'openkes-listen'),
    schema: settings.schema,
    sender,
    feed,
    log,
    location,
  })
  try {
    await prepareSchema(pool, settings.schema)
    await listener.start()
  } catch (err) {
    await listener.close()
    await pool.end().catch(() => {})
    throw new Error(`cannot use ${location}: ${(err as Error).message}`, { cause: err })
  }
  return new PostgresStore(pool, listener, feed, settings.schema, sender)
}

/** A KeyStore on PostgreSQL (kind 'postgres'). */
export class PostgresStore implements KeyStore {
  readonly kind = 'postgres'
  readonly keys: PostgresTable
  readonly policies: PostgresTable
  readonly identities: PostgresTable
  readonly deleted: PostgresTable
  readonly changes: LocalChangeFeed
  readonly #pool: pg.Pool
  readonly #listener: PgListener
  #closed = false
  #closing: Promise<void> | undefined

  constructor(pool: pg.Pool, listener: PgListener, feed: LocalChangeFeed, schema: string, sender: string) {
    this.#pool = pool
    this.#listener = listener
    this.changes = feed
    const db: Db = {
      query: async (sql, params) => {
        if (this.#closed) throw new StoreUnavailableError('', 'keystore/postgres: store is closed')
        return this.#pool.query(sql, params)
      },
      schema,
      sender,
    }
    this.keys = new PostgresTable(db, 'keys')
    this.policies = new PostgresTable(db, 'policies')
    this.identities = new PostgresTable(db, 'identities')
    this.deleted = new PostgresTable(db, 'deleted')
  }

  /** Whether this server hears other servers' changes now (the LISTEN connection is up). */
  get listening(): boolean {
    return this.#listener.connected
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError(PING_OP, 'keystore/postgres: store is closed')
    try {
      await this.#pool.query('SELECT 1')
    } catch (err) {
      // Whatever stops a trivial query, the store cannot be used: unavailable.
      const e = storeErrorOf(PING_OP, err)
      throw e instanceof StoreUnavailableError ? e : new StoreUnavailableError(PING_OP, e.message)
    }
  }

  close(): Promise<void> {
    this.#closed = true
    this.#closing ??= (async () => {
      await this.#listener.close()
      await this.#pool.end().catch(() => {})
    })()
    return this.#closing
  }
}

interface Db {
  query(sql: string, params: unknown[]): Promise<pg.QueryResult>
  readonly schema: string
  readonly sender: string
}

/** One table; every write is one statement (implicitly one transaction) including its NOTIFY. */
export class PostgresTable implements Table {
  readonly #db: Db
  readonly #table: TableName
  readonly #sql: Readonly<Record<'create' | 'put' | 'get' | 'delete' | 'deleteIf' | 'list' | 'replace', string>>

  constructor(db: Db, table: TableName) {
    this.#db = db
    this.#table = table
    const t = `${ident(db.schema)}.${ident(table)}`
    // $1 name, $2 value (or expected), $3 new value; the NOTIFY payload is the last parameter.
    // The CTE's write runs whether or not a row comes back; pg_notify runs once per written
    // row, so nothing is announced when nothing changed.
    const notify = (n: number): string => `SELECT pg_notify('${CHANNEL}', $${n}) FROM w`
    this.#sql = {
      create: `WITH w AS (INSERT INTO ${t} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING 1) ${notify(3)}`,
      put:
        `WITH w AS (INSERT INTO ${t} (name, value) VALUES ($1, $2) ` +
        `ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now() RETURNING 1) ${notify(3)}`,
      get: `SELECT value FROM ${t} WHERE name = $1`,
      delete: `WITH w AS (DELETE FROM ${t} WHERE name = $1 RETURNING 1) ${notify(2)}`,
      deleteIf: `WITH w AS (DELETE FROM ${t} WHERE name = $1 AND value = $2 RETURNING 1) ${notify(3)}`,
      list: `SELECT name FROM ${t}`,
      replace: `WITH w AS (UPDATE ${t} SET value = $3, updated_at = now() WHERE name = $1 AND value = $2 RETURNING 1) ${notify(4)}`,
    }
  }

  async create(name: string, value: Uint8Array): Promise<void> {
    checkName(name)
    const bytes = this.#copyIn(value, 'create')
    let r: pg.QueryResult
    try {
      r = await this.#db.query(this.#sql.create, [name, bytes, this.#payload(name)])
    } catch (err) {
      // ON CONFLICT covers the name; a unique violation can still come from a concurrent
      // insert the conflict check could not see yet: the name is taken all the same.
      if (sqlState(err) === UNIQUE_VIOLATION) throw new EntryExistsError(`keystore/postgres: '${name}' already exists`)
      throw this.#failure('create', err)
    }
    if (r.rowCount === 0) throw new EntryExistsError(`keystore/postgres: '${name}' already exists`)
  }

  async put(name: string, value: Uint8Array): Promise<void> {
    checkName(name)
    const bytes = this.#copyIn(value, 'write')
    await this.#run('write', this.#sql.put, [name, bytes, this.#payload(name)])
  }

  async get(name: string): Promise<Buffer | undefined> {
    checkName(name)
    const r = await this.#run('read', this.#sql.get, [name])
    const row = r.rows[0] as { value?: unknown } | undefined
    if (row === undefined) return undefined
    if (!Buffer.isBuffer(row.value)) throw new StoreError(operation(this.#table, 'read'), 'keystore/postgres: value is not bytes')
    return row.value
  }

  async delete(name: string): Promise<boolean> {
    checkName(name)
    const r = await this.#run('delete', this.#sql.delete, [name, this.#payload(name)])
    return (r.rowCount ?? 0) > 0
  }

  /**
   * Compare-and-delete: removes `name` only if the stored value is byte for byte `expected`
   * (one statement, so atomic against every other write of the row); false when the name is
   * missing or holds something else.
   */
  async deleteIf(name: string, expected: Uint8Array): Promise<boolean> {
    checkName(name)
    const r = await this.#run('delete', this.#sql.deleteIf, [name, Buffer.from(expected), this.#payload(name)])
    return (r.rowCount ?? 0) > 0
  }

  async list(): Promise<string[]> {
    const r = await this.#run('list', this.#sql.list, [])
    // Sorted here, not by the database: byte order must not depend on its collation.
    return r.rows.map((row) => String((row as { name: unknown }).name)).sort(compareNames)
  }

  /**
   * Compare-and-swap: stores `value` under `name` only if the stored value is byte for byte
   * `expected`; false when the name is missing or holds something else.
   */
  async replace(name: string, expected: Uint8Array, value: Uint8Array): Promise<boolean> {
    checkName(name)
    const bytes = this.#copyIn(value, 'write')
    const r = await this.#run('write', this.#sql.replace, [name, Buffer.from(expected), bytes, this.#payload(name)])
    return (r.rowCount ?? 0) > 0
  }

  #payload(name: string): string {
    return encodePayload({ schema: this.#db.schema, sender: this.#db.sender, table: this.#table, name })
  }

  async #run(verb: TableVerb, sql: string, params: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.#db.query(sql, params)
    } catch (err) {
      throw this.#failure(verb, err)
    }
  }

  #failure(verb: TableVerb, err: unknown): StoreError {
    const op = operation(this.#table, verb)
    if (err instanceof StoreUnavailableError) return new StoreUnavailableError(op, err.message)
    return storeErrorOf(op, err)
  }

  #copyIn(value: Uint8Array, verb: TableVerb): Buffer {
    if (value.length > MAX_VALUE_BYTES) {
      throw new StoreError(operation(this.#table, verb), `keystore/postgres: value larger than ${MAX_VALUE_BYTES} bytes`)
    }
    // A copy: the caller may wipe its buffer while the query is still being sent.
    return Buffer.from(value)
  }
}
