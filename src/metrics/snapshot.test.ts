import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Counter, Gauge, Histogram, Registry } from './registry.js'
import type { ProcessReaders } from './server-metrics.js'
import { ServerMetrics } from './server-metrics.js'
import { mergeSnapshots, renderSnapshot } from './snapshot.js'
import type { FamilySnapshot, MetricsAudience, MetricsSnapshot } from './snapshot.js'

const AUDIENCES: readonly MetricsAudience[] = ['prometheus', 'kes']

/** Process figures that only change when a test says so. */
function fixedProcess(startMs: number, figures: { cpu?: number; rss?: number; heap?: number } = {}): ProcessReaders & { nowMs: number } {
  const p = {
    nowMs: startMs,
    now: () => p.nowMs,
    cpuSeconds: () => figures.cpu ?? 1.5,
    residentBytes: () => figures.rss ?? 50_000_000,
    heapBytes: () => figures.heap ?? 20_000_000,
  }
  return p
}

/** A ServerMetrics with every kind of series populated. */
function populated(opts: { startMs?: number; healthy?: boolean; cacheSize?: number; cpu?: number } = {}): ServerMetrics {
  const proc = fixedProcess(opts.startMs ?? 1_700_000_000_000, { cpu: opts.cpu ?? 1.5 })
  const m = new ServerMetrics({ process: proc })
  m.setCacheStats(() => ({ hits: 7, misses: 2, size: opts.cacheSize ?? 3 }))
  m.setAuditFileHealth(() => opts.healthy ?? true)
  m.observeRequest({ api: '/v1/key/generate', status: 200, seconds: 0.004 })
  m.observeRequest({ api: '/v1/key/generate', status: 200, seconds: 0.07 })
  m.observeRequest({ api: '/v1/key/decrypt', status: 400, seconds: 0.3 })
  m.observeRequest({ api: 'unknown', status: 404, seconds: 0.001 })
  m.observeRequest({ api: '/v1/key/create', status: 502, seconds: 12 })
  m.active.inc()
  m.keystoreSeconds.observe(0.0002, ['keys', 'get'])
  m.keystoreSeconds.observe(0.02, ['keys', 'create'])
  m.auditEvents.inc([], 5)
  m.auditLost.inc([], 1)
  m.tlsHandshakeFailures.inc()
  proc.nowMs += 42_000
  return m
}

