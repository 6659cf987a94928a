// The audit file's hash chain across real server processes: restarts (also after SIGKILL)
// and SIGHUP rotation make one chain that `openkes audit verify` accepts; tampering with the
// files is reported at the right file and line.
import assert from 'node:assert/strict'
import { readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { runCli, startCli } from '../cli/run.js'
import type { Running } from '../cli/run.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
let env: TestEnv
before(async () => {
  env = await TestEnv.create()
  await writeFile(path.join(env.dir, 'chain.key'), 'a-chain-key-of-at-least-32-bytes-for-tests\n', { mode: 0o600 })
})
after(async () => {
  await env.dispose()
})

const WAIT_MS = 20_000

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT_MS)))])
  } finally {
    clearTimeout(timer)
  }
}

async function startProcess(config: string): Promise<Running> {
  const server = startCli(['server', '--config', config], { cwd: env.dir })
  const [, port] = await withTimeout(server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/), 'server start')
  env.useExternalPort(Number(port))
  env.resetConnections()
  return server
}

async function requests(...names: string[]): Promise<void> {
  for (const name of names) assert.equal((await env.request(root, `/v1/key/list/${name}`)).status, 200)
}

/** Waits until the audit file holds an event for `name` (the write follows the response). */
async function written(file: string, name: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!(await readFile(file, 'utf8').catch(() => '')).includes(`/v1/key/list/${name}"`)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for the audit event of ${name}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('restarts, a SIGKILL and a SIGHUP rotation make one chain that verifies; tampering is found at its line', async () => {
  const config = await env.writeConfig(`admin:\n  identity: ${root.identity}\nlog:\n  audit_file: ./audit.log\n  audit_chain_key: ./chain.key\n`)
  const audit = path.join(env.dir, 'audit.log')
  const rotated = path.join(env.dir, 'audit.log.1')

  let server = await startProcess(config)
  try {
    await requests('a1', 'a2', 'a3')
    // logrotate: move the file away, then SIGHUP; the new file links to the old one.
    await written(audit, 'a3')
    await rename(audit, rotated)
    server.child.kill('SIGHUP')
    await withTimeout(server.waitFor(/configuration reloaded/), 'reload')
    await requests('a4', 'a5')
  } finally {
    assert.equal(await withTimeout(server.stop(), 'stop'), 0)
  }

  server = await startProcess(config)
  try {
    await requests('b1', 'b2')
    await written(audit, 'b2')
  } finally {
    await withTimeout(server.stop('SIGKILL'), 'kill')
  }

  server = await startProcess(config)
  try {
    await requests('c1')
  } finally {
    assert.equal(await withTimeout(server.stop(), 'stop'), 0)
  }

  const ok = await runCli(['audit', 'verify', '--key', 'chain.key', 'audit.log.1', 'audit.log'], { cwd: env.dir })
  assert.equal(ok.code, 0, ok.stderr)
  assert.match(ok.stdout, /^audit chain OK: 2 file\(s\), 8 event\(s\), sequence 1\.\.8; the chain starts at its beginning; \d+ MAC\(s\) verified, the last event is authenticated/)
  const events = (await readFile(audit, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { request: { path: string }; chain: { seq: number; prev?: string } })
  assert.deepEqual(events.map((e) => e.request.path.slice('/v1/key/list/'.length)), ['a4', 'a5', 'b1', 'b2', 'c1'])
  assert.deepEqual(events.map((e) => e.chain.seq), [4, 5, 6, 7, 8])
  // Each server start and the rotation linked with prev.
  assert.deepEqual(events.map((e) => e.chain.prev !== undefined), [true, false, true, false, true])

  // Tampering, on copies: an edited event, and the files in the wrong order.
  const lines = (await readFile(audit, 'utf8')).split('\n')
  lines[2] = (lines[2] ?? '').replace('"code":200', '"code":500')
  await writeFile(path.join(env.dir, 'edited.log'), lines.join('\n'))
  const edited = await runCli(['audit', 'verify', '--key', 'chain.key', 'audit.log.1', 'edited.log'], { cwd: env.dir })
  assert.equal(edited.code, 1)
  assert.match(edited.stderr, /^edited\.log:3: the hash does not match the event/m)
  const swapped = await runCli(['audit', 'verify', 'audit.log', 'audit.log.1'], { cwd: env.dir })
  assert.equal(swapped.code, 1)
  assert.match(swapped.stderr, /^audit\.log\.1:1: /m)
  const noFiles = await runCli(['audit', 'verify'], { cwd: env.dir })
  assert.equal(noFiles.code, 2)
})
