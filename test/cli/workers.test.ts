// `openkes server --workers 2`: two processes on one port behave as one server. Fresh
// connections are spread over both workers, so every check below runs over many of them.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import https from 'node:https'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isRunning } from '../../bench/processes.js'
import { createCertificate } from '../../src/x509/certificate.js'
import { TestEnv, makeClient } from '../integration/harness.js'
import type { Client } from '../integration/harness.js'
import { visit } from '../integration/tls-visit.js'
import { TraceReader } from '../integration/trace.js'
import { runCli, startCli, within } from './run.js'
import type { Running } from './run.js'

const root = makeClient('root')
const app = makeClient('app')
// Enough fresh connections that both workers get several (round-robin or kernel spread).
const SPREAD = 12

const configYaml = (appAllows: string): string =>
  `admin:\n  identity: ${root.identity}\n` +
  `policy:\n  app:\n    allow: [${appAllows}]\n    identities: [${app.identity}]\n` +
  `log:\n  error: on\n  audit_file: ./audit.log\n  audit_chain_key: ./chain.key\n`

/** One request on a connection of its own (so the listening socket hands it to some worker). */
function fresh(env: TestEnv, client: Client, target: string, opts: { method?: string; accept?: string } = {}): Promise<{ status: number; body: string }> {
  return within(
    new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: env.port,
          method: opts.method ?? 'GET',
          path: target,
          agent: false,
          cert: client.cert.certPem,
          key: client.cert.keyPem,
          ca: env.serverCert.certPem,
          servername: 'localhost',
          headers: opts.accept === undefined ? {} : { accept: opts.accept },
        },
        (res) => {
          let body = ''
          res.on('data', (c: Buffer) => (body += c.toString()))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end()
    }),
    10_000,
    `${target} on a fresh connection`,
  )
}

/** The statuses of `n` requests, each on a fresh connection. */
async function statuses(env: TestEnv, client: Client, target: (i: number) => string, n = SPREAD, method = 'GET'): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await fresh(env, client, target(i), { method })).status)
  return out
}

const all = (status: number, n = SPREAD): number[] => Array.from({ length: n }, () => status)


/** The worker pids the primary logged as serving, in order. */
function workerPids(server: Running): number[] {
  return [...server.stderr().matchAll(/cluster: worker \d+ \(pid (\d+)\) serving/g)].map((m) => Number(m[1]))
}

