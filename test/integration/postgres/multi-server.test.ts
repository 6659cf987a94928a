// Three OpenKES servers on one PostgreSQL database: what one does, the others see at once (or
// within a second, for what they had cached); creates race on the unique constraint; a
// database outage is served from the caches and recovered from without a restart; a killed
// LISTEN connection reconnects.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { TestPostgres } from '../../support/postgres.js'
import { TestEnv, makeClient, usePostgres } from '../harness.js'
import type { Response } from '../harness.js'

const db = await TestPostgres.start()
after(() => db.stop())
usePostgres(db)

const root = makeClient('root')
const app = makeClient('app')
const LIMIT = { timeout: 120_000 }

const config = (extra = ''): string => `admin:
  identity: ${root.identity}
cache:
  expiry:
    any: 5m
    unused: 5m
    offline: 1h
${extra}`

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
  const envs: TestEnv[] = []
  before(async () => {
    const first = await TestEnv.create()
    envs.push(first, await TestEnv.create({ sameStoreAs: first }), await TestEnv.create({ sameStoreAs: first }))
    for (const e of envs) await e.start(config())
  })
  after(async () => {
    for (const e of envs) await e.dispose()
  })
  const at = (i: number) => (): TestEnv => {
    const e = envs[i]
    if (e === undefined) throw new Error('servers not started')
    return e
  }
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
