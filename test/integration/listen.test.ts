// The listen-address forms of the configuration, on a real server: an IPv6
// address in brackets, and ':port' for every interface.
import assert from 'node:assert/strict'
import https from 'node:https'
import { after, before, describe, test } from 'node:test'
import { loadConfigFile } from '../../src/config/load.js'
import { startServer } from '../../src/server/server.js'
import type { RunningServer } from '../../src/server/server.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')

function version(env: TestEnv, host: string, port: number): Promise<{ status: number; body: string; peer: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host, port, path: '/version', cert: root.cert.certPem, key: root.cert.keyPem, ca: env.serverCert.certPem, servername: 'localhost', agent: false },
      (res) => {
        let body = ''
        const peer = res.socket.remoteAddress ?? ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peer }))
      },
    )
    req.on('error', reject)
    req.setTimeout(20_000, () => req.destroy(new Error('no answer in 20 s')))
    req.end()
  })
}

describe('listen addresses', () => {
  let env: TestEnv
  const servers: RunningServer[] = []
  before(async () => {
    env = await TestEnv.create()
  })
  after(async () => {
    for (const s of servers) await s.close(100)
    await env.dispose()
  })

  async function startAt(address: string): Promise<RunningServer> {
    const file = await env.writeConfig(`admin:\n  identity: ${root.identity}\n`, '', address)
    const server = await startServer(await loadConfigFile(file, {}), { errorSink: () => {} })
    servers.push(server)
    return server
  }

  test('[::1]:0 listens on the IPv6 loopback only', async () => {
    // Quoted: unquoted, YAML reads '[' as the start of a list.
    const server = await startAt('"[::1]:0"')
    assert.equal(server.host, '::1')
    assert.ok(server.port > 0)
    const res = await version(env, '::1', server.port)
    assert.equal(res.status, 200)
    assert.equal(res.peer, '::1')
    await assert.rejects(version(env, '127.0.0.1', server.port), { code: 'ECONNREFUSED' })
  })

  test(':0 listens on every interface', async () => {
    const server = await startAt(':0')
    assert.equal(server.host, '')
    assert.equal((await version(env, '127.0.0.1', server.port)).status, 200)
    assert.equal((await version(env, '::1', server.port)).status, 200)
  })
})
