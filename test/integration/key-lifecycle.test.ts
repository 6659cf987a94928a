// Key versions, rotation, rewrap and deletes that can be undone, over mTLS against a real
// server. The store is chosen in one place (`storeSection`) and read only through the harness
// (readEntry, listEntries), so test/integration/postgres/key-lifecycle.test.ts runs the same
// tests on PostgreSQL.
import assert from 'node:assert/strict'
import { createHmac, hkdfSync } from 'node:crypto'
import { cp, readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { KES_VECTORS } from '../support/fixtures.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../support/kes-key-files.js'
import { TestEnv, makeClient, storeKind } from './harness.js'
import type { Response } from './harness.js'

const root = makeClient('root')
const app = makeClient('app')

/**
 * The key store of every server in this file; `dir` is the absolute store directory. On
 * PostgreSQL the harness replaces this section by the TestEnv's schema.
 */
function storeSection(dir: string): string {
  return `keystore:\n  fs:\n    path: ${dir}\n`
}

/** A config whose store is `storeOf`'s (its ./keys; on PostgreSQL, its schema). */
function config(storeOf: TestEnv, extra = ''): string {
  return `admin:\n  identity: ${root.identity}\n${storeSection(path.join(storeOf.dir, 'keys'))}${extra}`
}

interface Vector {
  id: string
  format: string
  key: string
  cipher: string
  context: string | null
  plaintext: string
  ciphertext: string
  expect: string
}

const vectors = JSON.parse(await readFile(path.join(KES_VECTORS, 'ciphertexts.json'), 'utf8')) as Vector[]
const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='
const fixtureOf = (format: string): Vector[] => vectors.filter((v) => v.expect === 'ok' && v.key === KEY && v.cipher === 'AES256' && v.format === format)

function jsonOf<T>(res: Response): T {
  assert.ok(res.status >= 200 && res.status < 300, `${res.status} ${res.text}`)
  return res.json as T
}

function assertError(res: Response, status: number, message: string | RegExp): void {
  assert.equal(res.status, status, res.text)
  const m = (res.json as { message?: string }).message ?? ''
  if (typeof message === 'string') assert.equal(m, message)
  else assert.match(m, message)
}

interface Described {
  name: string
  id: string
  algorithm: string
  created_at?: string
  current_version?: string
  versions?: Array<{ id: string; created_at?: string; created_by?: string }>
}

function ndjsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o) => typeof o['name'] === 'string')
}

/** Polls `check` until it holds; fails after `tries` rounds of `pauseMs` (no timed assertion: only an upper bound). */
async function eventually(what: string, check: () => Promise<boolean>, tries = 300, pauseMs = 50): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, pauseMs))
  }
  assert.fail(`${what}: not reached`)
}

