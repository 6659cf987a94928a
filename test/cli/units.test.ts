// Unit tests of the client commands' pure parts: connection options from
// flags and environment, error descriptions, the Prometheus parser and
// histogram quantiles, policy files and output formatting.
import assert from 'node:assert/strict'
import path from 'node:path'
import { describe, test } from 'node:test'
import { KesError } from '../../src/api/errors.js'
import { clientOptions, describeError, UsageError } from '../../src/cli/connect.js'
import { formatAuditEvent } from '../../src/cli/log.js'
import { histogramQuantile, metricView, parsePrometheusText, snapshotOf } from '../../src/cli/metric.js'
import { painter, shouldColor, table } from '../../src/cli/output.js'
import { parsePolicyFile } from '../../src/cli/policy.js'

const noFlags = { servers: [], insecure: false }
const certEnv = { KES_CLIENT_CERT: 'c.pem', KES_CLIENT_KEY: 'k.pem' }

describe('clientOptions', () => {
  test('defaults to https://127.0.0.1:7373 and resolves files against cwd', () => {
    const o = clientOptions(noFlags, certEnv, '/work')
    assert.deepEqual(o, { endpoints: ['https://127.0.0.1:7373'], certFile: path.resolve('/work/c.pem'), keyFile: path.resolve('/work/k.pem') })
  })

  test('KES_SERVER may list several servers; host:port means https', () => {
    const o = clientOptions(noFlags, { ...certEnv, KES_SERVER: 'https://a:7373, b:7374 ,,https://[::1]:7375' }, '/')
    assert.deepEqual(o.endpoints, ['https://a:7373', 'https://b:7374', 'https://[::1]:7375'])
  })

  test('flags win over the environment, including the older variable names', () => {
    const env = { KES_SERVER: 'https://env:1', KES_CLIENT_TLS_CERT_FILE: 'old.cert', KES_CLIENT_TLS_KEY_FILE: 'old.key' }
    const fromEnv = clientOptions(noFlags, env, '/')
    assert.equal(fromEnv.certFile, '/old.cert')
    assert.equal(fromEnv.keyFile, '/old.key')
    const o = clientOptions({ servers: ['https://f:1,https://g:2', 'https://h:3'], cert: 'f.cert', key: 'f.key', ca: 'ca.pem', insecure: true }, env, '/')
    assert.deepEqual(o, {
      endpoints: ['https://f:1', 'https://g:2', 'https://h:3'],
      certFile: '/f.cert',
      keyFile: '/f.key',
      caFile: '/ca.pem',
      insecure: true,
    })
  })

  test('KES_CLIENT_CERT wins over KES_CLIENT_TLS_CERT_FILE', () => {
    const o = clientOptions(noFlags, { ...certEnv, KES_CLIENT_TLS_CERT_FILE: 'old.cert' }, '/')
    assert.equal(o.certFile, '/c.pem')
  })

  test('missing credentials and bad servers are usage errors', () => {
    assert.throws(() => clientOptions(noFlags, { KES_CLIENT_KEY: 'k' }, '/'), { name: 'UsageError', message: /no client certificate/ })
    assert.throws(() => clientOptions(noFlags, { KES_CLIENT_CERT: 'c', KES_CLIENT_KEY: '' }, '/'), /no client private key/)
    assert.throws(() => clientOptions({ ...noFlags, servers: ['http://a:1'] }, certEnv, '/'), /only https/)
    assert.throws(() => clientOptions({ ...noFlags, servers: ['https://a:1/v1'] }, certEnv, '/'), UsageError)
    assert.throws(() => clientOptions({ ...noFlags, servers: ['https://[bad'] }, certEnv, '/'), /invalid server/)
  })
})

