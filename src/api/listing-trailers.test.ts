// The router's side of listings: chunked bodies, the `Status` and `Error`
// trailers, failures after the headers went out, and back-pressure. The wire
// behaviour over real HTTP/1.1 and HTTP/2 is tested in
// test/integration/kes-v017-client.test.ts.
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import type { ServerState } from '../server/state.js'
import { KesError } from './errors.js'
import type { BodyReply } from './reply.js'
import { listing } from './reply.js'
import { createRouter } from './router.js'
import type { CompletedRequest, RouterRequest, RouterResponse } from './router.js'
import type { Route } from './routes.js'

class FakeRequest extends EventEmitter {
  readonly method = 'GET'
  readonly url = '/v1/test/list'
  readonly headers = {}
  readonly socket = { remoteAddress: '127.0.0.1' }
  readonly readableEnded = true
  readonly httpVersionMajor: number
  readonly httpVersionMinor: number
  constructor(major = 1, minor = 1) {
    super()
    this.httpVersionMajor = major
    this.httpVersionMinor = minor
  }
  resume(): this {
    return this
  }
}

class FakeResponse extends EventEmitter {
  headersSent = false
  writableEnded = false
  destroyed = false
  status = 0
  headers: Record<string, string | number> = {}
  readonly chunks: string[] = []
  trailers: Record<string, string> | undefined
  /** How many writes answer false (buffer full) before writes are taken again. */
  fullWrites = 0
  writeHead(status: number, headers: Record<string, string | number>): this {
    this.status = status
    this.headers = headers
    this.headersSent = true
    return this
  }
  write(chunk: string | Buffer): boolean {
    this.chunks.push(chunk.toString())
    if (this.fullWrites === 0) return true
    this.fullWrites--
    return false
  }
  addTrailers(trailers: Record<string, string>): void {
    this.trailers = trailers
  }
  end(): this {
    this.writableEnded = true
    this.emit('finish')
    return this
  }
  destroy(): this {
    this.destroyed = true
    this.emit('close')
    return this
  }
}

interface Served {
  readonly res: FakeResponse
  readonly completed: CompletedRequest
  readonly errorLines: string[]
}

/** Serves one GET of a test route whose handler answers `reply`. */
async function serve(reply: BodyReply, req = new FakeRequest(), res = new FakeResponse()): Promise<Served> {
  const errorLines: string[] = []
  const state = {
    version: '0.0.0',
    access: { isAdmin: () => true },
    api: new Map(),
    errorLog: { error: (line: string) => errorLines.push(line) },
  } as unknown as ServerState
  const route: Route = { path: '/v1/test/list', methods: ['GET'], params: [], maxBodyBytes: 0, timeoutMs: 10_000, auth: 'policy', handler: async () => reply }
  let completed: CompletedRequest | undefined
  let finished!: () => void
  const done = new Promise<void>((resolve) => (finished = resolve))
  const router = createRouter(() => state, {
    identityOf: () => 'f'.repeat(64),
    routes: [route],
    hooks: { completed: (e) => (completed = e), finished: () => finished() },
  })
  router(req as unknown as RouterRequest, res as unknown as RouterResponse)
  await done
  assert.ok(completed !== undefined)
  return { res, completed, errorLines }
}

async function* parts(...items: Array<string | Error>): AsyncGenerator<string> {
  for (const item of items) {
    await Promise.resolve()
    if (item instanceof Error) throw item
    yield item
  }
}

test('a listing is sent chunked, declares its trailers and ends with Status 200 and an empty Error', async () => {
  const { res, completed } = await serve(listing({ status: 200, contentType: 'application/x-ndjson', body: '{"name":"a"}\n' }))
  assert.equal(res.status, 200)
  assert.equal(res.headers['trailer'], 'Status, Error')
  assert.equal(res.headers['content-length'], undefined)
  assert.equal(res.headers['content-type'], 'application/x-ndjson')
  assert.deepEqual(res.chunks, ['{"name":"a"}\n'])
  assert.deepEqual(res.trailers, { Status: '200', Error: '' })
  assert.equal(res.writableEnded, true)
  assert.equal(completed.status, 200)
  assert.equal(completed.error, undefined)
})