describe('key versions and rotation', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(config(env))
  })
  after(async () => {
    await env.dispose()
  })

  test('a key never rotated is described exactly as before, and its file stays as written', async () => {
    assert.equal((await env.request(root, '/v1/key/create/plain', { method: 'POST' })).status, 200)
    const before = await env.readEntry('keys', 'plain')
    assert.ok(before !== undefined)
    const d = jsonOf<Record<string, unknown>>(await env.request(root, '/v1/key/describe/plain'))
    assert.deepEqual(Object.keys(d).sort(), ['algorithm', 'created_at', 'created_by', 'id', 'name'])
    const enc = jsonOf<{ ciphertext: string }>(await env.request(root, '/v1/key/encrypt/plain', { method: 'POST', body: { plaintext: 'aGk=' } }))
    jsonOf(await env.request(root, '/v1/key/decrypt/plain', { method: 'POST', body: { ciphertext: enc.ciphertext } }))
    assert.deepEqual(await env.readEntry('keys', 'plain'), before)
  })

  test('ciphertexts of every format made before rotations decrypt after them; new ones use the newest version', async () => {
    jsonOf(await env.request(root, '/v1/key/import/rot', { method: 'POST', body: { key: KEY, cipher: 'AES256' } }))
    const first = jsonOf<Described>(await env.request(root, '/v1/key/describe/rot'))
    const ours = jsonOf<{ plaintext: string; ciphertext: string }>(
      await env.request(root, '/v1/key/generate/rot', { method: 'POST', body: { context: 'Y3R4' } }),
    )
    const msgpack = fixtureOf('msgpack')
    const raw = fixtureOf('raw')
    assert.ok(msgpack.length > 0 && raw.length > 0, 'fixtures missing')

    const ids = [first.id]
    for (let i = 0; i < 3; i++) {
      const r = jsonOf<{ id: string }>(await env.request(root, '/v1/key/rotate/rot', { method: 'POST' }))
      ids.push(r.id)
    }
    assert.equal(new Set(ids).size, 4)
    const d = jsonOf<Described>(await env.request(root, '/v1/key/describe/rot'))
    assert.equal(d.id, ids[3])
    assert.equal(d.current_version, ids[3])
    assert.equal(d.created_at, first.created_at, 'created_at stays the key creation time')
    assert.deepEqual(d.versions?.map((v) => v.id), ids)
    for (const v of d.versions ?? []) {
      assert.deepEqual(Object.keys(v).sort(), ['created_at', 'created_by', 'id'])
      assert.equal(v.created_by, root.identity)
    }

    const dec = async (ciphertext: string, context: string | null | undefined): Promise<Response> =>
      env.request(root, '/v1/key/decrypt/rot', { method: 'POST', body: context == null ? { ciphertext } : { ciphertext, context } })
    assert.equal(jsonOf<{ plaintext: string }>(await dec(ours.ciphertext, 'Y3R4')).plaintext, ours.plaintext)
    for (const v of [...msgpack, ...raw]) {
      assert.equal(jsonOf<{ plaintext: string }>(await dec(v.ciphertext, v.context)).plaintext, v.plaintext, v.id)
    }
    // A wrong context still fails as before (raw: every version is tried, none opens it).
    assertError(await dec(ours.ciphertext, 'b3RoZXI='), 400, 'decryption failed: ciphertext is not authentic')
    const rawOne = raw[0] as Vector
    assertError(await dec(rawOne.ciphertext, 'b3RoZXI='), 400, 'decryption failed: ciphertext is not authentic')

    // New ciphertexts carry the newest version's id.
    const fresh = jsonOf<{ ciphertext: string }>(await env.request(root, '/v1/key/encrypt/rot', { method: 'POST', body: { plaintext: 'aGk=' } }))
    assert.equal((JSON.parse(Buffer.from(fresh.ciphertext, 'base64').toString()) as { id: string }).id, ids[3])

    // The store entry is OpenKES's versioned format, with no other entry beside it.
    const entry = JSON.parse((await env.readEntry('keys', 'rot'))?.toString('utf8') ?? '') as { format: string; versions: unknown[] }
    assert.equal(entry.format, 'openkes-key-versions/v1')
    assert.equal(entry.versions.length, 4)
  })

  test('rewrap turns a ciphertext of an old version into one of the newest, without the plaintext', async () => {
    jsonOf(await env.request(root, '/v1/key/import/wrap', { method: 'POST', body: { key: KEY, cipher: 'AES256' } }))
    const v = fixtureOf('msgpack').find((x) => x.context !== null) as Vector
    const oldId = jsonOf<Described>(await env.request(root, '/v1/key/describe/wrap')).id
    const newId = jsonOf<{ id: string }>(await env.request(root, '/v1/key/rotate/wrap', { method: 'POST' })).id
    assert.notEqual(newId, oldId)
    const res = await env.request(root, '/v1/key/rewrap/wrap', { method: 'POST', body: { ciphertext: v.ciphertext, context: v.context } })
    const body = jsonOf<Record<string, string>>(res)
    assert.deepEqual(Object.keys(body), ['ciphertext'])
    const parsed = JSON.parse(Buffer.from(body['ciphertext'] as string, 'base64').toString()) as { id: string }
    assert.equal(parsed.id, newId)
    const dec = await env.request(root, '/v1/key/decrypt/wrap', { method: 'POST', body: { ciphertext: body['ciphertext'], context: v.context } })
    assert.equal(jsonOf<{ plaintext: string }>(dec).plaintext, v.plaintext)
    // Same failures as decrypt.
    assertError(await env.request(root, '/v1/key/rewrap/wrap', { method: 'POST', body: { ciphertext: v.ciphertext } }), 400, 'decryption failed: ciphertext is not authentic')
    assertError(await env.request(root, '/v1/key/rewrap/wrap', { method: 'POST', body: { ciphertext: 'AAAA' } }), 400, 'invalid ciphertext')
    assertError(await env.request(root, '/v1/key/rewrap/missing', { method: 'POST', body: { ciphertext: v.ciphertext } }), 404, 'key does not exist')
    assertError(await env.request(root, '/v1/key/rotate/missing', { method: 'POST' }), 404, 'key does not exist')
  })

  test('hmac uses the first version: MACs stay the same after rotations, and after delete → restore', async () => {
    jsonOf(await env.request(root, '/v1/key/import/mac', { method: 'POST', body: { key: KEY, cipher: 'AES256' } }))
    const message = Buffer.from('bucket/object').toString('base64')
    const mac = async (): Promise<string> => jsonOf<{ hmac: string }>(await env.request(root, '/v1/key/hmac/mac', { method: 'PUT', body: { message } })).hmac
    // The imported key has no HMAC key of its own: the MAC key is derived from its bytes (docs/api.md).
    const derived = Buffer.from(hkdfSync('sha256', Buffer.from(KEY, 'base64'), Buffer.alloc(0), Buffer.from('OpenKES HMAC-SHA256 key v1'), 32))
    const expected = createHmac('sha256', derived).update('bucket/object').digest('base64')
    assert.equal(await mac(), expected)
    for (let i = 0; i < 3; i++) jsonOf(await env.request(root, '/v1/key/rotate/mac', { method: 'POST' }))
    assert.equal(jsonOf<Described>(await env.request(root, '/v1/key/describe/mac')).versions?.length, 4)
    assert.equal(await mac(), expected, 'a rotation changed the MAC')
    jsonOf(await env.request(root, '/v1/key/delete/mac', { method: 'DELETE' }))
    jsonOf(await env.request(root, '/v1/key/restore/mac', { method: 'POST' }))
    assert.equal(await mac(), expected, 'a restore changed the MAC')
    // A new key under the same name MACs differently: the MAC follows the key, not the name.
    jsonOf(await env.request(root, '/v1/key/delete/mac', { method: 'DELETE' }))
    jsonOf(await env.request(root, '/v1/key/create/mac', { method: 'POST' }))
    assert.notEqual(await mac(), expected)
  })

  test('policies govern the lifecycle paths like every other path', async () => {
    jsonOf(await env.request(root, '/v1/key/create/gov', { method: 'POST' }))
    jsonOf(await env.request(root, '/v1/policy/write/rotator', { method: 'POST', body: { allow: ['/v1/key/rotate/gov', '/v1/key/describe/*'], deny: [] } }))
    jsonOf(await env.request(root, `/v1/identity/assign/rotator/${app.identity}`, { method: 'POST' }))
    const cases: Array<[string, string, number]> = [
      ['POST', '/v1/key/rotate/gov', 200],
      ['POST', '/v1/key/rotate/plain', 403],
      ['POST', '/v1/key/rewrap/gov', 403],
      ['GET', '/v1/key/deleted/*', 403],
      ['POST', '/v1/key/restore/gov', 403],
      ['POST', '/v1/key/purge/gov', 403],
    ]
    for (const [method, target, status] of cases) {
      const res = await env.request(app, target, { method, body: method === 'POST' && target.includes('rewrap') ? { ciphertext: 'AAAA' } : undefined })
      assert.equal(res.status, status, `${method} ${target}: ${res.text}`)
    }
    // /v1/api lists the new paths.
    const apis = (await env.request(root, '/v1/api')).text
    for (const p of ['/v1/key/rotate/', '/v1/key/rewrap/', '/v1/key/deleted/', '/v1/key/restore/', '/v1/key/purge/']) assert.ok(apis.includes(p), p)
  })
})

