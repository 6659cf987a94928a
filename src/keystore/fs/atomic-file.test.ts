// Atomic replace and durability of the filesystem store's files, observed on a
// real filesystem: a reader never sees a partial entry, a replace publishes a
// new file instead of rewriting the old one in place, the data is fsynced
// before the file gets its name (and the directory after), and a write that
// fails leaves no temp file behind.
import assert from 'node:assert/strict'
import { readlinkSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, open, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { StoreError } from '../keystore.js'
import type { KeyStore } from '../keystore.js'
import { RejectedFileError, TEMP_PREFIX, ensureDirectory, errorCode, publishTempFile, readRegularFile, writeTempFile } from './atomic-file.js'
import { openFsStore } from './fs-store.js'

async function tempStore(t: TestContext): Promise<{ dir: string; store: KeyStore }> {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'openkes-atomic-'))
  t.after(() => rm(parent, { recursive: true, force: true }))
  const dir = path.join(parent, 'store')
  const store = await openFsStore(dir)
  t.after(() => store.close())
  return { dir, store }
}

/** A value of `size` bytes that says which write it came from: every byte is `n`. */
function valueOf(n: number, size: number): Buffer {
  return Buffer.alloc(size, n)
}

/** The number of the write a value came from, or a description of why it is not a whole value. */
function whichValue(buf: Buffer, size: number): number | string {
  if (buf.length !== size) return `partial: ${buf.length} of ${size} bytes`
  const n = buf[0] ?? -1
  return buf.every((b) => b === n) ? n : 'mixed bytes'
}

// Which file a handle is, read from Linux's /proc (the fsync tests need it).
const onLinux = { skip: process.platform !== 'linux' ? 'needs /proc/self/fd' : false }

// FileHandle is not exported; its prototype is that of any open handle.
async function fileHandlePrototype(): Promise<FileHandle> {
  const fh = await open(os.tmpdir(), 'r')
  try {
    return Object.getPrototypeOf(fh) as FileHandle
  } finally {
    await fh.close()
  }
}

async function tempFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith(TEMP_PREFIX))
}

test('a replace publishes a new file: a reader that has the old one open still reads it whole', async (t) => {
  const { dir, store } = await tempStore(t)
  const size = 256 * 1024
  const file = path.join(dir, 'k')
  await store.keys.put('k', valueOf(1, size))
  for (let n = 2; n <= 5; n++) {
    const before = await stat(file)
    const reader = await open(file, 'r')
    try {
      await store.keys.put('k', valueOf(n, size))
      // An in-place rewrite (copy, truncate + write) would change what the open handle reads.
      const old = Buffer.alloc(size)
      const { bytesRead } = await reader.read(old, 0, size, 0)
      assert.equal(bytesRead, size)
      assert.equal(whichValue(old, size), n - 1)
    } finally {
      await reader.close()
    }
    assert.notEqual((await stat(file)).ino, before.ino, 'the entry must be a new file, renamed into place')
    assert.equal(whichValue((await store.keys.get('k')) ?? Buffer.alloc(0), size), n)
  }
  assert.deepEqual(await tempFilesIn(dir), [])
})

test('a concurrent reader never sees a partial entry during many large replaces', { timeout: 60_000 }, async (t) => {
  const { dir, store } = await tempStore(t)
  const size = 512 * 1024
  const writes = 24
  await store.keys.put('k', valueOf(0, size))
  let done = false
  const seen: Array<number | string> = []
  const reader = (async () => {
    // Polls through the store (as the server reads) and through a plain read of the file.
    while (!done) {
      const viaStore = await store.keys.get('k')
      seen.push(viaStore === undefined ? 'absent' : whichValue(viaStore, size))
      const fh = await open(path.join(dir, 'k'), 'r').catch(() => undefined)
      if (fh === undefined) {
        seen.push('absent')
        continue
      }
      try {
        seen.push(whichValue(await fh.readFile(), size))
      } finally {
        await fh.close()
      }
    }
  })()
  try {
    for (let n = 1; n <= writes; n++) await store.keys.put('k', valueOf(n, size))
  } finally {
    done = true
    await reader
  }
  assert.ok(seen.length > 0)
  // Replacing an existing entry never makes it disappear, not even for a moment.
  const bad = seen.filter((s) => typeof s !== 'number')
  assert.deepEqual(bad, [], `${bad.length} of ${seen.length} reads saw something other than a whole value`)
  // Values only move forward.
  const numbers = seen.filter((s): s is number => typeof s === 'number')
  assert.ok(numbers.every((n) => n >= 0 && n <= writes))
  assert.deepEqual(await tempFilesIn(dir), [])
})

