// The client library's calls of the KES 2023+ API (status, ready, apis,
// describe*, hmac, the renamed log streams) against a real OpenKES server over
// mutual TLS; and, against canned servers, what older servers answer: the log
// streams fall back to their /trace names, and the answers of other KES
// versions parse.
import assert from 'node:assert/strict'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ErrIdentityNotFound, ErrKeyNotFound, ErrNotAllowed, ErrPolicyNotFound, ErrStoreUnavailable, KesError } from '../../src/api/errors.js'
import type { AuditEvent, LogStream } from '../../src/client/api.js'
import type { KesClient } from '../../src/client/kes-client.js'
import { cannedClientOptions, clientFor, sendJson, trackedResources } from './client-harness.js'
import type { CannedResponse } from './client-harness.js'
import { SEED_CONFIG, app, nopol, ops, root } from './fixtures.js'
import { TestEnv } from './harness.js'

const LIMIT = { timeout: 60_000 }

async function rejectsWith(promise: Promise<unknown>, want: { status: number; message: string }): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof KesError, `not a KesError: ${String(err)}`)
    assert.equal(err.status, want.status)
    assert.equal(err.message, want.message)
    return true
  })
}

// The next event of a stream that `until` accepts, or a failure after a while (so a
// broken stream can't hang the run). Reads through one iterator: `for await` would
// close the stream when it stops early.
async function nextEvent<T>(events: AsyncIterator<T>, until: (event: T) => boolean): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no such event within 20 s')), 20_000)
  })
  const read = (async () => {
    for (;;) {
      const next = await events.next()
      if (next.done === true) throw new Error('the stream ended')
      if (until(next.value)) return next.value
    }
  })()
  try {
    return await Promise.race([read, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function eventsOf<T>(stream: LogStream<T>): AsyncIterator<T> {
  return stream[Symbol.asyncIterator]()
}

for (const http1 of [false, true]) {
  describe(`KesClient, KES 2023+ calls, against OpenKES over ${http1 ? 'HTTP/1.1' : 'HTTP/2'}`, LIMIT, () => {
    let env: TestEnv
    let asRoot: KesClient
    let asApp: KesClient
    let asOps: KesClient
    let asNopol: KesClient
    before(async () => {
      env = await TestEnv.create()
      await env.start(SEED_CONFIG)
      asRoot = clientFor(env, root, { http1 })
      asApp = clientFor(env, app, { http1 })
      asOps = clientFor(env, ops, { http1 })
      asNopol = clientFor(env, nopol, { http1, maxRetries: 0 })
    })
    after(async () => {
      await Promise.all([asRoot.close(), asApp.close(), asOps.close(), asNopol.close()])
      await env.dispose()
    })

    test('status: the server status with the version /version tells; ready resolves; apis lists the routes', async () => {
      const status = await asRoot.status()
      assert.equal(status.version, await asRoot.version())
      assert.match(status.os, /^[a-z0-9]+$/)
      assert.match(status.arch, /^[a-z0-9]+$/)
      assert.ok(status.uptime >= 0 && status.num_cpu >= 1 && status.num_cpu_used >= 1 && status.mem_heap_used > 0)
      assert.ok(status.keystore_latency !== undefined && status.keystore_latency >= 1)
      assert.equal(status.keystore_unreachable, undefined)
      await asRoot.ready()
      const apis = await asRoot.apis()
      const find = (p: string) => apis.find((a) => a.path === p)
      assert.deepEqual(find('/v1/key/describe/'), { method: 'GET', path: '/v1/key/describe/', max_body: 0, timeout: 15 })
      assert.equal(find('/v1/log/audit')?.timeout, 0)
      assert.equal(find('/v1/key/hmac/')?.method, 'POST')
      await rejectsWith(asNopol.status(), ErrNotAllowed)
    })

    test('describeKey: name, the id the ciphertexts carry, algorithm, creation; a missing key is ErrKeyNotFound', async () => {
      await asRoot.createKey('desc-key')
      const key = await asRoot.describeKey('desc-key')
      assert.equal(key.name, 'desc-key')
      assert.match(key.id, /^[0-9a-f]{32}$/)
      assert.equal(key.algorithm, 'AES256')
      assert.equal(key.created_by, root.identity)
      assert.ok(key.created_at !== undefined && !Number.isNaN(Date.parse(key.created_at)))
      // the id is the one in the key's ciphertexts (the JSON ciphertext format names it)
      const sealed = await asRoot.encrypt('desc-key', Buffer.from('x'))
      assert.equal((JSON.parse(sealed.toString('utf8')) as { id?: string }).id, key.id)
      await rejectsWith(asRoot.describeKey('no-such-key'), ErrKeyNotFound)
      await rejectsWith(asApp.describeKey('desc-key'), ErrNotAllowed)
    })

    test('hmac: the same key and message give the same 32-byte MAC; another message or key another one', async () => {
      await asRoot.createKey('mac-key-1')
      await asRoot.createKey('mac-key-2')
      const msg = Buffer.from('bucket/object')
      const mac = await asRoot.hmac('mac-key-1', msg)
      assert.equal(mac.length, 32)
      assert.deepEqual(await asRoot.hmac('mac-key-1', Buffer.from('bucket/object')), mac)
      assert.notDeepEqual(await asRoot.hmac('mac-key-1', Buffer.from('bucket/other')), mac)
      assert.notDeepEqual(await asRoot.hmac('mac-key-2', msg), mac)
      assert.equal((await asRoot.hmac('mac-key-1', Buffer.alloc(0))).length, 32)
      await rejectsWith(asRoot.hmac('no-such-key', msg), ErrKeyNotFound)
      await rejectsWith(asApp.hmac('mac-key-1', msg), ErrNotAllowed)
    })

    test('describePolicy: a written policy has its creator; a config policy none; a missing one is ErrPolicyNotFound', async () => {
      await asRoot.writePolicy('desc-pol', { allow: ['/v1/key/list/*'], deny: [] })
      const written = await asRoot.describePolicy('desc-pol')
      assert.equal(written.name, 'desc-pol')
      assert.equal(written.created_by, root.identity)
      assert.deepEqual(await asRoot.describePolicy('my-app'), { name: 'my-app' })
      await rejectsWith(asRoot.describePolicy('no-such-policy'), ErrPolicyNotFound)
    })

    test('describeIdentity: admin, an assigned identity, one without a policy', async () => {
      assert.deepEqual(await asRoot.describeIdentity(root.identity), { admin: true, policy: '' })
      const appInfo = await asRoot.describeIdentity(app.identity)
      assert.equal(appInfo.admin, false)
      assert.equal(appInfo.policy, 'my-app')
      await rejectsWith(asRoot.describeIdentity(nopol.identity), ErrIdentityNotFound)
    })

    test('describeSelf answers every identity: the admin, a policy with its rules, no policy', async () => {
      assert.deepEqual(await asRoot.describeSelf(), { identity: root.identity, admin: true, policy: '', allow: [], deny: [] })
      const self = await asApp.describeSelf()
      assert.equal(self.identity, app.identity)
      assert.equal(self.admin, false)
      assert.equal(self.policy, 'my-app')
      assert.ok(self.allow.includes('/v1/key/generate/my-*'))
      assert.deepEqual(self.deny, ['/v1/key/generate/my-secret*'])
      assert.deepEqual(await asNopol.describeSelf(), { identity: nopol.identity, admin: false, policy: '', allow: [], deny: [] })
    })

    test('auditLog and errorLog use /v1/log/audit and /v1/log/error', async () => {
      const audit = await asRoot.auditLog()
      const events = eventsOf(audit)
      try {
        const first = await nextEvent(events, () => true)
        assert.equal(first.request.path, '/v1/log/audit')
        const errors = await asRoot.errorLog()
        errors.close()
        const seen = await nextEvent(events, (e: AuditEvent) => e.request.path.startsWith('/v1/log/error'))
        assert.equal(seen.request.path, '/v1/log/error')
      } finally {
        audit.close()
      }
    })
  })
}

describe('KesClient: ready and status with the key store unreachable', LIMIT, () => {
  let env: TestEnv
  let asRoot: KesClient
  before(async () => {
    env = await TestEnv.create()
    await env.start(SEED_CONFIG)
    asRoot = clientFor(env, root, { maxRetries: 0 })
  })
  after(async () => {
    await asRoot.close()
    await env.dispose()
  })

  test('status reports it (no latency); ready rejects with 503 until the store is back', async () => {
    const keys = path.join(env.dir, 'keys')
    await rm(keys, { recursive: true })
    const status = await asRoot.status()
    assert.equal(status.keystore_unreachable, true)
    assert.equal(status.keystore_unavailable, true)
    assert.equal(status.keystore_latency, undefined)
    await rejectsWith(asRoot.ready(), ErrStoreUnavailable)
    await mkdir(keys, { mode: 0o700 })
    await asRoot.ready()
  })
})

// One audit event line as servers stream them.
const AUDIT_LINE = JSON.stringify({ time: '2024-01-02T03:04:05Z', request: { path: '/v1/key/create/x', identity: 'abc' }, response: { code: 200, time: 1000 } }) + '\n'

function streamAudit(res: CannedResponse): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' })
  res.write(AUDIT_LINE)
}

describe('KesClient against older and other KES servers (canned answers)', LIMIT, () => {
  const tracked = trackedResources()
  after(() => tracked.closeAll())

  for (const status of [404, 405, 501]) {
    test(`auditLog falls back to /v1/log/audit/trace when /v1/log/audit answers ${status}`, async () => {
      const server = await tracked.start((req, res) => {
        if (req.url === '/v1/log/audit') sendJson(res, status, { message: 'not found' })
        else if (req.url === '/v1/log/audit/trace') streamAudit(res)
        else sendJson(res, 404, { message: 'not found' })
      })
      const client = tracked.client(cannedClientOptions(server))
      const stream = await client.auditLog()
      try {
        const event = await nextEvent(eventsOf(stream), () => true)
        assert.equal(event.request.path, '/v1/key/create/x')
      } finally {
        stream.close()
      }
      assert.deepEqual(server.requests.map((r) => r.target), ['GET /v1/log/audit', 'GET /v1/log/audit/trace'])
    })
  }

  test('errorLog falls back to /v1/log/error/trace; a 403 on the new path is final', async () => {
    const server = await tracked.start((req, res) => {
      if (req.url === '/v1/log/error') sendJson(res, 501, { message: 'not implemented' })
      else if (req.url === '/v1/log/error/trace') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.write('{"message":"boom"}\n')
      } else if (req.url === '/v1/log/audit') sendJson(res, 403, { message: 'prohibited by policy' })
      else sendJson(res, 404, { message: 'not found' })
    })
    const client = tracked.client(cannedClientOptions(server))
    const stream = await client.errorLog()
    try {
      assert.deepEqual(await nextEvent(eventsOf(stream), () => true), { message: 'boom' })
    } finally {
      stream.close()
    }
    await rejectsWith(client.auditLog(), ErrNotAllowed)
    assert.ok(!server.requests.some((r) => r.target === 'GET /v1/log/audit/trace'))
  })

  test('describeSelf reads the policy_name + inline policy form; describeKey and status tolerate missing fields', async () => {
    const server = await tracked.start((req, res) => {
      if (req.url === '/v1/identity/self/describe') {
        sendJson(res, 200, { identity: 'abc', policy_name: 'p', created_at: '0001-01-01T00:00:00Z', policy: { allow: ['/v1/key/*'], deny: ['/v1/key/delete/*'] } })
      } else if (req.url === '/v1/key/describe/k') {
        sendJson(res, 200, { name: 'k', algorithm: 'AES256', created_at: '2024-01-02T03:04:05Z', created_by: '' })
      } else if (req.url === '/v1/status') {
        sendJson(res, 200, { version: '2023-10-24T19-27-35Z', os: 'linux', arch: 'amd64', uptime: 7, keystore_unreachable: true })
      } else sendJson(res, 404, { message: 'not found' })
    })
    const client = tracked.client(cannedClientOptions(server))
    assert.deepEqual(await client.describeSelf(), { identity: 'abc', admin: false, policy: 'p', allow: ['/v1/key/*'], deny: ['/v1/key/delete/*'] })
    assert.deepEqual(await client.describeKey('k'), { name: 'k', id: '', algorithm: 'AES256', created_at: '2024-01-02T03:04:05Z' })
    const status = await client.status()
    assert.equal(status.version, '2023-10-24T19-27-35Z')
    assert.equal(status.num_cpu, 0)
    assert.equal(status.keystore_unreachable, true)
    assert.equal(status.keystore_unavailable, true)
  })

  test('hmac sends PUT with {"message": base64}; a malformed answer is an InvalidResponseError', async () => {
    let seen = ''
    const server = await tracked.start((req, res) => {
      seen = `${req.method} ${req.url}`
      if (req.url === '/v1/key/hmac/good') sendJson(res, 200, { hmac: Buffer.alloc(32, 1).toString('base64') })
      else sendJson(res, 200, { hmac: 'not base64!' })
    })
    const client = tracked.client(cannedClientOptions(server))
    assert.deepEqual(await client.hmac('good', Buffer.from('m')), Buffer.alloc(32, 1))
    assert.equal(seen, 'PUT /v1/key/hmac/good')
    await assert.rejects(client.hmac('bad', Buffer.from('m')), { name: 'InvalidResponseError' })
  })
})
