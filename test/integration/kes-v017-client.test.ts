// What the Go client library of KES v0.17 (used by MinIO and the `kes` CLI of
// that generation) expects, checked with readers that behave as that client
// does: it deletes a key twice, finishes every listing by reading the HTTP
// trailers `Status` and `Error` (and fails without them), decodes policies
// refusing unknown fields (as seed-era clients decode `{"paths"}`), and refuses any metric family with more than one
// series. Over HTTP/1.1 and HTTP/2 alike.
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import https from 'node:https'
import { describe, test } from 'node:test'
import { makeClient, serverPerSuite } from './harness.js'
import type { TestEnv } from './harness.js'
import type { Client } from './harness.js'

const root = makeClient('root')
const member = makeClient('member')

const CONFIG = `admin:
  identity: ${root.identity}
policy:
  listers:
    allow:
    - /v1/key/list/*
    identities:
    - ${member.identity}
  seed-config:
    paths:
    - /v1/key/generate/seed-*
`

// Every wait on the network is bounded, so a broken server fails the test instead of hanging it.
const TIMEOUT_MS = 10_000

/** A whole response, trailers included. */
interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, unknown>>
  readonly body: string
  /** Trailer names in lowercase. */
  readonly trailers: Readonly<Record<string, string>>
}

interface SendOptions {
  readonly method?: string
  readonly body?: string
  readonly headers?: Record<string, string>
}

/** One request over a fresh HTTP/1.1 connection (node:https); trailers from `res.trailers`. */
function send1(env: TestEnv, client: Client, path: string, opts: SendOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: env.port,
        servername: 'localhost',
        method: opts.method ?? 'GET',
        path,
        agent: false,
        cert: client.cert.certPem,
        key: client.cert.keyPem,
        ca: env.serverCert.certPem,
        headers: { ...(opts.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(opts.body)) }), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            trailers: Object.fromEntries(Object.entries(res.trailers).map(([k, v]) => [k.toLowerCase(), String(v)])),
          }),
        )
        res.on('error', reject)
      },
    )
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('HTTP/1.1 request timed out')))
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** One request over a fresh HTTP/2 session (node:http2); trailers from the stream's 'trailers' event. */
function send2(env: TestEnv, client: Client, path: string, opts: SendOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://localhost:${env.port}`, {
      host: '127.0.0.1',
      servername: 'localhost',
      cert: client.cert.certPem,
      key: client.cert.keyPem,
      ca: env.serverCert.certPem,
    })
    const fail = (err: Error): void => {
      session.destroy()
      reject(err)
    }
    session.on('error', fail)
    const stream = session.request({ ':method': opts.method ?? 'GET', ':path': path, ...opts.headers })
    stream.setTimeout(TIMEOUT_MS, () => fail(new Error('HTTP/2 request timed out')))
    let status = 0
    let headers: Record<string, unknown> = {}
    let trailers: Record<string, string> = {}
    const chunks: Buffer[] = []
    stream.on('response', (h) => {
      status = Number(h[':status'])
      headers = { ...h }
    })
    stream.on('trailers', (t) => {
      trailers = Object.fromEntries(Object.entries(t).map(([k, v]) => [k.toLowerCase(), String(v)]))
    })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => {
      session.close()
      resolve({ status, headers, body: Buffer.concat(chunks).toString('utf8'), trailers })
    })
    stream.on('error', fail)
    stream.end(opts.body)
  })
}