test('the file is fsynced before it gets its name, and the directory after', onLinux, async (t) => {
  const { dir, store } = await tempStore(t)
  const proto = await fileHandlePrototype()
  const synced: string[] = []
  const original = proto.sync
  t.mock.method(proto, 'sync', function (this: FileHandle) {
    // Which file is synced, seen at the moment of the call (Linux's /proc).
    synced.push(readlinkSync(`/proc/self/fd/${this.fd}`))
    return original.call(this)
  })
  await store.keys.create('k1', Buffer.from('one'))
  await store.keys.put('k1', Buffer.from('two'))
  await store.policies.put('p', Buffer.from('{}'))
  assert.equal(synced.length, 6, synced.join('\n'))
  const keyDir = await realpath(dir)
  const policyDir = await realpath(path.join(dir, '.openkes', 'policies'))
  for (const [i, d] of [keyDir, keyDir, policyDir].entries()) {
    const file = synced[2 * i] ?? ''
    // The data was synced while the file still had its temp name: before it was published.
    assert.equal(path.dirname(file), d)
    assert.ok(path.basename(file).startsWith(TEMP_PREFIX), file)
    assert.equal(synced[2 * i + 1], d, 'the directory is synced after the entry is published')
  }
})

test('deleting an entry fsyncs its directory', onLinux, async (t) => {
  const { dir, store } = await tempStore(t)
  await store.keys.create('k1', Buffer.from('one'))
  const proto = await fileHandlePrototype()
  const synced: string[] = []
  const original = proto.sync
  t.mock.method(proto, 'sync', function (this: FileHandle) {
    synced.push(readlinkSync(`/proc/self/fd/${this.fd}`))
    return original.call(this)
  })
  assert.equal(await store.keys.delete('k1'), true)
  assert.deepEqual(synced, [await realpath(dir)])
})

// Tests run as root, so a read-only directory would not make a write fail:
// faults are injected into the real file handle instead (a full disk, a failing fsync).
for (const [method, code] of [
  ['writeFile', 'ENOSPC'],
  ['sync', 'EIO'],
  ['chmod', 'EPERM'],
] as const) {
  test(`a write whose ${method} fails (${code}) leaves no temp file and keeps the old value`, async (t) => {
    const { dir, store } = await tempStore(t)
    await store.keys.put('k', Buffer.from('old'))
    const proto = await fileHandlePrototype()
    const mocked = t.mock.method(proto, method, async () => {
      throw Object.assign(new Error(`${code}: injected`), { code })
    })
    await assert.rejects(store.keys.put('k', Buffer.from('new')), (err) => {
      assert.ok(err instanceof StoreError)
      assert.equal(err.op, 'failed to write key')
      return true
    })
    await assert.rejects(store.keys.create('k2', Buffer.from('new')), (err) => err instanceof StoreError && err.op === 'failed to create key')
    assert.ok(mocked.mock.callCount() >= 2)
    mocked.mock.restore()
    assert.deepEqual(await tempFilesIn(dir), [])
    assert.deepEqual(await readdir(dir), ['k'])
    assert.deepEqual(await store.keys.get('k'), Buffer.from('old'))
  })
}

test('writeTempFile and publishTempFile: a failed publish removes the temp file', async (t) => {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'openkes-atomic-'))
  t.after(() => rm(parent, { recursive: true, force: true }))
  const tmp = await writeTempFile(parent, Buffer.from('v'))
  assert.ok(path.basename(tmp).startsWith(TEMP_PREFIX))
  assert.equal(((await stat(tmp)).mode & 0o777).toString(8), '600')
  // Renaming over a directory fails (EISDIR); linking to an existing name fails (EEXIST).
  const blocked = path.join(parent, 'blocked')
  await (await open(path.join(parent, 'taken'), 'wx')).close()
  await mkdir(blocked)
  await assert.rejects(publishTempFile(tmp, blocked, 'replace'), { code: 'EISDIR' })
  assert.deepEqual(await tempFilesIn(parent), [])
  const tmp2 = await writeTempFile(parent, Buffer.from('v'))
  await assert.rejects(publishTempFile(tmp2, path.join(parent, 'taken'), 'create'), { code: 'EEXIST' })
  assert.deepEqual(await tempFilesIn(parent), [])
  // A successful create leaves only the entry.
  const tmp3 = await writeTempFile(parent, Buffer.from('v'))
  await publishTempFile(tmp3, path.join(parent, 'fresh'), 'create')
  assert.deepEqual((await readdir(parent)).sort(), ['blocked', 'fresh', 'taken'])
})

