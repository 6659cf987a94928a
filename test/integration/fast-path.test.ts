// The fast paths (src/server/http1-fast-path.ts, http2-fast-path.ts) against Node's own
// servers: the same raw requests go to a server with fast paths and to one without
// (StartOptions.fastPaths = false) on one key store, and must get the same answers, the same
// audit events and the same counts. Then what only a connection shows: pipelining, requests
// split over writes, handover to Node and back-to-back requests, Connection: close, idle
// connections; and HTTP/2 streams, many at once and reset mid-body.
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { CompletedRequest } from '../../src/api/router.js'
import { FastConnection } from '../../src/server/http1-fast-path.js'
import { StreamResponse } from '../../src/server/http2-fast-path.js'
import type { KeyStore } from '../../src/keystore/keystore.js'
import { openFsStore } from '../../src/keystore/fs/fs-store.js'
import type { RunningServer } from '../../src/server/server.js'
import { forwardingTable, withTables } from '../support/table.js'
import { within } from '../support/within.js'
import { TestEnv, makeClient } from './harness.js'
import type { Client, Response } from './harness.js'
import { h2Answer, h2Session, sample, scrape, waitFor } from './edge.js'
import { RawConnection, bodyOf, exchange, header, post, request } from './raw-http1.js'
import type { RawResponse } from './raw-http1.js'

const root = makeClient('root')
const app = makeClient('app')
const stranger = makeClient('stranger')

/** Both servers' config: `app` may use the app-* keys and /v1/status; `stranger` has no policy. */
function config(keysDir: string, extra = ''): string {
  return `admin:
  identity: ${root.identity}
policy:
  app:
    allow:
    - /v1/key/generate/app-*
    - /v1/key/encrypt/app-*
    - /v1/key/decrypt/app-*
    - /v1/status
    identities:
    - ${app.identity}
keys:
- name: app-key
- name: other-key
keystore:
  fs:
    path: ${keysDir}
${extra}`
}

// Answers written by the fast paths, counted by wrapping their one write (HTTP/1.1) and their
// end (HTTP/2): a test states which of its requests must have been served there.
let fastAnswers1 = 0
let fastAnswers2 = 0
const originalRespond = FastConnection.prototype.respond
const originalEnd = StreamResponse.prototype.end
FastConnection.prototype.respond = function (this: FastConnection, ...args: Parameters<FastConnection['respond']>): void {
  fastAnswers1++
  originalRespond.apply(this, args)
}
StreamResponse.prototype.end = function (this: StreamResponse, ...args: Parameters<StreamResponse['end']>): StreamResponse {
  fastAnswers2++
  return originalEnd.apply(this, args)
}

/** A server with fast paths and one without, on one key store, each with its completed requests. */
interface Pair {
  fast: TestEnv
  node: TestEnv
  fastEvents: CompletedRequest[]
  nodeEvents: CompletedRequest[]
}

async function startPair(extra = ''): Promise<Pair> {
  const fast = await TestEnv.create()
  const node = await TestEnv.create({ sameStoreAs: fast })
  const fastEvents: CompletedRequest[] = []
  const nodeEvents: CompletedRequest[] = []
  const keys = path.join(fast.dir, 'keys')
  try {
    await fast.start(config(keys, extra), { fastPaths: true, onComplete: (e) => fastEvents.push(e) })
    await node.start(config(keys, extra), { fastPaths: false, onComplete: (e) => nodeEvents.push(e) })
  } catch (err) {
    await fast.dispose()
    await node.dispose()
    throw err
  }
  return { fast, node, fastEvents, nodeEvents }
}

async function stopPair(p: Pair | undefined): Promise<void> {
  await p?.fast.dispose()
  await p?.node.dispose()
}

/** What an audit event says that must not depend on the path that served the request. */
function auditView(e: CompletedRequest): unknown {
  return { method: e.method, path: e.path, api: e.api, status: e.status, identity: e.identity, ip: e.ip, error: e.error }
}

/** The structure of a JSON value: keys and types, not the values (random keys, uptimes). */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, shape(x)]),
    )
  }
  return typeof v
}

/** What of an HTTP/1.1 response must be the same on both servers (header() also refuses a repeated header). */
function comparable(res: RawResponse, exactBody: boolean): unknown {
  const body = bodyOf(res)
  return {
    status: res.status,
    reason: res.reason,
    contentType: header(res, 'content-type'),
    nosniff: header(res, 'x-content-type-options'),
    connection: header(res, 'connection'),
    keepAlive: header(res, 'keep-alive'),
    allow: header(res, 'allow'),
    transferEncoding: header(res, 'transfer-encoding'),
    contentLength: exactBody ? header(res, 'content-length') : header(res, 'content-length') !== undefined,
    date: header(res, 'date') !== undefined,
    body: exactBody ? body : shape(body),
    // A generated data key is 32 bytes, whichever server made it.
    plaintextBytes: typeof (body as { plaintext?: unknown } | undefined)?.plaintext === 'string' ? Buffer.from((body as { plaintext: string }).plaintext, 'base64').length : undefined,
  }
}

/** Waits until `events` has at least `count` entries (the audit hook runs as the answer is written). */
async function eventsReach(events: CompletedRequest[], count: number, what: string): Promise<void> {
  await waitFor(`${count} completed requests (${what})`, () => events.length >= count, 10_000)
}

const KiB = 1024
const MiB = 1024 * KiB

/** A chunked body: the JSON in two chunks. */
function chunked(json: string): string {
  const half = Math.floor(json.length / 2)
  const parts = [json.slice(0, half), json.slice(half)]
  return parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n'
}

