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
import { checkedTable, forwardingTable, withTables } from '../../test/support/table.js'
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
 * between our copy and our removal), and whose table operations named in `failing`
 * ('deleted.delete', 'keys.replace', ...) throw a StoreError, or report a lost race for
 * 'keys.replace:false'.
 */
function setup(hooks: { beforeDeleteIf?: (inner: KeyStore) => Promise<void>; failDrop?: () => boolean; failing?: Set<string>; retentionMs?: number }): Setup {
  const inner = createMemStore()
  const failing = hooks.failing ?? new Set<string>()
  const wrap = (name: 'keys' | 'deleted'): Table => {
    const t = inner[name]
    const check = (op: string): void => {
      if (failing.has(`${name}.${op}`) || (name === 'deleted' && op === 'delete' && hooks.failDrop?.() === true)) {
        throw new StoreError(`failed to ${op} ${name}`, 'keystore/test: disk gone bad')
      }
    }
    const checked = checkedTable(t, check)
    return forwardingTable(checked, {
      // 'keys.replace:false': another server's replace won the race.
      replace: async (n, e, v) => {
        if (!failing.has(`${name}.replace:false`)) return checked.replace(n, e, v)
        check('replace')
        return false
      },
      deleteIf: async (n, e) => {
        check('deleteIf')
        await hooks.beforeDeleteIf?.(inner)
        return t.deleteIf(n, e)
      },
    })
  }
  const store = withTables(inner, { keys: wrap('keys'), deleted: wrap('deleted') })
  const errors: string[] = []
  const errorLog = new ErrorLog({ enabled: true, sink: (l) => errors.push(l) })
  const keys = new KeyRing(store, { expiryAnyMs: 0, expiryUnusedMs: 0 }, errorLog)
  return { store, keys, deletedKeys: new DeletedKeys(store, keys, errorLog, hooks.retentionMs ?? WEEK_MS), errors }
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

const isStatus = (status: number, message: string) => (err: unknown) => err instanceof KesError && err.status === status && err.message === message

test('the copy to deleted fails: 502, logged, the key stays', async (t) => {
  const s = setup({ failing: new Set(['deleted.create']) })
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  await assert.rejects(s.deletedKeys.delete('k', 'me'), isStatus(502, 'bad gateway: failed to delete key'))
  assert.deepEqual(await s.store.keys.list(), ['k'])
  assert.equal(s.errors.length, 1)
})

test('the removal fails after the copy: 502 and both kept (never neither)', async (t) => {
  const s = setup({ failing: new Set(['keys.deleteIf']) })
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  await assert.rejects(s.deletedKeys.delete('k', 'me'), isStatus(502, 'bad gateway: failed to delete key'))
  assert.deepEqual(await s.store.keys.list(), ['k'])
  assert.equal((await s.store.deleted.list()).length, 1)
})

test('failures of the deleted table: list, restore, purge and the retention purge answer 502 and log the cause', async (t) => {
  const failing = new Set<string>()
  const s = setup({ failing })
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  assert.equal(await s.deletedKeys.delete('k', 'me'), true)
  const cases: Array<[string, () => Promise<unknown>, string]> = [
    ['deleted.list', () => s.deletedKeys.list(() => true), 'failed to list deleted keys'],
    ['deleted.get', () => s.deletedKeys.restore('k'), 'failed to read deleted key'],
    ['deleted.delete', () => s.deletedKeys.purge('k'), 'failed to purge deleted key'],
    ['deleted.list', () => s.deletedKeys.purgeExpired(), 'failed to list deleted keys'],
  ]
  for (const [op, call, what] of cases) {
    failing.clear()
    failing.add(op)
    const before = s.errors.length
    await assert.rejects(call(), isStatus(502, `bad gateway: ${what}`), op)
    assert.equal(s.errors.length, before + 1, op)
    assert.match(s.errors.at(-1) ?? '', /disk gone bad/)
  }
  failing.clear()
  assert.equal((await s.deletedKeys.list(() => true)).length, 1, 'nothing was lost by the failures')
})

test('the retention purge removes only expired entries and reports a failing removal', async (t) => {
  const failing = new Set<string>()
  const s = setup({ failing })
  t.after(() => s.keys.close())
  const old = `${String(Date.now() - 2 * WEEK_MS).padStart(13, '0')}-0123456789abcdef`
  await s.store.deleted.create(old, Buffer.from('{"name":"old","deleted_at":"x","entry":""}'))
  await s.store.deleted.create('not-ours', Buffer.from('{}'))
  await s.keys.create('k', SecretKey.generate('AES256'))
  await s.deletedKeys.delete('k', 'me')
  failing.add('deleted.delete')
  await assert.rejects(s.deletedKeys.purgeExpired(), isStatus(502, 'bad gateway: failed to purge deleted key'))
  failing.clear()
  assert.equal(await s.deletedKeys.purgeExpired(), 1)
  assert.equal(await s.deletedKeys.purgeExpired(), 0)
  const left = await s.store.deleted.list()
  assert.ok(left.includes('not-ours') && !left.includes(old) && left.length === 2, left.join(' '))
})

test('a malformed deleted record is logged and skipped, never parsed as a key', async (t) => {
  const s = setup({})
  t.after(() => s.keys.close())
  const id = `${String(Date.now()).padStart(13, '0')}-00000000000000aa`
  for (const bad of ['not json', '[]', 'null', '{"name":"k"}', '{"name":"k","deleted_at":"x","entry":7}']) {
    await s.store.deleted.put(id, Buffer.from(bad))
    const before = s.errors.length
    assert.deepEqual(await s.deletedKeys.list(() => true), [], bad)
    await assert.rejects(s.deletedKeys.restore('k'), isStatus(404, 'deleted key does not exist'), bad)
    assert.equal(s.errors.length, before + 2, bad)
    assert.ok(s.errors.at(-1)?.endsWith(` keystore: deleted key entry '${id}' is malformed; left as it is\n`), s.errors.at(-1))
  }
  assert.deepEqual(await s.store.deleted.list(), [id], 'left as it is')
})

test('rotation: a store failure is 502; a key changed by others on every attempt is 503', async (t) => {
  const failing = new Set<string>()
  const s = setup({ failing })
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  failing.add('keys.replace')
  await assert.rejects(s.keys.rotate('k', 'me'), isStatus(502, 'bad gateway: failed to rotate key'))
  failing.clear()
  failing.add('keys.replace:false')
  await assert.rejects(s.keys.rotate('k', 'me'), isStatus(503, 'key is changed by others too often: try again'))
  failing.clear()
  assert.equal((await s.keys.rotate('k', 'me'))?.versions.length, 2)
})

test('retention 0: a delete destroys the key at once, keeps nothing, and a store failure is 502', async (t) => {
  const failing = new Set<string>()
  const s = setup({ failing, retentionMs: 0 })
  t.after(() => s.keys.close())
  await s.keys.create('k', SecretKey.generate('AES256'))
  failing.add('keys.delete')
  await assert.rejects(s.deletedKeys.delete('k', 'me'), isStatus(502, 'bad gateway: failed to delete key'))
  assert.deepEqual(await s.store.keys.list(), ['k'])
  failing.clear()
  assert.equal(await s.deletedKeys.delete('k', 'me'), true)
  assert.equal(await s.deletedKeys.delete('k', 'me'), false)
  assert.deepEqual(await s.store.keys.list(), [])
  assert.deepEqual(await s.store.deleted.list(), [])
  assert.equal(await s.deletedKeys.purgeExpired(), 0)
})

test('KeyRing.forget drops a cached key: the next use reads the store again', async (t) => {
  const inner = createMemStore()
  const keys = new KeyRing(inner, { expiryAnyMs: 60_000, expiryUnusedMs: 60_000 }, new ErrorLog({ enabled: false }))
  t.after(() => keys.close())
  const first = SecretKey.generate('AES256')
  await keys.create('k', first)
  const cachedId = (await keys.get('k')).newest.id
  // Changed behind the ring's back (another path into the store).
  const second = SecretKey.generate('AES256')
  await inner.keys.put('k', formatKeyFile(second))
  assert.equal((await keys.get('k')).newest.id, cachedId, 'still the cached key')
  keys.forget('k')
  assert.equal((await keys.get('k')).newest.id, second.id)
  assert.notEqual(second.id, cachedId)
})
