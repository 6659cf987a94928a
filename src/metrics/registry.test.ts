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
