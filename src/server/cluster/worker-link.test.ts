import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ChangeEvent } from '../../keystore/change-feed.js'
import type { KeyStore } from '../../keystore/keystore.js'
import { createMemStore } from '../../keystore/mem/mem-store.js'
import type { AuditRecord } from '../../log/audit-log.js'
import type { SubscriberSink } from '../../log/event-hub.js'
import { ServerMetrics } from '../../metrics/server-metrics.js'
import type { PrimaryMessage, WorkerMessage } from './messages.js'
import type { WorkerControl } from './worker-link.js'
import { WorkerLink } from './worker-link.js'

type Body<M = PrimaryMessage> = M extends unknown ? Omit<M, 'openkes'> : never

const KEYS = Buffer.alloc(48, 1)
const HUB = { maxBufferedBytes: 1 << 20 }
const RECORD: AuditRecord = {
  time: new Date(0),
  method: 'POST',
  path: '/v1/key/create/k',
  identity: 'id',
  ip: '127.0.0.1',
  status: 200,
  durationNs: 5n,
  error: undefined,
}

function setup(opts: { scrapeWaitMs?: number; auditHealthy?: boolean } = {}) {
  const sent: WorkerMessage[] = []
  const link = new WorkerLink({ send: (m) => sent.push(m) }, { ticketKeys: KEYS, auditHealthy: opts.auditHealthy ?? true }, opts)
  const to = (m: Body): void => link.handle({ openkes: 1, ...m })
  const take = (): WorkerMessage[] => sent.splice(0)
  return { link, to, take }
}

