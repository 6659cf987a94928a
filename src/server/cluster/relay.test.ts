import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ServerMetrics } from '../../metrics/server-metrics.js'
import { renderSnapshot } from '../../metrics/snapshot.js'
import type { MetricsSnapshot } from '../../metrics/snapshot.js'
import type { PrimaryMessage, WorkerMessage } from './messages.js'
import { PrimaryRelay } from './relay.js'

/** A worker message without its tag (distributed over the union). */
type Body<M = WorkerMessage> = M extends unknown ? Omit<M, 'openkes'> : never

/** A relay with N fake workers (ids 1..N) that record what they are sent. */
function setup(n: number, opts: { snapshotWaitMs?: number; reloadWaitMs?: number } = {}) {
  const sent = new Map<number, PrimaryMessage[]>()
  const audit: string[] = []
  const errors: string[] = []
  const primary = new ServerMetrics()
  primary.auditLost.inc([], 3)
  const relay = new PrimaryRelay({ auditLine: (l) => audit.push(l), error: (m) => errors.push(m), snapshot: () => primary.snapshot() }, opts)
  const add = (id: number): void => {
    sent.set(id, [])
    relay.add(id, { send: (m) => sent.get(id)?.push(m) }, `worker ${id} (pid ${1000 + id})`)
  }
  for (let id = 1; id <= n; id++) add(id)
  const take = (id: number): PrimaryMessage[] => sent.get(id)?.splice(0) ?? []
  const from = (id: number, m: Body): WorkerMessage | undefined => relay.handle(id, { openkes: 1, ...m })
  return { relay, audit, errors, add, take, from }
}

test('a committed write is relayed to every other worker, never back to its writer', () => {
  const { take, from } = setup(3)
  from(2, { k: 'change', table: 'keys', name: 'k1' })
  assert.deepEqual(take(1), [{ openkes: 1, k: 'change', table: 'keys', name: 'k1' }])
  assert.deepEqual(take(2), [])
  assert.deepEqual(take(3), [{ openkes: 1, k: 'change', table: 'keys', name: 'k1' }])
})

test('audit lines are written once by the primary and go only to other workers with live readers', () => {
  const { take, from, audit } = setup(3)
  from(3, { k: 'readers', stream: 'audit', count: 1 })
  take(1)
  take(2)
  from(1, { k: 'lines', stream: 'audit', lines: ['a\n', 'b\n'] })
  from(3, { k: 'lines', stream: 'audit', lines: ['c\n'] })
  assert.deepEqual(audit, ['a\n', 'b\n', 'c\n'])
  assert.deepEqual(take(3), [{ openkes: 1, k: 'lines', stream: 'audit', lines: ['a\n', 'b\n'] }])
  assert.deepEqual(take(1), [])
  assert.deepEqual(take(2), [])
})

test("error lines are not audit lines; the primary's own error lines reach the workers with error readers", () => {
  const { relay, take, from, audit } = setup(2)
  from(1, { k: 'readers', stream: 'error', count: 2 })
  take(2)
  from(2, { k: 'lines', stream: 'error', lines: ['e\n'] })
  relay.primaryLine('error', 'p\n')
  assert.deepEqual(audit, [])
  assert.deepEqual(take(1), [
    { openkes: 1, k: 'lines', stream: 'error', lines: ['e\n'] },
    { openkes: 1, k: 'lines', stream: 'error', lines: ['p\n'] },
  ])
  assert.deepEqual(take(2), [])
})

test('each worker is told whether some other worker has readers, only when that changes', () => {
  const { relay, take, from, add } = setup(2)
  assert.deepEqual(take(1), [])
  from(1, { k: 'readers', stream: 'audit', count: 1 })
  assert.deepEqual(take(1), [])
  assert.deepEqual(take(2), [{ openkes: 1, k: 'forward', stream: 'audit', on: true }])
  from(1, { k: 'readers', stream: 'audit', count: 2 })
  assert.deepEqual(take(2), [])
  // A worker joining while others read is told at once.
  add(3)
  assert.deepEqual(take(3), [{ openkes: 1, k: 'forward', stream: 'audit', on: true }])
  from(2, { k: 'readers', stream: 'audit', count: 1 })
  assert.deepEqual(take(1), [{ openkes: 1, k: 'forward', stream: 'audit', on: true }])
  // The readers of a worker that is gone no longer count.
  relay.remove(1)
  relay.remove(1)
  assert.deepEqual(take(2), [{ openkes: 1, k: 'forward', stream: 'audit', on: false }])
  assert.deepEqual(take(3), [])
  from(2, { k: 'readers', stream: 'audit', count: 0 })
  assert.deepEqual(take(3), [{ openkes: 1, k: 'forward', stream: 'audit', on: false }])
  assert.equal(relay.size, 2)
})

