// A log stream lasts only as long as its reader may read it (issue 9 item 2):
// deleting or rewriting its policy, forgetting or reassigning its identity, a
// reload without it, or a change made by another server on the same store
// ends an open audit/error trace; a change that still allows it does not.
import assert from 'node:assert/strict'
import https from 'node:https'
import { after, afterEach, beforeEach, describe, test } from 'node:test'
import { loadConfigFile } from '../../src/config/load.js'
import { startServer } from '../../src/server/server.js'
import type { RunningServer } from '../../src/server/server.js'
import { TestEnv, makeClient } from './harness.js'
import type { Client } from './harness.js'

const root = makeClient('root')
const reader = makeClient('reader')
const TRACES = ['/v1/log/audit', '/v1/log/error/trace']
// Generous: the periodic re-check runs every second; a stream that outlives this was not revoked.
const END_TIMEOUT_MS = 8000

/** An open trace: `ended` resolves true when the server ends it, false after `ms`. */
interface OpenTrace {
  readonly status: number
  ended(ms: number): Promise<boolean>
  readonly lines: string[]
  close(): void
}

function openTrace(env: TestEnv, client: Client, path: string, port = env.port): Promise<OpenTrace> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, agent: false, cert: client.cert.certPem, key: client.cert.keyPem, ca: env.serverCert.certPem, servername: 'localhost' },
      (res) => {
        const lines: string[] = []
        let done = false
        const waiters: Array<() => void> = []
        const finish = (): void => {
          done = true
          for (const w of waiters.splice(0)) w()
        }
        res.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter((l) => l !== '')))
        res.on('end', finish)
        res.on('close', finish)
        res.on('error', finish)
        res.resume()
        resolve({
          status: res.statusCode ?? 0,
          lines,
          close: () => req.destroy(),
          ended: (ms) =>
            new Promise((r) => {
              if (done) return r(true)
              const timer = setTimeout(() => r(false), ms)
              waiters.push(() => {
                clearTimeout(timer)
                r(true)
              })
            }),
        })
      },
    )
    req.on('error', reject)
    req.end()
  })
}

const LOGS = 'allow: [/v1/log/audit, /v1/log/audit/*, /v1/log/error, /v1/log/error/*]'

describe('revoked readers lose their log streams', () => {
  let env: TestEnv
  const opened: OpenTrace[] = []
  beforeEach(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\n`)
    // An API policy that lets `reader` read both logs, and one that lets it read nothing of them.
    assert.equal((await env.request(root, '/v1/policy/write/logs', { method: 'POST', body: { allow: ['/v1/log/*', '/v1/log/*/trace'] } })).status, 200)
    assert.equal((await env.request(root, '/v1/policy/write/keys', { method: 'POST', body: { allow: ['/v1/key/list/*'] } })).status, 200)
    assert.equal((await env.request(root, `/v1/identity/assign/logs/${reader.identity}`, { method: 'POST' })).status, 200)
  })
  afterEach(async () => {
    for (const t of opened.splice(0)) t.close()
    await env.dispose()
  })

  async function openAll(): Promise<OpenTrace[]> {
    const traces = await Promise.all(TRACES.map((p) => openTrace(env, reader, p)))
    opened.push(...traces)
    for (const t of traces) assert.equal(t.status, 200)
    return traces
  }

  const revocations: Array<[string, () => Promise<number>]> = [
    ['policy delete', async () => (await env.request(root, '/v1/policy/delete/logs', { method: 'DELETE' })).status],
    ['policy rewrite that no longer allows the path', async () => (await env.request(root, '/v1/policy/write/logs', { method: 'POST', body: { allow: ['/v1/key/list/*'] } })).status],
    ['policy rewrite with a deny rule', async () => (await env.request(root, '/v1/policy/write/logs', { method: 'POST', body: { allow: ['/v1/log/*', '/v1/log/*/trace'], deny: ['/v1/log/*', '/v1/log/*/trace'] } })).status],
    ['identity forget', async () => (await env.request(root, `/v1/identity/forget/${reader.identity}`, { method: 'DELETE' })).status],
    ['reassignment to another policy', async () => (await env.request(root, `/v1/identity/assign/keys/${reader.identity}`, { method: 'POST' })).status],
  ]
  for (const [name, revoke] of revocations) {
    test(`${name} ends the reader's open traces`, async () => {
      const traces = await openAll()
      assert.equal(await revoke(), 200)
      for (const t of traces) assert.equal(await t.ended(END_TIMEOUT_MS), true, `${name}: a trace stayed open`)
      // And a new one is refused.
      assert.equal((await env.request(reader, '/v1/log/audit')).status, 403)
    })
  }

  test('a change that still allows the reader keeps its traces open and fed', async () => {
    const [audit] = await openAll()
    assert.ok(audit !== undefined)
    assert.equal((await env.request(root, '/v1/policy/write/logs', { method: 'POST', body: { allow: ['/v1/log/*', '/v1/log/*/trace', '/v1/key/list/*'] } })).status, 200)
    assert.equal((await env.request(root, '/v1/policy/write/other', { method: 'POST', body: { allow: [] } })).status, 200)
    // The periodic re-check has run at least once after these (it runs every second).
    assert.equal(await audit.ended(2500), false, 'a still-allowed trace was ended')
    const before = audit.lines.length
    assert.equal((await env.request(root, '/version')).status, 200)
    for (let i = 0; i < 100 && audit.lines.length === before; i++) await new Promise((r) => setTimeout(r, 20))
    assert.ok(audit.lines.length > before, 'the trace got no event after the change')
  })

  test("the admin's traces survive policy changes", async () => {
    const admin = await openTrace(env, root, '/v1/log/audit')
    opened.push(admin)
    assert.equal((await env.request(root, '/v1/policy/delete/logs', { method: 'DELETE' })).status, 200)
    assert.equal(await admin.ended(2500), false)
  })
})