/** The value of one sample line (`name{labels} value`) of an exposition text. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  assert.ok(line !== undefined, `no sample ${series}`)
  return Number(line.slice(series.length + 1))
}

function family(s: MetricsSnapshot, name: string): FamilySnapshot {
  const f = s.families.find((x) => x.name === name)
  assert.ok(f !== undefined, `no family ${name}`)
  return f
}

for (const audience of AUDIENCES) {
  test(`render('${audience}') is renderSnapshot(snapshot(), '${audience}'), and of the snapshot merged alone`, () => {
    const m = populated()
    const text = m.render(audience)
    assert.equal(renderSnapshot(m.snapshot(), audience), text)
    assert.equal(renderSnapshot(mergeSnapshots([m.snapshot()]), audience), text)
    assert.ok(text.includes('kes_http_request_active'))
  })
}

test('a fresh ServerMetrics renders the same through a snapshot too (unlabelled families at 0)', () => {
  const m = new ServerMetrics({ process: fixedProcess(1_000) })
  for (const a of AUDIENCES) assert.equal(renderSnapshot(m.snapshot(), a), m.render(a))
  assert.equal(sample(m.render(), 'kes_http_request_success'), 0)
})

test('the default process readers report this process', () => {
  const text = new ServerMetrics().render()
  assert.ok(sample(text, 'process_resident_memory_bytes') > 0)
  assert.ok(sample(text, 'process_heap_bytes') > 0)
  assert.ok(sample(text, 'process_cpu_seconds_total') > 0)
  assert.ok(Math.abs(sample(text, 'process_start_time_seconds') - Date.now() / 1000) < 3600)
})

test('merging two and three snapshots adds counters, histogram buckets, sums and counts', () => {
  const a = populated()
  const b = populated()
  b.observeRequest({ api: '/v1/key/generate', status: 200, seconds: 0.02 })
  const c = new ServerMetrics({ process: fixedProcess(1_700_000_000_000) })
  c.observeRequest({ api: '/v1/key/generate', status: 200, seconds: 0.6 })

  const two = renderSnapshot(mergeSnapshots([a.snapshot(), b.snapshot()]), 'prometheus')
  assert.equal(sample(two, 'kes_http_request_success'), 5)
  assert.equal(sample(two, 'kes_http_request_error'), 4)
  assert.equal(sample(two, 'kes_http_request_failure'), 2)
  assert.equal(sample(two, 'kes_http_requests_total{api="/v1/key/generate",code="200"}'), 5)
  assert.equal(sample(two, 'kes_http_response_time_bucket{le="0.01"}'), 4)
  assert.equal(sample(two, 'kes_http_response_time_bucket{le="0.05"}'), 5)
  assert.equal(sample(two, 'kes_http_response_time_bucket{le="0.1"}'), 7)
  assert.equal(sample(two, 'kes_http_response_time_bucket{le="+Inf"}'), 11)
  assert.equal(sample(two, 'kes_http_response_time_count'), 11)
  assert.equal(sample(two, 'kes_http_response_time_sum'), 2 * (0.004 + 0.07 + 0.3 + 0.001 + 12) + 0.02)
  assert.equal(sample(two, 'kes_keystore_operation_seconds_count{table="keys",op="get"}'), 2)
  assert.equal(sample(two, 'kes_cache_hits_total'), 14)
  assert.equal(sample(two, 'kes_log_audit_events'), 10)
  assert.equal(sample(two, 'process_cpu_seconds_total'), 3)

  const three = renderSnapshot(mergeSnapshots([a.snapshot(), b.snapshot(), c.snapshot()]), 'prometheus')
  assert.equal(sample(three, 'kes_http_request_success'), 6)
  assert.equal(sample(three, 'kes_http_requests_total{api="/v1/key/generate",code="200"}'), 6)
  assert.equal(sample(three, 'kes_http_response_time_bucket{le="0.5"}'), 9)
  assert.equal(sample(three, 'kes_http_response_time_bucket{le="1"}'), 10)
  assert.equal(sample(three, 'kes_http_response_time_count'), 12)
  // c saw no key store operation: a's and b's series stay as they were summed.
  assert.equal(sample(three, 'kes_keystore_operation_seconds_count{table="keys",op="get"}'), 2)
})

test("gauges merge by their rule: 'sum' adds, 'first' takes the first snapshot's value", () => {
  const writer = populated({ startMs: 1_700_000_000_000, healthy: false, cacheSize: 3 })
  const other = populated({ startMs: 1_700_000_100_000, healthy: true, cacheSize: 4 })
  other.active.inc([], 2)
  const merged = renderSnapshot(mergeSnapshots([writer.snapshot(), other.snapshot()]), 'prometheus')
  assert.equal(sample(merged, 'kes_http_request_active'), 4)
  assert.equal(sample(merged, 'kes_cache_size'), 7)
  assert.equal(sample(merged, 'process_resident_memory_bytes'), 100_000_000)
  assert.equal(sample(merged, 'process_heap_bytes'), 40_000_000)
  assert.equal(sample(merged, 'kes_log_audit_file_healthy'), 0)
  assert.equal(sample(merged, 'kes_system_up_time'), 42)
  assert.equal(sample(merged, 'process_start_time_seconds'), 1_700_000_000)
  // The other order: the first snapshot decides.
  const reversed = renderSnapshot(mergeSnapshots([other.snapshot(), writer.snapshot()]), 'prometheus')
  assert.equal(sample(reversed, 'kes_log_audit_file_healthy'), 1)
  assert.equal(sample(reversed, 'process_start_time_seconds'), 1_700_000_100)
  assert.equal(sample(reversed, 'kes_http_request_active'), 4)
})

test("a 'first' gauge comes from the first snapshot that has it, with that snapshot's series only", () => {
  const withGauge = (labels: string[], value: number): MetricsSnapshot => {
    const r = new Registry()
    r.register(new Gauge('role', 'Role.', 'first', ['name'])).set(value, labels)
    return r.snapshot()
  }
  const none: MetricsSnapshot = { families: [] }
  const merged = mergeSnapshots([none, withGauge(['writer'], 1), withGauge(['reader'], 2)])
  assert.deepEqual(family(merged, 'role').series, [{ labels: ['writer'], value: 1 }])
})

test('cache and audit health read from callbacks are read when a snapshot is taken', () => {
  let size = 1
  let healthy = true
  const m = new ServerMetrics({ process: fixedProcess(0) })
  m.setCacheStats(() => ({ hits: 0, misses: 0, size }))
  m.setAuditFileHealth(() => healthy)
  const before = m.snapshot()
  size = 9
  healthy = false
  const after = m.snapshot()
  assert.deepEqual(family(before, 'kes_cache_size').series, [{ labels: [], value: 1 }])
  assert.deepEqual(family(after, 'kes_cache_size').series, [{ labels: [], value: 9 }])
  assert.deepEqual(family(before, 'kes_log_audit_file_healthy').series, [{ labels: [], value: 1 }])
  assert.deepEqual(family(after, 'kes_log_audit_file_healthy').series, [{ labels: [], value: 0 }])
})

test('a snapshot survives structuredClone and a JSON round trip, and later counting does not change it', () => {
  const m = populated()
  const s = m.snapshot()
  const text = renderSnapshot(s, 'prometheus')
  const cloned = structuredClone(s)
  const json = JSON.parse(JSON.stringify(s)) as MetricsSnapshot
  assert.deepEqual(cloned, s)
  assert.deepEqual(json, s)
  for (const a of AUDIENCES) {
    assert.equal(renderSnapshot(cloned, a), renderSnapshot(s, a))
    assert.equal(renderSnapshot(json, a), renderSnapshot(s, a))
  }
  m.observeRequest({ api: '/v1/key/generate', status: 200, seconds: 0.001 })
  m.keystoreSeconds.observe(0.001, ['keys', 'get'])
  assert.equal(renderSnapshot(s, 'prometheus'), text)
  assert.notEqual(m.render('prometheus'), text)
})

test('merging snapshots with different series and families keeps every series, in order of first appearance', () => {
  const make = (build: (r: Registry) => void): MetricsSnapshot => {
    const r = new Registry()
    build(r)
    return r.snapshot()
  }
  const a = make((r) => {
    const c = r.register(new Counter('req_total', 'Requests.', ['api', 'code']))
    c.inc(['a', '200'], 2)
    c.inc(['b', '200'])
    r.register(new Histogram('lat', 'Latency.', [0.1, 1], ['op'])).observe(0.05, ['get'])
  })
  const b = make((r) => {
    const c = r.register(new Counter('req_total', 'Requests.', ['api', 'code']))
    c.inc(['c', '500'], 4)
    c.inc(['a', '200'], 3)
    r.register(new Histogram('lat', 'Latency.', [0.1, 1], ['op'])).observe(0.5, ['put'])
    r.register(new Counter('only_b_total', 'Only in b.')).inc()
  })
  const inputs = structuredClone([a, b])
  const merged = mergeSnapshots([a, b])
  assert.deepEqual([a, b], inputs, 'the inputs are unchanged')
  assert.deepEqual(
    merged.families.map((f) => f.name),
    ['req_total', 'lat', 'only_b_total'],
  )
  assert.deepEqual(family(merged, 'req_total').series, [
    { labels: ['a', '200'], value: 5 },
    { labels: ['b', '200'], value: 1 },
    { labels: ['c', '500'], value: 4 },
  ])
  assert.deepEqual(family(merged, 'lat').series, [
    { labels: ['get'], counts: [1, 0], sum: 0.05, count: 1 },
    { labels: ['put'], counts: [0, 1], sum: 0.5, count: 1 },
  ])
  assert.equal(
    renderSnapshot(merged, 'prometheus'),
    [
      '# HELP req_total Requests.',
      '# TYPE req_total counter',
      'req_total{api="a",code="200"} 5',
      'req_total{api="b",code="200"} 1',
      'req_total{api="c",code="500"} 4',
      '# HELP lat Latency.',
      '# TYPE lat histogram',
      'lat_bucket{op="get",le="0.1"} 1',
      'lat_bucket{op="get",le="1"} 1',
      'lat_bucket{op="get",le="+Inf"} 1',
      'lat_sum{op="get"} 0.05',
      'lat_count{op="get"} 1',
      'lat_bucket{op="put",le="0.1"} 0',
      'lat_bucket{op="put",le="1"} 1',
      'lat_bucket{op="put",le="+Inf"} 1',
      'lat_sum{op="put"} 0.5',
      'lat_count{op="put"} 1',
      '# HELP only_b_total Only in b.',
      '# TYPE only_b_total counter',
      'only_b_total 1',
      '',
    ].join('\n'),
  )
  // Merging the merged result again with nothing changes nothing.
  assert.deepEqual(mergeSnapshots([merged]), merged)
})

test('the empty list merges to a snapshot without families, which renders as nothing', () => {
  const empty = mergeSnapshots([])
  assert.deepEqual(empty, { families: [] })
  for (const a of AUDIENCES) assert.equal(renderSnapshot(empty, a), '')
})

test('the KES audience of a merged snapshot shows the whole server, each KES family as one series', () => {
  const a = populated()
  const b = populated()
  b.active.inc()
  const text = renderSnapshot(mergeSnapshots([a.snapshot(), b.snapshot()]), 'kes')
  assert.equal(sample(text, 'kes_http_requests_total'), 10)
  assert.equal(sample(text, 'kes_http_request_success'), 4)
  assert.equal(sample(text, 'kes_http_request_active'), 3)
  assert.equal(sample(text, 'kes_http_response_time_count'), 10)
  assert.equal(sample(text, 'kes_http_response_time_bucket{le="0.01"}'), 4)
  assert.equal(sample(text, 'kes_system_up_time'), 42)
  assert.equal(sample(text, 'kes_log_audit_file_healthy'), 1)
  assert.doesNotMatch(text, /\{api=|^kes_keystore|^kes_cache|^process_/m)
  // The same text as one process that served all of it would give.
  const one = populated()
  for (const s of [
    { api: '/v1/key/generate', status: 200, seconds: 0.004 },
    { api: '/v1/key/generate', status: 200, seconds: 0.07 },
    { api: '/v1/key/decrypt', status: 400, seconds: 0.3 },
    { api: 'unknown', status: 404, seconds: 0.001 },
    { api: '/v1/key/create', status: 502, seconds: 12 },
  ]) {
    one.observeRequest(s)
  }
  one.auditEvents.inc([], 5)
  one.auditLost.inc([], 1)
  one.active.inc([], 2)
  assert.equal(text, one.render('kes'))
})

test('snapshots that disagree on a family cannot be merged', () => {
  const one = (f: Partial<FamilySnapshot> & Pick<FamilySnapshot, 'type'>): MetricsSnapshot =>
    ({ families: [{ name: 'x', help: 'X.', labelNames: [], series: [], ...f } as FamilySnapshot] })
  const cases: Array<{ a: MetricsSnapshot; b: MetricsSnapshot; why: RegExp }> = [
    { a: one({ type: 'counter' }), b: one({ type: 'gauge', merge: 'sum' }), why: /type counter vs gauge/ },
    { a: one({ type: 'counter', labelNames: ['a'] }), b: one({ type: 'counter', labelNames: ['b'] }), why: /label names \[a\] vs \[b\]/ },
    { a: one({ type: 'histogram', bounds: [1] }), b: one({ type: 'histogram', bounds: [2] }), why: /different buckets/ },
    { a: one({ type: 'histogram', bounds: [1] }), b: one({ type: 'histogram', bounds: [1, 2] }), why: /different buckets/ },
    { a: one({ type: 'gauge', merge: 'sum' }), b: one({ type: 'gauge', merge: 'first' }), why: /merge sum vs first/ },
  ]
  for (const c of cases) assert.throws(() => mergeSnapshots([c.a, c.b]), { message: new RegExp(`^metrics: cannot merge snapshots of 'x': ${c.why.source}`) })
  // Same shape, different help text: the first one's help is kept.
  const merged = mergeSnapshots([one({ type: 'gauge', merge: 'sum' }), { families: [{ name: 'x', help: 'Other.', type: 'gauge', merge: 'sum', labelNames: [], series: [] }] }])
  assert.equal(family(merged, 'x').help, 'X.')
})

test('requests count as success, error or failure by status class', () => {
  const cases: Array<{ status: number; want: 'success' | 'error' | 'failure' }> = [
    { status: 101, want: 'success' },
    { status: 200, want: 'success' },
    { status: 304, want: 'success' },
    { status: 399, want: 'success' },
    { status: 400, want: 'error' },
    { status: 403, want: 'error' },
    { status: 499, want: 'error' },
    { status: 500, want: 'failure' },
    { status: 502, want: 'failure' },
  ]
  for (const c of cases) {
    const m = new ServerMetrics({ process: fixedProcess(0) })
    m.observeRequest({ api: '/v1/status', status: c.status, seconds: 0.001 })
    m.observeRequest({ api: '/v1/status', status: c.status, seconds: 0.001 })
    const text = m.render()
    for (const outcome of ['success', 'error', 'failure']) {
      assert.equal(sample(text, `kes_http_request_${outcome}`), outcome === c.want ? 2 : 0, `${c.status} ${outcome}`)
    }
    assert.equal(sample(text, `kes_http_requests_total{api="/v1/status",code="${c.status}"}`), 2)
  }
})

test('past the cap on remembered (api, status) series, requests still count exactly', () => {
  const capped = new ServerMetrics({ process: fixedProcess(0), maxCachedRequestSeries: 2 })
  const uncapped = new ServerMetrics({ process: fixedProcess(0) })
  const pairs = [
    { api: '/v1/key/generate', status: 200 },
    { api: '/v1/key/generate', status: 404 },
    { api: '/v1/key/decrypt', status: 200 },
    { api: 'unknown', status: 400 },
    { api: '/v1/key/generate', status: 500 },
  ]
  for (let round = 0; round < 3; round++) {
    for (const [i, p] of pairs.entries()) {
      for (const m of [capped, uncapped]) m.observeRequest({ ...p, seconds: i * 0.2 })
    }
  }
  for (const a of AUDIENCES) assert.equal(capped.render(a), uncapped.render(a))
  const text = capped.render()
  for (const p of pairs) assert.equal(sample(text, `kes_http_requests_total{api="${p.api}",code="${p.status}"}`), 3)
  assert.equal(sample(text, 'kes_http_request_success'), 6)
  assert.equal(sample(text, 'kes_http_request_error'), 6)
  assert.equal(sample(text, 'kes_http_request_failure'), 3)
})
