// DeletedKeys.delete against a key that changes between the copy to 'deleted' and the removal
// from 'keys' (a rotation on another server), with a memory store whose tables can be made to
// change or fail at exactly that moment.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { KesError } from '../api/errors.js'
import { formatKeyFile } from '../crypto/key-version.js'
import { SecretKey } from '../crypto/secret-key.js'
import { StoreError } from '../keystore/keystore.js'
import type { KeyStore, Table } from '../keystore/keystore.js'
import { createMemStore } from '../keystore/mem/mem-store.js'
import { ErrorLog } from '../log/error-log.js'
import { DeletedKeys } from './deleted-keys.js'
import { KeyRing } from './key-ring.js'

const WEEK_MS = 7 * 24 * 3600 * 1000

interface Setup {
  readonly store: KeyStore
  readonly keys: KeyRing
  readonly deletedKeys: DeletedKeys
  readonly errors: string[]
}

/**
 * A memory store whose `keys.deleteIf` first runs `beforeDeleteIf` (what another server does
 * between our copy and our removal), and whose `deleted.delete` fails while `failDrop` is set.
 */
function setup(hooks: { beforeDeleteIf?: (inner: KeyStore) => Promise<void>; failDrop?: () => boolean }): Setup {
  const inner = createMemStore()
  const keysTable: Table = {
    create: (n, v) => inner.keys.create(n, v),
    put: (n, v) => inner.keys.put(n, v),
    get: (n) => inner.keys.get(n),
    replace: (n, e, v) => inner.keys.replace(n, e, v),
    delete: (n) => inner.keys.delete(n),
    list: () => inner.keys.list(),
    deleteIf: async (n, e) => {
      await hooks.beforeDeleteIf?.(inner)
      return inner.keys.deleteIf(n, e)
    },
  }
  const deletedTable: Table = {
    ...Object.fromEntries((['create', 'put', 'get', 'replace', 'deleteIf', 'list'] as const).map((op) => [op, inner.deleted[op].bind(inner.deleted)])),
    delete: async (n: string) => {
      if (hooks.failDrop?.() === true) throw new StoreError('failed to delete deleted key', 'keystore/test: disk gone bad')
      return inner.deleted.delete(n)
    },
  } as Table
  const store: KeyStore = {
    kind: 'mem',
    keys: keysTable,
    policies: inner.policies,
    identities: inner.identities,
    deleted: deletedTable,
    ping: () => inner.ping(),
    close: () => inner.close(),
  }
  const errors: string[] = []
  const errorLog = new ErrorLog({ enabled: true, sink: (l) => errors.push(l) })
  const keys = new KeyRing(store, { expiryAnyMs: 0, expiryUnusedMs: 0 }, errorLog)
  return { store, keys, deletedKeys: new DeletedKeys(store, keys, errorLog, WEEK_MS), errors }
}

/** Rotates `name` directly in the store, as another server would. */
async function rotateBehindTheBack(keys: KeyRing, name: string): Promise<string> {
  const rotated = await keys.rotate(name, 'other-server')
  assert.ok(rotated !== undefined)
  return rotated.newest.id
}

test('a rotation between the copy and the removal: the copy is dropped, the delete starts again and keeps the rotated key', async (t) => {
  let rotations = 0
  let ring: KeyRing | undefined
  const s = setup({
    beforeDeleteIf: async () => {
      if (rotations < 2 && ring !== undefined) {
        rotations++
        await rotateBehindTheBack(ring, 'k')
      }
    },
  })
  ring = s.keys
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  assert.equal(await s.deletedKeys.delete('k', 'me'), true)
  assert.equal(rotations, 2)
  assert.deepEqual(await s.store.keys.list(), [])
  // One kept deletion, holding all three versions; the two stale copies were dropped.
  assert.equal((await s.store.deleted.list()).length, 1)
  assert.deepEqual((await s.deletedKeys.list(() => true)).map((d) => [d.name, d.deleted_by]), [['k', 'me']])
  await s.deletedKeys.restore('k')
  assert.equal((await s.keys.get('k')).versions.length, 3)
  assert.deepEqual(s.errors, [])
})

test('a key changed on every attempt: the delete gives up with 503, the key and no stale copy left', async (t) => {
  const s = setup({ beforeDeleteIf: async (inner) => inner.keys.put('k', formatKeyFile(SecretKey.generate('AES256'))) })
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  await assert.rejects(s.deletedKeys.delete('k', 'me'), (err: unknown) => err instanceof KesError && err.status === 503 && /changed by others too often/.test(err.message))
  assert.deepEqual(await s.store.keys.list(), ['k'])
  assert.deepEqual(await s.store.deleted.list(), [])
})

test('a key deleted by someone else between the copy and the removal: false, no copy kept by this delete', async (t) => {
  const s = setup({ beforeDeleteIf: async (inner) => void (await inner.keys.delete('k')) })
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  // The other delete removed it without keeping a copy (say retention 0 there): nothing is kept here either.
  assert.equal(await s.deletedKeys.delete('k', 'me'), false)
  assert.deepEqual(await s.store.deleted.list(), [])
})

test('dropping the stale copy fails: 502, logged, and the key is still there', async (t) => {
  let ring: KeyRing | undefined
  let failing = false
  const s = setup({
    beforeDeleteIf: async () => {
      if (ring !== undefined && !failing) {
        failing = true
        await rotateBehindTheBack(ring, 'k')
      }
    },
    failDrop: () => failing,
  })
  ring = s.keys
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  await assert.rejects(s.deletedKeys.delete('k', 'me'), (err: unknown) => err instanceof KesError && err.status === 502 && err.message === 'bad gateway: failed to delete key')
  assert.equal((await s.keys.get('k')).versions.length, 2)
  assert.equal(s.errors.length, 1)
  assert.match(s.errors[0] ?? '', /keystore: failed to delete key 'k': .*disk gone bad/)
})