describe('openkes server --workers 2', () => {
  let env: TestEnv
  let server: Running
  let configFile: string

  before(async () => {
    env = await TestEnv.create()
    await writeFile(path.join(env.dir, 'chain.key'), 'a-chain-key-of-at-least-32-bytes-for-tests\n', { mode: 0o600 })
    configFile = await env.writeConfig(configYaml('/v1/key/generate/*'))
    server = startCli(['server', '--config', configFile, '--workers', '2'], { cwd: env.dir })
    const [, port] = await server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/)
    env.useExternalPort(Number(port))
    await server.waitForStderr(/(cluster: worker \d \(pid \d+\) serving[^]*){2}/)
    // The printed PID is the primary's (the one to signal).
    await server.waitFor(new RegExp(`PID ${server.child.pid}: stop with`))
  })
  after(async () => {
    await server.stop('SIGKILL')
    await env.dispose()
  })

  test('a key created, used and deleted through one worker is seen by every worker at once', async () => {
    assert.equal((await fresh(env, root, '/v1/key/create/shared', { method: 'POST' })).status, 200)
    assert.deepEqual(await statuses(env, root, () => '/v1/key/describe/shared'), all(200))
    // Every worker now holds the key in its cache.
    assert.deepEqual(await statuses(env, app, () => '/v1/key/generate/shared', SPREAD, 'POST'), all(200))
    assert.equal((await fresh(env, root, '/v1/key/delete/shared', { method: 'DELETE' })).status, 200)
    assert.deepEqual(await statuses(env, app, () => '/v1/key/generate/shared', SPREAD, 'POST'), all(404))
  })

  test('one scrape counts the requests of every worker', async () => {
    const success = async (): Promise<number> => {
      const r = await fresh(env, root, '/v1/metrics', { accept: 'text/plain; version=0.0.4' })
      assert.equal(r.status, 200)
      const m = /^kes_http_request_success (\d+)$/m.exec(r.body)
      assert.ok(m !== null, r.body)
      return Number(m[1])
    }
    const before = await success()
    assert.deepEqual(await statuses(env, root, () => '/version', 40), all(200, 40))
    assert.ok((await success()) >= before + 40 + 1)
  })

  test('an audit trace reader on one worker sees the events of requests served by the other', async (t) => {
    const reader = await TraceReader.open(env, root, '/v1/log/audit')
    t.after(() => reader.close())
    assert.equal(reader.status, 200)
    await reader.waitForLines(1)
    // Forwarding starts once the other worker heard of the reader: a round can start early,
    // so rounds are repeated until one is seen whole (without forwarding none ever is).
    let seenWhole = false
    for (let round = 0; round < 5 && !seenWhole; round++) {
      const paths = Array.from({ length: SPREAD }, (_, i) => `/v1/key/describe/trace-${round}-${i}`)
      for (const p of paths) assert.equal((await fresh(env, root, p)).status, 404)
      const seen = async (): Promise<boolean> => {
        const got = new Set(reader.events<{ request: { path: string } }>().map((e) => e.request.path))
        return paths.every((p) => got.has(p))
      }
      for (let i = 0; i < 30 && !(await seen()); i++) await new Promise((r) => setTimeout(r, 100))
      seenWhole = await seen()
    }
    assert.ok(seenWhole, `trace lines: ${reader.lines.join('\n')}`)
  })

  test('a TLS session ticket of one worker resumes on the other', async () => {
    // Fresh connections (so both workers get some), each offering the first one's ticket.
    const { session: ticket } = await visit(env, root.cert, 'TLSv1.3')
    assert.ok(ticket !== undefined, 'a session ticket was issued')
    const reused: boolean[] = []
    for (let i = 0; i < 6; i++) reused.push((await visit(env, root.cert, 'TLSv1.3', ticket)).reused)
    assert.deepEqual(reused, [true, true, true, true, true, true])
  })

  test('SIGHUP reloads the policies and the certificate of every worker; no session outlives the certificate', async () => {
    assert.deepEqual(await statuses(env, app, () => '/v1/key/list/*', 4), all(403, 4))
    const { session: ticket } = await visit(env, root.cert, 'TLSv1.3')
    assert.ok(ticket !== undefined)
    const next = createCertificate('ecdsa-p256', { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], extKeyUsage: ['serverAuth'] })
    await writeFile(path.join(env.dir, 'server.key'), next.keyPem)
    await writeFile(path.join(env.dir, 'server.cert'), next.certPem)
    await env.writeConfig(configYaml('/v1/key/generate/*, /v1/key/list/*'))
    const reloads = server.stdout().split('configuration reloaded').length
    server.child.kill('SIGHUP')
    await server.waitFor(new RegExp(`(configuration reloaded[^]*){${reloads}}`))
    env.serverCert = next
    assert.deepEqual(await statuses(env, app, () => '/v1/key/list/*'), all(200))
    const reused: boolean[] = []
    for (let i = 0; i < 6; i++) reused.push((await visit(env, root.cert, 'TLSv1.3', ticket)).reused)
    assert.deepEqual(reused, [false, false, false, false, false, false])
  })

  test('a killed worker is logged and replaced; serving goes on', async () => {
    const [victim] = workerPids(server)
    assert.ok(victim !== undefined)
    process.kill(victim, 'SIGKILL')
    await server.waitForStderr(new RegExp(`cluster: worker (\\d) \\(pid ${victim}\\) died \\(signal SIGKILL\\); starting a new worker`))
    await server.waitForStderr(/(cluster: worker \d \(pid \d+\) serving[^]*){3}/)
    assert.deepEqual(await statuses(env, root, () => '/version'), all(200))
  })

  test('SIGTERM stops every process; the audit file has every event once, in one verified chain', async () => {
    const pids = workerPids(server)
    assert.equal(pids.length, 3)
    assert.equal(await server.stop('SIGTERM'), 0)
    for (const pid of pids) assert.equal(isRunning(pid), false, `worker pid ${pid} still running`)

    const events = (await readFile(path.join(env.dir, 'audit.log'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { request: { path: string }; chain: { seq: number } })
    const traced = events.filter((e) => e.request.path.startsWith('/v1/key/describe/trace-0-'))
    assert.equal(traced.length, SPREAD, 'every traced request exactly once')
    assert.deepEqual(
      events.map((e) => e.chain.seq),
      events.map((_, i) => i + 1),
    )
    assert.equal(events.filter((e) => e.request.path === '/version').length, 40 + SPREAD)
    const verified = await runCli(['audit', 'verify', '--key', 'chain.key', 'audit.log'], { cwd: env.dir })
    assert.equal(verified.code, 0, verified.stderr)
    assert.match(verified.stdout, /^audit chain OK: 1 file\(s\), \d+ event\(s\)/)
  })
})

