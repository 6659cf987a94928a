// The server's edge (issue 9 items 1, 4, 6, 7, 8): what a client can make the
// server hold — body bytes, log-reader places, connections, time — is
// bounded, and a client without a certificate never reaches the router.
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import https from 'node:https'
import type { Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { CompletedRequest } from '../../src/api/router.js'
import { TestEnv, makeClient } from './harness.js'
import { eventWithin, h2Answer, h2Session, idleSockets, sample, scrape, waitFor } from './edge.js'
import type { H2Outcome } from './edge.js'

const root = makeClient('root')
const reader = makeClient('reader')
const KiB = 1024
const BUSY = 'too many request body bytes in flight, try again later'

/** Starts an HTTP/2 request whose body is `bytes` long but not finished: the caller ends it. */
function unfinished(session: http2.ClientHttp2Session, method: string, path: string, bytes: number): { stream: http2.ClientHttp2Stream; answer: Promise<H2Outcome> } {
  const stream = session.request({ ':method': method, ':path': path }, { endStream: false })
  const answer = h2Answer(stream)
  stream.write(Buffer.alloc(bytes, 'x'))
  return { stream, answer }
}

/** An HTTP/1.1 request on a connection of its own, with a body of `bytes` not finished yet. */
function unfinished1(env: TestEnv, path: string, bytes: number): { end: () => void; answer: Promise<{ status: number; text: string }> } {
  const req = https.request({
    host: '127.0.0.1',
    port: env.port,
    method: 'POST',
    path,
    agent: false,
    cert: root.cert.certPem,
    key: root.cert.keyPem,
    ca: env.serverCert.certPem,
    servername: 'localhost',
    headers: { 'content-length': String(bytes + 1) },
  })
  const answer = new Promise<{ status: number; text: string }>((resolve) => {
    req.on('response', (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      res.on('error', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('error', (e) => resolve({ status: 0, text: e.message }))
  })
  req.write(Buffer.alloc(bytes, 'x'))
  return { end: () => req.end('x'), answer }
}

describe('request bodies held in memory are capped (limits.body_bytes_*)', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\nlimits:\n  body_bytes_per_connection: 1MiB\n  body_bytes_total: 1MiB\n`)
    assert.equal((await env.request(root, '/v1/key/create/k', { method: 'POST' })).status, 200)
  })
  after(async () => {
    await env.dispose()
  })

  test('over the per-connection cap an HTTP/2 request gets 503 {"message"}; the other is served', async () => {
    const session = h2Session(env, root)
    try {
      const a = unfinished(session, 'POST', '/v1/key/encrypt/k', 700 * KiB)
      const b = unfinished(session, 'POST', '/v1/key/encrypt/k', 700 * KiB)
      // The one that crossed the cap is answered before its body ends.
      const first = await Promise.race([a.answer, b.answer])
      assert.equal(first.status, 503, first.text)
      assert.deepEqual(JSON.parse(first.text), { message: BUSY })
      a.stream.end()
      b.stream.end()
      const [ra, rb] = await Promise.all([a.answer, b.answer])
      const statuses = [ra.status, rb.status].sort()
      // The other body was read whole: 'xxx…' is not JSON, a 400, not a refusal.
      assert.deepEqual(statuses, [400, 503])
    } finally {
      session.destroy()
    }
  })

  test('a body sent to an API that takes none is not kept: two 700 KiB bodies to /version on one connection are both served', async () => {
    const session = h2Session(env, root)
    try {
      const a = unfinished(session, 'GET', '/version', 700 * KiB)
      const b = unfinished(session, 'GET', '/version', 700 * KiB)
      a.stream.end(Buffer.alloc(200 * KiB))
      b.stream.end(Buffer.alloc(200 * KiB))
      const [ra, rb] = await Promise.all([a.answer, b.answer])
      assert.equal(ra.status, 200, ra.text)
      assert.equal(rb.status, 200, rb.text)
    } finally {
      session.destroy()
    }
  })

  test('the server-wide cap holds across connections (HTTP/1.1), and a refused body closes its connection', async () => {
    const a = unfinished1(env, '/v1/key/encrypt/k', 700 * KiB)
    const b = unfinished1(env, '/v1/key/encrypt/k', 700 * KiB)
    const first = await Promise.race([a.answer, b.answer])
    assert.equal(first.status, 503)
    assert.deepEqual(JSON.parse(first.text), { message: BUSY })
    a.end()
    b.end()
    const statuses = [(await a.answer).status, (await b.answer).status].sort()
    assert.deepEqual(statuses, [400, 503])
    // Everything was given back: a full-size request is served again.
    const ok = await env.request(root, '/v1/key/encrypt/k', { method: 'POST', body: { plaintext: Buffer.alloc(900 * KiB).toString('base64').slice(0, 1000) } })
    assert.equal(ok.status, 200, ok.text)
  })
})

describe('the log-reader cap holds under concurrent requests (item 4)', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\n`)
    // A policy stored through the API: authorizing the reader reads the key store, an await
    // between the request's arrival and its reply (the admin would skip it).
    assert.equal((await env.request(root, '/v1/policy/write/readers', { method: 'POST', body: { allow: ['/v1/log/error'] } })).status, 200)
    assert.equal((await env.request(root, `/v1/identity/assign/readers/${reader.identity}`, { method: 'POST' })).status, 200)
  })
  after(async () => {
    await env.dispose()
  })

  test('of 100 concurrent traces exactly 64 get 200 and the rest 503 "too many log readers"', async () => {
    const session = h2Session(env, reader)
    try {
      const streams = Array.from({ length: 100 }, () => session.request({ ':method': 'GET', ':path': '/v1/log/error' }))
      const statuses = await Promise.all(
        streams.map(
          (s) =>
            new Promise<{ status: number; body: Promise<string> }>((resolve) => {
              let text = ''
              const body = new Promise<string>((done) => {
                s.on('data', (c: Buffer) => (text += c.toString()))
                s.on('end', () => done(text))
                s.on('close', () => done(text))
              })
              s.on('response', (h) => resolve({ status: Number(h[':status']), body }))
              s.on('error', () => resolve({ status: 0, body }))
            }),
        ),
      )
      const ok = statuses.filter((s) => s.status === 200).length
      const refused = statuses.filter((s) => s.status === 503)
      assert.equal(ok, 64)
      assert.equal(refused.length, 36)
      for (const r of refused) assert.deepEqual(JSON.parse(await r.body), { message: 'too many log readers' })
    } finally {
      session.destroy()
    }
    // The places come back when the readers go.
    await waitFor('a trace place to be free again', async () => {
      const s = h2Session(env, reader)
      try {
        const st = s.request({ ':method': 'GET', ':path': '/v1/log/error' })
        const status = await new Promise<number>((resolve) => {
          st.on('response', (h) => resolve(Number(h[':status'])))
          st.on('error', () => resolve(0))
        })
        return status === 200
      } finally {
        s.destroy()
      }
    })
  })
})