/** Two servers for the suite, started before its tests and stopped after them (see startPair). */
function pairPerSuite(extra = ''): () => Pair {
  let pair: Pair | undefined
  before(async () => {
    pair = await startPair(extra)
  })
  after(() => stopPair(pair))
  return () => {
    if (pair === undefined) throw new Error('servers not started')
    return pair
  }
}

describe('HTTP/1.1: the fast path answers as Node does (differential)', () => {
  const p = pairPerSuite()
  let ciphertext = ''
  let plaintext = ''
  before(async () => {
    const res = await p().fast.request(root, '/v1/key/generate/app-key', { method: 'POST', body: { context: 'Y3R4' } })
    assert.equal(res.status, 200)
    ;({ ciphertext, plaintext } = res.json as { ciphertext: string; plaintext: string })
  })

  interface Case {
    readonly name: string
    readonly as: Client
    readonly bytes: () => Buffer
    /** The status both must answer. */
    readonly status: number
    /** Whether the fast server serves it on its fast path. */
    readonly fast: boolean
    /** Compare bodies byte for byte (else their JSON structure). */
    readonly exact: boolean
    readonly head?: boolean
  }
  const decryptBody = (): unknown => ({ ciphertext, context: 'Y3R4' })
  const cases: readonly Case[] = [
    { name: 'generate (admin)', as: root, bytes: () => post('/v1/key/generate/app-key', { context: 'Y3R4' }), status: 200, fast: true, exact: false },
    { name: 'generate with PUT, allowed by policy', as: app, bytes: () => request('PUT /v1/key/generate/app-key HTTP/1.1', ['Content-Length: 2'], '{}'), status: 200, fast: true, exact: false },
    { name: 'generate without a body or Content-Length', as: root, bytes: () => request('POST /v1/key/generate/app-key HTTP/1.1'), status: 200, fast: true, exact: false },
    { name: 'generate with Content-Length: 0', as: root, bytes: () => request('POST /v1/key/generate/app-key HTTP/1.1', ['Content-Length: 0']), status: 200, fast: true, exact: false },
    { name: 'generate with Connection: keep-alive', as: root, bytes: () => post('/v1/key/generate/app-key', {}, ['Connection: keep-alive']), status: 200, fast: true, exact: false },
    { name: 'generate, percent-encoded key name', as: root, bytes: () => post('/v1/key/generate/app%2Dkey', {}), status: 200, fast: true, exact: false },
    { name: 'encrypt', as: app, bytes: () => post('/v1/key/encrypt/app-key', { plaintext: 'aGVsbG8=' }), status: 200, fast: true, exact: false },
    { name: 'decrypt: the plaintext generate gave', as: app, bytes: () => post('/v1/key/decrypt/app-key', decryptBody()), status: 200, fast: true, exact: true },
    { name: 'decrypt with PUT', as: root, bytes: () => request('PUT /v1/key/decrypt/app-key HTTP/1.1', [`Content-Length: ${JSON.stringify(decryptBody()).length}`], JSON.stringify(decryptBody())), status: 200, fast: true, exact: true },
    { name: 'decrypt, wrong context', as: app, bytes: () => post('/v1/key/decrypt/app-key', { ciphertext, context: 'b3RoZXI=' }), status: 400, fast: true, exact: true },
    { name: 'decrypt, not a ciphertext', as: app, bytes: () => post('/v1/key/decrypt/app-key', { ciphertext: 'AAAA' }), status: 400, fast: true, exact: true },
    { name: 'unknown key', as: root, bytes: () => post('/v1/key/generate/no-such-key', {}), status: 404, fast: true, exact: true },
    { name: 'invalid key name', as: root, bytes: () => post('/v1/key/generate/.hidden', {}), status: 400, fast: true, exact: true },
    { name: 'invalid key name (encoded slash)', as: root, bytes: () => post('/v1/key/encrypt/a%2Fb', {}), status: 400, fast: true, exact: true },
    { name: 'no key name', as: root, bytes: () => post('/v1/key/generate/', {}), status: 400, fast: true, exact: true },
    { name: 'bad JSON', as: root, bytes: () => post('/v1/key/generate/app-key', '{'), status: 400, fast: true, exact: true },
    { name: 'JSON that is not an object', as: root, bytes: () => post('/v1/key/encrypt/app-key', '[]'), status: 400, fast: true, exact: true },
    { name: 'a fragment in the target (part of the key name)', as: root, bytes: () => post('/v1/key/generate/app-key#frag', {}), status: 400, fast: true, exact: true },
    { name: 'a query in the target', as: root, bytes: () => post('/v1/key/generate/app-key?x=1', {}), status: 200, fast: true, exact: false },
    { name: 'denied: no policy', as: stranger, bytes: () => post('/v1/key/generate/app-key', {}), status: 403, fast: true, exact: true },
    { name: 'denied: a key outside the policy', as: app, bytes: () => post('/v1/key/decrypt/other-key', decryptBody()), status: 403, fast: true, exact: true },
    { name: 'denied with a 12 KiB body', as: stranger, bytes: () => post('/v1/key/encrypt/app-key', 'x'.repeat(12 * KiB)), status: 403, fast: true, exact: true },
    { name: '/v1/status allowed by policy', as: app, bytes: () => request('GET /v1/status HTTP/1.1'), status: 200, fast: true, exact: false },
    { name: '/v1/status denied', as: stranger, bytes: () => request('GET /v1/status HTTP/1.1'), status: 403, fast: true, exact: true },
    { name: '/version', as: stranger, bytes: () => request('GET /version HTTP/1.1'), status: 200, fast: true, exact: true },
    { name: '/version?x=1', as: root, bytes: () => request('GET /version?x=1 HTTP/1.1'), status: 200, fast: true, exact: true },
    { name: '/version with a body', as: root, bytes: () => request('GET /version HTTP/1.1', ['Content-Length: 3'], 'abc'), status: 200, fast: true, exact: true },
    { name: '/v1/ready', as: root, bytes: () => request('GET /v1/ready HTTP/1.1'), status: 200, fast: true, exact: true },
    { name: 'a 12 KiB body', as: root, bytes: () => post('/v1/key/encrypt/app-key', `{"plaintext":"${'A'.repeat(12 * KiB - 16)}"}`), status: 200, fast: true, exact: false },
    // Node's from here on: the fast server hands these connections over. A request must arrive
    // whole in one read of the socket, and TLS delivers at most one 16 KiB record per read: a
    // 64 KiB body, within the fast path's own limit, still goes to Node.
    { name: 'a body of 64 KiB (more than one TLS record)', as: root, bytes: () => post('/v1/key/encrypt/app-key', `{"plaintext":"${'A'.repeat(64 * KiB - 16)}"}`), status: 200, fast: false, exact: false },
    { name: 'denied with a 60 KiB body', as: stranger, bytes: () => post('/v1/key/encrypt/app-key', 'x'.repeat(60 * KiB)), status: 403, fast: false, exact: true },    { name: 'a body one byte over 64 KiB', as: root, bytes: () => post('/v1/key/encrypt/app-key', `{"plaintext":"${'A'.repeat(64 * KiB - 16)}" }`), status: 200, fast: false, exact: false },
    { name: 'a body over the route limit (1 MiB)', as: root, bytes: () => post('/v1/key/decrypt/app-key', 'x'.repeat(MiB + 1)), status: 413, fast: false, exact: true },
    { name: 'wrong method (GET generate): 405 with Allow', as: root, bytes: () => request('GET /v1/key/generate/app-key HTTP/1.1'), status: 405, fast: false, exact: true },
    { name: 'wrong method (DELETE decrypt)', as: root, bytes: () => request('DELETE /v1/key/decrypt/app-key HTTP/1.1'), status: 405, fast: false, exact: true },
    { name: 'HEAD /version', as: root, bytes: () => request('HEAD /version HTTP/1.1'), status: 405, fast: false, exact: true, head: true },
    { name: 'chunked decrypt', as: app, bytes: () => request('POST /v1/key/decrypt/app-key HTTP/1.1', ['Transfer-Encoding: chunked'], chunked(JSON.stringify(decryptBody()))), status: 200, fast: false, exact: true },
    { name: 'Expect: 100-continue decrypt', as: app, bytes: () => post('/v1/key/decrypt/app-key', decryptBody(), ['Expect: 100-continue']), status: 200, fast: false, exact: true },
    { name: 'duplicate Content-Length', as: root, bytes: () => request('POST /v1/key/generate/app-key HTTP/1.1', ['Content-Length: 2', 'Content-Length: 2'], '{}'), status: 400, fast: false, exact: true },
    { name: 'conflicting Content-Length', as: root, bytes: () => request('POST /v1/key/generate/app-key HTTP/1.1', ['Content-Length: 2', 'Content-Length: 3'], '{} '), status: 400, fast: false, exact: true },
    { name: 'Content-Length and Transfer-Encoding', as: root, bytes: () => request('POST /v1/key/generate/app-key HTTP/1.1', ['Content-Length: 2', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), status: 400, fast: false, exact: true },
    { name: 'HTTP/1.0', as: root, bytes: () => request('GET /version HTTP/1.0'), status: 200, fast: false, exact: true },
    { name: 'Connection: close', as: root, bytes: () => post('/v1/key/generate/app-key', {}, ['Connection: close']), status: 200, fast: false, exact: false },
    { name: 'no Host', as: root, bytes: () => Buffer.from('GET /version HTTP/1.1\r\n\r\n'), status: 200, fast: false, exact: true },
    { name: 'obs-fold', as: root, bytes: () => request('GET /version HTTP/1.1', ['X-A: 1', ' folded']), status: 400, fast: false, exact: true },
    { name: 'a list route', as: root, bytes: () => request('GET /v1/key/list/app-* HTTP/1.1'), status: 200, fast: false, exact: true },
  ]

  for (const c of cases) {
    test(c.name, async () => {
      const { fast, node, fastEvents, nodeEvents } = p()
      const fastFrom = fastEvents.length
      const nodeFrom = nodeEvents.length
      const answered = fastAnswers1
      const a = await exchange(fast, c.as, c.bytes(), c.head)
      assert.equal(fastAnswers1 - answered, c.fast ? 1 : 0, c.fast ? 'served on the fast path' : 'left to Node')
      const b = await exchange(node, c.as, c.bytes(), c.head)
      assert.deepEqual(comparable(a, c.exact), comparable(b, c.exact))
      assert.equal(a.status, c.status, `${a.status} ${a.body.toString()}`)
      if (c.status === 200 && c.name.startsWith('decrypt')) assert.deepEqual(bodyOf(a), { plaintext })
      // The same audit events: none for what Node's parser refused, else exactly one.
      if (c.status !== 400 || a.body.toString() !== '{"message":"malformed HTTP request"}') {
        await eventsReach(fastEvents, fastFrom + 1, 'fast')
        await eventsReach(nodeEvents, nodeFrom + 1, 'node')
      }
      assert.deepEqual(fastEvents.slice(fastFrom).map(auditView), nodeEvents.slice(nodeFrom).map(auditView))
      assert.ok(fastEvents.length - fastFrom <= 1, 'at most one audit event per request')
      const own = fastEvents.slice(fastFrom)[0]
      if (own !== undefined) {
        assert.equal(own.identity, c.as.identity)
        assert.equal(own.status, c.status)
      }
    })
  }

  test('no error lines on either server', () => {
    assert.deepEqual(p().fast.errorLines, [])
    assert.deepEqual(p().node.errorLines, [])
  })
})

describe('HTTP/1.1: one connection on the fast path', () => {
  const p = pairPerSuite()
  const env = (): TestEnv => p().fast

  /** A connection of `client` to the fast server, destroyed when the test ends. */
  async function open(t: { after(fn: () => void): void }, client: Client = root): Promise<RawConnection> {
    const conn = await RawConnection.open(env(), client)
    t.after(() => conn.destroy())
    return conn
  }

  /** Generates a data key on `conn` and checks that decrypt on `conn` gives its plaintext back. */
  async function roundTrip(conn: RawConnection, n: number): Promise<void> {
    await conn.write(post('/v1/key/generate/app-key', { context: Buffer.from(`ctx-${n}`).toString('base64') }))
    const gen = await conn.next()
    assert.equal(gen.status, 200, gen.body.toString())
    const { plaintext, ciphertext } = bodyOf(gen) as { plaintext: string; ciphertext: string }
    await conn.write(post('/v1/key/decrypt/app-key', { ciphertext, context: Buffer.from(`ctx-${n}`).toString('base64') }))
    const dec = await conn.next()
    assert.equal(dec.status, 200, dec.body.toString())
    assert.deepEqual(bodyOf(dec), { plaintext })
  }

  test('many requests in turn on one keep-alive connection: all on the fast path, decrypt returns what generate gave', async (t) => {
    const conn = await open(t)
    const before = fastAnswers1
    for (let i = 0; i < 25; i++) await roundTrip(conn, i)
    assert.equal(fastAnswers1 - before, 50)
    assert.equal(conn.isClosed, false)
  })

  test('two requests pipelined in one write are both answered, in order', async (t) => {
    const conn = await open(t)
    await conn.write(Buffer.concat([post('/v1/key/generate/no-such-key', {}), request('GET /version HTTP/1.1'), post('/v1/key/generate/app-key', {})]))
    const first = await conn.next()
    const second = await conn.next()
    const third = await conn.next()
    assert.deepEqual([first.status, second.status, third.status], [404, 200, 200])
    assert.deepEqual(bodyOf(first), { message: 'key does not exist' })
    assert.equal(typeof (bodyOf(second) as { version?: unknown }).version, 'string')
    assert.equal(typeof (bodyOf(third) as { plaintext?: unknown }).plaintext, 'string')
    // The connection, now Node's, goes on serving.
    await roundTrip(conn, 1)
  })

  test('a request split over two writes (headers, then the body after a pause) is answered, and the connection goes on', async (t) => {
    const conn = await open(t)
    const body = JSON.stringify({ context: 'eA==' })
    await conn.write(request('POST /v1/key/generate/app-key HTTP/1.1', [`Content-Length: ${body.length}`]))
    await new Promise((r) => setTimeout(r, 50))
    await conn.write(body)
    const res = await conn.next()
    assert.equal(res.status, 200, res.body.toString())
    await roundTrip(conn, 2)
    await roundTrip(conn, 3)
  })

  test('a request split inside its head is answered', async (t) => {
    const conn = await open(t)
    const bytes = post('/v1/key/generate/app-key', {})
    await conn.write(bytes.subarray(0, 7))
    await new Promise((r) => setTimeout(r, 50))
    await conn.write(bytes.subarray(7))
    assert.equal((await conn.next()).status, 200)
    await roundTrip(conn, 4)
  })

  test('a fast request, then requests only Node serves (a listing, HEAD), then fast ones again, on one connection', async (t) => {
    const conn = await open(t)
    const before = fastAnswers1
    await roundTrip(conn, 5)
    assert.equal(fastAnswers1 - before, 2, 'the first two on the fast path')
    await conn.write(request('GET /v1/key/list/app-* HTTP/1.1'))
    const list = await conn.next()
    assert.equal(list.status, 200, list.body.toString())
    assert.ok(list.body.toString().includes('"name":"app-key"'), list.body.toString())
    await conn.write(request('HEAD /version HTTP/1.1'))
    const head = await conn.next(true)
    assert.equal(head.status, 405, 'HEAD is no method of /version')
    await roundTrip(conn, 6)
    await conn.write(request('GET /v1/status HTTP/1.1'))
    assert.equal((await conn.next()).status, 200)
    assert.equal(conn.isClosed, false)
  })

  test('a request written while the one before is in flight is answered after it', async (t) => {
    const conn = await open(t)
    for (let i = 0; i < 10; i++) {
      // Two writes without waiting: the second arrives while the first is served, or with it.
      const a = conn.write(post('/v1/key/encrypt/app-key', { plaintext: Buffer.from(`a${i}`).toString('base64') }))
      const b = conn.write(post('/v1/key/generate/no-such-key', {}))
      await Promise.all([a, b])
      const first = await conn.next()
      const second = await conn.next()
      assert.equal(first.status, 200, first.body.toString())
      assert.equal(second.status, 404, second.body.toString())
    }
  })

  test('Connection: close is honoured: the answer, then the server closes the connection', async (t) => {
    for (const target of [env(), p().node]) {
      const conn = await RawConnection.open(target, root)
      t.after(() => conn.destroy())
      await roundTrip(conn, 7)
      await conn.write(post('/v1/key/generate/app-key', {}, ['Connection: close']))
      const res = await conn.next()
      assert.equal(res.status, 200)
      assert.equal(header(res, 'connection'), 'close')
      const rest = await conn.closed()
      assert.equal(rest.length, 0, 'nothing after the answer')
    }
  })

  test('a client without a certificate never gets an answer, nor an audit event', async () => {
    const events = p().fastEvents
    const from = events.length
    let conn: RawConnection | undefined
    try {
      conn = await RawConnection.open(env(), undefined)
    } catch {
      conn = undefined // refused during the handshake: also fine
    }
    if (conn !== undefined) {
      await conn.write(post('/v1/key/generate/app-key', {})).catch(() => {})
      const rest = await conn.closed()
      assert.equal(rest.length, 0, `no answer: ${rest.toString('latin1')}`)
    }
    // Another request afterwards completes, and is the only new event.
    assert.equal((await env().request(root, '/version')).status, 200)
    await eventsReach(events, from + 1, 'the /version')
    assert.deepEqual(
      events.slice(from).map((e) => e.identity),
      [root.identity],
    )
  })
})

describe('HTTP/2: fast-route streams on the core stream API', () => {
  const p = pairPerSuite()

  test('generate then decrypt, 100 streams at once on one session, all on the fast path', async () => {
    const { fast } = p()
    const before = fastAnswers2
    const contexts = Array.from({ length: 100 }, (_, i) => Buffer.from(`c${i}`).toString('base64'))
    const generated = await Promise.all(contexts.map((context) => fast.request(app, '/v1/key/generate/app-key', { method: 'POST', body: { context }, http2: true })))
    for (const g of generated) assert.equal(g.status, 200, g.text)
    const keys = generated.map((g) => g.json as { plaintext: string; ciphertext: string })
    const decrypted = await Promise.all(
      keys.map((k, i) => fast.request(app, '/v1/key/decrypt/app-key', { method: 'PUT', body: { ciphertext: k.ciphertext, context: contexts[i] }, http2: true })),
    )
    decrypted.forEach((d, i) => {
      assert.equal(d.status, 200, d.text)
      assert.deepEqual(d.json, { plaintext: keys[i]?.plaintext })
    })
    assert.equal(fastAnswers2 - before, 200)
    assert.equal(new Set(keys.map((k) => k.plaintext)).size, 100, 'every data key is new')
  })

  /** A session of root's on `env`, up (it has served a request), destroyed after the test. */
  async function sessionUp(env: TestEnv, t: { after(fn: () => void): void }): Promise<http2.ClientHttp2Session> {
    const session = h2Session(env, root)
    t.after(() => session.destroy())
    const up = session.request({ ':path': '/version' })
    up.end()
    assert.equal((await h2Answer(up)).status, 200)
    return session
  }

  // The order of work and answers within a burst is RequestTurns' (src/server/request-turns.test.ts,
  // http2-fast-path.test.ts); in one process it also depends on how the client's frames are split
  // over reads, so here the burst is checked for what must hold however it is split.
  test('a burst of 64 streams, more than one turn holds: every request answered and audited once', async (t) => {
    const { fast, fastEvents } = p()
    const session = await sessionUp(fast, t)
    const from = fastEvents.length
    const burst = Array.from({ length: 64 }, () => {
      const s = session.request({ ':method': 'POST', ':path': '/v1/key/generate/app-key' })
      s.end('{}')
      return s
    })
    const answers = await Promise.all(burst.map((s) => h2Answer(s)))
    for (const a of answers) assert.equal(a.status, 200, a.failed ?? a.text)
    assert.equal(new Set(answers.map((a) => a.text)).size, 64, 'every answer its own data key')
    assert.equal(fastEvents.length - from, 64, 'one audit event per request of the burst')
  })

  test('a stream reset while its body end waits for its turn is never worked on: recorded as aborted; the session goes on', async (t) => {
    const { fast, fastEvents } = p()
    const session = await sessionUp(fast, t)
    const from = fastEvents.length
    const errorsBefore = fast.errorLines.length
    const generate = (): http2.ClientHttp2Stream => {
      const s = session.request({ ':method': 'POST', ':path': '/v1/key/generate/app-key' })
      s.end('{}')
      return s
    }
    // 32 streams fill this turn and the next; the 33rd waits for a later one, and is reset first.
    const burst = Array.from({ length: 32 }, generate)
    const reset = session.request({ ':method': 'POST', ':path': '/v1/key/decrypt/app-key' })
    reset.on('error', () => {})
    reset.end('{}')
    reset.close(http2.constants.NGHTTP2_CANCEL)
    // Its turn comes before a later request's: once that one is answered, the reset one is settled.
    const later = generate()
    for (const a of await Promise.all([...burst, later].map((s) => h2Answer(s)))) assert.equal(a.status, 200, a.failed ?? a.text)
    await waitFor('the reset request to be recorded', () => fastEvents.slice(from).some((e) => e.path === '/v1/key/decrypt/app-key'))
    const events = fastEvents.slice(from)
    // Worked on, its body `{}` would have been refused as no ciphertext; it was never worked on.
    assert.deepEqual(
      events.filter((e) => e.path === '/v1/key/decrypt/app-key').map((e) => [e.status, e.error]),
      [[400, 'request aborted']],
    )
    assert.equal(events.length, 34)
    assert.deepEqual(fast.errorLines.slice(errorsBefore), [])
  })

  /** What of an HTTP/2 response must be the same on both servers. */
  function comparable2(res: Response, exactBody: boolean): unknown {
    return {
      status: res.status,
      contentType: res.headers['content-type'],
      nosniff: res.headers['x-content-type-options'],
      contentLength: exactBody ? res.headers['content-length'] : res.headers['content-length'] !== undefined,
      allow: res.headers['allow'],
      body: exactBody ? res.json ?? res.text : shape(res.json),
    }
  }

  const cases: ReadonlyArray<{ name: string; as: Client; method: string; target: string; body?: string | Buffer; headers?: Record<string, string>; status: number; fast: boolean; exact: boolean }> = [
    { name: 'generate', as: root, method: 'POST', target: '/v1/key/generate/app-key', body: '{}', status: 200, fast: true, exact: false },
    { name: 'generate without a body', as: root, method: 'POST', target: '/v1/key/generate/app-key', status: 200, fast: true, exact: false },
    { name: 'encrypt allowed by policy', as: app, method: 'PUT', target: '/v1/key/encrypt/app-key', body: '{"plaintext":"aGk="}', status: 200, fast: true, exact: false },
    { name: 'unknown key', as: root, method: 'POST', target: '/v1/key/generate/no-such-key', body: '{}', status: 404, fast: true, exact: true },
    { name: 'decrypt: not a ciphertext', as: root, method: 'POST', target: '/v1/key/decrypt/app-key', body: '{}', status: 400, fast: true, exact: true },
    { name: 'denied: no policy', as: stranger, method: 'POST', target: '/v1/key/generate/app-key', body: '{}', status: 403, fast: true, exact: true },
    { name: 'denied: a key outside the policy', as: app, method: 'POST', target: '/v1/key/generate/other-key', body: '{}', status: 403, fast: true, exact: true },
    { name: 'bad JSON', as: root, method: 'POST', target: '/v1/key/generate/app-key', body: '{', status: 400, fast: true, exact: true },
    { name: 'invalid key name', as: root, method: 'POST', target: '/v1/key/generate/.x', body: '{}', status: 400, fast: true, exact: true },
    { name: 'a body over the route limit', as: root, method: 'POST', target: '/v1/key/decrypt/app-key', body: Buffer.alloc(MiB + 1, 'x'), status: 413, fast: true, exact: true },
    { name: '/version', as: stranger, method: 'GET', target: '/version', status: 200, fast: true, exact: true },
    { name: '/v1/ready', as: root, method: 'GET', target: '/v1/ready', status: 200, fast: true, exact: true },
    { name: '/version with a body', as: root, method: 'GET', target: '/version', body: 'abc', status: 200, fast: true, exact: true },
    { name: 'generate with a query', as: root, method: 'POST', target: '/v1/key/generate/app-key?x=1', body: '{}', status: 200, fast: true, exact: false },
    { name: '/v1/status allowed by policy', as: app, method: 'GET', target: '/v1/status', status: 200, fast: true, exact: false },
    { name: '/v1/status denied', as: stranger, method: 'GET', target: '/v1/status', status: 403, fast: true, exact: true },
    { name: 'wrong method: 405 with Allow (compatibility layer)', as: root, method: 'GET', target: '/v1/key/generate/app-key', status: 405, fast: false, exact: true },
    { name: 'expect: 100-continue goes to the compatibility layer', as: root, method: 'POST', target: '/v1/key/generate/no-such-key', body: '{}', headers: { expect: '100-continue' }, status: 404, fast: false, exact: true },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const { fast, node, fastEvents, nodeEvents } = p()
      const fastFrom = fastEvents.length
      const nodeFrom = nodeEvents.length
      const answered = fastAnswers2
      const opts = { method: c.method, http2: true, ...(c.body === undefined ? {} : { body: c.body }), ...(c.headers === undefined ? {} : { headers: c.headers }) }
      const a = await fast.request(c.as, c.target, opts)
      assert.equal(fastAnswers2 - answered, c.fast ? 1 : 0, c.fast ? 'served on the fast path' : 'left to the compatibility layer')
      const b = await node.request(c.as, c.target, opts)
      assert.deepEqual(comparable2(a, c.exact), comparable2(b, c.exact))
      assert.equal(a.status, c.status, a.text)
      await eventsReach(fastEvents, fastFrom + 1, 'fast')
      await eventsReach(nodeEvents, nodeFrom + 1, 'node')
      assert.deepEqual(fastEvents.slice(fastFrom).map(auditView), nodeEvents.slice(nodeFrom).map(auditView))
      assert.equal(fastEvents.length - fastFrom, 1, 'one audit event')
    })
  }

  test('a stream reset mid-body is recorded as aborted; the session and the server go on', async (t) => {
    const { fast, fastEvents } = p()
    const session = h2Session(fast, root)
    t.after(() => session.destroy())
    // A first request on the session, so it is up.
    const ok = await new Promise<number>((resolve, reject) => {
      const s = session.request({ ':path': '/version' })
      s.on('response', (h) => resolve(Number(h[':status'])))
      s.on('error', reject)
      s.resume()
    })
    assert.equal(ok, 200)
    const from = fastEvents.length
    const errorsBefore = fast.errorLines.length
    const stream = session.request({ ':method': 'POST', ':path': '/v1/key/generate/app-key', 'content-length': '100' }, { endStream: false })
    stream.on('error', () => {})
    stream.write('{"context":')
    // Wait until the server is reading the body (the request is in flight), then reset the stream.
    await waitFor('the request to be in flight', async () => /^kes_http_request_active ([2-9]|\d\d)/m.test(await scrape(fast, root)))
    stream.close(http2.constants.NGHTTP2_CANCEL)
    await waitFor('the aborted request to complete', () => fastEvents.slice(from).some((e) => e.path === '/v1/key/generate/app-key'))
    const e = fastEvents.slice(from).find((x) => x.path === '/v1/key/generate/app-key') as CompletedRequest
    assert.equal(e.status, 400)
    assert.equal(e.error, 'request aborted')
    assert.deepEqual(fast.errorLines.slice(errorsBefore), [])
    // The same session still serves fast requests.
    const next = session.request({ ':method': 'POST', ':path': '/v1/key/generate/app-key' })
    next.end('{}')
    const again = await h2Answer(next)
    assert.equal(again.failed, undefined)
    assert.equal(again.status, 200, again.text)
  })
})

