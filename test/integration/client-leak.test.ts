// KesClient leaves nothing open: after close() no socket is left, and a
// client that was never closed does not keep a process alive once idle.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { clientFor, endpointOf } from './client-harness.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const CONFIG = `admin:
  identity: ${root.identity}
keystore:
  fs:
    path: ./keys
`

// Client-side connections only: the test runner's pipes and the server's listener are not ours.
function openSockets(): string[] {
  return process.getActiveResourcesInfo().filter((r) => /TCPSocketWrap|TLSWrap|Http2/.test(r))
}

test('close() leaves no open sockets behind, over HTTP/2, HTTP/1.1 and with a log stream open', async (t) => {
  const before = openSockets()
  const env = await TestEnv.create()
  t.after(() => env.dispose())
  await env.start(CONFIG)
  const h2 = clientFor(env, root)
  const h1 = clientFor(env, root, { http1: true })
  await Promise.all([h2.version(), h1.version(), h2.createKey('leak'), h1.listKeys()])
  const stream = await h2.auditLog()
  const events = stream[Symbol.asyncIterator]()
  assert.equal((await events.next()).done, false)
  await Promise.all([h2.close(), h1.close()])
  assert.deepEqual(await events.next(), { done: true, value: undefined })
  await env.stop()
  // Handles close in the loop turn after their destroy().
  await new Promise<void>((resolve) => setImmediate(resolve))
  assert.deepEqual(openSockets(), before)
})

const CHILD = `
import { KesClient } from ${JSON.stringify(new URL('../../src/client/kes-client.js', import.meta.url).href)}
const [endpoint, cert, key, ca, http1] = JSON.parse(process.argv[1])
const client = new KesClient({ endpoints: [endpoint], cert, key, ca, http1 })
console.log(await client.version())
// No close(): the idle connection must not hold the process open.
`

for (const http1 of [false, true]) {
  test(`an idle client that was never closed lets the process exit (${http1 ? 'HTTP/1.1' : 'HTTP/2'})`, { timeout: 10_000 }, async (t) => {
    const env = await TestEnv.create()
    t.after(() => env.dispose())
    await env.start(CONFIG)
    const args = JSON.stringify([endpointOf(env.port), root.cert.certPem, root.cert.keyPem, env.serverCert.certPem, http1])
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, args], {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    t.after(() => child.kill())
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    assert.equal(code, 0, stderr)
    assert.match(stdout, /^\d+\.\d+\.\d+/)
  })
}