describe('connection limits (item 7)', () => {
  let env: TestEnv
  const flood: Socket[] = []
  before(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\nlimits:\n  connections: 20\n  connections_per_address: 10\n  handshake_timeout: 60s\n`)
  })
  after(async () => {
    for (const s of flood) s.destroy()
    await env.dispose()
  })

  test('40 idle connections from one address: 30 are closed at once, and the admin is still served', async () => {
    const before = sample(await scrape(env, root), 'kes_connections_refused_total')
    env.resetConnections()
    const sockets = await idleSockets(env.port, '127.0.0.2', 40)
    flood.push(...sockets)
    let closed = 0
    for (const s of sockets) s.once('close', () => closed++)
    await waitFor('30 flood connections to be closed', () => closed + sockets.filter((s) => s.destroyed).length >= 30)
    const res = await env.request(root, '/v1/key/list/*')
    assert.equal(res.status, 200)
    const after = sample(await scrape(env, root), 'kes_connections_refused_total')
    assert.equal(after - before, 30)
    assert.ok(env.errorLines.some((l) => l.includes('limits.connections_per_address')))
    // The 10 admitted ones are still open (the handshake timeout is long here).
    assert.equal(sockets.filter((s) => !s.destroyed).length, 10)
    for (const s of sockets) s.destroy()
  })

  test('when idle connections from many addresses fill the server, one still in its handshake gives way to the admin', async () => {
    env.resetConnections()
    const sockets = (await Promise.all([3, 4].map((n) => idleSockets(env.port, `127.0.0.${n}`, 10)))).flat()
    flood.push(...sockets)
    await waitFor('20 connections open', () => sockets.filter((s) => !s.destroyed).length === 20, 5_000)
    const res = await env.request(root, '/v1/key/list/*', { http2: true })
    assert.equal(res.status, 200)
    for (const s of sockets) s.destroy()
  })
})

describe('handshake and idle timeouts (item 7)', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\nlimits:\n  handshake_timeout: 500ms\n  idle_timeout: 1s\n`)
  })
  after(async () => {
    await env.dispose()
  })

  test('a connection that never starts its handshake is closed', async () => {
    const [socket] = await idleSockets(env.port, '127.0.0.1', 1)
    // (Node itself emits a handshake timeout but leaves such a connection open.)
    if (!(socket as Socket).destroyed) await eventWithin(socket as Socket, 'close', 15_000, 'the silent connection to be closed')
  })

  test('an idle HTTP/2 session and an idle HTTP/1.1 connection are closed', async () => {
    const session = h2Session(env, root)
    const res = await h2Answer(session.request({ ':path': '/version' }))
    assert.equal(res.status, 200)
    await eventWithin(session, 'close', 15_000, 'the idle HTTP/2 session to be closed')
    const socket = await env.connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, ALPNProtocols: ['http/1.1'] })
    socket.on('error', () => {})
    socket.resume() // read the answer, or the close is never seen
    socket.write('GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await eventWithin(socket, 'close', 15_000, 'the idle HTTP/1.1 connection to be closed')
  })

  test('slowloris: headers trickling in one byte at a time do not keep a connection', async () => {
    const socket = await env.connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, ALPNProtocols: ['http/1.1'] })
    socket.on('error', () => {})
    socket.resume()
    socket.write('GET /version HTTP/1.1\r\nHost: localhost\r\n')
    // One header byte every 100 ms keeps the socket from ever being idle.
    const drip = setInterval(() => socket.writable && socket.write('x'), 100)
    try {
      await eventWithin(socket, 'close', 20_000, 'the slowloris connection to be closed')
    } finally {
      clearInterval(drip)
    }
  })
})

