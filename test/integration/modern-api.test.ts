// The current-client API (KES 2023+, as kes-go v0.2 calls it) beside the seed API, over real
// mutual TLS: exact JSON shapes and statuses, authorization, the config's `api:` section and
// an unreachable key store.
import assert from 'node:assert/strict'
import { createHash, createHmac, hkdfSync } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { goArch, goOs } from '../../src/api/go-platform.js'
import { routes } from '../../src/api/routes.js'
import { createMemStore } from '../../src/keystore/mem/mem-store.js'
import type { KeyStore } from '../../src/keystore/keystore.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../support/kes-key-files.js'
import { app, nopol, ops, other, root } from './fixtures.js'
import { TestEnv, makeClient, serverPerSuite } from './harness.js'
import type { Client, Response } from './harness.js'
import { TraceReader } from './trace.js'

// Guards every test against hanging; no assertion depends on it.
const LIMIT = { timeout: 30_000 }

const CONFIG = `admin:
  identity: ${root.identity}
policy:
  my-app:
    allow:
    - /v1/key/create/my-*
    - /v1/key/describe/my-*
    - /v1/key/hmac/my-*
    - /v1/key/generate/my-*
    deny:
    - /v1/key/hmac/my-secret*
    identities:
    - ${app.identity}
  probe:
    allow:
    - /v1/status
    - /v1/ready
    - /v1/api
    - /v1/metrics
    - /v1/policy/describe/*
    - /v1/identity/describe/*
    - /v1/log/audit
    - /v1/log/error
    identities:
    - ${ops.identity}
keystore:
  fs:
    path: ./keys
`

const IMPORTED_KEY = Buffer.alloc(32).fill(0x5a)
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64')

function assertError(res: Response, status: number, message: string): void {
  assert.equal(res.status, status, `status of ${res.text}`)
  assert.deepEqual(res.json, { message })
  assert.match(String(res.headers['content-type']), /^application\/json/)
}

function assertJson(res: Response, want: unknown): void {
  assert.equal(res.status, 200, res.text)
  assert.equal(res.headers['content-type'], 'application/json')
  assert.deepEqual(res.json, want)
}

/** The HMAC key OpenKES derives for a key file without one (docs/api.md). */
function derivedHmacKey(master: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), Buffer.from('OpenKES HMAC-SHA256 key v1'), 32))
}

function hmacB64(key: Buffer, message: string): string {
  return createHmac('sha256', key).update(message).digest('base64')
}

