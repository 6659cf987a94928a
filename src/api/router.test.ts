import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { EventHub } from '../log/event-hub.js'
import type { ServerState } from '../server/state.js'
import { createRouter } from './router.js'
import type { RouterRequest, RouterResponse } from './router.js'
import { json } from './reply.js'
import type { Route } from './routes.js'

class FakeRequest extends EventEmitter {
  readonly method = 'GET'
  readonly url: string
  readonly headers = {}
  readonly socket = { remoteAddress: '127.0.0.1' }
  readonly readableEnded = true
  constructor(url: string) {
    super()
    this.url = url
  }
  resume(): this {
    return this
  }
}

class FakeResponse extends EventEmitter {
  headersSent = false
  writableEnded = false
  writableLength = 0
  status = 0
  // As Node's ServerResponse: `closed` is true by the time 'close' is heard.
  closed = false
  constructor() {
    super()
    this.once('close', () => (this.closed = true))
  }
  writeHead(status: number): this {
    this.status = status
    this.headersSent = true
    return this
  }
  write(): boolean {
    return true
  }
  end(): this {
    this.writableEnded = true
    return this
  }
}

/** A state whose authorization waits until `release` is called. */
function gatedState(hub: EventHub): { state: ServerState; release: () => void } {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const state = {
    version: '0.0.0',
    api: new Map(),
    access: { isAdmin: () => false, allowsCached: () => undefined, allows: async () => (await gate, true) },
    auditLog: { hub },
    errorLog: { error: () => {}, hub: new EventHub({ maxBufferedBytes: 1 }) },
  } as unknown as ServerState
  return { state, release }
}

/** Gives the event loop up to `turns` turns for `done` to settle; true when it did. */
async function settles(done: Promise<void>, turns = 100): Promise<boolean> {
  let settled = false
  void done.then(() => (settled = true))
  for (let i = 0; i < turns && !settled; i++) await new Promise<void>((r) => setImmediate(r))
  return settled
}

test('a log stream whose client left during authorization is not subscribed', async () => {
  const hub = new EventHub({ maxBufferedBytes: 1024 })
  const { state, release } = gatedState(hub)
  let finished!: () => void
  const done = new Promise<void>((resolve) => (finished = resolve))
  const route = createRouter(() => state, { identityOf: () => 'f'.repeat(64), hooks: { finished: () => finished() } })
  const req = new FakeRequest('/v1/log/audit/trace')
  const res = new FakeResponse()
  route(req as unknown as RouterRequest, res as unknown as RouterResponse)
  res.emit('close') // the client hangs up while its authorization is pending
  release()
  assert.ok(await settles(done), 'the request never finished')
  assert.equal(hub.size, 0)
})

test('a log stream ends when its client leaves, and the request then finishes', async () => {
  const hub = new EventHub({ maxBufferedBytes: 1024 })
  const { state, release } = gatedState(hub)
  release()
  let finished!: () => void
  const done = new Promise<void>((resolve) => (finished = resolve))
  const completed: number[] = []
  const route = createRouter(() => state, {
    identityOf: () => 'f'.repeat(64),
    hooks: { completed: (e) => completed.push(e.status), finished: () => finished() },
  })
  const res = new FakeResponse()
  route(new FakeRequest('/v1/log/audit/trace') as unknown as RouterRequest, res as unknown as RouterResponse)
  for (let i = 0; i < 100 && hub.size === 0; i++) await new Promise<void>((r) => setImmediate(r))
  assert.equal(hub.size, 1)
  assert.deepEqual(completed, [200]) // audited when the stream opens, not when it ends
  assert.equal(res.status, 200)
  res.emit('close')
  assert.ok(await settles(done))
  assert.equal(hub.size, 0)
})

test('a remembered request target gets the same answers as a new one: method, names and path shape are checked every time', async () => {
  const state = {
    version: '0.0.0',
    api: new Map(),
    access: { isAdmin: () => true, allowsCached: () => undefined, allows: async () => true },
    auditLog: { refusing: false, hub: new EventHub({ maxBufferedBytes: 1 }) },
    errorLog: { error: () => {}, hub: new EventHub({ maxBufferedBytes: 1 }) },
  } as unknown as ServerState
  const seen: Array<{ path: string; api: string; status: number }> = []
  const routes: Route[] = [
    { path: '/t/key', methods: ['POST'], params: ['key'], maxBodyBytes: 0, timeoutMs: 1000, auth: 'policy', handler: async (r) => json(200, { args: r.args }) },
  ]
  const route = createRouter(() => state, { identityOf: () => 'f'.repeat(64), routes, hooks: { completed: (e) => seen.push({ path: e.path, api: e.api, status: e.status }) } })
  const call = async (method: string, url: string): Promise<number> => {
    const req = Object.assign(new FakeRequest(url), { method })
    const res = new FakeResponse()
    const ended = new Promise<void>((resolve) => {
      const end = res.end.bind(res)
      res.end = () => (resolve(), end())
    })
    route(req as unknown as RouterRequest, res as unknown as RouterResponse)
    assert.ok(await settles(ended), `${method} ${url} was never answered`)
    return res.status
  }
  for (let round = 0; round < 2; round++) {
    assert.equal(await call('POST', '/t/key/a'), 200)
    assert.equal(await call('GET', '/t/key/a'), 405)
    assert.equal(await call('POST', '/t/key/a%2Fb'), 400) // malformed: never remembered
    assert.equal(await call('POST', '/t/key/..'), 400)
    assert.equal(await call('POST', '/t/nope/a'), 404)
  }
  // More distinct targets than are remembered: the first is still answered right.
  for (let i = 0; i < 1100; i++) assert.equal(await call('POST', `/t/key/k${i}`), 200)
  assert.equal(await call('GET', '/t/key/k0'), 405)
  assert.equal(await call('POST', '/t/key/k0'), 200)
  assert.deepEqual(seen.slice(0, 5), [
    { path: '/t/key/a', api: '/t/key', status: 200 },
    { path: '/t/key/a', api: '/t/key', status: 405 },
    { path: '/t/key/a%2Fb', api: '/t/key', status: 400 },
    { path: '/t/key/..', api: '/t/key', status: 400 },
    { path: '/t/nope/a', api: 'unknown', status: 404 },
  ])
  assert.deepEqual(seen.slice(5, 10), seen.slice(0, 5))
})
