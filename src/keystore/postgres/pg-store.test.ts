import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { TestPostgres } from '../../../test/support/postgres.js'
import { within } from '../../../test/support/within.js'
import type { ChangeEvent } from '../change-feed.js'
import { StoreError, StoreUnavailableError, TABLE_NAMES } from '../keystore.js'
import { testStoreConformance } from '../store-conformance.js'
import { isUnreachable } from './pg-errors.js'
import { decodePayload, encodePayload } from './pg-listener.js'
import { SCHEMA_VERSION, prepareSchema } from './pg-schema.js'
import { openPostgresStore } from './pg-store.js'
import type { PostgresStore } from './pg-store.js'
import pg from 'pg'

const db = await TestPostgres.start()
after(() => db.stop())

testStoreConformance('postgres', async (t) => {
  const store = await openPostgresStore(db.settings(db.newSchema()))
  t.after(() => store.close())
  return store
})

const bytes = (s: string): Buffer => Buffer.from(s)

/** Resolves the next event `store` hears that `match` accepts (fails after 5 s). */
function nextEvent(store: PostgresStore, match: (e: ChangeEvent) => boolean): Promise<ChangeEvent> {
  return within(
    new Promise<ChangeEvent>((resolve) => {
      const off = store.changes.subscribe((e) => {
        if (!match(e)) return
        off()
        resolve(e)
      })
    }),
    10_000,
    'change event',
  )
}

describe('postgres store', () => {
  let a: PostgresStore
  let b: PostgresStore
  let schema: string
  before(async () => {
    schema = db.newSchema()
    ;[a, b] = await Promise.all([openPostgresStore(db.settings(schema)), openPostgresStore(db.settings(schema))])
  })
  after(async () => {
    await a.close()
    await b.close()
  })

  test('two stores on one schema see each other: create, replace and delete are announced (table and name only)', async () => {
    const seen: ChangeEvent[] = []
    const offA = a.changes.subscribe((e) => seen.push(e))
    const heard = nextEvent(b, (e) => e.kind === 'change' && e.name === 'shared')
    await a.keys.create('shared', bytes('v1'))
    assert.deepEqual(await heard, { kind: 'change', table: 'keys', name: 'shared' })
    assert.deepEqual(await b.keys.get('shared'), bytes('v1'))

    const replaced = nextEvent(b, (e) => e.kind === 'change' && e.name === 'shared')
    assert.equal(await b.keys.replace('shared', bytes('wrong'), bytes('v2')), false)
    assert.equal(await a.keys.replace('shared', bytes('v1'), bytes('v2')), true)
    await replaced
    assert.deepEqual(await b.keys.get('shared'), bytes('v2'))
    assert.equal(await a.keys.replace('missing', bytes('v1'), bytes('v2')), false)

    const deleted = nextEvent(b, (e) => e.kind === 'change' && e.table === 'policies')
    await a.policies.put('p', bytes('{}'))
    assert.deepEqual(await deleted, { kind: 'change', table: 'policies', name: 'p' })
    // A store never hears its own writes: the writer's cache is updated by the write itself.
    offA()
    assert.deepEqual(seen, [])
  })

  test('a failed create announces nothing', async () => {
    // Everything b hears from here on: the first create's announcement (unless the LISTEN
    // connection was re-made under load, which loses it and emits a reset instead), never one
    // of the failed create. Notifications arrive in commit order, so once the marker is heard,
    // any announcement of the failed create would have been heard too.
    const events: ChangeEvent[] = []
    const off = b.changes.subscribe((e) => events.push(e))
    await a.keys.create('once', bytes('1'))
    await assert.rejects(a.keys.create('once', bytes('2')))
    const marker = nextEvent(b, (e) => e.kind === 'change' && e.name === 'marker')
    await a.keys.put('marker', bytes('m'))
    await marker
    off()
    const once = events.filter((e) => e.kind === 'change' && e.name === 'once').length
    assert.ok(once === 1 || (once === 0 && events.some((e) => e.kind === 'reset')), `${once} announcements of 'once'`)
  })

  test('the LISTEN connection killed on its own: it reconnects and emits reset', async () => {
    const reset = nextEvent(b, (e) => e.kind === 'reset')
    const killed = await db.admin(async (c) => {
      const r = await c.query(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'openkes-listen' AND pid <> pg_backend_pid()",
      )
      return r.rowCount
    })
    assert.ok((killed ?? 0) >= 2, 'both stores had a LISTEN connection')
    assert.deepEqual(await reset, { kind: 'reset' })
    const heard = nextEvent(b, (e) => e.kind === 'change' && e.name === 'after-reconnect')
    await a.keys.create('after-reconnect', bytes('x'))
    await heard
  })

  test('stored values are the exact bytes (bytea), listed in UTF-8 byte order', async () => {
    const value = Buffer.from([0, 1, 2, 255, 254, 0])
    await a.identities.put('ü-id', value)
    const raw = await db.admin((c) => c.query(`SELECT value FROM "${schema}".identities WHERE name = $1`, ['ü-id']))
    assert.deepEqual(raw.rows[0]?.value, value)
  })

  test('deleteIf removes only the expected bytes, is announced only when it removed, and races replace on another store cleanly', async () => {
    await a.deleted.create('d1', bytes('v1'))
    assert.equal(await b.deleted.deleteIf('d1', bytes('other')), false)
    assert.equal(await b.deleted.deleteIf('missing', bytes('v1')), false)
    assert.deepEqual(await a.deleted.get('d1'), bytes('v1'))
    const heard = nextEvent(a, (e) => e.kind === 'change' && e.name === 'd1')
    assert.equal(await b.deleted.deleteIf('d1', bytes('v1')), true)
    assert.deepEqual(await heard, { kind: 'change', table: 'deleted', name: 'd1' })
    assert.equal(await a.deleted.get('d1'), undefined)
    assert.equal(await a.deleted.deleteIf('d1', bytes('v1')), false)

    // A rotation (replace) and a delete of what was read, on two stores at once: exactly one wins.
    for (let i = 0; i < 20; i++) {
      const name = `race-${i}`
      await a.keys.create(name, bytes('old'))
      const [replaced, deleted] = await Promise.all([a.keys.replace(name, bytes('old'), bytes('new')), b.keys.deleteIf(name, bytes('old'))])
      assert.equal(Number(replaced) + Number(deleted), 1, `${name}: replaced ${replaced}, deleted ${deleted}`)
      assert.deepEqual(await a.keys.get(name), replaced ? bytes('new') : undefined)
    }
  })
})