/** Rejects if `p` has not settled within `ms` (a hang guard for stream reads, not a timing check). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)
  })
  return Promise.race([p, guard]).finally(() => clearTimeout(timer))
}

for (const http2 of [false, true]) {
  describe(`current-client API over ${http2 ? 'HTTP/2' : 'HTTP/1.1'}`, LIMIT, () => {
    let env: TestEnv
    const call = (client: Client, method: string, target: string, body?: string | object): Promise<Response> =>
      env.request(client, target, { method, body, http2 })

    before(async () => {
      env = await TestEnv.create()
      await env.start(CONFIG)
      const imported = await call(root, 'POST', '/v1/key/import/my-imported', { key: b64(IMPORTED_KEY), cipher: 'ChaCha20' })
      assert.equal(imported.status, 200, imported.text)
    })
    after(async () => {
      await env.dispose()
    })

    test('GET /v1/status reports the server and its key store', async () => {
      const res = await call(root, 'GET', '/v1/status')
      assert.equal(res.status, 200)
      assert.equal(res.headers['content-type'], 'application/json')
      const s = res.json as Record<string, unknown>
      assert.deepEqual(Object.keys(s), [
        'version',
        'os',
        'arch',
        'uptime',
        'num_cpu',
        'num_cpu_used',
        'mem_heap_used',
        'mem_stack_used',
        'keystore_latency',
      ])
      assert.equal(s['version'], env.server?.state.version)
      assert.equal(s['os'], goOs(process.platform))
      assert.equal(s['arch'], goArch(process.arch))
      assert.ok(s['os'] !== 'win32' && s['arch'] !== 'x64')
      for (const field of ['uptime', 'num_cpu', 'num_cpu_used', 'mem_heap_used', 'mem_stack_used', 'keystore_latency']) {
        assert.ok(Number.isSafeInteger(s[field]), `${field} is an integer: ${String(s[field])}`)
      }
      assert.ok((s['num_cpu'] as number) >= 1)
      assert.ok((s['num_cpu_used'] as number) >= 1)
      assert.ok((s['mem_heap_used'] as number) > 0)
      assert.ok((s['keystore_latency'] as number) >= 1)
      assert.ok((s['uptime'] as number) >= 0)
    })

    test('GET /v1/ready is 200 with an empty body while the key store is reachable', async () => {
      const res = await call(root, 'GET', '/v1/ready')
      assert.equal(res.status, 200)
      assert.equal(res.text, '')
    })

    test('GET /v1/api lists the route table the router serves', async () => {
      const res = await call(root, 'GET', '/v1/api')
      assert.equal(res.status, 200)
      assert.equal(res.headers['content-type'], 'application/json')
      const apis = res.json as Array<{ method: string; path: string; max_body: number; timeout: number }>
      assert.deepEqual(
        apis,
        routes.map((r) => ({
          method: r.methods[0],
          path: r.params.length > 0 ? `${r.path}/` : r.path,
          max_body: r.maxBodyBytes,
          timeout: r.timeoutMs / 1000,
        })),
      )
      // Literal rows, as kes-go reads them.
      assert.deepEqual(apis.find((a) => a.path === '/v1/key/describe/'), { method: 'GET', path: '/v1/key/describe/', max_body: 0, timeout: 15 })
      assert.deepEqual(apis.find((a) => a.path === '/v1/key/hmac/'), { method: 'POST', path: '/v1/key/hmac/', max_body: 1048576, timeout: 15 })
      assert.deepEqual(apis.find((a) => a.path === '/v1/log/audit'), { method: 'GET', path: '/v1/log/audit', max_body: 0, timeout: 0 })
      assert.deepEqual(apis.find((a) => a.path === '/v1/identity/self/describe'), {
        method: 'GET',
        path: '/v1/identity/self/describe',
        max_body: 0,
        timeout: 15,
      })
      // Every listed API is served: never 404 (streams are not opened here).
      for (const a of apis) {
        if (a.timeout === 0) continue
        const res = await call(root, a.method === 'GET' ? 'GET' : 'PATCH', a.path)
        assert.notEqual(res.status, 404, `${a.path}: ${res.text}`)
      }
    })

    test('GET /v1/key/describe/:name shows the key id that its ciphertexts carry', async () => {
      const res = await call(root, 'GET', '/v1/key/describe/my-imported')
      const body = res.json as Record<string, string>
      assert.equal(res.status, 200)
      assert.deepEqual(Object.keys(body), ['name', 'id', 'algorithm', 'created_at', 'created_by'])
      const id = createHash('sha256').update(IMPORTED_KEY).digest().subarray(0, 16).toString('hex')
      assert.deepEqual(body, { name: 'my-imported', id, algorithm: 'ChaCha20', created_at: body['created_at'], created_by: root.identity })
      assert.match(body['created_at'] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
      const enc = await call(root, 'POST', '/v1/key/encrypt/my-imported', { plaintext: b64('x') })
      const ciphertext = JSON.parse(Buffer.from((enc.json as { ciphertext: string }).ciphertext, 'base64').toString()) as { id: string }
      assert.equal(ciphertext.id, id)
    })

    test('a new key is described as AES256', async () => {
      assert.equal((await call(root, 'POST', '/v1/key/create/my-new')).status, 200)
      const body = (await call(root, 'GET', '/v1/key/describe/my-new')).json as Record<string, string>
      assert.equal(body['algorithm'], 'AES256')
      assert.match(body['id'] ?? '', /^[0-9a-f]{32}$/)
    })

    test('a KES key file without creation data is described without created_at / created_by', async () => {
      await env.putKeyEntry('old-key', await readFile(path.join(KES_KEY_FILES, 'v0.17.6', 'ks-imported')))
      const v = (await readKesKeyFileVectors()).find((e) => e.file === 'v0.17.6/ks-imported')
      const id = createHash('sha256').update(Buffer.from(v?.key ?? '', 'base64')).digest().toString('hex', 0, 16)
      assertJson(await call(root, 'GET', '/v1/key/describe/old-key'), { name: 'old-key', id, algorithm: 'AES256' })
    })

    test('describe of a missing key is 404, of a bad name 400', async () => {
      assertError(await call(root, 'GET', '/v1/key/describe/missing'), 404, 'key does not exist')
      assertError(await call(root, 'GET', '/v1/key/describe/.bad'), 400, 'invalid key name')
      assertError(await call(root, 'POST', '/v1/key/describe/my-imported'), 405, 'Method Not Allowed')
    })

    test('PUT and POST /v1/key/hmac/:name answer the same HMAC-SHA256 under the derived key', async () => {
      const want = hmacB64(derivedHmacKey(IMPORTED_KEY), 'hello')
      assertJson(await call(root, 'PUT', '/v1/key/hmac/my-imported', { message: b64('hello') }), { hmac: want })
      assertJson(await call(root, 'POST', '/v1/key/hmac/my-imported', { message: b64('hello') }), { hmac: want })
      assertJson(await call(app, 'PUT', '/v1/key/hmac/my-imported', { message: b64('hello') }), { hmac: want })
      assert.notDeepEqual((await call(root, 'PUT', '/v1/key/hmac/my-imported', { message: b64('hellp') })).json, { hmac: want })
    })

    test('hmac of a missing or null message is the HMAC of the empty message', async () => {
      const want = { hmac: hmacB64(derivedHmacKey(IMPORTED_KEY), '') }
      assertJson(await call(root, 'PUT', '/v1/key/hmac/my-imported', { message: null }), want)
      assertJson(await call(root, 'PUT', '/v1/key/hmac/my-imported', {}), want)
      assertJson(await call(root, 'PUT', '/v1/key/hmac/my-imported'), want)
    })

    test('hmac refuses bad bodies and missing keys', async () => {
      assertError(await call(root, 'PUT', '/v1/key/hmac/my-imported', { message: 'not base64!' }), 400, "invalid json: 'message' is not valid base64")
      assertError(await call(root, 'PUT', '/v1/key/hmac/my-imported', { message: 1 }), 400, "invalid json: 'message' must be a base64 string")
      assertError(await call(root, 'PUT', '/v1/key/hmac/my-imported', '{'), 400, 'invalid json')
      assertError(await call(root, 'PUT', '/v1/key/hmac/missing', { message: b64('x') }), 404, 'key does not exist')
      assertError(await call(root, 'GET', '/v1/key/hmac/my-imported'), 405, 'Method Not Allowed')
    })

    test('GET /v1/policy/describe/:name: config policies have no times, API policies do', async () => {
      assertJson(await call(root, 'GET', '/v1/policy/describe/my-app'), { name: 'my-app' })
      assert.equal((await call(root, 'POST', '/v1/policy/write/written', { allow: ['/v1/key/list/*'] })).status, 200)
      const res = await call(ops, 'GET', '/v1/policy/describe/written')
      const body = res.json as Record<string, string>
      assertJson(res, { name: 'written', created_at: body['created_at'], created_by: root.identity })
      assert.match(body['created_at'] ?? '', /^\d{4}-\d\d-\d\dT/)
      assertError(await call(root, 'GET', '/v1/policy/describe/missing'), 404, 'policy does not exist')
      assertError(await call(root, 'GET', '/v1/policy/describe/.a'), 400, 'invalid policy name')
    })

    test('GET /v1/identity/describe/:identity', async () => {
      assertJson(await call(ops, 'GET', `/v1/identity/describe/${root.identity}`), { admin: true, policy: '' })
      assertJson(await call(ops, 'GET', `/v1/identity/describe/${app.identity}`), { policy: 'my-app' })
      assert.equal((await call(root, 'POST', '/v1/policy/write/for-other', { allow: ['/v1/key/list/*'], deny: ['/v1/key/list/x'] })).status, 200)
      assert.equal((await call(root, 'POST', `/v1/identity/assign/for-other/${other.identity}`)).status, 200)
      const res = await call(ops, 'GET', `/v1/identity/describe/${other.identity}`)
      const body = res.json as Record<string, string>
      assertJson(res, { policy: 'for-other', created_at: body['created_at'], created_by: root.identity })
      assertError(await call(ops, 'GET', `/v1/identity/describe/${nopol.identity}`), 404, 'identity does not exist')
      assertError(await call(ops, 'GET', '/v1/identity/describe/xyz'), 400, 'invalid identity')
    })

    test('GET /v1/identity/self/describe tells every identity who it is', async () => {
      assertJson(await call(root, 'GET', '/v1/identity/self/describe'), { identity: root.identity, admin: true })
      assertJson(await call(app, 'GET', '/v1/identity/self/describe'), {
        identity: app.identity,
        policy: 'my-app',
        allow: { '/v1/key/create/my-*': {}, '/v1/key/describe/my-*': {}, '/v1/key/hmac/my-*': {}, '/v1/key/generate/my-*': {} },
        deny: { '/v1/key/hmac/my-secret*': {} },
      })
      assertJson(await call(nopol, 'GET', '/v1/identity/self/describe'), { identity: nopol.identity, policy: '' })
      assert.equal((await call(root, 'POST', '/v1/policy/write/for-self', { allow: ['/v1/key/list/*'] })).status, 200)
      const selfOther = makeSelfClient()
      assert.equal((await call(root, 'POST', `/v1/identity/assign/for-self/${selfOther.identity}`)).status, 200)
      const res = await call(selfOther, 'GET', '/v1/identity/self/describe')
      const body = res.json as Record<string, string>
      assertJson(res, {
        identity: selfOther.identity,
        policy: 'for-self',
        allow: { '/v1/key/list/*': {} },
        deny: {},
        created_at: body['created_at'],
        created_by: root.identity,
      })
    })

    test('GET /v1/log/audit and /v1/log/error are the trace streams under their current names', async () => {
      for (const [who, p] of [
        [root, '/v1/log/audit'],
        [ops, '/v1/log/audit'],
      ] as const) {
        const reader = await TraceReader.open(env, who, p)
        try {
          assert.equal(reader.status, 200)
          assert.equal(reader.headers['content-type'], 'application/x-ndjson')
          await call(nopol, 'GET', '/version')
          const lines = await within(reader.waitForLines(2), 10_000, p)
          const paths = lines.map((l) => (JSON.parse(l) as { request: { path: string } }).request.path)
          assert.ok(paths.includes('/version'), paths.join())
        } finally {
          reader.close()
        }
      }
      for (const p of ['/v1/log/error', '/v1/log/error/trace', '/v1/log/audit/trace']) {
        const reader = await TraceReader.open(env, root, p)
        try {
          assert.equal(reader.status, 200)
          assert.equal(reader.headers['content-type'], 'application/x-ndjson')
        } finally {
          reader.close()
        }
      }
      assertError(await call(root, 'GET', '/v1/log/audit/other'), 404, 'not found')
      assertError(await call(root, 'GET', '/v1/log/audit/trace/x'), 404, 'not found')
    })
  })
}

let selfClients = 0
/** A fresh identity per call: assignments are global to the server under test. */
function makeSelfClient(): Client {
  return makeClient(`self-${selfClients++}`)
}

