// What a client sees when the key store fails, over the real API: an
// unreachable store is 503 `key store is unavailable`, any other failure 502
// `bad gateway: <what failed>`, the cause goes to the error log (one line), and
// a failure while authorizing refuses — it never lets a request through.
import assert from 'node:assert/strict'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { StoreError, StoreUnavailableError } from '../../src/keystore/keystore.js'
import type { TableName } from '../../src/keystore/keystore.js'
import { openFailingStore } from './failing-store.js'
import type { FailingStore, TableOp } from './failing-store.js'
import { FS_KEYSTORE, TestEnv, adminConfig, makeClient, serverPerSuite } from './harness.js'
import type { Client, RequestOptions } from './harness.js'

const root = makeClient('root')

const config = adminConfig(root.identity, FS_KEYSTORE)

const UNAVAILABLE = { message: 'key store is unavailable' }

/** The error-log lines written since `from`. */
function linesSince(env: TestEnv, from: number): string[] {
  return env.errorLines.slice(from)
}

describe('a failing store refuses authorization (fs store on disk)', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
  })
  after(async () => {
    await env.dispose()
  })

  // An identity bound to an API policy: authorizing it reads the identities
  // table and then the policies table of the store.
  async function bindAndRestart(client: Client, policy: string): Promise<void> {
    await env.start(config)
    try {
      const w = await env.request(root, `/v1/policy/write/${policy}`, { method: 'POST', body: { allow: ['/v1/key/list/*'] } })
      assert.equal(w.status, 200, w.text)
      const a = await env.request(root, `/v1/identity/assign/${policy}/${client.identity}`, { method: 'POST' })
      assert.equal(a.status, 200, a.text)
      // The binding works before the store breaks: this is what must stop working.
      assert.equal((await env.request(client, '/v1/key/list/*')).status, 200)
    } finally {
      await env.stop()
    }
  }

  test('an unreadable identity record (a directory in its place) is 502, not 200', async () => {
    const client = makeClient('bound-1')
    await bindAndRestart(client, 'fs-pol-1')
    const record = path.join(env.dir, 'keys', '.openkes', 'identities', client.identity)
    await rm(record)
    await mkdir(record)
    await env.start(config)
    try {
      const from = env.errorLines.length
      for (const http2 of [false, true]) {
        const res = await env.request(client, '/v1/key/list/*', { http2 })
        assert.equal(res.status, 502, res.text)
        assert.deepEqual(res.json, { message: 'bad gateway: failed to read identity' })
      }
      assert.ok(linesSince(env, from).some((l) => l.includes('keystore: failed to read identity')), env.errorLines.join(''))
    } finally {
      await env.stop()
    }
  })

  test('an unreadable policy record (a directory in its place) is 502, not 200', async () => {
    const client = makeClient('bound-2')
    await bindAndRestart(client, 'fs-pol-2')
    const record = path.join(env.dir, 'keys', '.openkes', 'policies', 'fs-pol-2')
    await rm(record)
    await mkdir(record)
    await env.start(config)
    try {
      const res = await env.request(client, '/v1/key/list/*')
      assert.equal(res.status, 502, res.text)
      assert.deepEqual(res.json, { message: 'bad gateway: failed to read policy' })
    } finally {
      await env.stop()
    }
  })

  test('a corrupt identity record is treated as unassigned: 403 and one error-log line', async () => {
    const client = makeClient('bound-3')
    await bindAndRestart(client, 'fs-pol-3')
    await writeFile(path.join(env.dir, 'keys', '.openkes', 'identities', client.identity), '{"policy": 42}')
    await env.start(config)
    try {
      const from = env.errorLines.length
      const res = await env.request(client, '/v1/key/list/*')
      assert.equal(res.status, 403)
      assert.deepEqual(res.json, { message: 'prohibited by policy' })
      const lines = linesSince(env, from)
      assert.equal(lines.length, 1, lines.join(''))
      assert.match(lines[0] ?? '', new RegExp(`keystore: identity '${client.identity}' is corrupt and is treated as unassigned`))
      // A corrupt record is no assignment: the listing leaves it out.
      const ids = await env.request(root, '/v1/identity/list/*')
      assert.equal(ids.status, 200)
      assert.equal(typeof ids.json, 'object')
      assert.ok(!Object.hasOwn(ids.json as object, client.identity), ids.text)
    } finally {
      await env.stop()
    }
  })

  test('a stored policy whose pattern no longer compiles grants nothing and is 502 to read', async () => {
    const client = makeClient('bound-4')
    await bindAndRestart(client, 'fs-pol-4')
    // Valid JSON, but an unclosed character class: the policy can't be compiled.
    await writeFile(
      path.join(env.dir, 'keys', '.openkes', 'policies', 'fs-pol-4'),
      JSON.stringify({ allow: ['/v1/key/list/*', '/v1/key/list/[a'], deny: [] }),
    )
    await env.start(config)
    try {
      const res = await env.request(client, '/v1/key/list/*')
      assert.equal(res.status, 403)
      assert.deepEqual(res.json, { message: 'prohibited by policy' })
      const read = await env.request(root, '/v1/policy/read/fs-pol-4')
      assert.equal(read.status, 502)
      assert.deepEqual(read.json, { message: 'bad gateway: failed to read policy' })
      assert.ok(env.errorLines.some((l) => l.includes("keystore: policy 'fs-pol-4' is corrupt")), env.errorLines.join(''))
    } finally {
      await env.stop()
    }
  })
})

