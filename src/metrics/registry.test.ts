import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Counter, Gauge, Histogram, Registry } from './registry.js'

test('counters, gauges and histograms render in the text format 0.0.4', () => {
  const r = new Registry()
  const c = r.register(new Counter('c_total', 'A counter.', ['api', 'code']))
  const g = r.register(new Gauge('g', 'A gauge.', 'sum'))
  r.register(new Counter('read_total', 'Read at scrape.', [], () => 7))
  const h = r.register(new Histogram('h_seconds', 'A histogram.', [0.1, 1]))
  c.inc(['/v1/key/create', '200'])
  c.inc(['/v1/key/create', '200'], 2)
  c.inc(['a"b\\c\nd', '500'])
  g.set(3)
  g.dec()
  h.observe(0.05)
  h.observe(0.5)
  h.observe(5)
  assert.equal(
    r.render(),
    [
      '# HELP c_total A counter.',
      '# TYPE c_total counter',
      'c_total{api="/v1/key/create",code="200"} 3',
      'c_total{api="a\\"b\\\\c\\nd",code="500"} 1',
      '# HELP g A gauge.',
      '# TYPE g gauge',
      'g 2',
      '# HELP read_total Read at scrape.',
      '# TYPE read_total counter',
      'read_total 7',
      '# HELP h_seconds A histogram.',
      '# TYPE h_seconds histogram',
      'h_seconds_bucket{le="0.1"} 1',
      'h_seconds_bucket{le="1"} 2',
      'h_seconds_bucket{le="+Inf"} 3',
      'h_seconds_sum 5.55',
      'h_seconds_count 3',
      '',
    ].join('\n'),
  )
})

test('an unlabelled metric shows 0 before anything happened; wrong label counts throw', () => {
  const r = new Registry()
  const c = r.register(new Counter('fresh_total', 'Fresh.'))
  assert.match(r.render(), /^fresh_total 0$/m)
  assert.throws(() => c.inc(['x']), RangeError)
})

test('non-finite values render as NaN, +Inf and -Inf; a NaN observation counts in no finite bucket', () => {
  const r = new Registry()
  const g = r.register(new Gauge('g', 'G.', 'sum', ['k']))
  g.set(NaN, ['nan'])
  g.set(Infinity, ['pos'])
  g.set(-Infinity, ['neg'])
  const h = r.register(new Histogram('h', 'H.', [1]))
  h.observe(NaN)
  const text = r.render()
  assert.match(text, /^g\{k="nan"\} NaN$/m)
  assert.match(text, /^g\{k="pos"\} \+Inf$/m)
  assert.match(text, /^g\{k="neg"\} -Inf$/m)
  assert.match(text, /^h_bucket\{le="1"\} 0$/m)
  assert.match(text, /^h_bucket\{le="\+Inf"\} 1$/m)
  assert.match(text, /^h_sum NaN$/m)
})

test('observations land in the lowest bucket whose bound they do not exceed', () => {
  const h = new Histogram('h', 'H.', [0.1, 1, 10])
  const cases: Array<{ value: number; counts: number[] }> = [
    { value: -1, counts: [1, 0, 0] },
    { value: 0.1, counts: [1, 0, 0] },
    { value: 0.100001, counts: [0, 1, 0] },
    { value: 10, counts: [0, 0, 1] },
    { value: 11, counts: [0, 0, 0] },
    { value: Infinity, counts: [0, 0, 0] },
  ]
  for (const c of cases) {
    const s = h.child([])
    const before = [...s.counts]
    h.observe(c.value)
    assert.deepEqual(
      s.counts.map((n, i) => n - (before[i] as number)),
      c.counts,
      `${c.value}`,
    )
  }
  assert.equal(h.count(), cases.length)
})

test('series are found by label values: children, get and count see the same series', () => {
  const c = new Counter('c_total', 'C.', ['api'])
  const child = c.child(['a'])
  child.inc()
  c.inc(['a'], 2)
  child.inc(4)
  assert.equal(c.get(['a']), 7)
  assert.equal(c.get(['b']), 0)
  const h = new Histogram('h', 'H.', [1], ['op'])
  h.child(['get']).observe(0.5)
  h.observe(2, ['get'])
  assert.equal(h.count(['get']), 2)
  // The label array a caller passed is not kept: changing it later changes no series.
  const labels = ['x']
  c.inc(labels)
  labels[0] = 'y'
  assert.deepEqual(
    c.snapshot().series.map((s) => s.labels),
    [['a'], ['b'], ['x']],
  )
})

test('a labelled metric used without labels, or an unlabelled one with labels, throws a RangeError', () => {
  const cases: Array<() => void> = [
    () => new Counter('c', 'C.', ['a']).inc(),
    () => new Counter('c', 'C.', ['a']).inc([]),
    () => new Gauge('g', 'G.', 'sum', ['a']).set(1),
    () => new Gauge('g', 'G.', 'sum', ['a', 'b']).dec(['x']),
    () => new Histogram('h', 'H.', [1], ['a']).observe(1),
    () => new Histogram('h', 'H.', [1]).observe(1, ['a']),
  ]
  for (const run of cases) assert.throws(run, { name: 'RangeError', message: /^metrics: [cgh]: wrong label count$/ })
})

test('a gauge read from elsewhere is read at each snapshot and keeps its merge rule', () => {
  let v = 1
  const g = new Gauge('g', 'G.', 'first', [], () => v)
  assert.deepEqual(g.snapshot(), { name: 'g', help: 'G.', type: 'gauge', merge: 'first', labelNames: [], series: [{ labels: [], value: 1 }] })
  v = 2
  assert.deepEqual(g.snapshot().series, [{ labels: [], value: 2 }])
})