describe('deletes that can be undone', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(config(env, 'log:\n  audit_file: ./audit.log\n'))
  })
  after(async () => {
    await env.dispose()
  })

  test('delete → restore brings the key back with all its versions; old ciphertexts decrypt again', async () => {
    jsonOf(await env.request(root, '/v1/key/create/undo', { method: 'POST' }))
    const old = jsonOf<{ plaintext: string; ciphertext: string }>(await env.request(root, '/v1/key/generate/undo', { method: 'POST', body: {} }))
    jsonOf(await env.request(root, '/v1/key/rotate/undo', { method: 'POST' }))
    const newer = jsonOf<{ plaintext: string; ciphertext: string }>(await env.request(root, '/v1/key/generate/undo', { method: 'POST', body: {} }))
    const before = await env.readEntry('keys', 'undo')
    assert.ok(before !== undefined)

    assert.equal((await env.request(app, '/v1/key/delete/undo', { method: 'DELETE' })).status, 403)
    assert.equal((await env.request(root, '/v1/key/delete/undo', { method: 'DELETE' })).status, 200)
    // As in KES: the key is gone at once.
    assertError(await env.request(root, '/v1/key/describe/undo'), 404, 'key does not exist')
    assertError(await env.request(root, '/v1/key/decrypt/undo', { method: 'POST', body: { ciphertext: old.ciphertext } }), 404, 'key does not exist')
    assert.ok(!ndjsonLines((await env.request(root, '/v1/key/list/*')).text).some((l) => l['name'] === 'undo'))
    // A missing key still deletes fine (contract: 200).
    assert.equal((await env.request(root, '/v1/key/delete/never-there', { method: 'DELETE' })).status, 200)

    const listed = ndjsonLines((await env.request(root, '/v1/key/deleted/undo')).text)
    assert.equal(listed.length, 1)
    assert.equal(listed[0]?.['name'], 'undo')
    assert.equal(listed[0]?.['deleted_by'], root.identity)
    assert.ok(!Number.isNaN(Date.parse(String(listed[0]?.['deleted_at']))))
    assert.deepEqual(Object.keys(listed[0] ?? {}).sort(), ['deleted_at', 'deleted_by', 'name'])

    assert.equal((await env.request(root, '/v1/key/restore/undo', { method: 'POST' })).status, 200)
    assert.deepEqual(await env.readEntry('keys', 'undo'), before, 'restored byte for byte')
    for (const g of [old, newer]) {
      const dec = await env.request(root, '/v1/key/decrypt/undo', { method: 'POST', body: { ciphertext: g.ciphertext } })
      assert.equal(jsonOf<{ plaintext: string }>(dec).plaintext, g.plaintext)
    }
    assert.equal(ndjsonLines((await env.request(root, '/v1/key/deleted/undo')).text).length, 0)
    assertError(await env.request(root, '/v1/key/restore/undo', { method: 'POST' }), 404, 'deleted key does not exist')
  })

  test('the name is free after a delete; restoring then is refused with a clear message', async () => {
    jsonOf(await env.request(root, '/v1/key/create/reuse', { method: 'POST' }))
    const oldId = jsonOf<Described>(await env.request(root, '/v1/key/describe/reuse')).id
    jsonOf(await env.request(root, '/v1/key/delete/reuse', { method: 'DELETE' }))
    jsonOf(await env.request(root, '/v1/key/create/reuse', { method: 'POST' }))
    const newId = jsonOf<Described>(await env.request(root, '/v1/key/describe/reuse')).id
    assert.notEqual(newId, oldId)
    assertError(await env.request(root, '/v1/key/restore/reuse', { method: 'POST' }), 409, /^cannot restore key 'reuse': a key with this name exists again/)
    // Nothing changed by the refusal.
    assert.equal(jsonOf<Described>(await env.request(root, '/v1/key/describe/reuse')).id, newId)
    assert.equal(ndjsonLines((await env.request(root, '/v1/key/deleted/reuse')).text).length, 1)
    // Delete the new one too: two deletions kept; restore brings back the most recent (newId).
    jsonOf(await env.request(root, '/v1/key/delete/reuse', { method: 'DELETE' }))
    assert.equal(ndjsonLines((await env.request(root, '/v1/key/deleted/reuse')).text).length, 2)
    jsonOf(await env.request(root, '/v1/key/restore/reuse', { method: 'POST' }))
    assert.equal(jsonOf<Described>(await env.request(root, '/v1/key/describe/reuse')).id, newId)
  })

  test('delete → purge: gone for good', async () => {
    jsonOf(await env.request(root, '/v1/key/create/gone', { method: 'POST' }))
    const g = jsonOf<{ ciphertext: string }>(await env.request(root, '/v1/key/generate/gone', { method: 'POST', body: {} }))
    jsonOf(await env.request(root, '/v1/key/delete/gone', { method: 'DELETE' }))
    assert.equal((await env.request(root, '/v1/key/purge/gone', { method: 'POST' })).status, 200)
    assert.equal(ndjsonLines((await env.request(root, '/v1/key/deleted/gone')).text).length, 0)
    assertError(await env.request(root, '/v1/key/restore/gone', { method: 'POST' }), 404, 'deleted key does not exist')
    assertError(await env.request(root, '/v1/key/purge/gone', { method: 'DELETE' }), 404, 'deleted key does not exist')
    assertError(await env.request(root, '/v1/key/decrypt/gone', { method: 'POST', body: { ciphertext: g.ciphertext } }), 404, 'key does not exist')
    // No copy left anywhere in the store.
    for (const id of await env.listEntries('deleted')) {
      assert.ok(!((await env.readEntry('deleted', id))?.toString('utf8') ?? '').includes('"name":"gone"'))
    }
  })

  test('every lifecycle call is in the audit log and the metrics', async () => {
    jsonOf(await env.request(root, '/v1/key/create/audited', { method: 'POST' }))
    jsonOf(await env.request(root, '/v1/key/rotate/audited', { method: 'POST' }))
    jsonOf(await env.request(root, '/v1/key/delete/audited', { method: 'DELETE' }))
    jsonOf(await env.request(root, '/v1/key/restore/audited', { method: 'POST' }))
    jsonOf(await env.request(root, '/v1/key/delete/audited', { method: 'DELETE' }))
    jsonOf(await env.request(root, '/v1/key/purge/audited', { method: 'POST' }))
    jsonOf(await env.request(root, '/v1/key/deleted/*'))
    const metrics = (await env.request(root, '/v1/metrics', { headers: { accept: 'text/plain; version=0.0.4' } })).text
    for (const api of ['/v1/key/rotate', '/v1/key/restore', '/v1/key/purge', '/v1/key/deleted']) {
      assert.match(metrics, new RegExp(`kes_http_requests_total\\{api="${api}",code="200"\\} [1-9]`), api)
    }
    assert.match(metrics, /kes_keystore_operation_seconds_count\{table="deleted",op="create"\} [1-9]/)
    const audit = path.join(env.dir, 'audit.log')
    for (const p of ['/v1/key/rotate/audited', '/v1/key/delete/audited', '/v1/key/restore/audited', '/v1/key/purge/audited', '/v1/key/deleted/*']) {
      await eventually(`audit event of ${p}`, async () => (await readFile(audit, 'utf8').catch(() => '')).includes(`"${p}"`))
    }
  })
})