describe('audit events and metrics of fast-path requests', () => {
  const p = pairPerSuite()

  test('each request is one audit event with its api, status and identity, and /v1/metrics counts it', async () => {
    const { fast, fastEvents } = p()
    const series = (api: string, code: number): string => `kes_http_requests_total{api="${api}",code="${code}"}`
    const before = await scrape(fast, root)
    const from = fastEvents.length
    const answered1 = fastAnswers1
    const answered2 = fastAnswers2
    const sent: Array<[Client, string, number]> = []
    for (const http2 of [false, true]) {
      for (let i = 0; i < 3; i++) {
        if (http2) {
          assert.equal((await fast.request(app, '/v1/key/generate/app-key', { method: 'POST', body: {}, http2 })).status, 200)
          assert.equal((await fast.request(stranger, '/v1/key/generate/app-key', { method: 'POST', body: {}, http2 })).status, 403)
          assert.equal((await fast.request(root, '/v1/key/encrypt/no-such-key', { method: 'POST', body: {}, http2 })).status, 404)
        } else {
          assert.equal((await exchange(fast, app, post('/v1/key/generate/app-key', {}))).status, 200)
          assert.equal((await exchange(fast, stranger, post('/v1/key/generate/app-key', {}))).status, 403)
          assert.equal((await exchange(fast, root, post('/v1/key/encrypt/no-such-key', {}))).status, 404)
        }
        sent.push([app, '/v1/key/generate', 200], [stranger, '/v1/key/generate', 403], [root, '/v1/key/encrypt', 404])
      }
    }
    assert.equal(fastAnswers1 - answered1, 9)
    assert.equal(fastAnswers2 - answered2, 9)
    await eventsReach(fastEvents, from + sent.length, 'the 18 requests')
    assert.deepEqual(
      fastEvents.slice(from).map((e) => [e.identity, e.api, e.status]),
      sent.map(([c, api, status]) => [c.identity, api, status]),
    )
    const after = await scrape(fast, root)
    const delta = (s: string): number => sample(after, s) - sample(before, s)
    assert.equal(delta(series('/v1/key/generate', 200)), 6)
    assert.equal(delta(series('/v1/key/generate', 403)), 6)
    assert.equal(delta(series('/v1/key/encrypt', 404)), 6)
    assert.equal(delta('kes_http_request_success'), 6 + 1, 'and the first scrape')
    assert.equal(delta('kes_http_request_error'), 12)
  })
})

