// Three OpenKES servers on one PostgreSQL database: what one does, the others see at once (or
// within a second, for what they had cached); creates race on the unique constraint; a
// database outage is served from the caches and recovered from without a restart; a killed
// LISTEN connection reconnects.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { TestPostgres } from '../../support/postgres.js'
import { adminConfig, makeClient, serversOnOneStore, usePostgres } from '../harness.js'
import type { Response, TestEnv } from '../harness.js'

const db = await TestPostgres.start()
after(() => db.stop())
usePostgres(db)

const root = makeClient('root')
const app = makeClient('app')
const LIMIT = { timeout: 120_000 }

const config = (extra = ''): string =>
  adminConfig(
    root.identity,
    `cache:
  expiry:
    any: 5m
    unused: 5m
    offline: 1h
${extra}`,
  )

const b64 = (s: string): string => Buffer.from(s).toString('base64')

/** Retries `probe` every 50 ms until `ok` accepts its answer; fails after `ms`. No timing is asserted beyond the bound. */
async function eventually(what: string, ms: number, probe: () => Promise<Response>, ok: (r: Response) => boolean): Promise<Response> {
  const deadline = performance.now() + ms
  for (;;) {
    const r = await probe()
    if (ok(r)) return r
    if (performance.now() > deadline) throw new Error(`${what}: still ${r.status} ${r.text} after ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('three servers on one database', LIMIT, () => {
  const { envs, at } = serversOnOneStore(3, config())
  const [a, b, c] = [at(0), at(1), at(2)]

  test('a key created on one is usable on the others at once; deleted on one, refused by the others within a second', async () => {
    assert.equal((await a().request(root, '/v1/key/create/shared-key', { method: 'POST' })).status, 200)
    const enc = await b().request(root, '/v1/key/encrypt/shared-key', { method: 'POST', body: { plaintext: b64('hello') } })
    assert.equal(enc.status, 200)
    const { ciphertext } = enc.json as { ciphertext: string }
    // c caches the key by using it.
    const dec = await c().request(root, '/v1/key/decrypt/shared-key', { method: 'POST', body: { ciphertext } })
    assert.deepEqual(dec.json, { plaintext: b64('hello') })

    assert.equal((await a().request(root, '/v1/key/delete/shared-key', { method: 'DELETE' })).status, 200)
    for (const e of [b(), c()]) {
      await eventually('delete seen', 1_000, () => e.request(root, '/v1/key/decrypt/shared-key', { method: 'POST', body: { ciphertext } }), (r) => r.status === 404)
    }
  })

  test('policy and assignment changes propagate the same way', async () => {
    assert.equal((await a().request(root, '/v1/key/create/app-key', { method: 'POST' })).status, 200)
    await a().request(root, '/v1/policy/write/app-pol', { method: 'POST', body: { allow: ['/v1/key/generate/app-*'] } })
    assert.equal((await b().request(root, `/v1/identity/assign/app-pol/${app.identity}`, { method: 'POST' })).status, 200)
    const generate = (e: TestEnv): Promise<Response> => e.request(app, '/v1/key/generate/app-key', { method: 'POST', body: {} })
    for (const e of envs) await eventually('grant seen', 1_000, () => generate(e), (r) => r.status === 200)
    // Narrow the policy on c: a and b refuse within a second.
    await c().request(root, '/v1/policy/write/app-pol', { method: 'POST', body: { allow: ['/v1/key/list/*'] } })
    for (const e of envs) await eventually('policy change seen', 1_000, () => generate(e), (r) => r.status === 403)
    // Widen again, then take the assignment away on a.
    await c().request(root, '/v1/policy/write/app-pol', { method: 'POST', body: { allow: ['/v1/key/generate/app-*'] } })
    for (const e of envs) await eventually('policy change seen', 1_000, () => generate(e), (r) => r.status === 200)
    assert.equal((await a().request(root, `/v1/identity/forget/${app.identity}`, { method: 'DELETE' })).status, 200)
    for (const e of envs) await eventually('assignment removal seen', 1_000, () => generate(e), (r) => r.status === 403)
  })

  test('50 concurrent creates of one name over three servers: exactly one 200, the rest 400 key does already exist', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (envs[i % 3] as TestEnv).request(root, '/v1/key/create/race-key', { method: 'POST', http2: i % 2 === 0 })),
    )
    const statuses = results.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 200).length, 1, statuses.join(','))
    for (const r of results) if (r.status !== 200) assert.deepEqual(r.json, { message: 'key does already exist' })
    // The one that won is the one every server uses.
    const enc = await a().request(root, '/v1/key/encrypt/race-key', { method: 'POST', body: { plaintext: b64('x') } })
    const { ciphertext } = enc.json as { ciphertext: string }
    for (const e of envs) assert.equal((await e.request(root, '/v1/key/decrypt/race-key', { method: 'POST', body: { ciphertext } })).status, 200)
  })

  test('the LISTEN connections killed on their own: servers reconnect and stay coherent', async () => {
    assert.equal((await a().request(root, '/v1/key/create/listen-key', { method: 'POST' })).status, 200)
    const enc = await b().request(root, '/v1/key/encrypt/listen-key', { method: 'POST', body: { plaintext: b64('y') } })
    const { ciphertext } = enc.json as { ciphertext: string }
    const killed = await db.admin((client) =>
      client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'openkes-listen' AND pid <> pg_backend_pid()"),
    )
    assert.ok((killed.rowCount ?? 0) >= 3)
    // Reconnected: each server logs it, and then a delete on a is heard by b.
    for (const e of envs) {
      await eventually('reconnect logged', 10_000, async () => ({ status: e.errorLines.some((l) => l.includes('change-feed connection') && l.includes('restored')) ? 200 : 0, headers: {}, text: '', json: undefined }), (r) => r.status === 200)
    }
    assert.equal((await b().request(root, '/v1/key/decrypt/listen-key', { method: 'POST', body: { ciphertext } })).status, 200)
    assert.equal((await a().request(root, '/v1/key/delete/listen-key', { method: 'DELETE' })).status, 200)
    await eventually('delete seen after reconnect', 1_000, () => b().request(root, '/v1/key/decrypt/listen-key', { method: 'POST', body: { ciphertext } }), (r) => r.status === 404)
  })

  test('database down: cached keys keep working, writes are 503, status and ready say so; back up: writes work again without a restart', async () => {
    await a().request(root, '/v1/policy/write/dec-pol', { method: 'POST', body: { allow: ['/v1/key/decrypt/outage-*', '/v1/key/generate/outage-*'] } })
    await a().request(root, `/v1/identity/assign/dec-pol/${app.identity}`, { method: 'POST' })
    assert.equal((await a().request(root, '/v1/key/create/outage-key', { method: 'POST' })).status, 200)
    const ciphertexts: string[] = []
    for (const e of envs) {
      const g = await eventually('grant seen', 1_000, () => e.request(app, '/v1/key/generate/outage-key', { method: 'POST', body: {} }), (r) => r.status === 200)
      ciphertexts.push((g.json as { ciphertext: string }).ciphertext)
    }

    await db.halt()
    try {
      for (const e of envs) {
        // The grant cache (1 s) expires during the outage: the offline copy keeps the app working.
        for (const ct of ciphertexts) {
          const dec = await e.request(app, '/v1/key/decrypt/outage-key', { method: 'POST', body: { ciphertext: ct } })
          assert.equal(dec.status, 200, dec.text)
        }
        const create = await e.request(root, '/v1/key/create/during-outage', { method: 'POST' })
        assert.deepEqual([create.status, create.json], [503, { message: 'key store is unavailable' }])
        const pol = await e.request(root, '/v1/policy/write/outage-pol', { method: 'POST', body: { allow: [] } })
        assert.equal(pol.status, 503)
        // A key never read before is not "missing": the store could not be asked.
        const unknown = await e.request(root, '/v1/key/generate/never-seen', { method: 'POST', body: {} })
        assert.deepEqual([unknown.status, unknown.json], [503, { message: 'key store is unavailable' }])
        const status = (await e.request(root, '/v1/status')).json as Record<string, unknown>
        assert.equal(status['keystore_unreachable'], true)
        assert.equal((await e.request(root, '/v1/ready')).status, 503)
      }
      // Still cached after the grant TTL has passed for certain.
      await new Promise((resolve) => setTimeout(resolve, 1_100))
      const late = await b().request(app, '/v1/key/decrypt/outage-key', { method: 'POST', body: { ciphertext: ciphertexts[0] } })
      assert.equal(late.status, 200, late.text)
      for (const e of envs) assert.ok(e.errorLines.some((l) => l.includes('keystore:')), 'the outage is in the error log')
    } finally {
      await db.resume()
    }
    for (const e of envs) {
      await eventually('writes work again', 15_000, () => e.request(root, `/v1/key/create/after-outage-${e.port}`, { method: 'POST' }), (r) => r.status === 200)
      assert.equal((await e.request(root, '/v1/ready')).status, 200)
    }
    // Nothing half-written: the refused create is not there, on any server.
    for (const e of envs) {
      const r = await e.request(root, '/v1/key/describe/during-outage')
      assert.equal(r.status, 404)
    }
    const names = await db.admin((client) => client.query(`SELECT name FROM "${a().schema}".keys WHERE name = 'during-outage'`))
    assert.equal(names.rowCount, 0)
  })
})

/** The key id a JSON ciphertext names (generate/encrypt answer in KES's JSON format). */
function keyIdOf(ciphertext: string): string {
  return (JSON.parse(Buffer.from(ciphertext, 'base64').toString('utf8')) as { id: string }).id
}

interface DescribedVersions {
  id: string
  versions?: Array<{ id: string }>
}

describe('three servers on one database: key lifecycle', LIMIT, () => {
  // Keys stay cached for 5 minutes: what a server sees within a second it heard on the change feed.
  const { envs, at } = serversOnOneStore(3, config())
  const [a, b, c] = [at(0), at(1), at(2)]
  const generate = (e: TestEnv, name: string): Promise<Response> => e.request(root, `/v1/key/generate/${name}`, { method: 'POST', body: {} })
  const decrypt = (e: TestEnv, name: string, ciphertext: string): Promise<Response> =>
    e.request(root, `/v1/key/decrypt/${name}`, { method: 'POST', body: { ciphertext } })

  test('a rotation on one server: the others generate with the new version within a second', async () => {
    assert.equal((await a().request(root, '/v1/key/create/rot-seen', { method: 'POST' })).status, 200)
    const old: string[] = []
    for (const e of [b(), c()]) {
      const g = await generate(e, 'rot-seen')
      assert.equal(g.status, 200, g.text)
      old.push((g.json as { ciphertext: string }).ciphertext)
    }
    const oldId = keyIdOf(old[0] as string)
    const rotated = await a().request(root, '/v1/key/rotate/rot-seen', { method: 'POST' })
    assert.equal(rotated.status, 200, rotated.text)
    const newId = (rotated.json as { id: string }).id
    assert.notEqual(newId, oldId)
    for (const e of [b(), c()]) {
      await eventually('new version used', 1_000, () => generate(e, 'rot-seen'), (r) => r.status === 200 && keyIdOf((r.json as { ciphertext: string }).ciphertext) === newId)
      const d = (await e.request(root, '/v1/key/describe/rot-seen')).json as DescribedVersions
      assert.deepEqual(d.versions?.map((v) => v.id), [oldId, newId])
      // What was sealed before the rotation still opens everywhere.
      for (const ct of old) assert.equal((await decrypt(e, 'rot-seen', ct)).status, 200)
    }
  })

  test('concurrent rotations on three servers: one version list, the same on every server', async () => {
    assert.equal((await a().request(root, '/v1/key/create/rot-race', { method: 'POST' })).status, 200)
    for (const e of envs) assert.equal((await generate(e, 'rot-race')).status, 200)
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (envs[i % 3] as TestEnv).request(root, '/v1/key/rotate/rot-race', { method: 'POST', http2: i % 2 === 0 })),
    )
    for (const r of results) assert.equal(r.status, 200, r.text)
    const newIds = results.map((r) => (r.json as { id: string }).id)
    assert.equal(new Set(newIds).size, 12)
    const row = JSON.parse((await a().readEntry('keys', 'rot-race'))?.toString('utf8') ?? '') as { versions: unknown[] }
    assert.equal(row.versions.length, 13, 'one version per rotation plus the first, none lost')
    let agreed: string[] | undefined
    for (const e of envs) {
      const r = await eventually(
        'all versions seen',
        1_000,
        () => e.request(root, '/v1/key/describe/rot-race'),
        (res) => res.status === 200 && ((res.json as DescribedVersions).versions ?? []).length === 13,
      )
      const ids = ((r.json as DescribedVersions).versions ?? []).map((v) => v.id)
      for (const id of newIds) assert.ok(ids.includes(id), `rotation ${id} lost`)
      agreed ??= ids
      assert.deepEqual(ids, agreed, 'every server lists the versions in the same order')
      const g = await generate(e, 'rot-race')
      assert.equal(keyIdOf((g.json as { ciphertext: string }).ciphertext), agreed.at(-1), 'generate uses the newest version')
    }
  })

  test('deleted on one, refused by the others within a second; the deleted list is the same everywhere; restored on another, usable everywhere', async () => {
    assert.equal((await a().request(root, '/v1/key/create/undo-key', { method: 'POST' })).status, 200)
    const sealed: string[] = []
    for (const e of envs) sealed.push(((await generate(e, 'undo-key')).json as { ciphertext: string }).ciphertext)

    assert.equal((await a().request(root, '/v1/key/delete/undo-key', { method: 'DELETE' })).status, 200)
    for (const e of [b(), c()]) await eventually('delete seen', 1_000, () => decrypt(e, 'undo-key', sealed[0] as string), (r) => r.status === 404)
    const listings = await Promise.all(envs.map(async (e) => (await e.request(root, '/v1/key/deleted/undo-key')).text))
    assert.equal(listings[1], listings[0])
    assert.equal(listings[2], listings[0])
    assert.match(listings[0] as string, /"name":"undo-key"/)

    assert.equal((await b().request(root, '/v1/key/restore/undo-key', { method: 'POST' })).status, 200)
    for (const e of envs) {
      for (const ct of sealed) await eventually('restore seen', 1_000, () => decrypt(e, 'undo-key', ct), (r) => r.status === 200)
      assert.doesNotMatch((await e.request(root, '/v1/key/deleted/undo-key')).text, /"name":"undo-key"/)
    }
    // A second restore, on any server, finds nothing left to restore.
    const again = await c().request(root, '/v1/key/restore/undo-key', { method: 'POST' })
    assert.deepEqual([again.status, again.json], [404, { message: 'deleted key does not exist' }])
  })

  test('the same deletion restored on three servers at once: one restore wins, the key is there once', async () => {
    assert.equal((await a().request(root, '/v1/key/create/twice', { method: 'POST' })).status, 200)
    const ct = ((await generate(b(), 'twice')).json as { ciphertext: string }).ciphertext
    assert.equal((await c().request(root, '/v1/key/delete/twice', { method: 'DELETE' })).status, 200)
    const results = await Promise.all(envs.map((e) => e.request(root, '/v1/key/restore/twice', { method: 'POST' })))
    const statuses = results.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 200).length, 1, statuses.join(','))
    // The losers found the key back already (409) or the deletion gone (404); nothing was half-done.
    for (const s of statuses) assert.ok([200, 404, 409].includes(s), statuses.join(','))
    for (const e of envs) await eventually('restored key usable', 1_000, () => decrypt(e, 'twice', ct), (r) => r.status === 200)
    // The restored deletion is no longer kept.
    for (const id of await a().listEntries('deleted')) {
      assert.ok(!((await a().readEntry('deleted', id))?.toString('utf8') ?? '').includes('"name":"twice"'), 'deletion still kept')
    }
  })

  // Each server copies the key before removing it; only the one whose compare-and-delete
  // (Table.deleteIf) wins keeps its copy, so one deletion is kept, not one per server.
  test('one key deleted on three servers at once: one deletion kept, with every version', async () => {
    for (let i = 0; i < 5; i++) {
      const name = `del-race-${i}`
      assert.equal((await a().request(root, `/v1/key/create/${name}`, { method: 'POST' })).status, 200)
      assert.equal((await b().request(root, `/v1/key/rotate/${name}`, { method: 'POST' })).status, 200)
      const results = await Promise.all(envs.map((e) => e.request(root, `/v1/key/delete/${name}`, { method: 'DELETE' })))
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200])
      for (const e of envs) {
        const kept = ndjsonNames((await e.request(root, `/v1/key/deleted/${name}`)).text).filter((n) => n === name)
        assert.equal(kept.length, 1, `${name}: ${kept.length} deletions kept`)
      }
      assert.equal((await c().request(root, `/v1/key/restore/${name}`, { method: 'POST' })).status, 200)
      const d = (await a().request(root, `/v1/key/describe/${name}`)).json as DescribedVersions
      assert.equal(d.versions?.length, 2)
    }
  })

  test('purged on one server: gone on every server', async () => {
    assert.equal((await a().request(root, '/v1/key/create/purge-key', { method: 'POST' })).status, 200)
    const ct = ((await generate(c(), 'purge-key')).json as { ciphertext: string }).ciphertext
    assert.equal((await b().request(root, '/v1/key/delete/purge-key', { method: 'DELETE' })).status, 200)
    assert.equal((await c().request(root, '/v1/key/purge/purge-key', { method: 'POST' })).status, 200)
    for (const e of envs) {
      assert.doesNotMatch((await e.request(root, '/v1/key/deleted/*')).text, /"name":"purge-key"/)
      const restore = await e.request(root, '/v1/key/restore/purge-key', { method: 'POST' })
      assert.deepEqual([restore.status, restore.json], [404, { message: 'deleted key does not exist' }])
      await eventually('purge seen', 1_000, () => decrypt(e, 'purge-key', ct), (r) => r.status === 404)
    }
  })
})

describe('three servers on one database: scheduled rotation and retention run by all, done once', LIMIT, () => {
  const PERIOD_MS = 600
  const lifecycle = `rotation:\n  - pattern: sched-*\n    every: ${PERIOD_MS}ms\ndeleted_keys:\n  retention: 400ms\n`
  const { envs, at } = serversOnOneStore(3, config(lifecycle))
  const first = at(0)

  test('scheduled rotation adds one version per period, not one per server', async () => {
    assert.equal((await first().request(root, '/v1/key/create/sched-key', { method: 'POST' })).status, 200)
    const times = async (): Promise<number[]> => {
      const entry = JSON.parse((await first().readEntry('keys', 'sched-key'))?.toString('utf8') ?? '{}') as { versions?: Array<{ created_at?: string }> }
      return (entry.versions ?? [{}]).map((v) => Date.parse(v.created_at ?? ''))
    }
    await until('three versions', 15_000, async () => (await times()).length >= 3)
    const t = await times()
    for (let i = 1; i < t.length; i++) {
      assert.ok((t[i] as number) - (t[i - 1] as number) >= PERIOD_MS, `versions ${i - 1} and ${i} are ${(t[i] as number) - (t[i - 1] as number)} ms apart`)
    }
    // Every server uses the newest version without waiting for its cache to expire.
    const newest = await first().request(root, '/v1/key/describe/sched-key')
    const newestIds = ((newest.json as DescribedVersions).versions ?? []).map((v) => v.id)
    assert.ok(newestIds.length >= 3)
    for (const e of envs) {
      const d = (await e.request(root, '/v1/key/describe/sched-key')).json as DescribedVersions
      const ids = (d.versions ?? []).map((v) => v.id)
      assert.deepEqual(ids.slice(0, newestIds.length), newestIds, 'every server lists the same versions')
    }
  })

  test('expired deletions are purged by whichever server gets there first, without errors on the others', async () => {
    for (let i = 0; i < 6; i++) {
      const e = envs[i % 3] as TestEnv
      assert.equal((await e.request(root, `/v1/key/create/expire-${i}`, { method: 'POST' })).status, 200)
      assert.equal((await e.request(root, `/v1/key/delete/expire-${i}`, { method: 'DELETE' })).status, 200)
    }
    await until('all purged', 15_000, async () => (await first().listEntries('deleted')).length === 0)
    for (const e of envs) {
      assert.equal(ndjsonNames((await e.request(root, '/v1/key/deleted/*')).text).length, 0)
      assert.deepEqual(e.errorLines.filter((l) => /purge|rotation/.test(l)), [])
    }
  })
})

/** Polls `check` every 50 ms until it holds; fails after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not reached after ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function ndjsonNames(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { name?: unknown }).name)
    .filter((n): n is string => typeof n === 'string')
}
