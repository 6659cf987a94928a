// copyStore against in-memory stores: what the CLI tests can't provoke with real directories
// (a destination that reads back something else, a store that fails).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { formatKeyVersions, parseKeyEntry } from '../crypto/key-version.js'
import { SecretKey } from '../crypto/secret-key.js'
import { createMemStore } from '../keystore/mem/mem-store.js'
import { StoreError } from '../keystore/keystore.js'
import type { KeyStore, Table } from '../keystore/keystore.js'
import { copyStore } from './migrate-copy.js'
import type { CopyOptions, EntryResult } from './migrate-copy.js'
import { forwardingTable, withTables } from '../../test/support/table.js'

const keyFile = (): Buffer => Buffer.from(`{"bytes":"${randomBytes(32).toString('base64')}"}`)

function options(extra: Partial<CopyOptions> = {}): CopyOptions & { results: EntryResult[] } {
  const results: EntryResult[] = []
  return { dryRun: false, merge: false, pattern: undefined, onResult: (r) => results.push(r), results, ...extra }
}

/** `store` with its keys table replaced by `keys`. */
function withKeys(store: KeyStore, keys: Table): KeyStore {
  return withTables(store, { keys })
}

test('a copy that reads back other bytes fails verification and is removed again', async () => {
  const source = createMemStore()
  await source.keys.create('k', keyFile())
  const dest = createMemStore()
  const lying = forwardingTable(dest.keys, {
    // Nothing there before the copy; afterwards another key comes back.
    get: async (n) => ((await dest.keys.get(n)) === undefined ? undefined : keyFile()),
  })
  const opts = options()
  const report = await copyStore(source, withKeys(dest, lying), opts)
  assert.deepEqual(report.tallies.keys, { copied: 0, alreadyThere: 0, conflicts: 0, failed: 1 })
  assert.deepEqual(opts.results, [
    { table: 'keys', name: 'k', outcome: 'failed', reason: 'the copy did not verify (it reads back different bytes) and removed again' },
  ])
  assert.deepEqual(await dest.keys.list(), [])
})

test('a destination that fails to write counts as failed, the other entries are still copied', async () => {
  const source = createMemStore()
  await source.keys.create('a', keyFile())
  await source.keys.create('b', keyFile())
  await source.policies.create('p', Buffer.from('{"allow":["/v1/key/list/*"],"deny":[]}'))
  const dest = createMemStore()
  const failing = forwardingTable(dest.keys, {
    create: async (n, v) => {
      if (n === 'a') throw new StoreError('failed to create key', 'keystore/test: disk full')
      await dest.keys.create(n, v)
    },
  })
  const opts = options()
  const report = await copyStore(source, withKeys(dest, failing), opts)
  assert.deepEqual(report.tallies.keys, { copied: 1, alreadyThere: 0, conflicts: 0, failed: 1 })
  assert.deepEqual(report.tallies.policies, { copied: 1, alreadyThere: 0, conflicts: 0, failed: 0 })
  assert.deepEqual(opts.results[0], { table: 'keys', name: 'a', outcome: 'failed', reason: 'cannot write the destination: keystore/test: disk full' })
  assert.deepEqual(await dest.keys.list(), ['b'])
  assert.deepEqual(await dest.policies.get('p'), await source.policies.get('p'))
})

test('progress counts every entry of every table', async () => {
  const source = createMemStore()
  await source.keys.create('k', keyFile())
  await source.policies.create('p', Buffer.from('{}'))
  await source.identities.create('a'.repeat(64), Buffer.from('{"policy":"p"}'))
  const seen: Array<[number, number]> = []
  await copyStore(source, createMemStore(), options({ onProgress: (done, total) => seen.push([done, total]) }))
  assert.deepEqual(seen, [
    [1, 3],
    [2, 3],
    [3, 3],
  ])
})

test('a rotated key (every version) and a kept deletion are copied byte for byte and verified', async () => {
  const versions = [SecretKey.generate('AES256'), SecretKey.generate('AES256'), SecretKey.generate('ChaCha20')]
  const entry = formatKeyVersions(versions)
  const source = createMemStore()
  await source.keys.create('rotated', entry)
  const record = Buffer.from(`{"name":"gone","deleted_at":"2024-01-01T00:00:00.000Z","deleted_by":"x","entry":"${entry.toString('base64')}"}`)
  await source.deleted.create('1704067200000-0123456789abcdef', record)
  const dest = createMemStore()
  const opts = options()
  const report = await copyStore(source, dest, opts)
  assert.deepEqual(report.tallies.keys, { copied: 1, alreadyThere: 0, conflicts: 0, failed: 0 })
  assert.deepEqual(report.tallies.deleted, { copied: 1, alreadyThere: 0, conflicts: 0, failed: 0 })
  assert.deepEqual(await dest.keys.get('rotated'), entry)
  assert.deepEqual(await dest.deleted.get('1704067200000-0123456789abcdef'), record)
  // Every version came along: a ciphertext of the oldest opens with the copy.
  const copied = parseKeyEntry((await dest.keys.get('rotated')) ?? Buffer.alloc(0))
  assert.deepEqual(copied.versions.map((v) => v.id), versions.map((v) => v.id))
  const oldest = versions[0] ?? assert.fail('no versions')
  assert.deepEqual(copied.decrypt(oldest.encrypt(Buffer.from('old'))), Buffer.from('old'))
})
