import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, link, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { promisify } from 'node:util'
import { EntryExistsError, MAX_VALUE_BYTES, StoreError, StoreUnavailableError } from '../keystore.js'
import type { KeyStore } from '../keystore.js'
import { testStoreConformance } from '../store-conformance.js'
import { openFsStore } from './fs-store.js'
import { WRITER_TAGS } from './temp-name.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../../../test/support/kes-key-files.js'

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-keystore-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function openTemp(t: TestContext): Promise<{ dir: string; store: KeyStore }> {
  const dir = path.join(await tempDir(t), 'store')
  const store = await openFsStore(dir)
  t.after(() => store.close())
  return { dir, store }
}

async function modeOf(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777
}

function isStoreError(op: string) {
  return (err: unknown): boolean =>
    err instanceof StoreError && !(err instanceof StoreUnavailableError) && err.op === op
}

function isUnavailable(op: string) {
  return (err: unknown): boolean => err instanceof StoreUnavailableError && err.op === op
}

testStoreConformance('fs', async (t) => (await openTemp(t)).store)

describe('fs store', () => {
  for (const umask of [0o022, 0, 0o077, 0o777]) {
    test(`files are 0600 and created directories 0700 with umask ${umask.toString(8).padStart(3, '0')}`, async (t) => {
      const base = await tempDir(t)
      const previous = process.umask(umask)
      t.after(() => {
        process.umask(previous)
      })
      const dir = path.join(base, 'parent', 'store')
      const store = await openFsStore(dir)
      t.after(() => store.close())
      await store.keys.create('created', Buffer.from('a'))
      await store.keys.put('replaced', Buffer.from('a'))
      await store.keys.put('replaced', Buffer.from('b'))
      await store.policies.put('p', Buffer.from('{}'))
      await store.identities.create('i', Buffer.from('p'))
      process.umask(previous)

      assert.equal(await modeOf(path.join(base, 'parent')), 0o700)
      assert.equal(await modeOf(dir), 0o700)
      assert.equal(await modeOf(path.join(dir, '.openkes')), 0o700)
      assert.equal(await modeOf(path.join(dir, '.openkes', 'policies')), 0o700)
      assert.equal(await modeOf(path.join(dir, '.openkes', 'identities')), 0o700)
      assert.equal(await modeOf(path.join(dir, 'created')), 0o600)
      assert.equal(await modeOf(path.join(dir, 'replaced')), 0o600)
      assert.equal(await modeOf(path.join(dir, '.openkes', 'policies', 'p')), 0o600)
      assert.equal(await modeOf(path.join(dir, '.openkes', 'identities', 'i')), 0o600)
    })
  }

  test('an existing store directory keeps its mode', async (t) => {
    const dir = await tempDir(t)
    const before = await modeOf(dir)
    const store = await openFsStore(dir)
    t.after(() => store.close())
    assert.equal(await modeOf(dir), before)
  })

  test('files hold exactly the bytes given, in the KES layout', async (t) => {
    const { dir, store } = await openTemp(t)
    const key = Buffer.from('{"bytes":"AAEC"}')
    const policy = Buffer.from([0, 1, 2, 255, 10])
    await store.keys.create('my-key', key)
    await store.policies.put('my-policy', policy)
    await store.identities.put('ab'.repeat(32), Buffer.from('my-policy'))
    assert.deepEqual(await readFile(path.join(dir, 'my-key')), key)
    assert.deepEqual(await readFile(path.join(dir, '.openkes', 'policies', 'my-policy')), policy)
    assert.deepEqual(await readFile(path.join(dir, '.openkes', 'identities', 'ab'.repeat(32))), Buffer.from('my-policy'))
    assert.deepEqual((await readdir(dir)).sort(), ['.openkes', 'my-key'])
    assert.deepEqual((await readdir(path.join(dir, '.openkes'))).sort(), ['identities', 'policies'])
  })

  test('policy and identity directories appear only with their first entry', async (t) => {
    const { dir, store } = await openTemp(t)
    assert.deepEqual(await store.policies.list(), [])
    assert.deepEqual(await store.identities.list(), [])
    assert.equal(await store.policies.get('p'), undefined)
    assert.equal(await store.identities.delete('i'), false)
    assert.deepEqual(await readdir(dir), [])
  })

  test('no temp files are left behind, and leftover ones are not listed', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.keys.create('k1', Buffer.from('v'))
    await store.keys.put('k1', Buffer.from('w'))
    await assert.rejects(store.keys.create('k1', Buffer.from('x')), EntryExistsError)
    await store.policies.put('p', Buffer.from('v'))
    assert.deepEqual((await readdir(dir)).sort(), ['.openkes', 'k1'])
    assert.deepEqual(await readdir(path.join(dir, '.openkes', 'policies')), ['p'])

    await writeFile(path.join(dir, '.tmp-0123456789abcdef'), 'partial')
    await writeFile(path.join(dir, '.openkes', 'policies', '.tmp-0123456789abcdef'), 'partial')
    assert.deepEqual(await store.keys.list(), ['k1'])
    assert.deepEqual(await store.policies.list(), ['p'])
  })

  test('opening the store removes every temp file that no live writer can own', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.policies.put('p', Buffer.from('v'))
    await store.close()
    const { host, boot } = WRITER_TAGS
    const otherHost = host === '00000000' ? '11111111' : '00000000'
    const otherBoot = boot === '00000000' ? '11111111' : '00000000'
    const deadPid = 99_999_999 // above any pid_max: no such process
    const livePid = process.ppid // another live process of this host and boot
    const old = new Date(Date.now() - 60 * 60_000)
    // [file name, in the policies directory?, made old?, removed?]
    const cases: Array<[string, boolean, boolean, boolean]> = [
      ['.tmp-0123456789abcdef01234567', false, false, true], // older OpenKES naming: a leftover
      ['.tmp-bb', true, false, true],
      [`.tmp-${host}-${boot}-${deadPid}-aa01`, false, false, true], // its writer is gone
      [`.tmp-${host}-${boot}-${process.pid}-aa02`, false, false, true], // ours, written before this open
      [`.tmp-${host}-${otherBoot}-${livePid}-aa03`, true, false, true], // an earlier boot
      [`.tmp-${host}-${boot}-${livePid}-aa04`, false, false, false], // a live writer: maybe writing now
      [`.tmp-${host}-${boot}-${livePid}-aa05`, false, true, true], // ...but no write takes an hour
      [`.tmp-${otherHost}-${boot}-1-aa06`, false, false, false], // another host sharing the directory
      [`.tmp-${otherHost}-${boot}-1-aa07`, true, true, true],
    ]
    for (const [name, inPolicies, isOld] of cases) {
      const f = path.join(dir, ...(inPolicies ? ['.openkes', 'policies'] : []), name)
      await writeFile(f, 'left over')
      if (isOld) await utimes(f, old, old)
    }
    await openFsStore(dir)
    const left = new Set([...(await readdir(dir)), ...(await readdir(path.join(dir, '.openkes', 'policies')))])
    for (const [name, , , removed] of cases) assert.equal(!left.has(name), removed, `${name}: removed should be ${removed}`)
    assert.ok(left.has('p'))
  })

  test('a delete removes a second name a crash left on the key file', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.keys.create('k1', Buffer.from('secret bytes'))
    // A crash between link(temp, k1) and unlink(temp) leaves the temp file as a second name.
    const second = path.join(dir, `.tmp-${WRITER_TAGS.host}-${WRITER_TAGS.boot}-${process.ppid}-ff`)
    await link(path.join(dir, 'k1'), second)
    await writeFile(path.join(dir, '.tmp-unrelated'), 'other')
    assert.equal(await store.keys.delete('k1'), true)
    assert.deepEqual((await readdir(dir)).sort(), ['.tmp-unrelated'])
  })

  test('a deleteIf removes a second name a crash left on the key file, and keeps a changed file and the others', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.keys.create('k1', Buffer.from('secret bytes'))
    const second = path.join(dir, `.tmp-${WRITER_TAGS.host}-${WRITER_TAGS.boot}-${process.ppid}-fe`)
    await link(path.join(dir, 'k1'), second)
    await writeFile(path.join(dir, '.tmp-unrelated'), 'other')
    assert.equal(await store.keys.deleteIf('k1', Buffer.from('other bytes!')), false)
    assert.deepEqual((await readdir(dir)).sort(), [path.basename(second), '.tmp-unrelated', 'k1'].sort())
    assert.equal(await store.keys.deleteIf('k1', Buffer.from('secret bytes')), true)
    assert.deepEqual((await readdir(dir)).sort(), ['.tmp-unrelated'])
  })

  test('only regular files list as keys', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.keys.create('k1', Buffer.from('v'))
    await mkdir(path.join(dir, 'a-directory'))
    await symlink(path.join(dir, 'a-directory'), path.join(dir, 'link-to-dir'))
    await symlink(path.join(dir, 'missing'), path.join(dir, 'dangling'))
    assert.deepEqual(await store.keys.list(), ['k1'])
    await assert.rejects(store.keys.get('link-to-dir'), isStoreError('failed to read key'))
    assert.equal(await store.keys.get('dangling'), undefined)
  })

  test('symlinks to regular files are keys, as in a Kubernetes secret mount', async (t) => {
    const { dir, store } = await openTemp(t)
    // kubelet's layout: name -> ..data/name, ..data -> ..<timestamp>/
    await mkdir(path.join(dir, '..2026_11_30'), { mode: 0o700 })
    await writeFile(path.join(dir, '..2026_11_30', 'mounted-key'), '{"bytes":"x"}')
    await symlink('..2026_11_30', path.join(dir, '..data'))
    await symlink(path.join('..data', 'mounted-key'), path.join(dir, 'mounted-key'))
    assert.deepEqual(await store.keys.list(), ['mounted-key'])
    assert.equal((await store.keys.get('mounted-key'))?.toString(), '{"bytes":"x"}')
  })

  // The timeout turns a regression (an open that blocks until a writer appears) into a failure.
  test('a FIFO named like a key is refused without blocking', { timeout: 10_000 }, async (t) => {
    const { dir, store } = await openTemp(t)
    try {
      await promisify(execFile)('mkfifo', [path.join(dir, 'a-fifo')])
    } catch {
      t.skip('mkfifo is not available')
      return
    }
    assert.deepEqual(await store.keys.list(), [])
    await assert.rejects(store.keys.get('a-fifo'), isStoreError('failed to read key'))
  })

  test('a directory where a key file should be is a StoreError', async (t) => {
    const { dir, store } = await openTemp(t)
    await mkdir(path.join(dir, 'k1'))
    await assert.rejects(store.keys.get('k1'), isStoreError('failed to read key'))
    await assert.rejects(store.keys.put('k1', Buffer.from('v')), isStoreError('failed to write key'))
    await assert.rejects(store.keys.delete('k1'), isStoreError('failed to delete key'))
    await assert.rejects(store.keys.deleteIf('k1', Buffer.from('v')), isStoreError('failed to delete key'))
    await assert.rejects(store.keys.replace('k1', Buffer.from('v'), Buffer.from('w')), isStoreError('failed to write key'))
    // The name is taken, so create reports it like any other existing entry.
    await assert.rejects(store.keys.create('k1', Buffer.from('v')), EntryExistsError)
    await assert.rejects(store.keys.get('k1'), /keystore\/fs: failed to read key 'k1': not a regular file/)
    assert.deepEqual((await readdir(dir)).sort(), ['k1'])
  })

  test('a key file larger than MAX_VALUE_BYTES is a StoreError', async (t) => {
    const { dir, store } = await openTemp(t)
    await writeFile(path.join(dir, 'huge'), Buffer.alloc(MAX_VALUE_BYTES + 1))
    await assert.rejects(store.keys.get('huge'), isStoreError('failed to read key'))
    assert.deepEqual(await store.keys.list(), ['huge'])
  })

  test('a policy path blocked by a file is a StoreError', async (t) => {
    const { dir, store } = await openTemp(t)
    await writeFile(path.join(dir, '.openkes'), 'not a directory')
    await assert.rejects(store.policies.put('p', Buffer.from('v')), isStoreError('failed to write policy'))
    await assert.rejects(store.policies.get('p'), isStoreError('failed to read policy'))
    await assert.rejects(store.policies.list(), isStoreError('failed to list policies'))
  })

  test('a vanished store directory makes the store unavailable', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.keys.create('k1', Buffer.from('v'))
    await rm(dir, { recursive: true })
    // A missing key must not read as 'not found' when the whole store is gone.
    await assert.rejects(store.keys.get('k1'), isUnavailable('failed to read key'))
    await assert.rejects(store.keys.list(), isUnavailable('failed to list keys'))
    await assert.rejects(store.keys.delete('k1'), isUnavailable('failed to delete key'))
    await assert.rejects(store.keys.deleteIf('k1', Buffer.from('v')), isUnavailable('failed to delete key'))
    await assert.rejects(store.policies.deleteIf('p', Buffer.from('v')), isUnavailable('failed to delete policy'))
    await assert.rejects(store.keys.create('k2', Buffer.from('v')), isUnavailable('failed to create key'))
    await assert.rejects(store.policies.put('p', Buffer.from('v')), isUnavailable('failed to write policy'))
    await assert.rejects(store.policies.list(), isUnavailable('failed to list policies'))
    await assert.rejects(store.identities.get('i'), isUnavailable('failed to read identity'))
    await assert.rejects(stat(dir), { code: 'ENOENT' })
  })

  test('ping fails while the store directory is gone and succeeds once it is back', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.ping()
    await rm(dir, { recursive: true })
    await assert.rejects(store.ping(), isUnavailable('failed to reach key store'))
    await writeFile(dir, 'now a file')
    await assert.rejects(store.ping(), isUnavailable('failed to reach key store'))
    await rm(dir)
    await mkdir(dir, { mode: 0o700 })
    await store.ping()
  })

  test('opening a path that is a file fails with StoreUnavailableError', async (t) => {
    const file = path.join(await tempDir(t), 'file')
    await writeFile(file, 'x')
    await assert.rejects(openFsStore(file), isUnavailable('failed to open key store'))
    await assert.rejects(openFsStore(path.join(file, 'below')), isUnavailable('failed to open key store'))
  })

  test('entries survive close and reopen', async (t) => {
    const dir = path.join(await tempDir(t), 'store')
    const first = await openFsStore(dir)
    await first.keys.create('k1', Buffer.from('key'))
    await first.policies.put('p1', Buffer.from('policy'))
    await first.identities.put('i1', Buffer.from('p1'))
    await first.close()
    const second = await openFsStore(dir)
    t.after(() => second.close())
    assert.deepEqual(await second.keys.list(), ['k1'])
    assert.deepEqual(await second.keys.get('k1'), Buffer.from('key'))
    assert.deepEqual(await second.policies.get('p1'), Buffer.from('policy'))
    assert.deepEqual(await second.identities.get('i1'), Buffer.from('p1'))
    await assert.rejects(second.keys.create('k1', Buffer.from('again')), EntryExistsError)
  })

  test('two stores on one directory see each other and race safely', async (t) => {
    const dir = path.join(await tempDir(t), 'store')
    const a = await openFsStore(dir)
    const b = await openFsStore(dir)
    t.after(() => a.close())
    t.after(() => b.close())
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).keys.create('shared', Buffer.from(`v${i}`))),
    )
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    assert.deepEqual(await a.keys.get('shared'), await b.keys.get('shared'))
    assert.deepEqual(await readdir(dir), ['shared'])
  })

  describe('KES key directories are served as they are', () => {
    for (const version of ['v0.7.2', 'v0.17.6', '2023-09-28', '2023-10-03', 'kes-unit-test']) {
      test(`${version}: lists exactly its key names and returns the file bytes unchanged`, async (t) => {
        const source = path.join(KES_KEY_FILES, version)
        const dir = await tempDir(t)
        const files = (await readdir(source)).sort()
        for (const file of files) await copyFile(path.join(source, file), path.join(dir, file))
        const names = await expectedNames(version)
        assert.deepEqual(files, [...names].sort())

        const store = await openFsStore(dir)
        t.after(() => store.close())
        assert.deepEqual(await store.keys.list(), files)
        for (const name of files) {
          assert.deepEqual(await store.keys.get(name), await readFile(path.join(source, name)), name)
        }
        assert.deepEqual(await store.policies.list(), [])
        assert.deepEqual((await readdir(dir)).sort(), files)
      })
    }
  })
})