describe('a client without a certificate never reaches the router (item 8), and aborted HTTP/2 bodies are no server failure (item 6)', () => {
  let env: TestEnv
  const completed: CompletedRequest[] = []
  before(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\n`, { onComplete: (e) => completed.push(e) })
    assert.equal((await env.request(root, '/v1/key/create/k', { method: 'POST' })).status, 200)
  })
  after(async () => {
    await env.dispose()
  })

  const failures = async (): Promise<number> => sample(await scrape(env, root), 'kes_http_request_failure')

  test('HTTP/2 without a certificate: no answer, no audit event, no error line, no 5xx count', async () => {
    const before = await failures()
    completed.length = 0
    const session = h2Session(env, undefined)
    const answers = await Promise.all([
      h2Answer(session.request({ ':path': '/v1/key/list/*' })),
      h2Answer(session.request({ ':method': 'POST', ':path': '/v1/key/create/nocert' })),
    ])
    session.destroy()
    for (const a of answers) assert.equal(a.status, 0, 'the server must not answer')
    assert.equal(completed.filter((e) => e.identity !== root.identity).length, 0)
    assert.ok(!env.errorLines.some((l) => l.includes('failed to read identity')), env.errorLines.join('\n'))
    assert.ok(env.errorLines.some((l) => l.includes('no client certificate')))
    assert.equal(await failures(), before)
  })

  test('HTTP/1.1 without a certificate: no answer, no audit event, no 5xx count', async () => {
    const before = await failures()
    completed.length = 0
    let socket
    try {
      socket = await env.connectTls({ ALPNProtocols: ['http/1.1'] })
    } catch {
      socket = undefined // refused during the handshake: also fine
    }
    if (socket !== undefined) {
      let data = ''
      socket.on('data', (c: Buffer) => (data += c.toString()))
      socket.on('error', () => {})
      socket.write('GET /v1/key/list/* HTTP/1.1\r\nHost: localhost\r\n\r\n')
      await eventWithin(socket, 'close', 10_000)
      assert.equal(data, '')
    }
    assert.equal(completed.filter((e) => e.identity !== root.identity).length, 0)
    assert.ok(!env.errorLines.some((l) => l.includes('failed to read identity')))
    assert.equal(await failures(), before)
  })

  test('an HTTP/2 body cut off by the client is a 4xx without an error line', async () => {
    const lines = env.errorLines.length
    completed.length = 0
    const session = h2Session(env, root)
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/v1/key/encrypt/k' }, { endStream: false })
      stream.on('error', () => {})
      stream.write('{"plaintext":"AAAA')
      await new Promise((r) => setTimeout(r, 50))
      stream.close(http2.constants.NGHTTP2_CANCEL)
      await waitFor('the aborted request to complete', () => completed.some((e) => e.api === '/v1/key/encrypt'))
    } finally {
      session.destroy()
    }
    const event = completed.find((e) => e.api === '/v1/key/encrypt')
    assert.ok(event !== undefined && event.status < 500, `status ${event?.status}`)
    assert.deepEqual(env.errorLines.slice(lines), [])
  })
})