describe('postgres schema', () => {
  test('two servers migrating an empty schema at once: one applies, the other finds it done', async () => {
    const schema = db.newSchema('race')
    const pools = [0, 1, 2].map(() => new pg.Pool({ ...db.settings(schema), password: db.password, max: 1 }))
    try {
      const applied = await Promise.all(pools.map((p) => prepareSchema(p, schema)))
      assert.deepEqual(applied.map((a) => a.length).sort(), [0, 0, SCHEMA_VERSION])
      const rows = await db.admin((c) => c.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`))
      assert.deepEqual(rows.rows.map((r: { version: number }) => r.version), Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1))
      const tables = await db.admin((c) => c.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [schema]))
      assert.deepEqual(tables.rows.map((r: { table_name: string }) => r.table_name), [...TABLE_NAMES, 'schema_migrations'].sort())
    } finally {
      await Promise.all(pools.map((p) => p.end()))
    }
  })

  test('a schema migrated by a newer OpenKES is refused, naming both versions', async () => {
    const schema = db.newSchema('newer')
    const store = await openPostgresStore(db.settings(schema))
    await store.close()
    await db.admin((c) => c.query(`INSERT INTO "${schema}".schema_migrations (version, description) VALUES (999, 'from the future')`))
    await assert.rejects(openPostgresStore(db.settings(schema)), /version 999, newer than this OpenKES knows \(1\)/)
  })

  test('a wrong password or an unreachable server: open fails naming the database, never the password', async () => {
    const wrong = { ...db.settings(db.newSchema()), password: 'not-the-password' }
    await assert.rejects(openPostgresStore(wrong), (err: Error) => {
      assert.match(err.message, /cannot use postgres:\/\/openkes_test@127\.0\.0\.1:\d+\/postgres/)
      assert.ok(!err.message.includes('not-the-password'))
      return true
    })
    const closedPort = { ...db.settings(db.newSchema()), port: 1 }
    await assert.rejects(openPostgresStore(closedPort), /cannot use postgres:\/\//)
  })
})

describe('postgres errors', () => {
  const table: Array<[string, unknown, boolean]> = [
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), true],
    ['admin shutdown', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), true],
    ['connection exception class 08', Object.assign(new Error('x'), { code: '08006' }), true],
    ['terminated', new Error('Connection terminated unexpectedly'), true],
    ['connect timeout', new Error('timeout exceeded when trying to connect'), true],
    ['statement timeout', Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }), true],
    ['wrong password', Object.assign(new Error('password authentication failed'), { code: '28P01' }), false],
    ['missing table', Object.assign(new Error('relation does not exist'), { code: '42P01' }), false],
    ['not an error', 'boom', false],
  ]
  for (const [label, err, unreachable] of table) {
    test(`${label} → ${unreachable ? 'unavailable (503)' : 'store error (502)'}`, () => {
      assert.equal(isUnreachable(err), unreachable)
    })
  }

  test('payloads carry table and name only, and foreign payloads are not ours', () => {
    const p = { schema: 's', sender: 'x', table: 'keys' as const, name: 'k' }
    assert.deepEqual(decodePayload(encodePayload(p)), p)
    assert.equal(decodePayload('{"schema":"s","sender":"x","table":"other","name":"k"}'), undefined)
    assert.equal(decodePayload('not json'), undefined)
    assert.equal(decodePayload(undefined), undefined)
  })

  test('a closed store fails with StoreUnavailableError, not "missing"', async () => {
    const store = await openPostgresStore(db.settings(db.newSchema()))
    await store.close()
    await assert.rejects(store.keys.get('k'), (err: unknown) => err instanceof StoreUnavailableError && err instanceof StoreError)
  })
})