describe('idle HTTP/1.1 connections after a fast request (limits.idle_timeout)', () => {
  const p = pairPerSuite('limits:\n  idle_timeout: 1s\n')

  test('the answer announces Keep-Alive: timeout=<idle seconds>, as Node does, and the idle connection is closed', async (t) => {
    const answers: RawResponse[] = []
    for (const env of [p().fast, p().node]) {
      const conn = await RawConnection.open(env, root)
      t.after(() => conn.destroy())
      const before = fastAnswers1
      await conn.write(post('/v1/key/generate/app-key', {}))
      const res = await conn.next()
      assert.equal(res.status, 200)
      answers.push(res)
      assert.equal(fastAnswers1 - before, env === p().fast ? 1 : 0)
      assert.equal(header(res, 'keep-alive'), 'timeout=1')
      assert.equal(header(res, 'connection'), 'keep-alive')
      const rest = await conn.closed(15_000)
      assert.equal(rest.length, 0)
    }
  })
})

describe('a fast-path request refused by the body budget (limits.body_bytes_*)', () => {
  const p = pairPerSuite('limits:\n  body_bytes_per_connection: 1MiB\n  body_bytes_total: 1MiB\n')

  test('is 503 with one Connection: close, as Node answers it, and its connection is closed', async (t) => {
    const answers: RawResponse[] = []
    for (const env of [p().fast, p().node]) {
      // Another connection holds all but 8 KiB of the server's budget with a body it never finishes.
      const session = h2Session(env, root)
      t.after(() => session.destroy())
      const holder = session.request({ ':method': 'POST', ':path': '/v1/key/encrypt/app-key' }, { endStream: false })
      holder.on('error', () => {})
      holder.write(Buffer.alloc(MiB - 8 * KiB, 'x'))
      // Until the server has taken in the held bytes, a 12 KiB body fits (and is a 400: not JSON).
      let refused: RawResponse | undefined
      let conn: RawConnection | undefined
      await waitFor('a 12 KiB body refused for the budget', async () => {
        conn?.destroy()
        conn = await RawConnection.open(env, root)
        const before = fastAnswers1
        await conn.write(post('/v1/key/encrypt/app-key', 'x'.repeat(12 * KiB)))
        const res = await conn.next()
        assert.equal(fastAnswers1 - before, env === p().fast ? 1 : 0, 'the fast server serves it on the fast path')
        if (res.status !== 503) return false
        refused = res
        return true
      })
      const c = conn as RawConnection
      t.after(() => c.destroy())
      answers.push(refused as RawResponse)
      assert.deepEqual(bodyOf(refused as RawResponse), { message: 'too many request body bytes in flight, try again later' })
      assert.equal(header(refused as RawResponse, 'connection'), 'close')
      assert.equal((await c.closed()).length, 0, 'nothing after the answer')
      holder.close(http2.constants.NGHTTP2_CANCEL)
    }
    const [fastAnswer, nodeAnswer] = answers as [RawResponse, RawResponse]
    assert.deepEqual(comparable(fastAnswer, true), comparable(nodeAnswer, true))
  })
})