describe('a reload or another server revokes too', () => {
  const envs: TestEnv[] = []
  const servers: RunningServer[] = []
  const opened: OpenTrace[] = []
  after(async () => {
    for (const t of opened) t.close()
    for (const s of servers) await s.close(100)
    for (const e of envs) await e.dispose()
  })

  test('a reload that removes the config policy or identity ends the traces', async () => {
    const env = await TestEnv.create()
    envs.push(env)
    const other = makeClient('other')
    const policy = (ids: string): string => `policy:\n  logs:\n    ${LOGS}\n    identities: [${ids}]\n`
    await env.start(`admin:\n  identity: ${root.identity}\n${policy(`${reader.identity}, ${other.identity}`)}`)
    const byReader = await openTrace(env, reader, '/v1/log/audit')
    const byOther = await openTrace(env, other, '/v1/log/error')
    opened.push(byReader, byOther)
    assert.equal(byReader.status, 200)
    assert.equal(byOther.status, 200)
    // Reload 1: `reader` is no longer listed.
    await env.server?.reload(await loadConfigFile(await env.writeConfig(`admin:\n  identity: ${root.identity}\n${policy(other.identity)}`), {}))
    assert.equal(await byReader.ended(END_TIMEOUT_MS), true, 'removed identity kept its trace')
    assert.equal(await byOther.ended(1500), false, 'a still-listed identity lost its trace')
    // Reload 2: the policy is gone altogether.
    await env.server?.reload(await loadConfigFile(await env.writeConfig(`admin:\n  identity: ${root.identity}\n`), {}))
    assert.equal(await byOther.ended(END_TIMEOUT_MS), true, 'removed policy kept its trace')
  })

  test('a policy deleted through another server on the same store ends the traces (periodic re-check)', async () => {
    const env = await TestEnv.create()
    envs.push(env)
    const yaml = `admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./keys\n`
    await env.start(yaml)
    assert.equal((await env.request(root, '/v1/policy/write/logs', { method: 'POST', body: { allow: ['/v1/log/*'] } })).status, 200)
    assert.equal((await env.request(root, `/v1/identity/assign/logs/${reader.identity}`, { method: 'POST' })).status, 200)
    const trace = await openTrace(env, reader, '/v1/log/audit')
    opened.push(trace)
    assert.equal(trace.status, 200)
    // A second server on the same key directory deletes the policy.
    const second = await startServer(await loadConfigFile(await env.writeConfig(yaml), {}), { errorSink: () => {} })
    servers.push(second)
    env.useExternalPort(second.port)
    assert.equal((await env.request(root, '/v1/policy/delete/logs', { method: 'DELETE' })).status, 200)
    assert.equal(await trace.ended(END_TIMEOUT_MS), true, 'trace outlived its policy on the other server')
  })
})
