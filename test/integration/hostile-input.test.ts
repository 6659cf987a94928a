// Hostile input, a quick run (the 20,000-request run is in `npm run test:stress`):
// generated requests over HTTP/1.1 and HTTP/2 never get a 5xx, every error is
// {"message"} JSON, and nothing reaches the error log as an unexpected error.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { TestEnv, makeClient } from './harness.js'
import { sample, scrape } from './edge.js'
import { HostileSender, runHostile } from './hostile.js'

const root = makeClient('root')
// Fixed, so a failure reproduces; HOSTILE_SEED=<n> tries another.
const SEED = Number(process.env.HOSTILE_SEED ?? 90210)
let env: TestEnv
// Requests the server itself counted as a 5xx (aborted ones included, which the client never sees answered).
const failures: string[] = []

before(async () => {
  env = await TestEnv.create()
  await env.start(`admin:\n  identity: ${root.identity}\n`, { onComplete: (e) => e.status >= 500 && failures.push(`${e.status} ${e.method} ${e.path} ${e.error ?? ''}`) })
  for (const k of ['k', 'key-1']) assert.equal((await env.request(root, `/v1/key/create/${k}`, { method: 'POST' })).status, 200)
})
after(async () => {
  await env.dispose()
})

test('800 generated hostile requests: never a 5xx, every error {"message"}', async () => {
  const sender = new HostileSender(env, root)
  try {
    await runHostile(sender, 800, SEED)
  } finally {
    sender.close()
  }
  const metrics = await scrape(env, root)
  assert.deepEqual(failures, [])
  assert.equal(sample(metrics, 'kes_http_request_failure'), 0)
  assert.deepEqual(env.errorLines.filter((l) => l.includes('unexpected error')), [])
  assert.equal((await env.request(root, '/version')).status, 200)
})
