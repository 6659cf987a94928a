/**
 * The server manages its own schema: on start it creates what is missing and applies the
 * numbered migrations not yet recorded in `<schema>.schema_migrations`, all in one transaction
 * under an advisory lock, so servers starting at once against an empty database take turns
 * (the second finds everything done). A database migrated by a newer OpenKES is refused.
 */
import type { Pool, PoolClient } from 'pg'
import { TABLE_NAMES } from '../keystore.js'

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** A schema change: applied once, in order, recorded with its version. */
export interface Migration {
  readonly version: number
  readonly description: string
  /** The statements, for the schema `q` (already quoted). */
  statements(q: string): readonly string[]
}

/** One SQL table per store table: name → value, the value exactly the bytes the fs store keeps in a file. */
export function createTableSql(q: string, table: string): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${q}.${ident(table)} (` +
    'name text COLLATE "C" PRIMARY KEY, ' +
    'value bytea NOT NULL, ' +
    'updated_at timestamptz NOT NULL DEFAULT now())'
  )
}

/** Every migration, in order. Append only: a released migration never changes. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'tables keys, policies and identities',
    statements: (q) => ['keys', 'policies', 'identities'].map((t) => createTableSql(q, t)),
  },
]

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0)

// pg_advisory_xact_lock(int4, int4): a fixed class ('OKES') and the hash of the schema name,
// so servers of different schemas in one database don't wait for each other.
const LOCK_CLASS = 0x4f4b4553

/** A schema OpenKES cannot use; the message says why. */
export class SchemaError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SchemaError'
  }
}

/**
 * Brings `schema` up to date; resolves the versions it applied (empty when there was nothing
 * to do). Throws SchemaError for a database OpenKES must not use, or the database's error.
 */
export async function prepareSchema(pool: Pool, schema: string): Promise<number[]> {
  const client = await pool.connect()
  let broken = false
  try {
    await client.query('BEGIN')
    try {
      const applied = await migrate(client, schema)
      await client.query('COMMIT')
      return applied
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true
      })
      throw err
    }
  } catch (err) {
    broken = true
    throw err
  } finally {
    client.release(broken)
  }
}

async function migrate(client: PoolClient, schema: string): Promise<number[]> {
  const encoding = (await client.query<{ server_encoding: string }>('SHOW server_encoding')).rows[0]?.server_encoding
  if (encoding !== 'UTF8') {
    throw new SchemaError(`the database's encoding is ${encoding ?? 'unknown'}; OpenKES needs a UTF8 database (names are UTF-8)`)
  }
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, schema])
  const q = ident(schema)
  // Existence is checked first, so that a database user without CREATE rights can use a
  // schema and tables a DBA made for it.
  const hasSchema = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
  if (hasSchema.rowCount === 0) await client.query(`CREATE SCHEMA ${q}`)
  if (!(await exists(client, schema, 'schema_migrations'))) {
    await client.query(
      `CREATE TABLE ${q}.schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
  }
  const done = new Set((await client.query<{ version: number }>(`SELECT version FROM ${q}.schema_migrations`)).rows.map((r) => r.version))
  const newest = Math.max(0, ...done)
  if (newest > SCHEMA_VERSION) {
    throw new SchemaError(
      `schema ${schema} is at version ${newest}, newer than this OpenKES knows (${SCHEMA_VERSION}); upgrade OpenKES on this server`,
    )
  }
  const applied: number[] = []
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue
    for (const sql of m.statements(q)) await client.query(sql)
    await client.query(`INSERT INTO ${q}.schema_migrations (version, description) VALUES ($1, $2)`, [m.version, m.description])
    applied.push(m.version)
  }
  // A table added to TABLE_NAMES needs no migration: it is created here when missing.
  for (const table of TABLE_NAMES) {
    if (!(await exists(client, schema, table))) await client.query(createTableSql(q, table))
  }
  return applied
}

async function exists(client: PoolClient, schema: string, table: string): Promise<boolean> {
  const r = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${ident(schema)}.${ident(table)}`])
  return r.rows[0]?.t != null
}
