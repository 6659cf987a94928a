// The CLI commands of the KES 2023+ API (key describe|info, key hmac, policy
// describe|info, identity self|describe|info, status with /v1/status, log
// audit|error) against a real server; and against a canned server of the
// older API, the fallbacks of status and log. Run as child processes.
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createCertificate } from '../../src/x509/certificate.js'
import { CannedServer, sendJson } from '../integration/client-harness.js'
import { cleanEnv, run, start, startCliServer } from './client-env.js'
import type { CliServer, Result } from './client-env.js'

const LIMIT = { timeout: 60_000 }

describe('openkes: the KES 2023+ calls against a real server', LIMIT, () => {
  let s: CliServer
  let asRoot: (args: string[]) => Promise<Result>
  let asApp: (args: string[]) => Promise<Result>
  before(async () => {
    s = await startCliServer()
    asRoot = (args) => run([...args, '--ca', s.ca], s.envFor(s.root))
    asApp = (args) => run([...args, '--ca', s.ca], s.envFor(s.app))
  })
  after(async () => {
    await s.env.dispose()
  })

  test('key describe: name, id, algorithm, creation; info is the same; --json is the server answer', async () => {
    assert.equal((await asRoot(['key', 'create', 'm-desc'])).code, 0)
    const json = await asRoot(['key', 'describe', 'm-desc', '--json'])
    assert.equal(json.code, 0, json.stderr)
    const key = JSON.parse(json.stdout) as Record<string, string>
    assert.deepEqual(Object.keys(key), ['name', 'id', 'algorithm', 'created_at', 'created_by'])
    assert.equal(key['name'], 'm-desc')
    assert.match(key['id'] ?? '', /^[0-9a-f]{32}$/)
    assert.equal(key['algorithm'], 'AES256')
    assert.equal(key['created_by'], s.root.client.identity)
    const text = await asRoot(['key', 'describe', 'm-desc'])
    assert.equal(
      text.stdout,
      `name       m-desc\nid         ${key['id']}\nalgorithm  AES256\ncreated    ${key['created_at']} by ${s.root.client.identity}\n`,
    )
    assert.deepEqual(await asRoot(['key', 'info', 'm-desc']), text)
    assert.deepEqual(await asRoot(['key', 'info', 'm-nope']), { code: 1, stdout: '', stderr: 'openkes: key does not exist\n' })
  })

  test('key hmac: the same MAC for the same key and message, another for another message; --json', async () => {
    assert.equal((await asRoot(['key', 'create', 'm-mac'])).code, 0)
    const msg = Buffer.from('bucket/object').toString('base64')
    const mac = await asRoot(['key', 'hmac', 'm-mac', msg])
    assert.equal(mac.code, 0, mac.stderr)
    assert.match(mac.stdout, /^[A-Za-z0-9+/]{43}=\n$/)
    assert.deepEqual(await asRoot(['key', 'hmac', 'm-mac', msg]), mac)
    assert.notEqual((await asRoot(['key', 'hmac', 'm-mac', Buffer.from('other').toString('base64')])).stdout, mac.stdout)
    assert.equal((await asRoot(['key', 'hmac', 'm-mac', msg, '--json'])).stdout, `{"hmac":"${mac.stdout.trim()}"}\n`)
    const bad = await asRoot(['key', 'hmac', 'm-mac', 'not base64!'])
    assert.equal(bad.code, 2)
    assert.equal(bad.stderr, "openkes key hmac: the message is not valid base64 (standard alphabet, padded)\nRun 'openkes key hmac --help' for usage.\n")
    assert.deepEqual(await asApp(['key', 'hmac', 'm-mac', msg]), { code: 1, stdout: '', stderr: 'openkes: prohibited by policy\n' })
  })

  test('policy describe|info: name and creation; a config policy has no creation time', async () => {
    assert.equal((await run(['policy', 'write', 'm-pol', '-', '--ca', s.ca], s.envFor(s.root), '{"allow":[]}')).code, 0)
    const json = JSON.parse((await asRoot(['policy', 'info', 'm-pol', '--json'])).stdout) as Record<string, string>
    assert.equal(json['name'], 'm-pol')
    assert.equal(json['created_by'], s.root.client.identity)
    assert.equal((await asRoot(['policy', 'describe', 'app'])).stdout, 'name     app\ncreated  -\n')
    assert.deepEqual(await asRoot(['policy', 'info', 'm-nope']), { code: 1, stdout: '', stderr: 'openkes: policy does not exist\n' })
  })

  test('identity self: who am I, for the admin, a policy-bound and a policy-less identity; info without an argument is self', async () => {
    const rootSelf = await asRoot(['identity', 'self'])
    assert.equal(rootSelf.stdout, `identity  ${s.root.client.identity}\nadmin     yes: every API, no policy needed\ncreated   -\n`)
    assert.deepEqual(await asRoot(['identity', 'info']), rootSelf)
    const app = JSON.parse((await asApp(['identity', 'self', '--json'])).stdout) as Record<string, unknown>
    assert.deepEqual(app, { identity: s.app.client.identity, admin: false, policy: 'app', allow: ['/v1/key/generate/app-*', '/v1/key/decrypt/app-*'], deny: [] })
    const appText = await asApp(['identity', 'self'])
    assert.equal(appText.stdout, `identity  ${s.app.client.identity}\npolicy    app\nallow     /v1/key/generate/app-*\n          /v1/key/decrypt/app-*\ndeny      -\ncreated   -\n`)
    const nopol = await run(['identity', 'self', '--json', '--ca', s.ca], s.envFor(s.nopol))
    assert.deepEqual(JSON.parse(nopol.stdout), { identity: s.nopol.client.identity, admin: false, policy: '', allow: [], deny: [] })
  })

  test('identity describe|info <identity>: its policy, or admin; one without a policy does not exist', async () => {
    const app = await asRoot(['identity', 'info', s.app.client.identity, '--json'])
    assert.deepEqual(JSON.parse(app.stdout), { identity: s.app.client.identity, admin: false, policy: 'app' })
    const admin = await asRoot(['identity', 'describe', s.root.client.identity])
    assert.equal(admin.stdout, `identity  ${s.root.client.identity}\nadmin     yes: every API, no policy needed\ncreated   -\n`)
    assert.deepEqual(await asRoot(['identity', 'describe', s.nopol.client.identity]), { code: 1, stdout: '', stderr: 'openkes: identity does not exist\n' })
  })

  test('status: the table, then the server status from /v1/status; --json has it as "server"', async () => {
    const text = await asRoot(['status'])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^ENDPOINT +STATUS +VERSION +LATENCY +ERROR\n/)
    assert.match(text.stdout, new RegExp(`\\n\\n${s.url}\\n {2}uptime +\\d+[dhms]\\S*\\n {2}platform +[a-z0-9]+/[a-z0-9]+, \\d+ of \\d+ CPUs\\n {2}memory +[\\d.]+ (B|KiB|MiB|GiB) heap, .+ stack\\n {2}key store +reachable, \\d+ms\\n$`))
    const [status] = JSON.parse((await asRoot(['status', '--json'])).stdout) as Array<Record<string, unknown>>
    const server = status?.['server'] as Record<string, unknown>
    assert.equal(server['version'], status?.['version'])
    assert.equal(typeof server['keystore_latency'], 'number')
    // an identity whose policy does not allow /v1/status sees what /version tells
    const app = JSON.parse((await asApp(['status', '--json'])).stdout) as Array<Record<string, unknown>>
    assert.equal(app[0]?.['reachable'], true)
    assert.equal(app[0]?.['server'], null)
    assert.doesNotMatch((await asApp(['status'])).stdout, /uptime/)
  })

  test('log audit and log error stream from /v1/log/audit and /v1/log/error', { timeout: 30_000 }, async (t) => {
    const audit = start(['log', 'audit', '--json', '--ca', s.ca], s.envFor(s.root))
    t.after(() => audit.stop('SIGKILL'))
    await audit.waitFor(/"path":"\/v1\/log\/audit"/)
    const errors = start(['log', 'error', '--ca', s.ca], s.envFor(s.root))
    t.after(() => errors.stop('SIGKILL'))
    await audit.waitFor(/"path":"\/v1\/log\/error"/)
    assert.equal(await errors.stop('SIGINT'), 0)
    assert.equal(await audit.stop('SIGINT'), 0)
  })
})

