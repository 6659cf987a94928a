// Audit log, error log and metrics over real mutual TLS (issue: a security
// team can rely on them): one audit event per request on every destination,
// exact counter deltas, stuck readers never block, no secret ever logged.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TestEnv, makeClient } from './harness.js'
import type { Client, Response } from './harness.js'
import { TraceReader } from './trace.js'

const root = makeClient('root')
const app = makeClient('app')
const nopol = makeClient('nopol')

interface AuditEvent {
  time: string
  request: { path: string; identity: string; method: string; ip: string }
  response: { code: number; time: number; error?: string }
}

/** Every secret a test sent or received, to search the logs for. */
const secrets: Buffer[] = []
/** Every log line, audit line and metrics text the tests saw. */
const observed: string[] = []

function remember(...bufs: Buffer[]): void {
  secrets.push(...bufs.filter((b) => b.length >= 8))
}

/** Parses one series value out of a Prometheus text exposition. */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return 0
}

// Prometheus names its exposition formats in Accept and then sees every metric family.
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

describe('audit, error log and metrics', () => {
  let env: TestEnv
  let auditTrace: TraceReader
  const scrape = async (): Promise<string> => {
    const res = await env.request(root, '/v1/metrics', { headers: { accept: PROMETHEUS_ACCEPT } })
    assert.equal(res.status, 200)
    observed.push(res.text)
    return res.text
  }

  before(async () => {
    env = await TestEnv.create()
    await mkdir(path.join(env.dir, 'logs'))
    await env.start(
      `admin:\n  identity: ${root.identity}\npolicy:\n  app:\n    allow: [/v1/key/generate/obs-*, /v1/key/decrypt/obs-*, /v1/key/encrypt/obs-*]\n    identities: [${app.identity}]\nlog:\n  audit_file: ./logs/audit.log\n`,
      { traceBufferBytes: 16 * 1024 },
    )
    auditTrace = await TraceReader.open(env, root, '/v1/log/audit/trace')
  })
  after(async () => {
    auditTrace.close()
    await env.dispose()
  })

  test('the audit trace answers 200 nd-json at once, its own request first', async () => {
    assert.equal(auditTrace.status, 200)
    assert.equal(auditTrace.headers['content-type'], 'application/x-ndjson')
    const [first] = await auditTrace.waitForLines(1)
    const e = JSON.parse(first as string) as AuditEvent
    assert.equal(e.request.path, '/v1/log/audit/trace')
    assert.equal(e.request.identity, root.identity)
    assert.equal(e.response.code, 200)
  })

  test('N requests of mixed outcomes give exactly N audit events with the right codes', async () => {
    // The trace's own request comes first (see above); wait for it, so it is not counted as one of these.
    await auditTrace.waitForLines(1)
    const before = auditTrace.lines.length
    const context = randomBytes(24)
    const imported = randomBytes(32)
    remember(context, imported)
    const rows: Array<[Client, string, string, unknown, number]> = [
      [root, 'POST', '/v1/key/import/obs-key', { bytes: imported.toString('base64') }, 200],
      [root, 'POST', '/v1/key/create/obs-key', undefined, 400],
      [app, 'POST', '/v1/key/generate/obs-key', { context: context.toString('base64') }, 200],
      [app, 'POST', '/v1/key/decrypt/obs-key', { ciphertext: 'AAAA' }, 400],
      [app, 'POST', '/v1/key/create/obs-new', undefined, 403],
      [nopol, 'GET', '/v1/key/list/*', undefined, 403],
      [root, 'GET', '/v1/nope', undefined, 404],
      [root, 'POST', '/v1/key/generate/obs-missing', {}, 404],
      [root, 'GET', '/v1/key/create/x', undefined, 405],
      [root, 'POST', '/v1/key/encrypt/obs-key', { plaintext: randomBytes(800 * 1024).toString('base64') }, 413],
      [root, 'GET', '/version', undefined, 200],
    ]
    const responses: Response[] = []
    for (const [client, method, target, body, status] of rows) {
      const res = await env.request(client, target, { method, body: body as object | undefined })
      assert.equal(res.status, status, `${method} ${target}: ${res.text}`)
      responses.push(res)
      const pt = (res.json as { plaintext?: string } | undefined)?.plaintext
      if (pt !== undefined) remember(Buffer.from(pt, 'base64'))
    }
    const lines = (await auditTrace.waitForLines(before + rows.length)).slice(before)
    assert.equal(lines.length, rows.length)
    lines.forEach((line, i) => {
      const [client, method, target, , status] = rows[i] as (typeof rows)[number]
      const e = JSON.parse(line) as AuditEvent
      assert.equal(e.request.path, target)
      assert.equal(e.request.method, method)
      assert.equal(e.request.identity, client.identity)
      assert.equal(e.request.ip, '127.0.0.1')
      assert.equal(e.response.code, status)
      assert.ok(Number.isInteger(e.response.time) && e.response.time > 0)
      assert.ok(!Number.isNaN(Date.parse(e.time)))
      const message = (responses[i]?.json as { message?: string } | undefined)?.message
      assert.equal(e.response.error, status >= 400 ? message : undefined)
      // Only these fields: nothing else can carry a body.
      assert.deepEqual(Object.keys(e), ['time', 'request', 'response'])
      assert.deepEqual(Object.keys(e.request).sort(), ['identity', 'ip', 'method', 'path'])
    })
    // Nothing extra arrived.
    assert.equal(auditTrace.lines.length, before + rows.length)
  })

  test('metrics: the seed series and content type, and counters move by exactly the expected amounts', async () => {
    const res = await env.request(root, '/v1/metrics')
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4')
    for (const series of ['kes_http_request_success', 'kes_http_request_error', 'kes_http_request_failure']) {
      assert.match(res.text, new RegExp(`^# TYPE ${series} counter$`, 'm'))
    }
    const buckets = [...res.text.matchAll(/^kes_http_response_time_bucket\{le="([^"]+)"\}/gm)].map((m) => m[1])
    assert.deepEqual(buckets, ['0.01', '0.05', '0.1', '0.25', '0.5', '1', '1.5', '3', '5', '10', '+Inf'])

    await env.request(root, '/v1/key/create/obs-m', { method: 'POST' })
    const s1 = await scrape()
    await env.request(root, '/v1/key/generate/obs-m', { method: 'POST' }) // 200
    await env.request(root, '/v1/key/generate/obs-m', { method: 'POST' }) // 200
    await env.request(root, '/v1/key/generate/obs-none', { method: 'POST' }) // 404
    await env.request(nopol, '/v1/metrics') // 403
    // A key store failure: a directory where the key file should be.
    await mkdir(path.join(env.dir, 'keys', 'obs-broken'))
    const broken = await env.request(root, '/v1/key/generate/obs-broken', { method: 'POST' })
    assert.equal(broken.status, 502)
    assert.deepEqual(broken.json, { message: 'bad gateway: failed to read key' })
    const s2 = await scrape()
    const delta = (series: string): number => sample(s2, series) - sample(s1, series)
    assert.equal(delta('kes_http_request_success'), 3) // two generates and the first scrape
    assert.equal(delta('kes_http_request_error'), 2)
    assert.equal(delta('kes_http_request_failure'), 1)
    assert.equal(delta('kes_http_response_time_count'), 6)
    assert.equal(delta('kes_http_requests_total{api="/v1/key/generate",code="200"}'), 2)
    assert.equal(delta('kes_http_requests_total{api="/v1/key/generate",code="404"}'), 1)
    assert.equal(delta('kes_http_requests_total{api="/v1/key/generate",code="502"}'), 1)
    assert.equal(delta('kes_http_requests_total{api="/v1/metrics",code="403"}'), 1)
    assert.equal(delta('kes_log_audit_events'), 6)
    assert.equal(delta('kes_cache_hits_total'), 1) // a created key is loaded on first use, then cached
    assert.ok(delta('kes_cache_misses_total') >= 2)
    assert.ok(delta('kes_keystore_operation_seconds_count{table="keys",op="get"}') >= 2)
    assert.equal(sample(s2, 'kes_http_request_active'), 2) // this scrape and the open audit trace
    assert.ok(sample(s2, 'process_resident_memory_bytes') > 0)
    assert.ok(sample(s2, 'kes_cache_size') >= 1)
  })

  test('the error trace sends headers at once and gets key store and TLS errors', async () => {
    const errors = await TraceReader.open(env, root, '/v1/log/error/trace')
    try {
      assert.equal(errors.status, 200)
      assert.equal(errors.headers['content-type'], 'application/x-ndjson')
      assert.equal(errors.lines.length, 0)
      const s1 = await scrape()
      // A key store failure of its own: a directory where the key file should be.
      await mkdir(path.join(env.dir, 'keys', 'obs-broken-trace'))
      assert.equal((await env.request(root, '/v1/key/decrypt/obs-broken-trace', { method: 'POST', body: { ciphertext: 'AAAA' } })).status, 502)
      const [storeError] = await errors.waitForLines(1)
      const message = (JSON.parse(storeError as string) as { message: string }).message
      assert.match(message, /keystore: failed to read key 'obs-broken-trace'/)
      // A client without a certificate.
      await env.connectTls({ ALPNProtocols: ['http/1.1'] }).then(
        (s) => new Promise((resolve) => s.on('close', resolve).on('error', () => {})),
        () => {},
      )
      const [, tlsError] = await errors.waitForLines(2)
      assert.match(tlsError as string, /no client certificate/)
      const s2 = await scrape()
      assert.equal(sample(s2, 'kes_tls_handshake_failures_total') - sample(s1, 'kes_tls_handshake_failures_total'), 1)
      assert.ok(sample(s2, 'kes_log_error_events') >= 2)
      observed.push(...errors.lines)
    } finally {
      errors.close()
    }
  })

  test('a stuck trace reader does not block the server; what it cannot take is dropped and counted', async () => {
    const release = await TraceReader.stuck(env, root, '/v1/log/audit/trace')
    try {
      const s1 = await scrape()
      // Many more events than the stuck reader's buffer holds: the server keeps answering.
      for (let i = 0; i < 600; i++) {
        const res = await env.request(root, '/version', { http2: true })
        assert.equal(res.status, 200)
      }
      const s2 = await scrape()
      assert.ok(sample(s2, 'kes_log_audit_events_dropped_total') - sample(s1, 'kes_log_audit_events_dropped_total') > 0)
      assert.equal(sample(s2, 'kes_log_audit_events') - sample(s1, 'kes_log_audit_events'), 601)
      assert.ok(env.errorLines.some((l) => l.includes('trace reader is too slow')))
    } finally {
      release()
    }
  })

  test('the audit file holds exactly the events the trace saw, and nothing secret is anywhere', async () => {
    // Secrets of its own, so that the search below has something to find even
    // when this test runs alone (the other tests add theirs when they ran).
    const imported = randomBytes(32)
    const context = randomBytes(16)
    const plaintext = randomBytes(48)
    remember(imported, context, plaintext)
    assert.equal((await env.request(root, '/v1/key/import/obs-secret', { method: 'POST', body: { bytes: imported.toString('base64') } })).status, 200)
    const enc = await env.request(app, '/v1/key/encrypt/obs-secret', {
      method: 'POST',
      body: { plaintext: plaintext.toString('base64'), context: context.toString('base64') },
    })
    assert.equal(enc.status, 200, enc.text)
    const gen = await env.request(app, '/v1/key/generate/obs-secret', { method: 'POST', body: { context: context.toString('base64') } })
    assert.equal(gen.status, 200, gen.text)
    remember(Buffer.from((gen.json as { plaintext: string }).plaintext, 'base64'))
    await scrape()
    const seen = [...auditTrace.lines]
    auditTrace.close()
    await env.stop() // flushes and closes the audit file
    const fileLines = (await readFile(path.join(env.dir, 'logs', 'audit.log'), 'utf8')).trimEnd().split('\n')
    // The file also has events that completed after the reader stopped reading (its own close, the last scrapes).
    // The file's events are the trace's plus the hash-chain field, last (see audit-chain.ts).
    const unchained = fileLines.map((l) => l.replace(/,"chain":\{"seq":\d+(,"prev":"[0-9a-f]{64}")?,"hash":"[0-9a-f]{64}"\}\}$/, '}'))
    assert.deepEqual(unchained.slice(0, seen.length), seen)
    observed.push(...fileLines, ...env.errorLines)
    const haystack = observed.join('\n')
    assert.ok(secrets.length >= 3)
    for (const secret of secrets) {
      for (const form of [secret.toString('base64'), secret.toString('hex'), secret.toString('base64').slice(0, 16)]) {
        assert.ok(!haystack.includes(form), `a secret appeared in the logs (${form.slice(0, 6)}...)`)
      }
    }
  })
})