describe('describeError', () => {
  test('an API error is the server message', () => {
    assert.equal(describeError(new KesError(404, 'key does not exist')), 'key does not exist')
  })

  test('a refused connection names the address, even inside an AggregateError or a cause', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', address: '127.0.0.1', port: 9 })
    assert.equal(describeError(refused), 'cannot reach the server at 127.0.0.1:9: connection refused')
    assert.equal(describeError(new AggregateError([refused], '')), 'cannot reach the server at 127.0.0.1:9: connection refused')
    assert.equal(describeError(new Error('all endpoints failed', { cause: refused })), 'cannot reach the server at 127.0.0.1:9: connection refused')
  })

  test('a certificate verification failure suggests --ca or -k', () => {
    const err = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
    assert.match(describeError(err), /^self-signed certificate \(give the server's CA with --ca FILE, or -k/)
  })
})

const KES_METRICS = `# HELP kes_http_request_success Number of requests that have been served successfully.
# TYPE kes_http_request_success counter
kes_http_request_success 5
kes_http_request_error 2
kes_http_request_failure{reason="x \\"y\\" \\\\ z"} 2
kes_http_response_time_bucket{le="0.01"} 6
kes_http_response_time_bucket{le="0.05"} 8
kes_http_response_time_bucket{le="0.1"} 9
kes_http_response_time_bucket{le="+Inf"} 9
kes_http_response_time_sum 0.25
kes_http_response_time_count 9
kes_system_up_time 208.86 1700000000000
`

describe('prometheus text', () => {
  test('parses samples, labels with escapes, special values and timestamps', () => {
    const samples = parsePrometheusText(KES_METRICS + 'x_nan NaN\nx_inf -Inf\n')
    assert.equal(samples.length, 12)
    assert.deepEqual(samples[2], { name: 'kes_http_request_failure', labels: { reason: 'x "y" \\ z' }, value: 2 })
    assert.deepEqual(samples[6], { name: 'kes_http_response_time_bucket', labels: { le: '+Inf' }, value: 9 })
    assert.equal(samples[9]?.value, 208.86)
    assert.ok(Number.isNaN(samples[10]?.value))
    assert.equal(samples[11]?.value, -Infinity)
  })

  test('a malformed line is an error naming the line', () => {
    assert.throws(() => parsePrometheusText('ok 1\nbroken{le="1} 2\n'), /line 2/)
    assert.throws(() => parsePrometheusText('name abc\n'), /line 1/)
    assert.throws(() => parsePrometheusText('{} 1\n'), /line 1/)
  })

  test('snapshotOf picks the counters and sorted buckets; a scrape without them is an error', () => {
    const snap = snapshotOf(parsePrometheusText(KES_METRICS))
    assert.equal(snap.success, 5)
    assert.equal(snap.error, 2)
    assert.equal(snap.failure, 2)
    assert.deepEqual(snap.buckets.map((b) => b.le), [0.01, 0.05, 0.1, Infinity])
    assert.equal(snap.latencyCount, 9)
    assert.throws(() => snapshotOf(parsePrometheusText('go_goroutines 3\n')), /no kes_http_request_success/)
  })
})

describe('histogramQuantile', () => {
  const buckets = [
    { le: 0.01, count: 50 },
    { le: 0.1, count: 90 },
    { le: 1, count: 100 },
    { le: Infinity, count: 100 },
  ]
  const cases: Array<[number, number | null]> = [
    [0.5, 0.01],
    [0.25, 0.005],
    [0.7, 0.055],
    [0.95, 0.55],
    [1, 1],
  ]
  for (const [q, want] of cases) {
    test(`q=${q} → ${want}`, () => {
      const got = histogramQuantile(q, buckets)
      assert.ok(got !== null && want !== null && Math.abs(got - want) < 1e-9, `got ${got}`)
    })
  }
  test('an empty histogram has no quantile; the +Inf bucket gives the largest finite bound', () => {
    assert.equal(histogramQuantile(0.5, [{ le: 0.1, count: 0 }, { le: Infinity, count: 0 }]), null)
    assert.equal(histogramQuantile(0.99, [{ le: 0.1, count: 1 }, { le: Infinity, count: 10 }]), 0.1)
  })
})

describe('metricView', () => {
  const snap = (success: number, error: number, b1: number, b2: number, sum: number) => ({
    success,
    error,
    failure: 0,
    buckets: [
      { le: 0.01, count: b1 },
      { le: Infinity, count: b2 },
    ],
    latencySum: sum,
    latencyCount: b2,
  })
  test('rates per second and quantiles come from the increase over the interval', () => {
    const view = metricView(snap(10, 2, 10, 12, 0.1), snap(30, 4, 30, 34, 0.32), 2, new Date(0))
    assert.equal(view.requests_per_second, 11)
    assert.equal(view.success_per_second, 10)
    assert.equal(view.error_per_second, 1)
    assert.deepEqual(view.total, { success: 30, error: 4, failure: 0 })
    assert.equal(view.latency_seconds.mean, 0.01)
    assert.equal(view.latency_seconds.floor, 0.01)
    assert.equal(view.time, '1970-01-01T00:00:00.000Z')
  })
  test('a counter reset (server restart) counts the new values, never a negative rate', () => {
    const view = metricView(snap(100, 0, 100, 100, 1), snap(4, 0, 4, 4, 0.02), 1, new Date(0))
    assert.equal(view.success_per_second, 4)
    assert.equal(view.latency_seconds.mean, 0.005)
  })
  test('an interval without requests has no latency', () => {
    const view = metricView(snap(1, 0, 1, 1, 0.001), snap(1, 0, 1, 1, 0.001), 1, new Date(0))
    assert.equal(view.requests_per_second, 0)
    assert.equal(view.latency_seconds.p50, null)
    assert.equal(view.latency_seconds.mean, null)
  })
})

describe('parsePolicyFile', () => {
  test('allow/deny, the seed paths form, null lists and extra fields', () => {
    assert.deepEqual(parsePolicyFile('{"allow":["a"],"deny":["d"]}', 'f'), { allow: ['a'], deny: ['d'] })
    assert.deepEqual(parsePolicyFile('{"paths":["p"]}', 'f'), { allow: ['p'], deny: [] })
    assert.deepEqual(parsePolicyFile('{"allow":["a"],"paths":["a"],"deny":null,"x":1}', 'f'), { allow: ['a'], deny: [] })
    assert.deepEqual(parsePolicyFile('{}', 'f'), { allow: [], deny: [] })
  })
  test('anything else is an error naming the file', () => {
    assert.throws(() => parsePolicyFile('[1]', 'p.json'), /'p\.json': want a JSON object/)
    assert.throws(() => parsePolicyFile('{"deny":[1]}', 'p.json'), /'p\.json': deny must be a list of strings/)
    assert.throws(() => parsePolicyFile('nope', 'p.json'), /'p\.json' is not valid JSON/)
  })
})

describe('output', () => {
  test('colour only on a terminal without NO_COLOR', () => {
    assert.equal(shouldColor(true, {}), true)
    assert.equal(shouldColor(false, {}), false)
    assert.equal(shouldColor(true, { NO_COLOR: '1' }), false)
    assert.equal(shouldColor(true, { NO_COLOR: '' }), true)
  })
  test('tables align columns, also around colour escapes; an empty table prints nothing', () => {
    const plain = table(['A', 'LONG'], [['xyz', '1'], ['q', '22']], painter(false))
    assert.equal(plain, 'A    LONG\nxyz  1\nq    22\n')
    const coloured = table(['A', 'B'], [[painter(true).paint('green', 'ok'), 'x']], painter(true))
    assert.equal(coloured, '\x1b[1mA   B\x1b[0m\n\x1b[32mok\x1b[0m  x\n')
    assert.equal(table(['A'], [], painter(false)), '')
  })
  test('an audit event line: time, short identity, method, path, status, latency', () => {
    const line = formatAuditEvent(
      { time: '2026-01-01T00:00:00Z', request: { path: '/v1/key/create/k', identity: 'abcdef0123456789', method: 'POST' }, response: { code: 200, time: 102_923 } },
      painter(false),
    )
    assert.equal(line, `2026-01-01T00:00:00Z  abcdef01  POST   ${'/v1/key/create/k'.padEnd(32)} 200  103µs\n`)
  })
})
