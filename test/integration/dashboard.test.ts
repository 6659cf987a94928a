// The Grafana dashboard in examples/ charts only metrics a live server exports.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { EXAMPLES_DIR } from '../support/fixtures.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
let env: TestEnv
before(async () => {
  env = await TestEnv.create()
  await env.start(`admin:\n  identity: ${root.identity}\n`)
})
after(async () => {
  await env.dispose()
})

function collectExprs(node: unknown, out: string[]): string[] {
  if (Array.isArray(node)) for (const n of node) collectExprs(n, out)
  else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'expr' || k === 'query') && typeof v === 'string') out.push(v)
      else collectExprs(v, out)
    }
  }
  return out
}

test('every metric the dashboard queries exists in a live scrape', async () => {
  const dashboard: unknown = JSON.parse(await readFile(path.join(EXAMPLES_DIR, 'grafana-dashboard.json'), 'utf8'))
  const exprs = collectExprs(dashboard, [])
  assert.ok(exprs.length >= 10)
  const queried = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:kes|process)_[a-z0-9_]+)\b/g)].map((m) => m[1] as string)))
  assert.ok(queried.size >= 15)
  // Make every labelled series appear at least once.
  await env.request(root, '/v1/key/create/dash', { method: 'POST' })
  await env.request(root, '/v1/key/generate/dash', { method: 'POST' })
  // As Prometheus scrapes: it names its exposition formats in Accept (and so sees every family).
  const scrape = await env.request(root, '/v1/metrics', { headers: { accept: 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' } })
  const exported = new Set(scrape.text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]))
  for (const name of queried) assert.ok(exported.has(name), `the dashboard queries ${name}, which the server does not export`)
})
