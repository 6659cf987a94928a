// A log-stream request whose client hangs up before it is served must not
// leave a reader subscribed (memory) or a request counted as active.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { CompletedRequest } from '../../src/api/router.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const tracer = makeClient('tracer')
let env: TestEnv
const completed: CompletedRequest[] = []
let onCompleted: (() => void) | undefined

before(async () => {
  env = await TestEnv.create()
  await env.start(`admin:\n  identity: ${root.identity}\n`, { onComplete: (e) => (completed.push(e), onCompleted?.()) })
  // Assigned through the API, so authorizing it reads the key store.
  await env.request(root, '/v1/policy/write/tracer', { method: 'POST', body: { allow: ['/v1/log/audit/trace'] } })
  await env.request(root, `/v1/identity/assign/tracer/${tracer.identity}`, { method: 'POST' })
})
after(async () => {
  await env.dispose()
})

test('trace requests abandoned during authorization leave no reader behind', async () => {
  const rounds = 20
  const done = new Promise<void>((resolve) => {
    onCompleted = () => {
      if (completed.filter((e) => e.path === '/v1/log/audit/trace').length === rounds) resolve()
    }
  })
  for (let i = 0; i < rounds; i++) {
    // A non-admin's authorization reads the key store when its grant is not cached:
    // hang up right after sending, while that read is in flight.
    env.server?.state.access.clearCache()
    const socket = await env.connectTls({ cert: tracer.cert.certPem, key: tracer.cert.keyPem, ALPNProtocols: ['http/1.1'] })
    socket.write('GET /v1/log/audit/trace HTTP/1.1\r\nHost: localhost\r\n\r\n')
    socket.destroy()
  }
  await done
  // The server sees each hang-up as a 'close' event of its own: give the
  // event loop turns (not time) until they have all run, or give up.
  const state = env.server?.state
  for (let turn = 0; turn < 10_000 && (state?.auditLog.hub.size !== 0 || state.metrics.active.get() !== 0); turn++) {
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  assert.equal(state?.auditLog.hub.size, 0, 'readers left subscribed')
  assert.equal(state?.metrics.active.get(), 0, 'requests left active')
})