/** The KES 0.17 client's error for a non-200 answer: the server's message. */
function apiError(res: RawResponse): Error {
  let message = res.body
  try {
    const v: unknown = JSON.parse(res.body)
    if (typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string') message = (v as { message: string }).message
  } catch {
    // plain text
  }
  return new Error(`kes: ${res.status}: ${message}`)
}

/**
 * Decodes a JSON object the way Go's encoding/json does with
 * DisallowUnknownFields into a struct of string-list fields: any other field
 * is an error (`json: unknown field "paths"`, as the KES 0.17 client says).
 */
function decodeStrict(text: string, fields: readonly string[]): Record<string, string[] | null> {
  const value: unknown = JSON.parse(text)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('json: cannot unmarshal into struct')
  const out: Record<string, string[] | null> = {}
  for (const [field, v] of Object.entries(value)) {
    if (!fields.includes(field)) throw new Error(`json: unknown field "${field}"`)
    if (v !== null && !(Array.isArray(v) && v.every((e) => typeof e === 'string'))) throw new Error(`json: cannot unmarshal ${field}`)
    out[field] = v as string[] | null
  }
  return out
}

/** The KES 0.17 client's policy: `{"allow","deny"}`, strictly. */
const V017_POLICY = ['allow', 'deny'] as const
/** A seed-era client's policy: `{"paths"}`, strictly. */
const SEED_POLICY = ['paths'] as const

/**
 * The metric families of a Prometheus text exposition and their series:
 * family → label sets (a histogram's `_bucket`/`_sum`/`_count` samples are
 * one series per label set without `le`), as Go's expfmt decoder groups them.
 */
function metricFamilies(text: string): Map<string, Set<string>> {
  const types = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1] as string, m[2] as string)
  const families = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? \S+$/.exec(line)
    if (sample === null) throw new Error(`text format parsing error: ${line}`)
    let family = sample[1] as string
    let labels = (sample[2] ?? '').split(',').filter((l) => l !== '')
    const histogram = /^(.*)_(bucket|sum|count)$/.exec(family)
    if (histogram !== null && types.get(histogram[1] as string) === 'histogram') {
      family = histogram[1] as string
      labels = labels.filter((l) => !l.startsWith('le='))
    }
    if (!families.has(family)) families.set(family, new Set())
    families.get(family)?.add(labels.join(','))
  }
  return families
}

/** `Metrics` of the KES 0.17 client: refuses any family without exactly one series. */
function v017Metrics(text: string): Map<string, number> {
  const values = new Map<string, number>()
  for (const [family, series] of metricFamilies(text)) {
    if (series.size !== 1) throw new Error(`kes: server response contains more than one metric (${family})`)
    const value = new RegExp(`^${family}(?:_count)? (\\S+)$`, 'm').exec(text)?.[1]
    values.set(family, Number(value))
  }
  return values
}

// What Prometheus sends when it scrapes.
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

/**
 * Ends a listing as the KES 0.17 client does: after the body, the `Status`
 * trailer is REQUIRED; a status other than 200 is an error carrying the
 * `Error` trailer's message.
 */
function requireStatusTrailer(res: RawResponse): void {
  const status = res.trailers['status']
  if (status === undefined || status === '') throw new Error('kes: unexpected EOF: no HTTP status trailer')
  if (status !== '200') {
    const { message } = JSON.parse(res.trailers['error'] ?? '') as { message: string }
    throw new Error(`kes: ${status}: ${message}`)
  }
}