test('--workers 2: a worker that cannot start fails the whole server at startup, with its error', async () => {
  const env = await TestEnv.create()
  try {
    const file = await env.writeConfig(`admin:\n  identity: ${root.identity}\n`, '', '127.0.0.1:0')
    await writeFile(file, (await readFile(file, 'utf8')).replace('./server.key', './missing.key'))
    const r = await runCli(['server', '--config', file, '--workers', '2'], { cwd: env.dir })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^openkes server: cannot start: tls\.key: cannot read '[^']*missing\.key'/m)
    assert.equal(r.stdout, '')
  } finally {
    await env.dispose()
  }
})

test('--workers 1 is one process, as before: it serves, reloads on SIGHUP and stops on SIGTERM', async () => {
  const env = await TestEnv.create()
  const server = startCli(['server', '--config', await env.writeConfig(`admin:\n  identity: ${root.identity}\n`), '--workers', '1'], { cwd: env.dir })
  try {
    const [, port] = await server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/)
    env.useExternalPort(Number(port))
    await server.waitFor(new RegExp(`PID ${server.child.pid}: stop with`))
    assert.equal((await fresh(env, root, '/version')).status, 200)
    server.child.kill('SIGHUP')
    await server.waitFor(/configuration reloaded/)
    assert.equal(await server.stop('SIGTERM'), 0)
    assert.match(server.stdout(), /shutting down/)
    assert.doesNotMatch(server.stderr(), /cluster:/)
  } finally {
    await server.stop('SIGKILL')
    await env.dispose()
  }
})

test('a worker that keeps dying right after it starts makes the primary give up and exit 1', async () => {
  const env = await TestEnv.create()
  const server = startCli(['server', '--config', await env.writeConfig(`admin:\n  identity: ${root.identity}\n`), '--workers', '2'], { cwd: env.dir })
  try {
    await server.waitFor(/listening on/)
    // Kill worker 1 as soon as each of its replacements serves: it never lives a second. (Its
    // first run may have served longer, so a kill more than the limit may be needed.)
    for (let killed = 0; killed < 8 && server.child.exitCode === null; killed++) {
      const serving = [...server.stderr().matchAll(/cluster: worker 1 \(pid (\d+)\) serving/g)]
      process.kill(Number(serving[killed]?.[1]), 'SIGKILL')
      // The next replacement serves, or the primary gives up (then the wait rejects: it exited).
      await server.waitForStderr(new RegExp(`(cluster: worker 1 \\(pid \\d+\\) serving[^]*){${killed + 2}}`)).catch(() => {})
    }
    assert.equal(await server.exited(), 1)
    assert.match(server.stderr(), /openkes server: worker 1 \(pid \d+\) died \(signal SIGKILL\); worker 1 failed 5 times in a row right after starting, giving up/)
    assert.match(server.stderr(), /starting a new worker in 800 ms/)
  } finally {
    await server.stop('SIGKILL')
    await env.dispose()
  }
})

test('--workers takes a whole number from 1', async () => {
  for (const bad of ['0', 'two', '=-1', '1.5', '1025']) {
    const r = await runCli(bad.startsWith('=') ? ['server', '--dev', `--workers${bad}`] : ['server', '--dev', '--workers', bad])
    assert.equal(r.code, 2, `--workers ${bad}: ${r.stderr}`)
    assert.match(r.stderr, /--workers needs a whole number from 1 to 1024/)
  }
})
