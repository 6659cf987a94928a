// The change-feed listener against a real PostgreSQL: it passes on what other stores of its
// schema write, ignores its own writes and other schemas, treats a message it can't read as
// "drop every cache", survives a database outage (reconnecting by itself, then dropping every
// cache since it heard nothing meanwhile) and stays quiet once closed.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { TestPostgres } from '../../../test/support/postgres.js'
import { LocalChangeFeed, RESET, changed } from '../change-feed.js'
import type { ChangeEvent } from '../change-feed.js'
import { CHANNEL, PgListener, decodePayload, encodePayload } from './pg-listener.js'
import { clientConfig } from './pg-options.js'

const WAIT_MS = 20_000
const db = await TestPostgres.start()
after(() => db.stop())

/** A listener on `schema` as store `sender`, with what it publishes and logs recorded. */
async function listening(schema: string, sender: string): Promise<{ listener: PgListener; events: ChangeEvent[]; log: string[] }> {
  const feed = new LocalChangeFeed()
  const events: ChangeEvent[] = []
  feed.subscribe((e) => events.push(e))
  const log: string[] = []
  const listener = new PgListener({ config: await clientConfig(db.settings(schema), 'openkes-listen-test'), schema, sender, feed, log: (l) => log.push(l), location: 'the test database' })
  await listener.start()
  return { listener, events, log }
}

const notify = (payload: string): Promise<unknown> => db.admin((c) => c.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]))

/** Polls `done` every 20 ms until it holds (fails after WAIT_MS). */
async function until(done: () => boolean, what: () => string): Promise<void> {
  const deadline = performance.now() + WAIT_MS
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting: ${what()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('the PostgreSQL change-feed listener', () => {
  test('passes on the writes of other stores of its schema only; a message it cannot read drops every cache', async () => {
    const { listener, events } = await listening('feed_a', 'me')
    try {
      await notify(encodePayload({ schema: 'feed_a', sender: 'me', table: 'keys', name: 'mine' }))
      await notify(encodePayload({ schema: 'feed_b', sender: 'other', table: 'keys', name: 'elsewhere' }))
      await notify(encodePayload({ schema: 'feed_a', sender: 'other', table: 'policies', name: 'p' }))
      await until(() => events.length >= 1, () => JSON.stringify(events))
      assert.deepEqual(events, [changed('policies', 'p')])
      for (const garbage of ['not json', '"a string"', 'null', '{"schema":"feed_a","sender":"x","table":"keys"}', '{"schema":"feed_a","sender":"x","table":"secrets","name":"k"}']) {
        events.length = 0
        await notify(garbage)
        await until(() => events.length >= 1, () => `${garbage}: ${JSON.stringify(events)}`)
        assert.deepEqual(events, [RESET], garbage)
      }
    } finally {
      await listener.close()
    }
  })

  test('a database outage is logged, retried until the database is back, and ends in dropping every cache', async () => {
    const { listener, events, log } = await listening('feed_outage', 'me')
    try {
      assert.equal(listener.connected, true)
      await db.halt()
      try {
        await until(() => !listener.connected && log.length >= 1, () => log.join('\n'))
        assert.match(log[0] ?? '', /^keystore: lost the change-feed connection to the test database: .+; reconnecting$/)
        // Long enough for more than one failed attempt (100 ms, then 200 ms, 400 ms ...).
        await new Promise((resolve) => setTimeout(resolve, 800))
        assert.equal(listener.connected, false)
        assert.equal(log.length, 1, 'one line for the outage, not one per attempt')
      } finally {
        await db.resume()
      }
      await until(() => listener.connected && events.length >= 1, () => `${log.join('\n')} ${JSON.stringify(events)}`)
      assert.deepEqual(events, [RESET])
      assert.deepEqual(log.slice(1), ['keystore: change-feed connection to the test database restored; caches dropped'])
      // And it hears again.
      await notify(encodePayload({ schema: 'feed_outage', sender: 'other', table: 'keys', name: 'after' }))
      await until(() => events.length >= 2, () => JSON.stringify(events))
      assert.deepEqual(events, [RESET, changed('keys', 'after')])
    } finally {
      await listener.close()
    }
  })

  test('closed during an outage, it stops retrying and says nothing when the database comes back', async () => {
    const { listener, events, log } = await listening('feed_closed', 'me')
    await db.halt()
    try {
      await until(() => log.length >= 1, () => log.join('\n'))
      await listener.close()
      assert.equal(listener.connected, false)
    } finally {
      await db.resume()
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(listener.connected, false)
    assert.equal(log.length, 1)
    assert.deepEqual(events, [])
  })

  test('starting while the database is down fails (the store does not open)', async () => {
    await db.halt()
    try {
      const feed = new LocalChangeFeed()
      const listener = new PgListener({ config: await clientConfig(db.settings('feed_down'), 'openkes-listen-test'), schema: 'feed_down', sender: 'me', feed, log: () => {}, location: 'the test database' })
      await assert.rejects(listener.start(), (err: unknown) => err instanceof Error && /ECONNREFUSED|connect/i.test(err.message))
      assert.equal(listener.connected, false)
      await listener.close()
    } finally {
      await db.resume()
    }
  })
})

test('decodePayload takes only the payloads OpenKES writes', () => {
  const p = { schema: 's', sender: 'x', table: 'deleted' as const, name: 'k' }
  assert.deepEqual(decodePayload(encodePayload(p)), p)
  for (const text of [undefined, '', '[]', '42', '{"schema":1,"sender":"x","table":"keys","name":"k"}', '{"schema":"s","sender":"x","table":7,"name":"k"}']) {
    assert.equal(decodePayload(text), undefined, String(text))
  }
})

