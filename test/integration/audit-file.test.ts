// The audit file is append-only and reopened on reload (log rotation), and
// log.audit: on writes the same events to stdout.
import assert from 'node:assert/strict'
import { readFile, rename } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { loadConfigFile } from '../../src/config/load.js'
import { startCli } from '../cli/run.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
let env: TestEnv
before(async () => {
  env = await TestEnv.create()
})
after(async () => {
  await env.dispose()
})

const lines = async (file: string): Promise<Array<{ request: { path: string } }>> =>
  (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { request: { path: string } })

test('a rotated audit file is reopened on reload; nothing is lost or duplicated', async () => {
  const server = await env.start(`admin:\n  identity: ${root.identity}\nlog:\n  audit_file: ./audit.log\n`)
  assert.equal((await env.request(root, '/v1/key/list/before')).status, 200)
  // logrotate moves the file away, then signals the server.
  await rename(path.join(env.dir, 'audit.log'), path.join(env.dir, 'audit.log.1'))
  assert.equal((await env.request(root, '/v1/key/list/between')).status, 200)
  await server.reload(await loadConfigFile(path.join(env.dir, 'config.yml'), {}))
  assert.equal((await env.request(root, '/v1/key/list/after')).status, 200)
  await env.stop()
  const rotated = (await lines(path.join(env.dir, 'audit.log.1'))).map((e) => e.request.path)
  const current = (await lines(path.join(env.dir, 'audit.log'))).map((e) => e.request.path)
  // Until the reload the old (moved) file gets the events, as with any append-only log.
  assert.deepEqual(rotated, ['/v1/key/list/before', '/v1/key/list/between'])
  assert.deepEqual(current, ['/v1/key/list/after'])
})

test('log.audit: on writes every audit event to stdout', async () => {
  const file = await env.writeConfig(`admin:\n  identity: ${root.identity}\nlog:\n  audit: on\n`)
  const server = startCli(['server', '--config', file])
  try {
    const [, port] = await server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/)
    env.useExternalPort(Number(port))
    env.resetConnections()
    assert.equal((await env.request(root, '/v1/key/list/stdout-check')).status, 200)
    const [line] = await server.waitFor(/^\{"time".*"\/v1\/key\/list\/stdout-check".*\n/m)
    const event = JSON.parse(line) as { request: { identity: string }; response: { code: number } }
    assert.equal(event.request.identity, root.identity)
    assert.equal(event.response.code, 200)
  } finally {
    assert.equal(await server.stop(), 0)
  }
})