describe('retention', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(config(env, 'deleted_keys:\n  retention: 300ms\n'))
  })
  after(async () => {
    await env.dispose()
  })

  test('a deleted key is purged on its own once its retention period is over', async () => {
    jsonOf(await env.request(root, '/v1/key/create/short', { method: 'POST' }))
    jsonOf(await env.request(root, '/v1/key/delete/short', { method: 'DELETE' }))
    assert.equal((await env.listEntries('deleted')).length, 1)
    await eventually('the deleted entry is purged', async () => (await env.listEntries('deleted')).length === 0)
    assertError(await env.request(root, '/v1/key/restore/short', { method: 'POST' }), 404, 'deleted key does not exist')
    assert.equal(ndjsonLines((await env.request(root, '/v1/key/deleted/*')).text).length, 0)
  })
})

describe('retention 0: deletes destroy at once, as KES did', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(config(env, 'deleted_keys:\n  retention: 0\n'))
  })
  after(async () => {
    await env.dispose()
  })

  test('nothing is kept', async () => {
    jsonOf(await env.request(root, '/v1/key/create/now', { method: 'POST' }))
    jsonOf(await env.request(root, '/v1/key/delete/now', { method: 'DELETE' }))
    assert.deepEqual(await env.listEntries('deleted'), [])
    assertError(await env.request(root, '/v1/key/restore/now', { method: 'POST' }), 404, 'deleted key does not exist')
  })
})

