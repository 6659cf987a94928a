// Two servers of one store joined the way `--workers` joins its workers (a WorkerLink each,
// a PrimaryRelay between them), in this one process: the wiring of startServer's cluster hooks
// (shared store changes, audit lines to one writer, trace forwarding, merged metrics, ticket
// keys, reload) seen end to end. The real processes are tested in test/cli/workers.test.ts.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { loadConfigFile } from '../../src/config/load.js'
import { ServerMetrics } from '../../src/metrics/server-metrics.js'
import { PrimaryRelay } from '../../src/server/cluster/relay.js'
import { WorkerLink } from '../../src/server/cluster/worker-link.js'
import { startServer } from '../../src/server/server.js'
import type { RunningServer } from '../../src/server/server.js'
import { TestEnv, makeClient } from './harness.js'
import { TraceReader } from './trace.js'

const root = makeClient('root')
const TICKET_KEYS = Buffer.alloc(48, 5)

let env: TestEnv
const servers: RunningServer[] = []
const links: WorkerLink[] = []
const auditLines: string[] = []
const relayErrors: string[] = []
let relay: PrimaryRelay

before(async () => {
  env = await TestEnv.create()
  const file = await env.writeConfig(`admin:\n  identity: ${root.identity}\nlog:\n  audit: on\n`)
  const config = await loadConfigFile(file, env.configEnv)
  const primary = new ServerMetrics()
  relay = new PrimaryRelay({ auditLine: (l) => auditLines.push(l), error: (m) => relayErrors.push(m), snapshot: () => primary.snapshot() })
  for (const id of [1, 2]) {
    // Messages cross "processes" asynchronously, as IPC does.
    const link = new WorkerLink({ send: (m) => setImmediate(() => relay.handle(id, m)) }, { ticketKeys: TICKET_KEYS, auditHealthy: true })
    relay.add(id, { send: (m) => setImmediate(() => link.handle(JSON.parse(JSON.stringify(m)))) }, `worker ${id}`)
    const server = await startServer(config, { cluster: link, errorSink: () => {} })
    link.control({ reload: () => server.reload(config), shutdown: () => {}, error: (m) => server.state.errorLog.error(m) })
    links.push(link)
    servers.push(server)
  }
})

after(async () => {
  env.resetConnections()
  for (const s of servers) await s.close(100)
  await env.dispose()
})

/** Points the test client at one of the servers. */
function on(i: number): void {
  const s = servers[i]
  assert.ok(s !== undefined)
  env.useExternalPort(s.port)
  env.resetConnections()
}

/** Waits until `check` holds (a few IPC hops), failing after a bound. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(check(), what)
}

test('a key deleted through one server is dropped from the other’s cache', async () => {
  on(0)
  assert.equal((await env.request(root, '/v1/key/create/shared', { method: 'POST' })).status, 200)
  on(1)
  assert.equal((await env.request(root, '/v1/key/generate/shared', { method: 'POST' })).status, 200)
  on(0)
  assert.equal((await env.request(root, '/v1/key/delete/shared', { method: 'DELETE' })).status, 200)
  on(1)
  // The change crosses two IPC hops: asked again until it has arrived (bounded).
  let status = 0
  for (let i = 0; i < 50 && status !== 404; i++) {
    status = (await env.request(root, '/v1/key/generate/shared', { method: 'POST' })).status
    if (status !== 404) await new Promise((r) => setTimeout(r, 10))
  }
  assert.equal(status, 404)
})

test('every event reaches the one audit writer once, and a trace reader on one server sees the other’s', async (t) => {
  on(0)
  const reader = await TraceReader.open(env, root, '/v1/log/audit')
  t.after(() => reader.close())
  await reader.waitForLines(1)
  await eventually(() => relay.size === 2, 'both servers known')
  // The other server learns of the reader through the relay.
  await new Promise((r) => setTimeout(r, 50))
  on(1)
  assert.equal((await env.request(root, '/v1/key/describe/from-the-other')).status, 404)
  await eventually(() => reader.lines.some((l) => l.includes('/v1/key/describe/from-the-other')), 'the reader saw the other server’s event')
  await eventually(() => auditLines.filter((l) => l.includes('/v1/key/describe/from-the-other')).length === 1, 'the writer got it once')
})

test('one scrape on either server counts both', async () => {
  on(0)
  for (let i = 0; i < 3; i++) assert.equal((await env.request(root, '/version')).status, 200)
  on(1)
  for (let i = 0; i < 4; i++) assert.equal((await env.request(root, '/version')).status, 200)
  const r = await env.request(root, '/v1/metrics', { headers: { accept: 'text/plain; version=0.0.4' } })
  assert.equal(r.status, 200)
  const m = /^kes_http_requests_total\{api="\/version",code="200"\} (\d+)$/m.exec(r.text)
  assert.ok(m !== null, r.text)
  assert.equal(Number(m[1]), 7)
  assert.deepEqual(relayErrors, [])
})

test('a reload reaches both servers; unchanged TLS keeps the shared ticket keys', async () => {
  const outcome = await relay.reload(Buffer.alloc(48, 6))
  assert.deepEqual(outcome, { errors: [], tlsChanged: false })
  for (const link of links) assert.deepEqual(link.ticketKeys(), TICKET_KEYS)
})

test('the audit file’s health reaches both servers', async () => {
  relay.setAuditHealthy(false)
  await eventually(() => servers.every((s) => !s.state.auditLog.fileHealthy), 'both heard it')
  relay.setAuditHealthy(true)
  await eventually(() => servers.every((s) => s.state.auditLog.fileHealthy), 'both heard it')
})