test('an empty listing still ends with the trailers', async () => {
  const { res } = await serve(listing({ status: 200, contentType: 'application/x-ndjson', body: '' }))
  assert.deepEqual(res.chunks, [])
  assert.deepEqual(res.trailers, { Status: '200', Error: '' })
})

test('a listing that fails midway reports the failing status and message in the trailers, and is audited so', async () => {
  const failure = new KesError(502, 'bad gateway: failed to list keys')
  const { res, completed } = await serve({ status: 200, contentType: 'application/x-ndjson', body: parts('{"name":"a"}\n', failure, 'never'), statusTrailers: true })
  assert.equal(res.status, 200)
  assert.deepEqual(res.chunks, ['{"name":"a"}\n'])
  assert.deepEqual(res.trailers, { Status: '502', Error: '{"message":"bad gateway: failed to list keys"}' })
  assert.equal(res.writableEnded, true)
  assert.equal(res.destroyed, false)
  assert.equal(completed.status, 502)
  assert.equal(completed.error, 'bad gateway: failed to list keys')
})

test('an unexpected failure midway is a 500 in the trailers; its cause goes to the error log only', async () => {
  const { res, completed, errorLines } = await serve({
    status: 200,
    body: parts('x', new Error('disk on fire at /secret/path')),
    statusTrailers: true,
  })
  assert.equal(res.trailers?.['Status'], '500')
  assert.ok(!(res.trailers?.['Error'] ?? '').includes('/secret/path'))
  assert.deepEqual(JSON.parse(res.trailers?.['Error'] ?? ''), { message: completed.error })
  assert.equal(completed.status, 500)
  assert.equal(errorLines.length, 1)
  assert.match(errorLines[0] ?? '', /disk on fire/)
})

test('a message outside printable ASCII is JSON-escaped in the Error trailer', async () => {
  const { res } = await serve({ status: 200, body: parts(new KesError(400, 'bad \u00e9\u2603')), statusTrailers: true })
  const error = res.trailers?.['Error'] ?? ''
  assert.match(error, /^[\x20-\x7e]*$/)
  assert.deepEqual(JSON.parse(error), { message: 'bad \u00e9\u2603' })
})

test('a body in parts without trailers is aborted when it fails, never ended as if complete', async () => {
  const { res, completed } = await serve({ status: 200, body: parts('a', new KesError(502, 'bad gateway: x')) })
  assert.equal(res.headers['trailer'], undefined)
  assert.equal(res.destroyed, true)
  assert.equal(res.writableEnded, false)
  assert.equal(res.trailers, undefined)
  assert.equal(completed.status, 502)
})

test('parts wait for the client to take data (drain) before the next is produced', async () => {
  const res = new FakeResponse()
  res.fullWrites = 1
  let produced = 0
  async function* counted(): AsyncGenerator<string> {
    for (const p of ['a', 'b']) {
      produced++
      yield p
    }
  }
  const served = serve({ status: 200, body: counted(), statusTrailers: true }, new FakeRequest(), res)
  for (let i = 0; i < 50; i++) await new Promise<void>((r) => setImmediate(r))
  assert.equal(produced, 1, 'the second part was produced although the first was not taken')
  res.emit('drain')
  const { completed } = await served
  assert.equal(produced, 2)
  assert.deepEqual(res.chunks, ['a', 'b'])
  assert.deepEqual(res.trailers, { Status: '200', Error: '' })
  assert.equal(completed.status, 200)
})

test('an HTTP/1.0 request gets the listing without trailers (it has no chunked encoding)', async () => {
  const { res } = await serve(listing({ status: 200, body: '[]' }), new FakeRequest(1, 0))
  assert.equal(res.headers['trailer'], undefined)
  assert.equal(res.trailers, undefined)
  assert.deepEqual(res.chunks, ['[]'])
  assert.equal(res.writableEnded, true)
})