describe('two servers sharing one store', () => {
  let a: TestEnv
  let b: TestEnv
  before(async () => {
    a = await TestEnv.create()
    b = await TestEnv.create({ sameStoreAs: a })
    await a.start(config(a, 'rotation:\n  - pattern: sched-*\n    every: 500ms\n'))
    await b.start(config(a, 'rotation:\n  - pattern: sched-*\n    every: 500ms\n'))
  })
  after(async () => {
    await a.dispose()
    await b.dispose()
  })

  test('concurrent rotations on both servers leave one consistent version list', async () => {
    jsonOf(await a.request(root, '/v1/key/create/shared', { method: 'POST' }))
    const before = jsonOf<{ plaintext: string; ciphertext: string }>(await b.request(root, '/v1/key/generate/shared', { method: 'POST', body: {} }))
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).request(root, '/v1/key/rotate/shared', { method: 'POST' })),
    )
    const newIds = results.map((r) => jsonOf<{ id: string }>(r).id)
    for (const env of [a, b]) {
      // Either server may have the key cached; a describe after the rotations it made itself is fresh,
      // and a decrypt of a ciphertext of the other server's version reloads.
      const fresh = jsonOf<{ ciphertext: string }>(await env.request(root, '/v1/key/encrypt/shared', { method: 'POST', body: { plaintext: 'aGk=' } }))
      for (const other of [a, b]) {
        const dec = await other.request(root, '/v1/key/decrypt/shared', { method: 'POST', body: { ciphertext: fresh.ciphertext } })
        assert.equal(jsonOf<{ plaintext: string }>(dec).plaintext, 'aGk=')
      }
      const dec = await env.request(root, '/v1/key/decrypt/shared', { method: 'POST', body: { ciphertext: before.ciphertext } })
      assert.equal(jsonOf<{ plaintext: string }>(dec).plaintext, before.plaintext)
    }
    const entry = JSON.parse((await a.readEntry('keys', 'shared'))?.toString('utf8') ?? '') as { versions: unknown[] }
    assert.equal(entry.versions.length, 9, 'one version per rotation plus the first, none lost')
    const d = jsonOf<Described>(await b.request(root, '/v1/key/describe/shared'))
    const listed = (d.versions ?? []).map((v) => v.id)
    assert.equal(new Set(listed).size, 9)
    for (const id of newIds) assert.ok(listed.includes(id), `rotation ${id} lost`)
  })

  test('deletes racing rotations on the other server: every kept deletion holds every version, none is lost', async () => {
    // A delete with retention copies the key, then removes it; a rotation landing in between
    // must end up in the kept copy (or be refused with 404 because the key is gone), never lost.
    const names = Array.from({ length: 24 }, (_, i) => `race-${i}`)
    const firstIds = new Map<string, string>()
    for (const name of names) {
      jsonOf(await a.request(root, `/v1/key/create/${name}`, { method: 'POST' }))
      firstIds.set(name, jsonOf<Described>(await a.request(root, `/v1/key/describe/${name}`)).id)
    }
    const rotatedIds = new Map<string, string[]>(names.map((n) => [n, []]))
    await Promise.all(
      names.flatMap((name, i) => {
        const [rotator, deleter] = i % 2 === 0 ? [a, b] : [b, a]
        const rotate = async (): Promise<void> => {
          const res = await rotator.request(root, `/v1/key/rotate/${name}`, { method: 'POST' })
          // After the delete won, a rotation finds no key; anything else must have been kept.
          if (res.status === 404) return assertError(res, 404, 'key does not exist')
          rotatedIds.get(name)?.push(jsonOf<{ id: string }>(res).id)
        }
        const remove = async (): Promise<void> => {
          assert.equal((await deleter.request(root, `/v1/key/delete/${name}`, { method: 'DELETE' })).status, 200)
        }
        return [rotate(), remove(), rotate(), rotate()]
      }),
    )
    let keptRotations = 0
    for (const name of names) {
      for (const env of [a, b]) assertError(await env.request(root, `/v1/key/describe/${name}`), 404, 'key does not exist')
      // One deletion kept per delete: a copy that lost the race was dropped again.
      // (The pattern is a prefix, as for /v1/key/list: race-1 also lists race-10...)
      const listed = ndjsonLines((await b.request(root, `/v1/key/deleted/${name}`)).text).filter((l) => l['name'] === name)
      assert.equal(listed.length, 1, `${name}: ${listed.length} kept deletions`)
      jsonOf(await b.request(root, `/v1/key/restore/${name}`, { method: 'POST' }))
      const d = jsonOf<Described>(await a.request(root, `/v1/key/describe/${name}`))
      const kept = d.versions === undefined ? [d.id] : d.versions.map((v) => v.id)
      const expected = [firstIds.get(name), ...(rotatedIds.get(name) ?? [])]
      assert.deepEqual([...kept].sort(), [...expected].sort(), `${name}: kept versions differ from the rotations that succeeded`)
      assert.equal(kept[0], firstIds.get(name), `${name}: the first version comes first`)
      keptRotations += kept.length - 1
    }
    // Not every rotation lost to its delete (else the race was never run).
    assert.ok(keptRotations > 0, 'no rotation succeeded before its delete')
    assert.deepEqual(await a.listEntries('deleted'), [], 'restore leaves no kept copy behind')
  })

  test('scheduled rotation by both servers adds one version per period, not one per server', async () => {
    jsonOf(await a.request(root, '/v1/key/create/sched-a', { method: 'POST' }))
    const versions = async (): Promise<Array<{ created_at?: string }>> => {
      const entry = JSON.parse((await a.readEntry('keys', 'sched-a'))?.toString('utf8') ?? '') as { versions?: Array<{ created_at?: string }> }
      return entry.versions ?? [{}]
    }
    await eventually('three versions', async () => (await versions()).length >= 3)
    const times = (await versions()).map((v) => Date.parse(v.created_at ?? ''))
    // A version is only added once the newest is a whole period old, checked inside the
    // compare-and-swap: two servers racing can never add two versions in one period.
    for (let i = 1; i < times.length; i++) {
      assert.ok((times[i] as number) - (times[i - 1] as number) >= 500, `versions ${i - 1} and ${i} are ${(times[i] as number) - (times[i - 1] as number)} ms apart`)
    }
    // Keys that match no rule are left alone.
    jsonOf(await a.request(root, '/v1/key/create/manual', { method: 'POST' }))
    const manual = await a.readEntry('keys', 'manual')
    assert.ok(manual !== undefined)
    await eventually('sched-a rotated once more', async () => (await versions()).length >= times.length + 1)
    assert.deepEqual(await a.readEntry('keys', 'manual'), manual)
  })
})

