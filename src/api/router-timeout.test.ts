// The per-route timeout: a request still working at its deadline is answered then.
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import type { ServerState } from '../server/state.js'
import { json } from './reply.js'
import { createRouter } from './router.js'
import type { BodyAccount, CompletedRequest, RouterRequest, RouterResponse } from './router.js'
import { ErrBodyBudget } from './errors.js'
import type { Route } from './routes.js'

class FakeRequest extends EventEmitter {
  readonly method = 'POST'
  readonly url: string
  readonly headers: Record<string, string>
  readonly socket = { remoteAddress: '127.0.0.1' }
  readonly readableEnded = false
  constructor(url: string, headers: Record<string, string> = {}) {
    super()
    this.url = url
    this.headers = headers
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
  headers: Record<string, string | number> = {}
  body = ''
  writeHead(status: number, headers: Record<string, string | number>): this {
    this.status = status
    this.headers = headers
    this.headersSent = true
    return this
  }
  write(): boolean {
    return true
  }
  end(body?: string): this {
    this.body = body ?? ''
    this.writableEnded = true
    return this
  }
}

const state = {
  version: '0.0.0',
  api: new Map(),
  access: { isAdmin: () => true, allows: async () => true },
  errorLog: { error: () => {} },
  auditLog: { refusing: false },
} as unknown as ServerState

const never = new Promise<never>(() => {})
const testRoutes: Route[] = [
  { path: '/t/slow', methods: ['POST'], params: [], maxBodyBytes: 0, timeoutMs: 5, auth: 'policy', handler: () => never },
  {
    path: '/t/body',
    methods: ['POST'],
    params: [],
    maxBodyBytes: 100,
    timeoutMs: 5,
    auth: 'policy',
    handler: async (req) => json(200, { got: (await req.readBody()).length }),
  },
  { path: '/t/fast', methods: ['POST'], params: [], maxBodyBytes: 0, timeoutMs: 60_000, auth: 'policy', handler: async () => json(200, {}) },
]

/** Serves `req` on testRoutes; `bodyAccount` opens its body account, if given. */
function serve(req: FakeRequest, bodyAccount?: () => BodyAccount): Promise<{ res: FakeResponse; event: CompletedRequest }> {
  return new Promise((resolve) => {
    const res = new FakeResponse()
    const route = createRouter(() => state, {
      identityOf: () => 'f'.repeat(64),
      routes: testRoutes,
      ...(bodyAccount === undefined ? {} : { bodyAccount }),
      hooks: { completed: (event) => resolve({ res, event }) },
    })
    route(req as unknown as RouterRequest, res as unknown as RouterResponse)
  })
}

test('a handler still working at the deadline is answered 503 request timed out', async () => {
  const { res, event } = await serve(new FakeRequest('/t/slow'))
  assert.equal(res.status, 503)
  assert.deepEqual(JSON.parse(res.body), { message: 'request timed out' })
  assert.equal(event.status, 503)
  assert.equal(event.error, 'request timed out')
})

test('a body still arriving at the deadline is 408, and the connection is closed after it', async () => {
  const req = new FakeRequest('/t/body', { 'content-length': '50' })
  const { res } = await serve(req)
  assert.equal(res.status, 408)
  assert.deepEqual(JSON.parse(res.body), { message: 'request body not received in time' })
  assert.equal(res.headers['connection'], 'close')
})

test('a request done before its deadline is answered normally', async () => {
  const { res } = await serve(new FakeRequest('/t/fast'))
  assert.equal(res.status, 200)
  assert.equal(res.body, '{}')
})

// ---- the body account of a request (limits.body_bytes_*): opened at the first body read ----

/** A request whose whole body had arrived before it was dispatched (the HTTP/1.1 fast path's). */
class CompleteRequest extends FakeRequest {
  readonly completeBody: Buffer
  constructor(url: string, body: string) {
    super(url, { 'content-length': String(Buffer.byteLength(body)) })
    this.completeBody = Buffer.from(body)
  }
}

/** Counts what the router does with body accounts. */
class AccountLog {
  opened = 0
  charged: number[] = []
  released = 0
  open(): BodyAccount {
    this.opened++
    return {
      charge: (bytes) => {
        this.charged.push(bytes)
        return true
      },
      release: () => {
        this.released++
      },
    }
  }
}

test('a request that reads its body opens one account, charged with the body, given back once after the answer', async () => {
  const log = new AccountLog()
  const { res, event } = await serve(new CompleteRequest('/t/body', '12345'), () => log.open())
  assert.equal(event.status, 200)
  assert.deepEqual(JSON.parse(res.body), { got: 5 })
  assert.deepEqual([log.opened, log.charged, log.released], [1, [5], 1])
})

test('a request that reads no body opens no account', async () => {
  const log = new AccountLog()
  const { event } = await serve(new FakeRequest('/t/fast'), () => log.open())
  assert.equal(event.status, 200)
  assert.deepEqual([log.opened, log.released], [0, 0])
})

test('a body read after the deadline answered the request is refused, and charges nothing', async () => {
  const log = new AccountLog()
  let go = (): void => {}
  const wait = new Promise<void>((resolve) => (go = resolve))
  let late: unknown
  const lateRead = new Promise<void>((resolve) => {
    const routes: Route[] = [
      {
        path: '/t/late',
        methods: ['POST'],
        params: [],
        maxBodyBytes: 100,
        timeoutMs: 5,
        auth: 'policy',
        handler: async (req) => {
          await wait
          try {
            await req.readBody()
          } catch (err) {
            late = err
          }
          resolve()
          return json(200, {})
        },
      },
    ]
    const res = new FakeResponse()
    const route = createRouter(() => state, {
      identityOf: () => 'f'.repeat(64),
      routes,
      bodyAccount: () => log.open(),
      hooks: {
        completed: (event) => {
          assert.equal(event.status, 503)
          go()
        },
      },
    })
    route(new CompleteRequest('/t/late', '12345') as unknown as RouterRequest, res as unknown as RouterResponse)
  })
  await lateRead
  assert.equal(late, ErrBodyBudget)
  assert.deepEqual([log.opened, log.charged, log.released], [0, [], 0])
})