describe('openkes against a server of the older API (canned)', LIMIT, () => {
  let server: CannedServer
  let env: NodeJS.ProcessEnv
  let dir: string
  let ca: string
  before(async () => {
    server = await CannedServer.start((req, res) => {
      if (req.url === '/version') sendJson(res, 200, { version: '0.17.6' })
      else if (req.url === '/v1/log/audit/trace') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.write(JSON.stringify({ time: '2021-01-02T03:04:05Z', request: { path: '/v1/key/create/old', identity: 'abc' }, response: { code: 200, time: 1000 } }) + '\n')
      } else sendJson(res, 404, { message: 'not found' })
    })
    const me = createCertificate('ed25519', { commonName: 'client', extKeyUsage: ['clientAuth'] })
    dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-modern-cli-'))
    ca = path.join(dir, 'server.cert')
    await writeFile(path.join(dir, 'client.cert'), me.certPem)
    await writeFile(path.join(dir, 'client.key'), me.keyPem, { mode: 0o600 })
    await writeFile(ca, server.cert.certPem)
    env = cleanEnv({ KES_SERVER: server.endpoint, KES_CLIENT_CERT: path.join(dir, 'client.cert'), KES_CLIENT_KEY: path.join(dir, 'client.key') })
  })
  after(async () => {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('status shows what /version tells when /v1/status is not there', async () => {
    const res = await run(['status', '--json', '--ca', ca], env)
    assert.equal(res.code, 0, res.stderr)
    const [status] = JSON.parse(res.stdout) as Array<Record<string, unknown>>
    assert.equal(status?.['version'], '0.17.6')
    assert.equal(status?.['server'], null)
    assert.ok(server.requests.some((r) => r.target === 'GET /v1/status'))
  })

  test('log (and log audit) falls back to /v1/log/audit/trace', { timeout: 30_000 }, async (t) => {
    const log = start(['log', '--json', '--ca', ca], env)
    t.after(() => log.stop('SIGKILL'))
    await log.waitFor(/\/v1\/key\/create\/old/)
    assert.equal(await log.stop('SIGINT'), 0)
    const targets = server.requests.map((r) => r.target)
    assert.ok(targets.indexOf('GET /v1/log/audit') < targets.indexOf('GET /v1/log/audit/trace'), targets.join(', '))
  })
})
