// An error no handler expected is a 500 `internal server error` to the client
// (nothing of the cause), and exactly one line in the error log — over real
// HTTP/1.1 and HTTP/2 connections to the real router and error log.
import assert from 'node:assert/strict'
import http from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { createRouter } from '../../src/api/router.js'
import type { CompletedRequest } from '../../src/api/router.js'
import type { Route } from '../../src/api/routes.js'
import { createMemStore } from '../../src/keystore/mem/mem-store.js'
import { ErrorLog } from '../../src/log/error-log.js'
import { AccessControl } from '../../src/server/access.js'
import type { ServerState } from '../../src/server/state.js'

const CAUSE = 'cause-detail-never-sent'

// A route whose handler fails in a way nothing maps to an API error.
const failing: Route = {
  path: '/v1/failing',
  methods: ['GET'],
  params: [],
  maxBodyBytes: 0,
  timeoutMs: 15_000,
  auth: 'none',
  handler: async () => {
    throw new TypeError(`${CAUSE}: cannot read properties of undefined`)
  },
}

describe('an unexpected error', () => {
  const errorLines: string[] = []
  const completed: CompletedRequest[] = []
  const errorLog = new ErrorLog({ enabled: true, sink: (l) => errorLines.push(l) })
  const access = new AccessControl({ adminIdentity: undefined, policies: new Map(), store: createMemStore(), errorLog })
  // Only what the router itself uses of the state.
  const state = { version: '0.0.0', access, errorLog, api: new Map(), auditLog: { refusing: false } } as unknown as ServerState
  const router = createRouter(() => state, { identityOf: () => 'a'.repeat(64), routes: [failing], hooks: { completed: (e) => completed.push(e) } })
  const h1 = http.createServer(router)
  const h2 = http2.createServer()
  h2.on('request', router)
  before(async () => {
    await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve))
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve))
  })
  after(async () => {
    access.close()
    h1.closeAllConnections()
    await new Promise((resolve) => h1.close(resolve))
    await new Promise((resolve) => h2.close(resolve))
  })

  function get1(): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: (h1.address() as AddressInfo).port, path: '/v1/failing', agent: false }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('error', reject)
    })
  }

  function get2(): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`)
      session.on('error', reject)
      const stream = session.request({ ':path': '/v1/failing' })
      let status = 0
      let body = ''
      stream.on('response', (h) => (status = Number(h[':status'])))
      stream.on('data', (c: Buffer) => (body += c.toString()))
      stream.on('end', () => {
        session.close()
        resolve({ status, body })
      })
      stream.on('error', reject)
      stream.end()
    })
  }

  for (const [name, get] of [
    ['HTTP/1.1', get1],
    ['HTTP/2', get2],
  ] as const) {
    test(`is 500 internal server error and one error-log line (${name})`, async () => {
      const from = errorLines.length
      const res = await get()
      assert.equal(res.status, 500)
      assert.deepEqual(JSON.parse(res.body), { message: 'internal server error' })
      assert.ok(!res.body.includes(CAUSE))
      const lines = errorLines.slice(from)
      assert.equal(lines.length, 1, lines.join(''))
      assert.match(lines[0] ?? '', new RegExp(`http: unexpected error: .*${CAUSE}`))
      const event = completed.at(-1)
      assert.equal(event?.status, 500)
      assert.equal(event?.error, 'internal server error')
    })
  }
})