describe('an unreachable fs store is 503 over the API', () => {
  const env = serverPerSuite(config)

  test('removing the store directory while the server runs: 503 for a key not cached', async () => {
    for (const name of ['gone-1', 'gone-2']) {
      assert.equal((await env().request(root, `/v1/key/create/${name}`, { method: 'POST' })).status, 200)
    }
    // gone-1 is read (and cached) before the store goes away; gone-2 is not.
    assert.equal((await env().request(root, '/v1/key/generate/gone-1', { method: 'POST', body: {} })).status, 200)
    await rm(path.join(env().dir, 'keys'), { recursive: true, force: true })
    const from = env().errorLines.length
    for (const http2 of [false, true]) {
      const res = await env().request(root, '/v1/key/generate/gone-2', { method: 'POST', body: {}, http2 })
      assert.equal(res.status, 503, res.text)
      assert.deepEqual(res.json, UNAVAILABLE)
    }
    assert.equal(linesSince(env(), from).filter((l) => l.includes("keystore: failed to read key 'gone-2'")).length, 2)
    const created = await env().request(root, '/v1/key/create/gone-3', { method: 'POST' })
    assert.equal(created.status, 503, created.text)
    assert.deepEqual(created.json, UNAVAILABLE)
    // What is cached still serves: the store is only asked on a miss.
    assert.equal((await env().request(root, '/v1/key/generate/gone-1', { method: 'POST', body: {} })).status, 200)
  })
})

interface FailureCase {
  readonly name: string
  readonly table: TableName
  readonly op: TableOp
  readonly target: string
  readonly opts: RequestOptions
  /** What the 502 says failed. */
  readonly what: string
  /** Prepares what the request needs (run before the failure is switched on). */
  readonly setup?: (env: TestEnv) => Promise<void>
}

const cases: FailureCase[] = [
  { name: 'key create', table: 'keys', op: 'create', target: '/v1/key/create/fc-k1', opts: { method: 'POST' }, what: 'failed to create key' },
  {
    name: 'key import',
    table: 'keys',
    op: 'create',
    target: '/v1/key/import/fc-k2',
    opts: { method: 'POST', body: { key: Buffer.alloc(32, 7).toString('base64'), cipher: 'AES256' } },
    what: 'failed to create key',
  },
  {
    name: 'key delete',
    table: 'keys',
    // With the default retention, a delete copies the key to 'deleted', then removes exactly
    // what it copied (deleteIf); a failure there leaves the key (and the copy: never neither).
    op: 'deleteIf',
    target: '/v1/key/delete/fc-k3',
    opts: { method: 'DELETE' },
    what: 'failed to delete key',
    setup: async (env) => void (await env.request(root, '/v1/key/create/fc-k3', { method: 'POST' })),
  },
  { name: 'key list', table: 'keys', op: 'list', target: '/v1/key/list/*', opts: {}, what: 'failed to list keys' },
  {
    name: 'key read (generate)',
    table: 'keys',
    op: 'get',
    target: '/v1/key/generate/fc-k4',
    opts: { method: 'POST', body: {} },
    what: 'failed to read key',
  },
  { name: 'policy write', table: 'policies', op: 'put', target: '/v1/policy/write/fc-p1', opts: { method: 'POST', body: { allow: ['/v1/key/list/*'] } }, what: 'failed to write policy' },
  { name: 'policy list', table: 'policies', op: 'list', target: '/v1/policy/list/*', opts: {}, what: 'failed to list policies' },
  {
    name: 'policy delete',
    table: 'policies',
    op: 'delete',
    target: '/v1/policy/delete/fc-p2',
    opts: { method: 'DELETE' },
    what: 'failed to delete policy',
    setup: async (env) => void (await env.request(root, '/v1/policy/write/fc-p2', { method: 'POST', body: { allow: [] } })),
  },
  { name: 'identity list', table: 'identities', op: 'list', target: '/v1/identity/list/*', opts: {}, what: 'failed to list identities' },
]