/**
 * A key store whose read of key `gated` waits, once per hold(), until the test releases it:
 * a fast request for that key stays in flight for as long as a test needs.
 */
class GatedStore {
  #held: { arrived: () => void; release: Promise<void> } | undefined

  /** The store, over a real fs store in `dir`. */
  async open(dir: string): Promise<KeyStore> {
    const inner = await openFsStore(dir)
    const keys = forwardingTable(inner.keys, {
      get: async (name) => {
        const held = this.#held
        if (held !== undefined && name === 'gated') {
          this.#held = undefined
          held.arrived()
          await held.release
        }
        return inner.keys.get(name)
      },
    })
    return withTables(inner, { keys })
  }

  /** The next read of `gated` waits: `arrived` resolves when it has started, `release` lets it go on. */
  hold(): { arrived: Promise<void>; release: () => void } {
    let arrived = (): void => {}
    let release = (): void => {}
    const arrivedP = new Promise<void>((r) => (arrived = r))
    const releaseP = new Promise<void>((r) => (release = r))
    this.#held = { arrived, release: releaseP }
    return { arrived: within(arrivedP, 10_000, 'the request to reach the store'), release }
  }
}

/** A server for the suite whose key store holds the next read of `gated` until the test releases it. */
function gatedServerPerSuite(): { env: () => TestEnv; gate: GatedStore } {
  let env: TestEnv | undefined
  const gate = new GatedStore()
  before(async () => {
    env = await TestEnv.create()
    await env.start(config('./keys'), { store: await gate.open(path.join(env.dir, 'keys')) })
  })
  after(() => env?.dispose())
  return { env: () => env as TestEnv, gate }
}

