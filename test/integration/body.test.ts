// Request bodies over the real server, HTTP/1.1 and HTTP/2: a body that stalls
// is 408 once the body timeout passes, and a client that goes away mid-body
// is recorded as an aborted request without disturbing anything else.
//
// The route's timeout, which bounds the body's arrival too, is set to one
// second for the key API under test (api:<path>.timeout), so the stall is
// answered in real time without waiting for the 15 s default.
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import https from 'node:https'
import { after, before, describe, test } from 'node:test'
import type { CompletedRequest } from '../../src/api/router.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const PATH = '/v1/key/generate/body-key'

interface Answer {
  status: number
  body: string
}

/** Sends the headers and the first part of a body that is never finished, over HTTP/1.1. */
function stalledHttp1(env: TestEnv): { answer: Promise<Answer>; abort(): void } {
  const req = https.request({
    host: '127.0.0.1',
    port: env.port,
    method: 'POST',
    path: PATH,
    cert: root.cert.certPem,
    key: root.cert.keyPem,
    ca: env.serverCert.certPem,
    servername: 'localhost',
    agent: false,
    headers: { 'content-length': '100', 'content-type': 'application/json' },
  })
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
  req.write('{"context":')
  return { answer, abort: () => req.destroy() }
}

/** The same over HTTP/2. */
function stalledHttp2(env: TestEnv): { answer: Promise<Answer>; abort(): void; session: http2.ClientHttp2Session } {
  const session = http2.connect(`https://localhost:${env.port}`, {
    cert: root.cert.certPem,
    key: root.cert.keyPem,
    ca: env.serverCert.certPem,
    host: '127.0.0.1',
    servername: 'localhost',
  })
  session.on('error', () => {})
  const stream = session.request({ ':method': 'POST', ':path': PATH, 'content-length': '100', 'content-type': 'application/json' })
  const answer = new Promise<Answer>((resolve, reject) => {
    let status = 0
    let body = ''
    stream.on('response', (h) => (status = Number(h[':status'])))
    stream.on('data', (c: Buffer) => (body += c.toString()))
    stream.on('end', () => resolve({ status, body }))
    stream.on('error', reject)
  })
  stream.write('{"context":')
  return { answer, abort: () => stream.close(http2.constants.NGHTTP2_CANCEL), session }
}

/** Resolves with the completed-request event of the first request to `PATH` from `from` on. */
async function completion(events: CompletedRequest[], from: number): Promise<CompletedRequest> {
  for (let i = 0; i < 2000; i++) {
    const e = events.slice(from).find((x) => x.path === PATH)
    if (e !== undefined) return e
    await new Promise((r) => setTimeout(r, 5))
  }
  throw new Error(`no completed request for ${PATH} within 10 s`)
}

describe('request bodies', () => {
  let env: TestEnv
  const events: CompletedRequest[] = []
  before(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\nkeys:\n- name: body-key\napi:\n  /v1/key/generate:\n    timeout: 1s\n`, {
      onComplete: (e) => events.push(e),
    })
  })
  after(async () => {
    await env.dispose()
  })

  for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
    test(`a body that stalls is 408 after the body timeout (${version})`, async (t) => {
      const from = events.length
      const errorsBefore = env.errorLines.length
      const client = version === 'HTTP/1.1' ? stalledHttp1(env) : stalledHttp2(env)
      t.after(() => {
        client.abort()
        if ('session' in client) (client.session as http2.ClientHttp2Session).destroy()
      })
      const answer = await client.answer
      assert.equal(answer.status, 408)
      assert.deepEqual(JSON.parse(answer.body), { message: 'request body not received in time' })
      const e = await completion(events, from)
      assert.equal(e.status, 408)
      assert.equal(e.error, 'request body not received in time')
      // A slow client is not a server error.
      assert.deepEqual(env.errorLines.slice(errorsBefore), [])
      // The server still answers.
      assert.equal((await env.request(root, PATH, { method: 'POST', body: {}, http2: version === 'HTTP/2' })).status, 200)
    })

    test(`a client that goes away mid-body is recorded as aborted, and nothing else is disturbed (${version})`, async (t) => {
      const from = events.length
      const errorsBefore = env.errorLines.length
      const client = version === 'HTTP/1.1' ? stalledHttp1(env) : stalledHttp2(env)
      client.answer.catch(() => {})
      t.after(() => {
        if ('session' in client) (client.session as http2.ClientHttp2Session).destroy()
      })
      // Wait until the server is reading the body (its request is in flight), then go away.
      for (let i = 0; i < 2000; i++) {
        const scrape = await env.request(root, '/v1/metrics')
        if (/^kes_http_request_active ([2-9]|\d\d)/m.test(scrape.text)) break
        await new Promise((r) => setTimeout(r, 5))
      }
      client.abort()
      const e = await completion(events, from)
      assert.equal(e.status, 400, `${e.error}; errors: ${env.errorLines.slice(errorsBefore).join('')}`)
      assert.equal(e.error, 'request aborted')
      assert.deepEqual(env.errorLines.slice(errorsBefore), [])
      assert.equal((await env.request(root, PATH, { method: 'POST', body: {}, http2: version === 'HTTP/2' })).status, 200)
    })
  }
})