/** A sink collecting what a reader receives. */
function sink(): SubscriberSink & { lines: string[]; ended: boolean } {
  const s = {
    lines: [] as string[],
    ended: false,
    writableLength: 0,
    write(chunk: string) {
      s.lines.push(chunk)
      return true
    },
    end() {
      s.ended = true
    },
  }
  return s
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

test('writes through the shared store are announced; changes of other workers reach its subscribers', async () => {
  const { link, to, take } = setup()
  const store = link.shareStore(createMemStore())
  const heard: ChangeEvent[] = []
  store.changes.subscribe((e) => heard.push(e))
  await store.keys.create('k1', new Uint8Array([1]))
  assert.equal(await store.keys.delete('missing'), false)
  assert.deepEqual(take(), [{ openkes: 1, k: 'change', table: 'keys', name: 'k1' }])
  to({ k: 'change', table: 'policies', name: 'p' })
  assert.deepEqual(heard, [{ kind: 'change', table: 'policies', name: 'p' }])
})

test('a PostgreSQL store is not wrapped: its own NOTIFY feed reaches every worker', () => {
  const { link } = setup()
  const pg = { ...createMemStore(), kind: 'postgres' } as KeyStore
  assert.equal(link.shareStore(pg), pg)
})

test('readers are reported; lines are sent (batched per turn) only while another process reads', async () => {
  const { link, to, take } = setup()
  const hub = link.errorHub(HUB)
  hub.publish('alone\n')
  await turn()
  assert.deepEqual(take(), [])
  const reader = sink()
  const sub = hub.subscribe(reader)
  assert.deepEqual(take(), [{ openkes: 1, k: 'readers', stream: 'error', count: 1 }])
  to({ k: 'forward', stream: 'error', on: true })
  hub.publish('a\n')
  hub.publish('b\n')
  assert.deepEqual(take(), [])
  await turn()
  assert.deepEqual(take(), [{ openkes: 1, k: 'lines', stream: 'error', lines: ['a\n', 'b\n'] }])
  // Lines of other processes go to the local readers only.
  to({ k: 'lines', stream: 'error', lines: ['remote\n'] })
  await turn()
  assert.deepEqual(take(), [])
  assert.deepEqual(reader.lines, ['a\n', 'b\n', 'remote\n'])
  sub.cancel()
  await turn()
  assert.deepEqual(take(), [{ openkes: 1, k: 'readers', stream: 'error', count: 0 }])
  to({ k: 'forward', stream: 'error', on: false })
  hub.publish('c\n')
  await turn()
  assert.deepEqual(take(), [])
})

test('being told about remote readers before the hub exists is remembered', async () => {
  const { link, to, take } = setup()
  to({ k: 'forward', stream: 'audit', on: true })
  const audit = link.auditLog(HUB, { onError: () => {} })
  audit.record(RECORD)
  await turn()
  const m = take()
  assert.equal(m.length, 1)
  assert.ok(m[0]?.k === 'lines' && m[0].stream === 'audit')
  assert.match(m[0].lines[0] ?? '', /"path":"\/v1\/key\/create\/k"/)
})

test('the audit log counts every event, builds none nobody reads, and sends all of them when the primary writes a file', async () => {
  const { link, take } = setup()
  let counted = 0
  const audit = link.auditLog(HUB, { onError: () => {}, onEvent: () => counted++ })
  await audit.configure({ stdout: false, file: undefined })
  audit.record(RECORD)
  await turn()
  assert.deepEqual(take(), [])
  await audit.configure({ stdout: false, file: '/var/log/openkes/audit.log' })
  audit.record(RECORD)
  audit.record(RECORD)
  // The close sends what is batched at once.
  await audit.close()
  const m = take()
  assert.equal(m.length, 1)
  assert.ok(m[0]?.k === 'lines')
  assert.equal(m[0].lines.length, 2)
  assert.equal(counted, 3)
  await audit.reopen()
})

test('fail-closed refuses while the primary says the audit file is unhealthy', async () => {
  const { link, to } = setup({ auditHealthy: false })
  const audit = link.auditLog(HUB, { onError: () => {} })
  await audit.configure({ stdout: true, file: undefined, failClosed: false })
  assert.equal(audit.fileHealthy, false)
  assert.equal(audit.refusing, false)
  await audit.configure({ stdout: true, file: undefined, failClosed: true })
  assert.equal(audit.refusing, true)
  to({ k: 'audit-health', healthy: true })
  assert.equal(audit.refusing, false)
  to({ k: 'audit-health', healthy: false })
  assert.equal(audit.fileHealthy, false)
})

test('a snapshot is answered once the server serves; a scrape resolves with the primary’s merged answer', async () => {
  const { link, to, take } = setup()
  to({ k: 'snapshot', id: 1 })
  assert.deepEqual(take(), [])
  const metrics = new ServerMetrics()
  link.serveMetrics(() => metrics.snapshot())
  to({ k: 'snapshot', id: 2 })
  const answer = take()
  assert.ok(answer[0]?.k === 'snapshot' && answer[0].id === 2)
  const scrape = link.gatherMetrics()
  const ask = take()[0]
  assert.ok(ask?.k === 'scrape')
  const merged = new ServerMetrics().snapshot()
  to({ k: 'metrics', id: ask.id, snapshot: merged })
  to({ k: 'metrics', id: ask.id + 100, snapshot: merged })
  assert.equal(await scrape, merged)
})

test('a scrape the primary does not answer in time serves this worker’s own metrics, and says so', async () => {
  const { link, take } = setup({ scrapeWaitMs: 10 })
  const own = new ServerMetrics().snapshot()
  link.serveMetrics(() => own)
  const errors: string[] = []
  link.control({ reload: async () => {}, shutdown: () => {}, error: (m) => errors.push(m) })
  const got = await link.gatherMetrics()
  assert.equal(got, own)
  assert.equal(take().length, 1)
  assert.match(errors[0] ?? '', /^metrics: no answer from the primary within 10 ms; this scrape counts this worker \(pid \d+\) only$/)
})

test('a reload takes the new ticket keys only when the TLS material changed', async () => {
  const { link, to, take } = setup()
  const early = new Promise<WorkerMessage>((resolve) => {
    to({ k: 'reload', id: 1, ticketKeys: Buffer.alloc(48, 9).toString('base64') })
    setImmediate(() => resolve(take()[0] as WorkerMessage))
  })
  assert.deepEqual(await early, { openkes: 1, k: 'reloaded', id: 1, tlsChanged: false, error: 'the worker is still starting' })
  assert.deepEqual(link.ticketKeys(), KEYS)

  let changeTls = false
  let fail = false
  const control: WorkerControl = {
    reload: async () => {
      if (fail) throw new Error('tls.cert: cannot read')
      if (changeTls) link.ticketKeys()
    },
    shutdown: () => {},
    error: () => {},
  }
  link.control(control)
  const reload = async (id: number, fill: number): Promise<WorkerMessage | undefined> => {
    to({ k: 'reload', id, ticketKeys: Buffer.alloc(48, fill).toString('base64') })
    for (let i = 0; i < 10; i++) await turn()
    return take()[0]
  }
  assert.deepEqual(await reload(2, 2), { openkes: 1, k: 'reloaded', id: 2, tlsChanged: false })
  assert.deepEqual(link.ticketKeys(), KEYS)
  changeTls = true
  assert.deepEqual(await reload(3, 3), { openkes: 1, k: 'reloaded', id: 3, tlsChanged: true })
  assert.deepEqual(link.ticketKeys(), Buffer.alloc(48, 3))
  fail = true
  assert.deepEqual(await reload(4, 4), { openkes: 1, k: 'reloaded', id: 4, tlsChanged: false, error: 'tls.cert: cannot read' })
  assert.deepEqual(link.ticketKeys(), Buffer.alloc(48, 3))
})

test('shutdown is passed on; init again, unknown messages and a closed channel are harmless', () => {
  let stops = 0
  const link = new WorkerLink(
    {
      send: () => {
        throw new Error('channel closed')
      },
    },
    { ticketKeys: KEYS, auditHealthy: true },
  )
  link.handle({ openkes: 1, k: 'shutdown' })
  link.control({ reload: async () => {}, shutdown: () => stops++, error: () => {} })
  link.handle({ openkes: 1, k: 'shutdown' })
  link.handle({ openkes: 1, k: 'init', ticketKeys: '', auditHealthy: false })
  link.handle({ cmd: 'NODE_CLUSTER' })
  link.handle(null)
  assert.equal(stops, 1)
  const hub = link.errorHub(HUB)
  assert.doesNotThrow(() => hub.subscribe(sink()))
  link.flush()
})

test('readers ended by closeAll or a failed reauthorization are counted out too', async () => {
  const { link, take } = setup()
  const hub = link.auditLog(HUB, { onError: () => {} }).hub
  hub.subscribe(sink(), async () => false)
  const kept = sink()
  hub.subscribe(kept, async () => true)
  assert.equal(await hub.reauthorize(), 1)
  hub.closeAll()
  await turn()
  assert.deepEqual(
    take().map((m) => (m.k === 'readers' ? m.count : -1)),
    [1, 2, 1, 0],
  )
  assert.equal(kept.ended, true)
})