test('readers reported by an unknown worker are ignored', () => {
  const { take, from } = setup(1)
  from(9, { k: 'readers', stream: 'audit', count: 1 })
  assert.deepEqual(take(1), [])
})

/** The value of an unlabelled series in a snapshot's exposition. */
function valueOf(s: MetricsSnapshot, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(renderSnapshot(s, 'prometheus'))
  assert.ok(m !== null, `${name} in the snapshot`)
  return Number(m[1])
}

test("a scrape gathers every worker's snapshot and answers the asking worker with the sum, the primary first", () => {
  const { take, from } = setup(2)
  from(2, { k: 'scrape', id: 7 })
  const asks = [take(1), take(2)]
  for (const [i, a] of asks.entries()) {
    assert.equal(a.length, 1)
    const ask = a[0]
    assert.ok(ask?.k === 'snapshot')
    const worker = new ServerMetrics()
    worker.observeRequest({ api: '/v1/key/generate', status: 200, seconds: 0.001 })
    worker.setAuditFileHealth(() => false)
    if (i === 0) worker.observeRequest({ api: '/v1/key/generate', status: 200, seconds: 0.001 })
    from(i + 1, { k: 'snapshot', id: ask.id, snapshot: worker.snapshot() })
    // An answer repeated, or from a worker not asked, changes nothing.
    from(i + 1, { k: 'snapshot', id: ask.id, snapshot: worker.snapshot() })
  }
  const answer = take(2)
  assert.equal(answer.length, 1)
  const m = answer[0]
  assert.ok(m?.k === 'metrics')
  assert.equal(m.id, 7)
  assert.equal(valueOf(m.snapshot, 'kes_http_request_success'), 3)
  assert.equal(valueOf(m.snapshot, 'kes_log_audit_events_lost_total'), 3)
  // The audit file's health is the primary's (it writes the file), not the workers'.
  assert.equal(valueOf(m.snapshot, 'kes_log_audit_file_healthy'), 1)
  assert.deepEqual(take(1), [])
})

test('a worker that does not answer a scrape in time is left out, and that is logged', async () => {
  const { take, from, errors } = setup(2, { snapshotWaitMs: 20 })
  from(1, { k: 'scrape', id: 1 })
  const ask = take(1)[0]
  take(2)
  assert.ok(ask?.k === 'snapshot')
  const w = new ServerMetrics()
  w.observeRequest({ api: '/v1/status', status: 200, seconds: 0.001 })
  from(1, { k: 'snapshot', id: ask.id, snapshot: w.snapshot() })
  for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(errors, ['metrics: worker 2 (pid 1002) did not answer within 20 ms; left out of this scrape'])
  const m = take(1)[0]
  assert.ok(m?.k === 'metrics')
  assert.equal(valueOf(m.snapshot, 'kes_http_request_success'), 1)
})

test('a worker that exits during a scrape is not waited for', () => {
  const { relay, take, from, errors } = setup(2)
  from(1, { k: 'scrape', id: 5 })
  take(1)
  take(2)
  relay.remove(2)
  // Still waiting for worker 1 itself.
  assert.deepEqual(take(1), [])
  relay.remove(1)
  assert.deepEqual(errors, [])
})

test('a scrape with every other worker answering in time and the asker gone answers nobody', () => {
  const { relay, take, from } = setup(2)
  from(1, { k: 'scrape', id: 5 })
  const ask = take(2)[0]
  assert.ok(ask?.k === 'snapshot')
  relay.remove(1)
  from(2, { k: 'snapshot', id: ask.id, snapshot: new ServerMetrics().snapshot() })
  assert.deepEqual(take(2), [])
})