describe('KES key files (a KES key directory; on PostgreSQL its files as rows)', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    const dirs = ['v0.17.6', 'kes-unit-test'].map((d) => path.join(KES_KEY_FILES, d))
    if (storeKind() === 'fs') {
      // The KES key directories themselves, copied as they are.
      for (const dir of dirs) await cp(dir, path.join(env.dir, 'keys'), { recursive: true })
      await env.start(config(env))
    } else {
      // Each file as one row, as `openkes migrate` puts it there (once the server made the tables).
      await env.start(config(env))
      for (const dir of dirs) for (const name of await readdir(dir)) await env.putKeyEntry(name, await readFile(path.join(dir, name)))
    }
  })
  after(async () => {
    await env.dispose()
  })

  test('served files stay byte for byte as KES wrote them; only a rotated one is converted, and still opens its old ciphertexts', async () => {
    const expected = await readKesKeyFileVectors()
    const served = expected.filter((e) => e.file.startsWith('v0.17.6/') || e.file.startsWith('kes-unit-test/'))
    const originals = new Map<string, Buffer>()
    for (const e of served) originals.set(e.name, await readFile(path.join(KES_KEY_FILES, e.file)))
    const open = async (e: (typeof served)[number]): Promise<void> => {
      for (const s of [e.sample, e.raw_sample]) {
        if (s === undefined) continue
        const dec = await env.request(root, `/v1/key/decrypt/${e.name}`, { method: 'POST', body: { ciphertext: s.ciphertext, context: s.context } })
        assert.equal(jsonOf<{ plaintext: string }>(dec).plaintext, s.plaintext, e.file)
      }
    }
    for (const e of served) {
      await open(e)
      jsonOf(await env.request(root, `/v1/key/describe/${e.name}`))
      jsonOf(await env.request(root, `/v1/key/generate/${e.name}`, { method: 'POST', body: {} }))
    }
    for (const [name, bytes] of originals) assert.deepEqual(await env.readEntry('keys', name), bytes, `${name} changed`)

    const rotated = served.find((e) => e.name === 'ks-imported') ?? assert.fail('fixture ks-imported missing')
    jsonOf(await env.request(root, `/v1/key/rotate/${rotated.name}`, { method: 'POST' }))
    await open(rotated)
    for (const [name, bytes] of originals) {
      const now = await env.readEntry('keys', name)
      assert.ok(now !== undefined, name)
      if (name === rotated.name) assert.ok(!now.equals(bytes))
      else assert.ok(now.equals(bytes), `${name} changed`)
    }
  })
})