describe('authorization of the current-client API', LIMIT, () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(CONFIG)
    for (const name of ['my-key', 'my-secret', 'other-key']) {
      assert.equal((await env.request(root, `/v1/key/create/${name}`, { method: 'POST' })).status, 200)
    }
  })
  after(async () => {
    await env.dispose()
  })

  // Which of admin (root), app (my-app: my-* keys, hmac my-secret* denied), ops (probe) and
  // nopol may call what. Authorization comes before any lookup: a refused caller gets 403
  // even for a key that does not exist.
  const message = { message: b64('m') }
  const cases: ReadonlyArray<{ method: string; path: string; body?: object; allowed: readonly Client[] }> = [
    { method: 'GET', path: '/v1/status', allowed: [root, ops] },
    { method: 'GET', path: '/v1/ready', allowed: [root, ops] },
    { method: 'GET', path: '/v1/api', allowed: [root, ops] },
    { method: 'GET', path: '/v1/metrics', allowed: [root, ops] },
    { method: 'GET', path: '/v1/key/describe/my-key', allowed: [root, app] },
    { method: 'GET', path: '/v1/key/describe/my-missing', allowed: [root, app] },
    { method: 'GET', path: '/v1/key/describe/other-key', allowed: [root] },
    { method: 'GET', path: '/v1/key/describe/other-missing', allowed: [root] },
    { method: 'PUT', path: '/v1/key/hmac/my-key', body: message, allowed: [root, app] },
    { method: 'POST', path: '/v1/key/hmac/my-key', body: message, allowed: [root, app] },
    { method: 'PUT', path: '/v1/key/hmac/my-secret', body: message, allowed: [root] },
    { method: 'PUT', path: '/v1/key/hmac/other-key', body: message, allowed: [root] },
    { method: 'GET', path: '/v1/policy/describe/my-app', allowed: [root, ops] },
    { method: 'GET', path: '/v1/policy/describe/missing', allowed: [root, ops] },
    { method: 'GET', path: `/v1/identity/describe/${app.identity}`, allowed: [root, ops] },
    { method: 'GET', path: `/v1/identity/describe/${nopol.identity}`, allowed: [root, ops] },
    { method: 'GET', path: '/v1/identity/self/describe', allowed: [root, app, ops, nopol] },
    { method: 'GET', path: '/version', allowed: [root, app, ops, nopol] },
  ]
  for (const c of cases) {
    for (const who of [root, app, ops, nopol]) {
      const allowed = c.allowed.includes(who)
      test(`${c.method} ${c.path} as ${who.name} → ${allowed ? 'allowed' : '403'}`, async () => {
        const res = await env.request(who, c.path, { method: c.method, body: c.body })
        if (allowed) assert.notEqual(res.status, 403, res.text)
        else assertError(res, 403, 'prohibited by policy')
      })
    }
  }

  test('the log streams refuse identities without a policy for them', async () => {
    for (const p of ['/v1/log/audit', '/v1/log/error']) {
      for (const who of [app, nopol]) {
        assertError(await env.request(who, p), 403, 'prohibited by policy')
      }
    }
  })
})