test('a reload asks every worker and reports refusals and whether TLS changed', async () => {
  const { relay, take, from } = setup(3)
  const keys = Buffer.alloc(48, 7)
  const done = relay.reload(keys)
  const ids = [1, 2, 3].map((w) => {
    const m = take(w)[0]
    assert.ok(m?.k === 'reload')
    assert.equal(m.ticketKeys, keys.toString('base64'))
    return m.id
  })
  from(1, { k: 'reloaded', id: ids[0] ?? 0, tlsChanged: false })
  from(2, { k: 'reloaded', id: ids[1] ?? 0, tlsChanged: true })
  from(2, { k: 'reloaded', id: ids[1] ?? 0, tlsChanged: true })
  from(3, { k: 'reloaded', id: ids[2] ?? 0, tlsChanged: false, error: 'tls.cert: cannot read' })
  assert.deepEqual(await done, { errors: ['worker 3 (pid 1003): tls.cert: cannot read'], tlsChanged: true })
  from(1, { k: 'reloaded', id: 999, tlsChanged: false })
})

test('a reload does not wait for a worker that exits, and times out on one that never answers', async () => {
  const { relay, take, from } = setup(3, { reloadWaitMs: 20 })
  const done = relay.reload(Buffer.alloc(48))
  const id = take(1)[0]
  assert.ok(id?.k === 'reload')
  from(1, { k: 'reloaded', id: id.id, tlsChanged: false })
  relay.remove(2)
  assert.deepEqual(await done, { errors: ['worker 3 (pid 1003): no answer within 20 ms'], tlsChanged: false })
  relay.remove(3)
  // The last answer missing is a worker that exits.
  const two = setup(2)
  const last = two.relay.reload(Buffer.alloc(48))
  const first = two.take(1)[0]
  assert.ok(first?.k === 'reload')
  two.from(1, { k: 'reloaded', id: first.id, tlsChanged: true })
  two.relay.remove(2)
  assert.deepEqual(await last, { errors: [], tlsChanged: true })
  const none = setup(0).relay
  assert.deepEqual(await none.reload(Buffer.alloc(48)), { errors: [], tlsChanged: false })
})

test("the audit file's health is spread when it changes; other messages are handed back or ignored", () => {
  const { relay, take, from } = setup(2)
  relay.setAuditHealthy(true)
  assert.deepEqual(take(1), [])
  relay.setAuditHealthy(false)
  assert.equal(relay.auditHealthy, false)
  assert.deepEqual(take(1), [{ openkes: 1, k: 'audit-health', healthy: false }])
  assert.deepEqual(take(2), [{ openkes: 1, k: 'audit-health', healthy: false }])
  relay.broadcast({ openkes: 1, k: 'shutdown' })
  assert.deepEqual(take(2), [{ openkes: 1, k: 'shutdown' }])
  assert.deepEqual(from(1, { k: 'listening', host: '127.0.0.1', port: 1 }), { openkes: 1, k: 'listening', host: '127.0.0.1', port: 1 })
  assert.deepEqual(from(1, { k: 'ready' }), { openkes: 1, k: 'ready' })
  assert.deepEqual(from(1, { k: 'closing' }), { openkes: 1, k: 'closing' })
  assert.equal(relay.handle(1, { cmd: 'NODE_CLUSTER' }), undefined)
  assert.equal(relay.handle(1, 'text'), undefined)
  assert.equal(relay.handle(1, { openkes: 1, k: 'unknown' }), undefined)
})

test('a worker whose channel is gone does not break the relay', () => {
  const relay = new PrimaryRelay({ auditLine: () => {}, error: () => {}, snapshot: () => new ServerMetrics().snapshot() })
  relay.add(1, {
    send: () => {
      throw new Error('channel closed')
    },
  }, 'worker 1')
  relay.add(2, { send: () => {} }, 'worker 2')
  assert.doesNotThrow(() => relay.handle(2, { openkes: 1, k: 'change', table: 'keys', name: 'k' }))
})