test('errorCode reads a string code and nothing else', () => {
  const cases: Array<[unknown, string | undefined]> = [
    [Object.assign(new Error('x'), { code: 'ENOENT' }), 'ENOENT'],
    [{ code: 'EIO' }, 'EIO'],
    [{ code: 5 }, undefined],
    [{}, undefined],
    [new Error('no code'), undefined],
    [null, undefined],
    [undefined, undefined],
    ['ENOENT', undefined],
  ]
  for (const [err, code] of cases) assert.equal(errorCode(err), code, String(err))
})

test('readRegularFile: missing is undefined, too large and not regular are RejectedFileError saying why', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-atomic-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  assert.equal(await readRegularFile(path.join(dir, 'missing'), 10), undefined)
  const file = path.join(dir, 'five')
  await writeFile(file, 'abcde')
  assert.deepEqual(await readRegularFile(file, 5), Buffer.from('abcde'))
  await assert.rejects(readRegularFile(file, 4), (e) => e instanceof RejectedFileError && e.name === 'RejectedFileError' && e.message === 'larger than 4 bytes')
  await assert.rejects(readRegularFile(dir, 4), (e) => e instanceof RejectedFileError && e.message === 'not a regular file')
})

test('readRegularFile returns what is there when the file shrinks while it is read', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-atomic-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'shrinking')
  await writeFile(file, 'abcdefgh')
  const proto = await fileHandlePrototype()
  const original = proto.read
  let calls = 0
  // The first read gets 3 bytes, then the file "ends" (as if truncated by someone else).
  t.mock.method(proto, 'read', function (this: FileHandle, buf: Buffer, offset: number, _length: number, position: number) {
    calls++
    if (calls === 1) return (original as (...a: unknown[]) => Promise<unknown>).call(this, buf, offset, 3, position)
    return Promise.resolve({ bytesRead: 0, buffer: buf })
  })
  assert.deepEqual(await readRegularFile(file, 100), Buffer.from('abc'))
  assert.equal(calls, 2)
})

test('ensureDirectory creates with 0700, keeps an existing directory as it is, and needs the parent', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-atomic-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const fresh = path.join(dir, 'fresh')
  await ensureDirectory(fresh)
  assert.equal((await stat(fresh)).mode & 0o777, 0o700)
  const existing = path.join(dir, 'existing')
  await mkdir(existing)
  await chmod(existing, 0o755)
  await ensureDirectory(existing)
  assert.equal((await stat(existing)).mode & 0o777, 0o755)
  await assert.rejects(ensureDirectory(path.join(dir, 'no', 'parent')), { code: 'ENOENT' })
})

test('no file handle is left open: after many writes, reads, replaces, deletes and failures', onLinux, async (t) => {
  const { dir, store } = await tempStore(t)
  const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length
  await store.keys.put('warm-up', Buffer.from('x'))
  const before = await openFds()
  await mkdir(path.join(dir, 'a-directory'))
  for (let i = 0; i < 40; i++) {
    await store.keys.create(`k${i}`, Buffer.from(`v${i}`))
    await store.keys.put(`k${i}`, Buffer.from(`w${i}`))
    assert.deepEqual(await store.keys.get(`k${i}`), Buffer.from(`w${i}`))
    await store.policies.put(`p${i}`, Buffer.from('{}'))
    await assert.rejects(store.keys.get('a-directory'), StoreError)
    await assert.rejects(store.keys.put('a-directory', Buffer.from('x')), StoreError)
    assert.equal(await store.keys.delete(`k${i}`), true)
  }
  assert.equal(await openFds(), before)
})