describe('config api: skip_auth and timeout', LIMIT, () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(`${CONFIG}api:
  /v1/ready:
    skip_auth: true
    timeout: 15s
  /v1/status: {skip_auth: true}
  /v1/metrics: {skip_auth: true}
  /v1/api: {skip_auth: false}
  /v1/key/generate/: {timeout: 30s}
`)
  })
  after(async () => {
    await env.dispose()
  })

  test('probes get /v1/ready, /v1/status and /v1/metrics without a policy', async () => {
    for (const who of [nopol, app]) {
      const ready = await env.request(who, '/v1/ready')
      assert.equal(ready.status, 200, ready.text)
      assert.equal(ready.text, '')
      const status = await env.request(who, '/v1/status')
      assert.equal(status.status, 200)
      assert.equal(typeof (status.json as { keystore_latency: unknown }).keystore_latency, 'number')
      const metrics = await env.request(who, '/v1/metrics')
      assert.equal(metrics.status, 200)
      assert.match(metrics.text, /kes_http_request_success/)
    }
  })

  test('everything else still needs a policy', async () => {
    for (const p of ['/v1/api', '/v1/key/describe/my-key', `/v1/identity/describe/${app.identity}`, '/v1/policy/describe/my-app']) {
      assertError(await env.request(nopol, p), 403, 'prohibited by policy')
    }
    assertError(await env.request(nopol, '/v1/key/hmac/my-key', { method: 'PUT', body: {} }), 403, 'prohibited by policy')
  })

  test('/v1/api shows the configured timeouts', async () => {
    const apis = (await env.request(root, '/v1/api')).json as Array<{ path: string; timeout: number }>
    assert.equal(apis.find((a) => a.path === '/v1/key/generate/')?.timeout, 30)
    assert.equal(apis.find((a) => a.path === '/v1/ready')?.timeout, 15)
    assert.equal(apis.find((a) => a.path === '/v1/key/encrypt/')?.timeout, 15)
  })

  test('a config that opens a key API to everyone does not start', async () => {
    const bad = await TestEnv.create()
    try {
      await assert.rejects(bad.start(`${CONFIG}api:\n  /v1/key/decrypt/: {skip_auth: true}\n`), (err: unknown) =>
        String((err as Error).message).startsWith('config: api./v1/key/decrypt/.skip_auth: not allowed'),
      )
      assert.equal(bad.server, undefined)
    } finally {
      await bad.dispose()
    }
  })
})

