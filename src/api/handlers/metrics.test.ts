// /v1/metrics renders this process's metrics, or (a worker of --workers N) the merged scrape of every worker.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ServerMetrics } from '../../metrics/server-metrics.js'
import { mergeSnapshots } from '../../metrics/snapshot.js'
import type { ServerState } from '../../server/state.js'
import type { ApiRequest } from '../routes.js'
import { metrics } from './metrics.js'

const PROMETHEUS = { accept: 'text/plain; version=0.0.4' } as ApiRequest
const KES = { accept: undefined } as ApiRequest

/** The body of a metrics reply (always a whole body, never a stream). */
async function body(req: ApiRequest, state: ServerState): Promise<string> {
  const reply = await metrics(req, state)
  assert.equal(reply.status, 200)
  assert.ok('body' in reply)
  return String(reply.body)
}

test('one process: its own metrics, for either audience', async () => {
  const m = new ServerMetrics()
  m.requestSuccess.inc([], 4)
  const state = { metrics: m } as unknown as ServerState
  const prom = await body(PROMETHEUS, state)
  assert.match(prom, /^kes_http_request_success 4$/m)
  assert.match(prom, /^process_heap_bytes /m)
  assert.doesNotMatch(await body(KES, state), /process_heap_bytes/)
})

test('a worker: the scrape gathered from every worker, rendered for the audience', async () => {
  const own = new ServerMetrics()
  own.requestSuccess.inc([], 1)
  const other = new ServerMetrics()
  other.requestSuccess.inc([], 40)
  let gathered = 0
  const state = {
    metrics: own,
    gatherMetrics: async () => {
      gathered++
      return mergeSnapshots([own.snapshot(), other.snapshot()])
    },
  } as unknown as ServerState
  assert.match(await body(PROMETHEUS, state), /^kes_http_request_success 41$/m)
  const kes = await body(KES, state)
  assert.match(kes, /^kes_http_request_success 41$/m)
  assert.doesNotMatch(kes, /process_heap_bytes/)
  assert.equal(gathered, 2)
})