describe('HTTP/1.1: while a fast request is in flight', () => {
  const { env, gate } = gatedServerPerSuite()

  test('a request that arrives meanwhile is served after it, on the fast path too', async (t) => {
    const e = env()
    const conn = await RawConnection.open(e, root)
    t.after(() => conn.destroy())
    const held = gate.hold()
    const before = fastAnswers1
    await conn.write(post('/v1/key/generate/gated', {}))
    await held.arrived
    await conn.write(post('/v1/key/generate/app-key', {}))
    // (A pause, so the second request has arrived while the first is held; nothing is timed.)
    await new Promise((r) => setTimeout(r, 50))
    held.release()
    const first = await conn.next()
    const second = await conn.next()
    assert.deepEqual([first.status, second.status], [404, 200])
    assert.deepEqual(bodyOf(first), { message: 'key does not exist' })
    assert.equal(fastAnswers1 - before, 2)
    assert.equal(conn.isClosed, false)
  })

  test('a large request sent meanwhile (more than the fast path queues): both are answered, in order', async (t) => {
    const e = env()
    const conn = await RawConnection.open(e, root)
    t.after(() => conn.destroy())
    const held = gate.hold()
    await conn.write(post('/v1/key/generate/gated', {}))
    await held.arrived
    // 533 KiB: the server stops reading once more than one fast request can be has queued, and
    // reads on (as Node's connection now) once the held request is answered.
    const plaintext = Buffer.alloc(400 * KiB, 7).toString('base64')
    const sent = conn.write(post('/v1/key/encrypt/app-key', { plaintext }))
    sent.catch(() => {})
    await new Promise((r) => setTimeout(r, 50))
    held.release()
    const first = await conn.next()
    assert.equal(first.status, 404)
    const second = await conn.next()
    assert.equal(second.status, 200, second.body.toString().slice(0, 200))
    await sent
    // The ciphertext decrypts to what was sent.
    await conn.write(post('/v1/key/decrypt/app-key', { ciphertext: (bodyOf(second) as { ciphertext: string }).ciphertext }))
    const third = await conn.next()
    assert.equal(third.status, 200)
    assert.deepEqual(bodyOf(third), { plaintext })
  })
})

describe('HTTP/1.1: shutdown with a fast request in flight', () => {
  const { env, gate } = gatedServerPerSuite()

  test('the request in flight is answered, then its connection is closed; idle ones are closed at once', async (t) => {
    const e = env()
    const server = e.server as RunningServer
    const busy = await RawConnection.open(e, root)
    const idle = await RawConnection.open(e, root)
    t.after(() => {
      busy.destroy()
      idle.destroy()
    })
    await idle.write(request('GET /version HTTP/1.1'))
    assert.equal((await idle.next()).status, 200)
    const held = gate.hold()
    await busy.write(post('/v1/key/generate/gated', {}))
    await held.arrived
    const closed = server.close(10_000)
    await idle.closed()
    held.release()
    const res = await busy.next()
    assert.equal(res.status, 404)
    await busy.closed()
    await within(closed, 15_000, 'the server to close')
  })
})
