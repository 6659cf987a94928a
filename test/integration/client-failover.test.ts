// KesClient failover and retries: dead endpoints, an endpoint that stops
// mid-test, unhealthy endpoints skipped, bounded retries when everything is
// down, 503 answers retried, API errors and timeouts not retried where a
// repeat could change the outcome.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { ErrStoreUnavailable, KesError } from '../../src/api/errors.js'
import { KesClient } from '../../src/client/kes-client.js'
import type { KesClientOptions } from '../../src/client/api.js'
import { DroppingServer, cannedClientOptions, deadPort, endpointOf, sendJson, trackedResources, useOwnServerCertificate } from './client-harness.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const CONFIG = `admin:
  identity: ${root.identity}
keystore:
  fs:
    path: ./keys
`

function errorCodeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined
}

for (const http1 of [false, true]) {
  describe(`failover over ${http1 ? 'HTTP/1.1' : 'HTTP/2'}`, () => {
    let live: TestEnv
    let other: TestEnv | undefined
    const clients: KesClient[] = []
    const client = (endpoints: string[], extra: Partial<KesClientOptions> = {}): KesClient => {
      const c = new KesClient({ endpoints, cert: root.cert.certPem, key: root.cert.keyPem, ca: live.serverCert.certPem, http1, ...extra })
      clients.push(c)
      return c
    }

    before(async () => {
      live = await TestEnv.create()
      await live.start(CONFIG)
    })
    after(async () => {
      await Promise.all(clients.map((c) => c.close()))
      await live.dispose()
      await other?.dispose()
    })

    test('with one endpoint down, every call succeeds in either order', async () => {
      const dead = endpointOf(await deadPort())
      for (const [i, endpoints] of [[dead, endpointOf(live.port)], [endpointOf(live.port), dead]].entries()) {
        const c = client(endpoints)
        for (let round = 0; round < 3; round++) {
          assert.match(await c.version(), /^\d+\.\d+\.\d+/)
          // A refused connection never reached a server, so even create may fail over.
          await c.createKey(`fo-${http1 ? 1 : 2}-${i}-${round}`)
          assert.ok((await c.listKeys()).includes(`fo-${http1 ? 1 : 2}-${i}-${round}`))
        }
      }
    })

    test('an endpoint that failed is skipped by later calls while another one works', async () => {
      const dropping = await DroppingServer.start()
      try {
        const c = client([endpointOf(dropping.port), endpointOf(live.port)])
        // The start endpoint rotates, so one of the first two calls starts at the dropping one.
        await c.version()
        await c.version()
        assert.equal(dropping.connections, 1)
        for (let i = 0; i < 10; i++) await c.version()
        assert.equal(dropping.connections, 1)
      } finally {
        await dropping.close()
      }
    })

    test('with every endpoint down a call rejects with the network error after bounded retries', async () => {
      const a = await DroppingServer.start()
      const b = await DroppingServer.start()
      try {
        const c = client([endpointOf(a.port), endpointOf(b.port)], { maxRetries: 2 })
        await assert.rejects(c.version(), (err: unknown) => {
          assert.ok(!(err instanceof KesError))
          assert.ok(err instanceof Error)
          return true
        })
        // Three passes over both endpoints: unhealthy ones are still tried when nothing else is left.
        assert.equal(a.connections, 3)
        assert.equal(b.connections, 3)
        const refused = client([endpointOf(await deadPort())], { maxRetries: 1 })
        await assert.rejects(refused.version(), (err: unknown) => errorCodeOf(err) === 'ECONNREFUSED')
      } finally {
        await Promise.all([a.close(), b.close()])
      }
    })

    test('a server that stops mid-test is failed over to the other one', async () => {
      other = await TestEnv.create()
      const otherCert = await useOwnServerCertificate(other, 'other-server')
      let servedByOther = 0
      await other.start(CONFIG, { onComplete: () => servedByOther++ })
      const c = client([endpointOf(live.port), endpointOf(other.port)], { ca: [live.serverCert.certPem, otherCert.certPem].join('\n') })
      // Both endpoints get used (and hold open connections) before one goes away.
      for (let i = 0; i < 4; i++) await c.version()
      assert.equal(servedByOther, 2)
      await other.stop()
      for (let i = 0; i < 6; i++) {
        assert.match(await c.version(), /^\d+\.\d+\.\d+/)
        assert.ok(Array.isArray(await c.listKeys()))
      }
      await c.createKey(`after-stop-${http1 ? 1 : 2}`)
      assert.ok((await c.listKeys()).includes(`after-stop-${http1 ? 1 : 2}`))
    })
  })
}

describe('retries of answers', () => {
  const { start, client, closeAll } = trackedResources()
  after(closeAll)

  test('a 503 is retried and the next answer counts', async () => {
    let calls = 0
    const server = await start((_req, res) => {
      calls++
      if (calls === 1) sendJson(res, 503, { message: ErrStoreUnavailable.message })
      else sendJson(res, 200, { version: '1.2.3' })
    })
    assert.equal(await client(cannedClientOptions(server)).version(), '1.2.3')
    assert.equal(server.requests.length, 2)
  })

  test('a 503 on one endpoint fails over to the next at once', async () => {
    const busy = await start((_req, res) => sendJson(res, 503, { message: ErrStoreUnavailable.message }))
    const fine = await start((_req, res) => sendJson(res, 200, { version: '9.9.9' }))
    const options = cannedClientOptions(busy, { endpoints: [busy.endpoint, fine.endpoint], ca: [busy.cert.certPem, fine.cert.certPem].join('\n') })
    const c = client(options)
    for (let i = 0; i < 4; i++) assert.equal(await c.version(), '9.9.9')
  })

  test('503s until the retries are used up reject with the last KesError', async () => {
    const server = await start((_req, res) => sendJson(res, 503, { message: ErrStoreUnavailable.message }))
    await assert.rejects(client(cannedClientOptions(server, { maxRetries: 2 })).listKeys(), (err: unknown) => {
      assert.ok(err instanceof KesError)
      assert.equal(err.status, 503)
      assert.equal(err.message, ErrStoreUnavailable.message)
      return true
    })
    assert.equal(server.requests.length, 3)
  })

  test('createKey is not repeated after a 503: the server may have acted on it', async () => {
    const server = await start((_req, res) => sendJson(res, 503, { message: ErrStoreUnavailable.message }))
    await assert.rejects(client(cannedClientOptions(server)).createKey('k'), (err: unknown) => err instanceof KesError && err.status === 503)
    assert.deepEqual(server.requests.map((r) => r.target), ['POST /v1/key/create/k'])
  })

  test('API errors are answers: not retried, parsed into KesError', async () => {
    const answers: [number, string, string][] = [
      [500, '{"message":"internal server error"}', 'internal server error'],
      [404, '404 page not found\n', '404 page not found'],
      [502, '', 'Bad Gateway'],
      [400, '{"message":"invalid argument: name is empty"}\n', 'invalid argument: name is empty'],
    ]
    for (const [status, body, message] of answers) {
      const server = await start((_req, res) => {
        res.writeHead(status, { 'content-length': Buffer.byteLength(body) })
        res.end(body)
      })
      await assert.rejects(client(cannedClientOptions(server)).version(), (err: unknown) => {
        assert.ok(err instanceof KesError)
        assert.equal(err.status, status)
        assert.equal(err.message, message)
        return true
      })
      assert.equal(server.requests.length, 1)
    }
  })

  test('a timeout is retried for reads but not for createKey', async () => {
    const server = await start(() => {
      // never answers: the client's timeout has to end the request
    })
    const c = client(cannedClientOptions(server, { timeoutMs: 100, maxRetries: 1 }))
    await assert.rejects(c.version(), (err: unknown) => errorCodeOf(err) === 'ETIMEDOUT')
    assert.equal(server.requests.length, 2)
    await assert.rejects(c.createKey('slow'), (err: unknown) => errorCodeOf(err) === 'ETIMEDOUT')
    assert.deepEqual(server.requests.map((r) => r.target).slice(2), ['POST /v1/key/create/slow'])
  })

  test('a listing whose trailers carry a JSON error rejects with its message', async () => {
    const server = await start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', trailer: 'Status, Error' })
      res.write('{"name":"a"}\n')
      res.addTrailers({ Status: '502', Error: '{"message":"bad gateway: failed to list keys"}' })
      res.end()
    }, 'http1')
    await assert.rejects(client(cannedClientOptions(server)).listKeys(), (err: unknown) => {
      assert.ok(err instanceof KesError)
      assert.equal(err.status, 502)
      assert.equal(err.message, 'bad gateway: failed to list keys')
      return true
    })
  })

  test('a KES 0.17 list that fails in its trailers rejects with the trailer status', async () => {
    const server = await start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', trailer: 'Status,Error' })
      res.write('{"Name":"a"}\n')
      res.addTrailers({ Status: '500', Error: 'failed to list keys' })
      res.end()
    }, 'http1')
    await assert.rejects(client(cannedClientOptions(server)).listKeys(), (err: unknown) => {
      assert.ok(err instanceof KesError)
      assert.equal(err.status, 500)
      assert.equal(err.message, 'failed to list keys')
      return true
    })
  })
})
