// Sealing on the PostgreSQL store: the wrapper needs no knowledge of the backend, the rows
// hold only sealed values, and the change feed still works through it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, test } from 'node:test'
import { TestPostgres } from '../../../test/support/postgres.js'
import { openPostgresStore } from '../postgres/pg-store.js'
import type { PostgresStore } from '../postgres/pg-store.js'
import { MemoryRoot } from './root-key.js'
import { openSealedStore, refuseIfSealed } from './sealed-store.js'

const db = await TestPostgres.start()
after(() => db.stop())

test('a sealed PostgreSQL store: rows hold no key bytes, a restart reads the keys, wrong root keys and no seal are refused', async () => {
  const settings = db.settings(db.newSchema())
  const rootKey = randomBytes(32)
  const secret = randomBytes(32)
  const value = Buffer.from(`{"bytes":"${secret.toString('base64')}"}`)
  const raw = await openPostgresStore(settings)
  try {
    const sealed = (await openSealedStore(raw, new MemoryRoot(rootKey, 'root'), 'pg')) as PostgresStore
    // The change feed of the backend is reachable through the wrapper.
    assert.equal(typeof sealed.changes.subscribe, 'function')
    await sealed.keys.create('k', value)
    await sealed.deleted.put('d', value)
    for (const stored of [await raw.keys.get('k'), await raw.deleted.get('d')]) {
      assert.match(stored?.toString() ?? '', /^\{"openkes_sealed":1,/)
      for (const needle of [secret, Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('hex'))]) assert.equal(stored?.includes(needle), false)
    }
  } finally {
    await raw.close()
  }
  const again = await openPostgresStore(settings)
  try {
    await assert.rejects(refuseIfSealed(again, 'pg'), /is sealed; configure the seal: section/)
    await assert.rejects(openSealedStore(again, new MemoryRoot(randomBytes(32), 'another root'), 'pg'), /another root does not open the key store pg: it was sealed by root/)
    const sealed = await openSealedStore(again, new MemoryRoot(rootKey, 'root'), 'pg')
    assert.deepEqual(await sealed.keys.get('k'), value)
    assert.deepEqual(await sealed.keys.list(), ['k'])
  } finally {
    await again.close()
  }
})