describe('an unreachable key store', LIMIT, () => {
  const env = serverPerSuite(CONFIG)

  test('/v1/status reports it with 200, /v1/ready answers 503 until the store is back', async () => {
    const restore = await env().breakStore()
    for (const http2 of [false, true]) {
      const status = await env().request(ops, '/v1/status', { http2 })
      assert.equal(status.status, 200)
      const s = status.json as Record<string, unknown>
      assert.equal(s['keystore_unavailable'], true)
      assert.equal(s['keystore_unreachable'], true)
      assert.equal('keystore_latency' in s, false)
      assert.deepEqual(Object.keys(s).slice(0, 8), ['version', 'os', 'arch', 'uptime', 'num_cpu', 'num_cpu_used', 'mem_heap_used', 'mem_stack_used'])
      assertError(await env().request(ops, '/v1/ready', { http2 }), 503, 'key store is unavailable')
    }
    await restore()
    // PostgreSQL: the pool reconnects on the next query.
    assert.equal((await env().request(ops, '/v1/ready')).status, 200)
    const latency = ((await env().request(ops, '/v1/status')).json as Record<string, number>)['keystore_latency']
    assert.ok(latency !== undefined && latency >= 1)
  })

  test('a store that does not answer in time: /v1/ready is 503 request timed out', async () => {
    const mem = createMemStore()
    const hanging: KeyStore = {
      kind: 'hanging',
      keys: mem.keys,
      policies: mem.policies,
      identities: mem.identities,
      deleted: mem.deleted,
      changes: mem.changes,
      ping: () => new Promise<void>(() => {}),
      close: () => mem.close(),
    }
    const slow = await TestEnv.create()
    try {
      await slow.start(`${CONFIG}api:\n  /v1/ready: {timeout: 1ms}\n`, { store: hanging })
      assertError(await slow.request(ops, '/v1/ready'), 503, 'request timed out')
      // Other routes keep their own time.
      assert.equal((await slow.request(root, '/v1/key/create/my-k', { method: 'POST' })).status, 200)
    } finally {
      await slow.dispose()
    }
  })
})

