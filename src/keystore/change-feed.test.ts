// The in-process change feed and the relay building block for --workers: two "processes"
// (two fs stores on one directory, each behind a KeyRing) that relay their writes to each other.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { ErrKeyNotFound } from '../api/errors.js'
import { SecretKey } from '../crypto/secret-key.js'
import { ErrorLog } from '../log/error-log.js'
import { EventHub } from '../log/event-hub.js'
import { KeyRing } from '../server/key-ring.js'
import { LocalChangeFeed, RESET, announceWrites, changed } from './change-feed.js'
import type { ChangeEvent } from './change-feed.js'
import { openFsStore } from './fs/fs-store.js'

test('LocalChangeFeed: every subscriber hears every event; a throwing one does not stop the others; unsubscribe works', () => {
  const feed = new LocalChangeFeed()
  const heard: ChangeEvent[] = []
  const off = feed.subscribe((e) => heard.push(e))
  feed.subscribe(() => {
    throw new Error('broken cache')
  })
  feed.publish(changed('keys', 'k'))
  feed.publish(RESET)
  off()
  feed.publish(changed('keys', 'after'))
  assert.deepEqual(heard, [{ kind: 'change', table: 'keys', name: 'k' }, { kind: 'reset' }])
  assert.equal(feed.size, 1)
})

test('announceWrites: committed writes are announced (failed and no-op ones are not); relayed events reach the other KeyRing', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-feed-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const inboxA = new LocalChangeFeed()
  const inboxB = new LocalChangeFeed()
  const sentByA: ChangeEvent[] = []
  // The relay: what A announces is published into B's inbox, and the other way round.
  const a = announceWrites(await openFsStore(dir), (e) => {
    sentByA.push(e)
    inboxB.publish(e)
  }, inboxA)
  const b = announceWrites(await openFsStore(dir), (e) => inboxA.publish(e), inboxB)
  t.after(async () => {
    await a.close()
    await b.close()
  })
  const log = new ErrorLog({ enabled: false, hub: new EventHub({ maxBufferedBytes: 1024 }) })
  const ringB = new KeyRing(b, { expiryAnyMs: 60_000, expiryUnusedMs: 60_000 }, log)
  t.after(() => ringB.close())

  const key = SecretKey.generate('AES256', { createdAt: new Date().toISOString(), createdBy: undefined })
  const ringA = new KeyRing(a, { expiryAnyMs: 60_000, expiryUnusedMs: 60_000 }, log)
  t.after(() => ringA.close())
  await ringA.create('k', key)
  await ringB.get('k') // B caches it
  await assert.rejects(ringA.create('k', key))
  assert.equal(await a.keys.delete('missing'), false)
  assert.equal(await ringA.delete('k'), true)
  assert.deepEqual(sentByA, [changed('keys', 'k'), changed('keys', 'k')], 'create and delete only')
  // B heard the delete and dropped its cached copy: the key is gone there too.
  await assert.rejects(ringB.get('k'), (err) => err === ErrKeyNotFound)

  // deleteIf: announced only when it removed the entry.
  sentByA.length = 0
  await a.keys.create('c', Buffer.from('v1'))
  assert.equal(await a.keys.deleteIf('c', Buffer.from('other')), false)
  assert.equal(await a.keys.deleteIf('c', Buffer.from('v1')), true)
  assert.equal(await a.keys.deleteIf('c', Buffer.from('v1')), false)
  assert.deepEqual(sentByA, [changed('keys', 'c'), changed('keys', 'c')], 'create and the one deleteIf that removed it')
})