async function expectedNames(version: string): Promise<string[]> {
  return (await readKesKeyFileVectors()).filter((v) => v.version === version).map((v) => v.name)
}

describe('fs store: replace across processes', () => {
  // Each child opens the same directory and increments a counter 25 times with a
  // read-compare-replace loop; a replace that was not atomic across processes loses increments.
  const child = `
    const { openFsStore } = await import(process.argv[1]);
    const store = await openFsStore(process.argv[2]);
    for (let i = 0; i < 25; i++) {
      for (;;) {
        const current = await store.keys.get('counter');
        const next = Buffer.from(String(Number(current.toString()) + 1));
        if (await store.keys.replace('counter', current, next)) break;
      }
    }
    await store.close();
  `

  test('three processes incrementing one entry by compare-and-swap lose no update, and leave no lock held', { timeout: 60_000 }, async (t) => {
    const { dir, store } = await openTemp(t)
    await store.keys.create('counter', Buffer.from('0'))
    const moduleUrl = new URL('./fs-store.js', import.meta.url).href
    const run = (): Promise<unknown> =>
      promisify(execFile)(process.execPath, ['--input-type=module', '-e', child, moduleUrl, dir], { timeout: 50_000 })
    await Promise.all([run(), run(), run(), (async () => {
      // and this process at the same time, through its own queue
      for (let i = 0; i < 25; i++) {
        for (;;) {
          const current = await store.keys.get('counter')
          assert.ok(current !== undefined)
          if (await store.keys.replace('counter', current, Buffer.from(String(Number(current.toString()) + 1)))) break
        }
      }
    })()])
    assert.equal((await store.keys.get('counter'))?.toString(), '100')
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.')), [])
  })

  test('a lock left by a crashed process is broken; a fresh one of a live process is waited for', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.keys.create('k', Buffer.from('v'))
    const locks = dir
    const { lockFileOf } = await import('./entry-lock.js')
    // pid 2^22+1 is above Linux's pid_max default: no such process.
    const deadOwner = `.tmp-${WRITER_TAGS.host}-${WRITER_TAGS.boot}-4194305-00`
    await writeFile(lockFileOf(locks, 'k'), deadOwner)
    assert.equal(await store.keys.replace('k', Buffer.from('v'), Buffer.from('w')), true)
    assert.deepEqual(await readdir(locks), ['k'])
    // A live owner (pid 1) with a fresh lock: the delete waits until it is released.
    const liveOwner = `.tmp-${WRITER_TAGS.host}-${WRITER_TAGS.boot}-1-00`
    await writeFile(lockFileOf(locks, 'k'), liveOwner)
    let settled = false
    const deleting = store.keys.delete('k').finally(() => {
      settled = true
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(settled, false, 'the delete did not wait for the lock')
    await rm(lockFileOf(locks, 'k'))
    assert.equal(await deleting, true)
    assert.equal(await store.keys.get('k'), undefined)
  })

  test('deleteIf takes the same lock as replace: it waits for a held one', async (t) => {
    const { dir, store } = await openTemp(t)
    await store.keys.create('k', Buffer.from('v'))
    const { lockFileOf } = await import('./entry-lock.js')
    const liveOwner = `.tmp-${WRITER_TAGS.host}-${WRITER_TAGS.boot}-1-00`
    await writeFile(lockFileOf(dir, 'k'), liveOwner)
    let settled = false
    const deleting = store.keys.deleteIf('k', Buffer.from('v')).finally(() => {
      settled = true
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(settled, false, 'the deleteIf did not wait for the lock')
    // The holder changes the entry before releasing: the deleteIf must see the new value.
    await writeFile(path.join(dir, 'k'), 'w')
    await rm(lockFileOf(dir, 'k'))
    assert.equal(await deleting, false)
    assert.equal((await store.keys.get('k'))?.toString(), 'w')
    assert.deepEqual(await readdir(dir), ['k'])
  })
})
