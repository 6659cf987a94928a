// KesClient transport: credentials from memory and from files, server
// verification (ca, system roots, insecure), HTTP/2 with HTTP/1.1 fallback,
// reconnects, log-stream parsing, close(), and options checking.
import assert from 'node:assert/strict'
import { createPrivateKey } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { inspect } from 'node:util'
import { KesError } from '../../src/api/errors.js'
import { KesClient } from '../../src/client/kes-client.js'
import type { KesClientOptions } from '../../src/client/api.js'
import { createCertificate } from '../../src/x509/certificate.js'
import { cannedClientOptions, clientFor, endpointOf, sendJson, trackedResources } from './client-harness.js'
import type { CannedResponse } from './client-harness.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const CONFIG = `admin:
  identity: ${root.identity}
keystore:
  fs:
    path: ./keys
`

function codeOf(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : ''
}

describe('credentials and server verification', () => {
  let env: TestEnv
  const clients: KesClient[] = []
  const client = (options: Partial<KesClientOptions>): KesClient => {
    const c = new KesClient({ endpoints: [endpointOf(env.port)], ...options })
    clients.push(c)
    return c
  }

  before(async () => {
    env = await TestEnv.create()
    await env.start(CONFIG)
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await env.dispose()
  })

  test('in-memory PEM (strings and buffers) with the server certificate as CA', async () => {
    assert.match(await client({ cert: root.cert.certPem, key: root.cert.keyPem, ca: env.serverCert.certPem }).version(), /^\d/)
    const fromBuffers = client({ cert: Buffer.from(root.cert.certPem), key: Buffer.from(root.cert.keyPem), ca: Buffer.from(env.serverCert.certPem) })
    await fromBuffers.createKey('from-buffers')
  })

  test('files are read on first use, and a missing file fails only that call', async () => {
    const certFile = path.join(env.dir, 'root.cert')
    const keyFile = path.join(env.dir, 'root.key')
    const caFile = path.join(env.dir, 'ca.cert')
    const c = client({ certFile, keyFile, caFile })
    await assert.rejects(c.version(), (err: unknown) => codeOf(err) === 'ENOENT' && !(err instanceof KesError))
    await writeFile(certFile, root.cert.certPem)
    await writeFile(keyFile, root.cert.keyPem, { mode: 0o600 })
    await writeFile(caFile, env.serverCert.certPem)
    assert.match(await c.version(), /^\d/)
    await c.createKey('from-files')
  })

  test('an encrypted private key with keyPassword', async () => {
    const encrypted = createPrivateKey(root.cert.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'sesame' })
    const c = client({ cert: root.cert.certPem, key: encrypted, keyPassword: 'sesame', ca: env.serverCert.certPem })
    assert.match(await c.version(), /^\d/)
    const wrong = client({ cert: root.cert.certPem, key: encrypted, keyPassword: 'wrong', ca: env.serverCert.certPem })
    await assert.rejects(wrong.version(), (err: unknown) => err instanceof Error && !(err instanceof KesError))
  })

  test('insecure skips server verification', async () => {
    assert.match(await client({ cert: root.cert.certPem, key: root.cert.keyPem, insecure: true }).version(), /^\d/)
  })

  for (const http1 of [false, true]) {
    test(`a server the system roots do not trust is refused with a TLS error (${http1 ? 'HTTP/1.1' : 'HTTP/2'})`, async () => {
      const c = client({ cert: root.cert.certPem, key: root.cert.keyPem, http1 })
      await assert.rejects(c.version(), (err: unknown) => codeOf(err) === 'DEPTH_ZERO_SELF_SIGNED_CERT')
    })

    test(`a wrong CA is refused with a TLS error, after bounded retries (${http1 ? 'HTTP/1.1' : 'HTTP/2'})`, async () => {
      const stranger = createCertificate('ecdsa-p256', { commonName: 'stranger', extKeyUsage: ['serverAuth'] })
      const c = client({ cert: root.cert.certPem, key: root.cert.keyPem, ca: stranger.certPem, http1, maxRetries: 2 })
      await assert.rejects(c.version(), (err: unknown) => !(err instanceof KesError) && /CERT|VERIFY/.test(codeOf(err)))
    })
  }

  test('JSON and inspect output show endpoints, never credentials', () => {
    const c = client({ cert: root.cert.certPem, key: root.cert.keyPem, ca: env.serverCert.certPem })
    for (const text of [JSON.stringify(c), inspect(c, { depth: 10, showHidden: true })]) {
      assert.ok(text.includes(`127.0.0.1:${env.port}`), text)
      assert.ok(!text.includes('PRIVATE KEY') && !text.includes(root.cert.keyPem.split('\n')[1] ?? 'x'), text)
    }
  })
})

describe('protocols and connections', () => {
  const { start, client, closeAll } = trackedResources()
  const version = (_req: unknown, res: CannedResponse): void => sendJson(res, 200, { version: '1.0.0' })
  after(closeAll)

  test('HTTP/2 by default, over one reused connection', async () => {
    const server = await start(version)
    const c = client(cannedClientOptions(server))
    await Promise.all([c.version(), c.version(), c.version()])
    await c.version()
    assert.deepEqual(
      server.requests.map((r) => r.version),
      ['2.0', '2.0', '2.0', '2.0'],
    )
    assert.equal(server.connections, 1)
  })

  test('http1: true speaks HTTP/1.1 to an HTTP/2 server', async () => {
    const server = await start(version)
    const c = client(cannedClientOptions(server, { http1: true }))
    await c.version()
    await c.version()
    assert.deepEqual(
      server.requests.map((r) => r.version),
      ['1.1', '1.1'],
    )
    assert.equal(server.connections, 1)
  })

  test('a server without HTTP/2 is spoken to over HTTP/1.1', async () => {
    const server = await start(version, 'http1')
    const c = client(cannedClientOptions(server))
    assert.equal(await c.version(), '1.0.0')
    assert.equal(await c.version(), '1.0.0')
    assert.deepEqual(
      server.requests.map((r) => r.version),
      ['1.1', '1.1'],
    )
    // One connection found out the protocol; one keep-alive connection served both calls.
    assert.equal(server.connections, 2)
  })

  for (const protocol of ['h2', 'http1'] as const) {
    test(`a connection the server dropped is replaced (${protocol})`, async () => {
      const server = await start(version, protocol)
      const c = client(cannedClientOptions(server))
      assert.equal(await c.version(), '1.0.0')
      // The client has not seen the close yet: the call fails on the dead connection and is
      // tried once more on a fresh one, without counting the endpoint as failed.
      server.dropConnections()
      assert.equal(await c.version(), '1.0.0')
      await c.createKey('x')
      assert.equal(server.requests.length, 3)
    })
  }

  test('the older list forms of KES servers are understood', async () => {
    const bodies = new Map<string, string>([
      ['/v1/key/list/*', '{"Name":"b"}\n{"Name":"a"}\n'],
      ['/v1/key/list/x*', '{"names":["x1","x2"],"continue_at":"x2"}'],
      ['/v1/key/list/x*?continue_at=x2', '{"names":["x3"]}'],
      ['/v1/policy/list/*', '{"name":"p2","created_at":"t"}\n{"name":"p1","created_at":"t"}\n'],
      ['/v1/identity/list/*', '{"identity":"bb","policy":"p2"}\n{"identity":"aa","policy":"p1"}\n'],
      ['/v1/identity/list/a*', '{"identities":["aa"],"continue_at":""}'],
      ['/v1/policy/read/seed', '{"paths":["/v1/key/generate/x"]}'],
      ['/v1/policy/read/modern', '{"allow":{"/v1/key/list/*":{}},"deny":{},"created_at":"t"}'],
    ])
    const server = await start((req, res) => {
      const body = bodies.get(req.url)
      if (body === undefined) sendJson(res, 404, { message: 'not found' })
      else {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.end(body)
      }
    })
    const c = client(cannedClientOptions(server))
    assert.deepEqual(await c.listKeys(), ['a', 'b'])
    assert.deepEqual(await c.listKeys('x*'), ['x1', 'x2', 'x3'])
    assert.deepEqual(await c.listPolicies(), ['p1', 'p2'])
    assert.deepEqual(await c.listIdentities(), { aa: 'p1', bb: 'p2' })
    assert.deepEqual(await c.listIdentities('a*'), { aa: '' })
    assert.deepEqual(await c.readPolicy('seed'), { allow: ['/v1/key/generate/x'], deny: [] })
    assert.deepEqual(await c.readPolicy('modern'), { allow: ['/v1/key/list/*'], deny: [] })
  })

  test('base64 from the server is decoded strictly', async () => {
    const server = await start((_req, res) => sendJson(res, 200, { plaintext: 'aGk', ciphertext: 'aGk=' }))
    const c = client(cannedClientOptions(server))
    await assert.rejects(c.generateKey('k'), /'plaintext' is not base64/)
  })

  test('close() rejects pending calls and every later one, and ends open log streams', async () => {
    let arrived!: () => void
    const requestArrived = new Promise<void>((resolve) => {
      arrived = resolve
    })
    const server = await start((req, res) => {
      if (req.url === '/v1/log/error') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.write('\n')
        return
      }
      arrived()
    })
    const c = client(cannedClientOptions(server))
    const stream = await c.errorLog()
    const nextEvent = stream[Symbol.asyncIterator]().next()
    const pending = assert.rejects(c.version(), (err: unknown) => codeOf(err) === 'ERR_KES_CLIENT_CLOSED')
    await requestArrived
    await c.close()
    await pending
    await assert.rejects(c.listKeys(), (err: unknown) => codeOf(err) === 'ERR_KES_CLIENT_CLOSED')
    assert.deepEqual(await nextEvent, { done: true, value: undefined })
  })
})

describe('log streams', () => {
  const { start, client: newClient, closeAll } = trackedResources()
  after(closeAll)

  /** A server whose log streams send `first`, then `rest` when the test says so, then end. */
  async function traceServer(protocol: 'h2' | 'http1', first: Buffer, rest: Buffer): Promise<{ client: KesClient; sendRest: () => void }> {
    let responder: CannedResponse | undefined
    const server = await start((req, res) => {
      if (req.url === '/v1/log/audit' || req.url === '/v1/log/error') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.write(first)
        responder = res
      } else {
        sendJson(res, 403, { message: 'prohibited by policy' })
      }
    }, protocol)
    const client = newClient(cannedClientOptions(server))
    return {
      client,
      sendRest: () => {
        responder?.end(rest)
      },
    }
  }

  for (const protocol of ['h2', 'http1'] as const) {
    test(`events split over chunks, even inside a UTF-8 character, are parsed (${protocol})`, async () => {
      const text = '{"message":"a"}\n{"message":"caf\u00e9"}\n{"message":"c"}'
      const bytes = Buffer.from(text)
      const cut = bytes.indexOf(0xc3) + 1 // between the two bytes of 'é'
      const { client, sendRest } = await traceServer(protocol, bytes.subarray(0, cut), bytes.subarray(cut))
      const stream = await client.errorLog()
      const events = stream[Symbol.asyncIterator]()
      assert.deepEqual(await events.next(), { done: false, value: { message: 'a' } })
      sendRest()
      assert.deepEqual(await events.next(), { done: false, value: { message: 'caf\u00e9' } })
      // The last line has no newline: the end of the stream ends it.
      assert.deepEqual(await events.next(), { done: false, value: { message: 'c' } })
      assert.deepEqual(await events.next(), { done: true, value: undefined })
    })
  }

  test('audit events keep their known fields', async () => {
    const line = {
      time: '2020-02-06T16:51:55Z',
      request: { path: '/v1/key/create/k', identity: 'abc', ip: '127.0.0.1', secret: 'dropped' },
      response: { code: 200, time: 12056 },
    }
    const { client, sendRest } = await traceServer('h2', Buffer.from(JSON.stringify(line) + '\n'), Buffer.alloc(0))
    const got: unknown[] = []
    const stream = await client.auditLog()
    const done = (async () => {
      for await (const event of stream) got.push(event)
    })()
    sendRest()
    await done
    assert.deepEqual(got, [
      { time: line.time, request: { path: '/v1/key/create/k', identity: 'abc', ip: '127.0.0.1' }, response: { code: 200, time: 12056 } },
    ])
  })

  test('breaking out of for-await closes the stream', async () => {
    const { client } = await traceServer('h2', Buffer.from('{"message":"1"}\n{"message":"2"}\n'), Buffer.alloc(0))
    const stream = await client.errorLog()
    for await (const event of stream) {
      assert.deepEqual(event, { message: '1' })
      break
    }
    assert.deepEqual(await stream[Symbol.asyncIterator]().next(), { done: true, value: undefined })
  })

  test('a line that is not an event fails the iteration', async () => {
    const { client } = await traceServer('http1', Buffer.from('{"message":"ok"}\nnot json\n'), Buffer.alloc(0))
    const events = (await client.errorLog())[Symbol.asyncIterator]()
    assert.deepEqual(await events.next(), { done: false, value: { message: 'ok' } })
    await assert.rejects(events.next(), /not JSON/)
    assert.deepEqual(await events.next(), { done: true, value: undefined })
  })

  test('a refused trace rejects with the KesError', async () => {
    const server = await start((_req, res) => sendJson(res, 403, { message: 'prohibited by policy' }))
    const client = newClient(cannedClientOptions(server))
    await assert.rejects(client.auditLog(), (err: unknown) => err instanceof KesError && err.status === 403 && err.message === 'prohibited by policy')
  })
})

describe('options', () => {
  const me = makeClient('me')
  const cases: [string, KesClientOptions, RegExp][] = [
    ['no endpoints', { endpoints: [] }, /no endpoints/],
    ['plain http', { endpoints: ['http://127.0.0.1:7373'] }, /not https/],
    ['not a URL', { endpoints: ['127.0.0.1:7373'] }, /not (a URL|https)/],
    ['a path', { endpoints: ['https://127.0.0.1:7373/v1'] }, /https:\/\/host\[:port\]/],
    ['cert without key', { endpoints: ['https://127.0.0.1:7373'], cert: me.cert.certPem }, /private key/],
    ['cert and certFile', { endpoints: ['https://127.0.0.1:7373'], cert: 'x', certFile: 'y', key: 'z' }, /not both/],
    ['a zero timeout', { endpoints: ['https://127.0.0.1:7373'], timeoutMs: 0 }, /timeoutMs/],
    ['negative retries', { endpoints: ['https://127.0.0.1:7373'], maxRetries: -1 }, /maxRetries/],
  ]
  for (const [name, options, message] of cases) {
    test(`the constructor refuses ${name}`, () => {
      assert.throws(() => new KesClient(options), (err: unknown) => err instanceof TypeError && message.test(err.message))
    })
  }

  test('an IPv6 endpoint and a default port are accepted', async () => {
    const c = new KesClient({ endpoints: ['https://[::1]:7373', 'https://kes.example'] })
    assert.equal(JSON.stringify(c), '{"endpoints":["https://[::1]:7373","https://kes.example"]}')
    await c.close()
  })
})

describe('against OpenKES: every endpoint reached by one client', () => {
  let env: TestEnv
  let c: KesClient
  before(async () => {
    env = await TestEnv.create()
    await env.start(CONFIG)
    c = clientFor(env, root)
  })
  after(async () => {
    await c.close()
    await env.dispose()
  })

  test('concurrent calls over one HTTP/2 session all succeed', async () => {
    await c.createKey('many')
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => c.encrypt('many', Buffer.from(`m${i}`))))
    const plain = await Promise.all(results.map((ct) => c.decrypt('many', ct)))
    assert.deepEqual(
      plain.map((p) => p.toString()),
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    )
  })
})