describe('hmac is the same on every server and for KES 2024 key files', LIMIT, () => {
  const envs: TestEnv[] = []
  after(async () => {
    for (const e of envs) await e.dispose()
  })

  test('two servers on one key directory answer the same MAC, and a protobuf key file uses its own HMAC key', async () => {
    const first = await TestEnv.create()
    envs.push(first)
    const keysDir = path.join(first.dir, 'keys')
    await first.start(CONFIG)
    const second = await TestEnv.create({ sameStoreAs: first })
    envs.push(second)
    await second.start(CONFIG.replace('path: ./keys', `path: ${keysDir}`))

    assert.equal((await first.request(root, '/v1/key/create/my-shared', { method: 'POST' })).status, 200)
    const body = { message: b64('the same message') }
    const a = await first.request(root, '/v1/key/hmac/my-shared', { method: 'PUT', body })
    const b = await second.request(root, '/v1/key/hmac/my-shared', { method: 'PUT', body, http2: true })
    assert.equal(a.status, 200)
    assert.deepEqual(a.json, b.json)
    assert.equal(Buffer.from((a.json as { hmac: string }).hmac, 'base64').length, 32)

    const v = (await readKesKeyFileVectors()).find((e) => e.file === 'kes-unit-test/protobuf-base64')
    assert.ok(v?.hmac_key !== undefined)
    await first.putKeyEntry('pb-key', await readFile(path.join(KES_KEY_FILES, 'kes-unit-test', 'protobuf-base64')))
    const want = { hmac: hmacB64(Buffer.from(v.hmac_key, 'base64'), 'hello') }
    for (const e of [first, second]) {
      assertJson(await e.request(root, '/v1/key/hmac/pb-key', { method: 'PUT', body: { message: b64('hello') } }), want)
    }
    // Not the derived key: the file's own HMAC key is used.
    assert.notEqual(want.hmac, hmacB64(derivedHmacKey(Buffer.from(v.key ?? '', 'base64')), 'hello'))
    const id = createHash('sha256').update(Buffer.from(v.key ?? '', 'base64')).digest().toString('hex', 0, 16)
    assertJson(await first.request(root, '/v1/key/describe/pb-key'), {
      name: 'pb-key',
      id,
      algorithm: 'AES256',
      created_at: v.created_at,
      created_by: v.created_by,
    })
  })
})