for (const useHttp2 of [false, true]) {
  const protocol = useHttp2 ? 'HTTP/2' : 'HTTP/1.1'
  const send = useHttp2 ? send2 : send1

  describe(`a KES v0.17 client over ${protocol}`, () => {
    const env = serverPerSuite(CONFIG)

    /** `ListKeys`: nd-json `{"name"}` lines, then the required trailers. */
    async function listKeys(client: Client, pattern: string): Promise<string[]> {
      const res = await send(env(), client, `/v1/key/list/${pattern}`)
      if (res.status !== 200) throw apiError(res)
      const names = res.body.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { name: string }).name)
      requireStatusTrailer(res)
      return names
    }

    test('deletes a key, then deletes it a 2nd time: both succeed', async () => {
      assert.equal((await send(env(), root, '/v1/key/create/twice', { method: 'POST' })).status, 200)
      for (const attempt of ['1st', '2nd', '3rd']) {
        const res = await send(env(), root, '/v1/key/delete/twice', { method: 'DELETE' })
        assert.equal(res.status, 200, `delete a ${attempt} time: ${res.body}`)
        assert.equal(res.body, '')
      }
      // Still gone: the repeated delete did not bring anything back.
      const gen = await send(env(), root, '/v1/key/generate/twice', { method: 'POST', body: '{}' })
      assert.equal(gen.status, 404)
      assert.deepEqual(JSON.parse(gen.body), { message: 'key does not exist' })
    })

    test('ListKeys reads the names, then requires the Status trailer (200, empty Error)', async () => {
      for (const name of ['lst-a', 'lst-b']) assert.equal((await send(env(), root, `/v1/key/create/${name}`, { method: 'POST' })).status, 200)
      assert.deepEqual(await listKeys(root, 'lst-*'), ['lst-a', 'lst-b'])
      assert.deepEqual(await listKeys(member, 'lst-*'), ['lst-a', 'lst-b'])
      assert.deepEqual(await listKeys(root, 'no-such-*'), [])
      const res = await send(env(), root, '/v1/key/list/lst-*')
      assert.equal(res.headers['content-type'], 'application/x-ndjson')
      assert.equal(res.headers['content-length'], undefined)
      assert.match(String(res.headers['trailer']), /^Status, ?Error$/i)
      assert.deepEqual(res.trailers, { status: '200', error: '' })
      if (!useHttp2) assert.equal(res.headers['transfer-encoding'], 'chunked')
    })

    test('the identity list keeps its JSON-object body and gains the same trailers', async () => {
      const res = await send(env(), root, '/v1/identity/list/*')
      assert.equal(res.status, 200)
      assert.match(String(res.headers['content-type']), /^application\/json/)
      assert.deepEqual(JSON.parse(res.body), { [member.identity]: 'listers' })
      assert.match(String(res.headers['trailer']), /^Status, ?Error$/i)
      assert.doesNotThrow(() => requireStatusTrailer(res))
      assert.deepEqual(res.trailers, { status: '200', error: '' })
    })

    test('a refused listing is an ordinary error answer (the client reads no trailers then)', async () => {
      const res = await send(env(), member, '/v1/identity/list/*')
      assert.equal(res.status, 403)
      assert.deepEqual(JSON.parse(res.body), { message: 'prohibited by policy' })
      await assert.rejects(listKeys(makeClient('stranger'), '*'), /kes: 403: prohibited by policy/)
    })

    /** `GetPolicy` with a strict decoder for one client generation's form. */
    async function readPolicy(name: string, fields: readonly string[]): Promise<Record<string, string[] | null>> {
      const res = await send(env(), root, `/v1/policy/read/${name}`)
      if (res.status !== 200) throw apiError(res)
      return decodeStrict(res.body, fields)
    }

    async function writePolicy(name: string, body: object): Promise<void> {
      const res = await send(env(), root, `/v1/policy/write/${name}`, { method: 'POST', body: JSON.stringify(body) })
      assert.equal(res.status, 200, res.body)
    }

    test('a policy written as allow/deny reads back as exactly {"allow","deny"} (strict decoder)', async () => {
      await writePolicy('v017-pol', { allow: ['/v1/key/generate/a-*', '/v1/key/decrypt/a-*'], deny: ['/v1/key/generate/a-x'] })
      assert.deepEqual(await readPolicy('v017-pol', V017_POLICY), {
        allow: ['/v1/key/generate/a-*', '/v1/key/decrypt/a-*'],
        deny: ['/v1/key/generate/a-x'],
      })
      await assert.rejects(readPolicy('v017-pol', SEED_POLICY), /json: unknown field "allow"/)
      // No deny rules are still a list, never null or missing.
      await writePolicy('v017-allow-only', { allow: ['/v1/key/list/*'] })
      assert.deepEqual(await readPolicy('v017-allow-only', V017_POLICY), { allow: ['/v1/key/list/*'], deny: [] })
    })

    test('a policy written in the seed form reads back as exactly {"paths"} (strict decoder)', async () => {
      await writePolicy('seed-pol', { paths: ['/v1/key/generate/s-*', '/v1/key/decrypt/s-*'] })
      assert.deepEqual(await readPolicy('seed-pol', SEED_POLICY), { paths: ['/v1/key/generate/s-*', '/v1/key/decrypt/s-*'] })
      await assert.rejects(readPolicy('seed-pol', V017_POLICY), /json: unknown field "paths"/)
    })

    test('config policies read back in the form they were configured in', async () => {
      assert.deepEqual(await readPolicy('listers', V017_POLICY), { allow: ['/v1/key/list/*'], deny: [] })
      assert.deepEqual(await readPolicy('seed-config', SEED_POLICY), { paths: ['/v1/key/generate/seed-*'] })
    })

    test('paths given with allow or deny: the allow/deny form, paths appended to allow', async () => {
      await writePolicy('mixed-pol', { allow: ['/v1/key/list/*'], paths: ['/v1/key/generate/m-*', '/v1/key/list/*'], deny: ['/v1/key/generate/m-x'] })
      assert.deepEqual(await readPolicy('mixed-pol', V017_POLICY), {
        allow: ['/v1/key/list/*', '/v1/key/generate/m-*'],
        deny: ['/v1/key/generate/m-x'],
      })
      await writePolicy('paths-deny-pol', { paths: ['/v1/key/generate/p-*'], deny: ['/v1/key/generate/p-x'] })
      assert.deepEqual(await readPolicy('paths-deny-pol', V017_POLICY), { allow: ['/v1/key/generate/p-*'], deny: ['/v1/key/generate/p-x'] })
    })

    test('Metrics without Accept: only KES families, each exactly one series, counting every request', async () => {
      // Make labelled series exist: several APIs and statuses.
      await send(env(), root, '/v1/key/create/met-a', { method: 'POST' })
      await send(env(), root, '/v1/key/generate/met-a', { method: 'POST', body: '{}' })
      await send(env(), root, '/v1/key/generate/met-none', { method: 'POST', body: '{}' })
      const before = await send(env(), root, '/v1/metrics')
      assert.equal(before.status, 200)
      assert.equal(before.headers['content-type'], 'text/plain; version=0.0.4')
      const m1 = v017Metrics(before.body)
      for (const family of m1.keys()) assert.match(family, /^kes_(http|log|system)_/)
      for (const family of ['kes_http_request_success', 'kes_http_request_error', 'kes_http_request_failure', 'kes_http_request_active', 'kes_http_response_time', 'kes_log_audit_events', 'kes_log_error_events', 'kes_system_up_time']) {
        assert.ok(m1.has(family), `missing ${family}`)
      }
      await send(env(), root, '/v1/key/generate/met-none', { method: 'POST', body: '{}' }) // 404
      const m2 = v017Metrics((await send(env(), root, '/v1/metrics')).body)
      assert.equal((m2.get('kes_http_request_error') ?? 0) - (m1.get('kes_http_request_error') ?? 0), 1)
      assert.equal((m2.get('kes_http_request_success') ?? 0) - (m1.get('kes_http_request_success') ?? 0), 1) // the first scrape
      assert.equal((m2.get('kes_http_requests_total') ?? 0) - (m1.get('kes_http_requests_total') ?? 0), 2)
    })

    test("Metrics with Prometheus's Accept: every family, labels included (the KES reader refuses it)", async () => {
      await send(env(), root, '/v1/key/create/prom-a', { method: 'POST' })
      await send(env(), root, '/v1/key/generate/prom-a', { method: 'POST', body: '{}' })
      const res = await send(env(), root, '/v1/metrics', { headers: { accept: PROMETHEUS_ACCEPT } })
      assert.equal(res.status, 200)
      const families = metricFamilies(res.body)
      assert.ok((families.get('kes_http_requests_total')?.size ?? 0) > 1)
      for (const f of ['kes_keystore_operation_seconds', 'kes_cache_size', 'kes_tls_handshake_failures_total', 'process_cpu_seconds_total']) {
        assert.ok(families.has(f), `missing ${f}`)
      }
      assert.throws(() => v017Metrics(res.body), /more than one metric/)
      // The bare text/plain;version=0.0.4 that older scrapers send counts as Prometheus too.
      const plain = await send(env(), root, '/v1/metrics', { headers: { accept: 'text/plain; version=0.0.4' } })
      assert.ok(metricFamilies(plain.body).has('process_cpu_seconds_total'))
    })

    test('answers that are not listings carry no status trailers', async () => {
      const res = await send(env(), root, '/version')
      assert.equal(res.status, 200)
      assert.equal(res.headers['trailer'], undefined)
      assert.deepEqual(res.trailers, {})
      assert.throws(() => requireStatusTrailer(res), /no HTTP status trailer/)
    })
  })
}

describe('listing trailers and HTTP/1.0', () => {
  const env = serverPerSuite(CONFIG)

  test('an HTTP/1.0 key list gets the names, without chunked encoding or trailers', async () => {
    assert.equal((await env().request(root, '/v1/key/create/old-http', { method: 'POST' })).status, 200)
    const socket = await env().connectTls({ cert: root.cert.certPem, key: root.cert.keyPem, ALPNProtocols: ['http/1.1'] })
    const raw = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = []
      socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('HTTP/1.0 request timed out')))
      socket.on('data', (c: Buffer) => chunks.push(c))
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      socket.on('error', reject)
      socket.write('GET /v1/key/list/old-* HTTP/1.0\r\nHost: localhost\r\n\r\n')
    })
    socket.destroy()
    const [head = '', body] = raw.split('\r\n\r\n')
    assert.match(head, /^HTTP\/1\.1 200 OK/)
    assert.doesNotMatch(head, /transfer-encoding|trailer/i)
    assert.equal(body, '{"name":"old-http"}\n')
  })
})
