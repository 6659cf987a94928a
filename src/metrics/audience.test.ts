import assert from 'node:assert/strict'
import { test } from 'node:test'
import { metricsAudience } from './audience.js'
import { Counter, Histogram, Registry } from './registry.js'
import { ServerMetrics } from './server-metrics.js'

const cases: Array<{ accept: string | undefined; want: 'prometheus' | 'kes' }> = [
  // What Prometheus 2.x and 3.x send by default.
  { accept: 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', want: 'prometheus' },
  { accept: 'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.2,*/*;q=0.1', want: 'prometheus' },
  { accept: 'text/plain;version=0.0.4', want: 'prometheus' },
  { accept: 'text/plain; version=0.0.4', want: 'prometheus' },
  { accept: 'TEXT/Plain ; Version="0.0.4" ; q=0.3', want: 'prometheus' },
  { accept: 'text/plain;version=1.0.0;escaping=underscores', want: 'prometheus' },
  { accept: 'text/plain;charset;version=0.0.4', want: 'prometheus' },
  { accept: 'application/openmetrics-text', want: 'prometheus' },
  { accept: '*/*;q=0.1, application/openmetrics-text; version=1.0.0', want: 'prometheus' },
  { accept: 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited', want: 'prometheus' },
  // KES clients send none; everything else is a KES reader too.
  { accept: undefined, want: 'kes' },
  { accept: '', want: 'kes' },
  { accept: '*/*', want: 'kes' },
  { accept: 'text/plain', want: 'kes' },
  { accept: 'text/plain;version=0.0.3', want: 'kes' },
  { accept: 'application/json', want: 'kes' },
  { accept: 'application/vnd.google.protobuf', want: 'kes' },
  { accept: 'text/plain;version=0.0.4;q=0', want: 'kes' },
  { accept: 'application/openmetrics-text;q=0.0, text/html', want: 'kes' },
  { accept: 'text/plainversion=0.0.4', want: 'kes' },
]
for (const c of cases) {
  test(`Accept ${JSON.stringify(c.accept)} → ${c.want}`, () => assert.equal(metricsAudience(c.accept), c.want))
}

/** Families and their series counts of an exposition text (`_bucket`/`_sum`/`_count` belong to their histogram). */
function seriesPerFamily(text: string): Map<string, number> {
  const types = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1] as string, m[2] as string)
  const series = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s/.exec(line)
    assert.ok(sample, `not a sample: ${line}`)
    let family = sample[1] as string
    let labels = sample[2] ?? ''
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = family.slice(0, -suffix.length)
      if (family.endsWith(suffix) && types.get(base) === 'histogram') {
        family = base
        labels = labels.replace(/,?le="[^"]*"/, '').replace('{,', '{').replace('{}', '')
      }
    }
    if (!series.has(family)) series.set(family, new Set())
    series.get(family)?.add(labels)
  }
  return new Map([...series].map(([f, s]) => [f, s.size]))
}

test('totals sum labelled counters and histograms into one unlabelled series', () => {
  const r = new Registry()
  const c = r.register(new Counter('kes_http_x_total', 'x', ['api']))
  const h = r.register(new Histogram('kes_http_y', 'y', [0.1, 1], ['api']))
  c.inc(['a'], 2)
  c.inc(['b'], 3)
  h.observe(0.05, ['a'])
  h.observe(0.5, ['b'])
  h.observe(5, ['b'])
  const text = r.renderTotals(() => true)
  assert.match(text, /^kes_http_x_total 5$/m)
  assert.match(text, /^kes_http_y_bucket\{le="0.1"\} 1$/m)
  assert.match(text, /^kes_http_y_bucket\{le="1"\} 2$/m)
  assert.match(text, /^kes_http_y_bucket\{le="\+Inf"\} 3$/m)
  assert.match(text, /^kes_http_y_sum 5.55$/m)
  assert.match(text, /^kes_http_y_count 3$/m)
  assert.doesNotMatch(text, /api=/)
  // The full rendering is unchanged.
  assert.match(r.render(), /^kes_http_x_total\{api="a"\} 2$/m)
})

test('a labelled family without any series yet still totals to one series (0)', () => {
  const r = new Registry()
  r.register(new Counter('kes_http_z_total', 'z', ['api', 'code']))
  assert.equal(r.renderTotals(() => true), '# HELP kes_http_z_total z\n# TYPE kes_http_z_total counter\nkes_http_z_total 0\n')
})

test('the KES audience sees only kes_http_*, kes_log_* and kes_system_*, each as exactly one series', () => {
  const m = new ServerMetrics()
  m.observeRequest({ api: '/v1/key/generate', status: 200, seconds: 0.02 })
  m.observeRequest({ api: '/v1/key/create', status: 404, seconds: 0.002 })
  m.keystoreSeconds.observe(0.001, ['keys', 'get'])
  const kes = seriesPerFamily(m.render('kes'))
  assert.ok(kes.size >= 8)
  for (const [family, n] of kes) {
    assert.match(family, /^kes_(http|log|system)_/)
    assert.equal(n, 1, `${family} has ${n} series`)
  }
  for (const f of ['kes_http_request_success', 'kes_http_request_error', 'kes_http_response_time', 'kes_http_requests_total', 'kes_log_audit_events', 'kes_system_up_time']) {
    assert.ok(kes.has(f), `missing ${f}`)
  }
  assert.match(m.render('kes'), /^kes_http_requests_total 2$/m)
  const all = seriesPerFamily(m.render('prometheus'))
  assert.equal(all.get('kes_http_requests_total'), 2)
  assert.ok(all.has('kes_keystore_operation_seconds') && all.has('process_cpu_seconds_total') && all.has('kes_cache_size'))
})