describe('store failures on every operation: 503 when unreachable, else 502', () => {
  let env: TestEnv
  let store: FailingStore
  before(async () => {
    env = await TestEnv.create()
    store = await openFailingStore(path.join(env.dir, 'keys'))
    await env.start(config, { store })
  })
  after(async () => {
    await env.dispose()
    await store.close()
  })

  for (const c of cases) {
    for (const kind of ['unavailable', 'error'] as const) {
      test(`${c.name}: ${kind === 'unavailable' ? 'unreachable store → 503' : 'store error → 502'}`, async () => {
        store.heal()
        await c.setup?.(env)
        const secret = 'cause-detail-for-the-log-only'
        store.fail(c.table, c.op, () =>
          kind === 'unavailable' ? new StoreUnavailableError(c.what, `db down: ${secret}`) : new StoreError(c.what, `disk broke: ${secret}`),
        )
        const from = env.errorLines.length
        try {
          const res = await env.request(root, c.target, c.opts)
          if (kind === 'unavailable') {
            assert.equal(res.status, 503, res.text)
            assert.deepEqual(res.json, UNAVAILABLE)
          } else {
            assert.equal(res.status, 502, res.text)
            assert.deepEqual(res.json, { message: `bad gateway: ${c.what}` })
          }
          // The client never sees the cause; the error log gets exactly one line with it.
          assert.ok(!res.text.includes(secret))
          const lines = linesSince(env, from)
          assert.equal(lines.length, 1, lines.join(''))
          assert.match(lines[0] ?? '', new RegExp(`keystore: ${c.what}.*${secret}`))
        } finally {
          store.heal()
        }
      })
    }
  }

  // Authorization of a policy-bound identity reads the identities table,
  // then the policies table. Whichever fails, the request is refused.
  const app = makeClient('fc-app')
  for (const table of ['identities', 'policies'] as const) {
    for (const kind of ['unavailable', 'error'] as const) {
      test(`authorizing a policy-bound identity while ${table}.get fails (${kind}) refuses, never 200`, async () => {
        store.heal()
        assert.equal((await env.request(root, '/v1/policy/write/fc-auth', { method: 'POST', body: { allow: ['/v1/key/list/*'] } })).status, 200)
        assert.equal((await env.request(root, `/v1/identity/assign/fc-auth/${app.identity}`, { method: 'POST' })).status, 200)
        assert.equal((await env.request(app, '/v1/key/list/*')).status, 200)
        const what = table === 'identities' ? 'failed to read identity' : 'failed to read policy'
        store.fail(table, 'get', () => (kind === 'unavailable' ? new StoreUnavailableError(what, 'down') : new StoreError(what, 'broken')))
        // What the server already read about the identity would hide the failure.
        env.server?.state.access.clearCache()
        try {
          for (const http2 of [false, true]) {
            const res = await env.request(app, '/v1/key/list/*', { http2 })
            if (kind === 'unavailable') {
              assert.equal(res.status, 503, res.text)
              assert.deepEqual(res.json, UNAVAILABLE)
            } else {
              assert.equal(res.status, 502, res.text)
              assert.deepEqual(res.json, { message: `bad gateway: ${what}` })
            }
          }
        } finally {
          store.heal()
        }
      })
    }
  }
})
