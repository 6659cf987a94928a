// Secrets hygiene (issue 9): a full server run as a child process, with the
// audit log on stdout and in a file, the error log on stderr, an audit and an
// error trace open, metrics scraped and every error body kept; then all of
// that output is searched for every key and plaintext the run used, raw, in
// hex and in base64 (standard and URL-safe).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, test } from 'node:test'
import { startCli } from '../cli/run.js'
import type { Running } from '../cli/run.js'
import { TestEnv, makeClient } from '../integration/harness.js'
import type { Response } from '../integration/harness.js'
import { TraceReader } from '../integration/trace.js'

const root = makeClient('root')
const app = makeClient('app')
const TIMEOUT_MS = 20_000

let env: TestEnv
let server: Running | undefined
after(async () => {
  if (server !== undefined) await server.stop('SIGKILL')
  await env?.dispose()
})

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${TIMEOUT_MS} ms`)), TIMEOUT_MS)))
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

/** Every form a secret could leak in. */
function encodings(secret: Buffer): Buffer[] {
  return [
    secret,
    Buffer.from(secret.toString('hex')),
    Buffer.from(secret.toString('hex').toUpperCase()),
    Buffer.from(secret.toString('base64')),
    Buffer.from(secret.toString('base64url')),
    // JSON escapes nothing in these; a secret split across lines would still show in one of them.
  ]
}

test('no key or plaintext appears in any output of a server run', { timeout: 120_000 }, async (t) => {
  env = await TestEnv.create()
  const config = await env.writeConfig(
    `admin:\n  identity: ${root.identity}\npolicy:\n  app:\n    allow: [/v1/key/generate/app-*, /v1/key/decrypt/app-*, /v1/key/encrypt/app-*]\n    identities: [${app.identity}]\n` +
      `keystore:\n  fs:\n    path: ./keys\nlog:\n  error: on\n  audit: on\n  audit_file: ./audit.log\n`,
  )
  server = startCli(['server', '--config', config])
  const m = await withTimeout(server.waitFor(/listening on https:\/\/[^\s]+:(\d+)/), 'server start')
  env.useExternalPort(Number(m[1]))

  const secrets: Buffer[] = []
  const kept: string[] = [] // response bodies that must hold no secret
  const keep = (res: Response): Response => {
    kept.push(res.text)
    return res
  }
  const auditTrace = await TraceReader.open(env, root, '/v1/log/audit/trace')
  const errorTrace = await TraceReader.open(env, root, '/v1/log/error/trace')

  // Imported keys (their bytes are known), used for everything a client can do.
  for (let i = 0; i < 4; i++) {
    const key = randomBytes(32)
    secrets.push(key)
    const name = `app-imported-${i}`
    assert.equal(keep(await env.request(root, `/v1/key/import/${name}`, { method: 'POST', body: { key: key.toString('base64'), cipher: i % 2 === 0 ? 'AES256' : 'ChaCha20' } })).status, 200)
    for (const http2 of [false, true]) {
      const plaintext = randomBytes(24 + i)
      const context = randomBytes(16)
      secrets.push(plaintext, context)
      const enc = await env.request(app, `/v1/key/encrypt/${name}`, { method: 'POST', http2, body: { plaintext: plaintext.toString('base64'), context: context.toString('base64') } })
      assert.equal(enc.status, 200)
      const ciphertext = (enc.json as { ciphertext: string }).ciphertext
      const dec = await env.request(app, `/v1/key/decrypt/${name}`, { method: 'POST', http2, body: { ciphertext, context: context.toString('base64') } })
      assert.equal((dec.json as { plaintext: string }).plaintext, plaintext.toString('base64'))
      // Failures that carry secrets in their requests: wrong context, tampered ciphertext.
      const wrong = randomBytes(16)
      secrets.push(wrong)
      assert.equal(keep(await env.request(app, `/v1/key/decrypt/${name}`, { method: 'POST', http2, body: { ciphertext, context: wrong.toString('base64') } })).status, 400)
      const raw = Buffer.from(ciphertext, 'base64')
      raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1
      assert.equal(keep(await env.request(app, `/v1/key/decrypt/${name}`, { method: 'POST', http2, body: { ciphertext: raw.toString('base64') } })).status, 400)
    }
    // Generated data keys: their plaintext is a secret too.
    const gen = await env.request(app, `/v1/key/generate/${name}`, { method: 'POST', body: {} })
    assert.equal(gen.status, 200)
    secrets.push(Buffer.from((gen.json as { plaintext: string }).plaintext, 'base64'))
    assert.equal(keep(await env.request(root, `/v1/key/hmac/${name}`, { method: 'POST', body: { message: randomBytes(16).toString('base64') } })).status, 200)
  }
  // Refused requests carrying secrets: an existing name, a short key, a denied identity, a missing key.
  const refused: Array<[typeof root, string, object]> = []
  for (let i = 0; i < 3; i++) {
    const s = randomBytes(32)
    const short = randomBytes(20)
    const p = randomBytes(32)
    secrets.push(s, short, p)
    refused.push(
      [root, '/v1/key/import/app-imported-0', { key: s.toString('base64') }],
      [root, `/v1/key/import/short-${i}`, { key: short.toString('base64') }],
      [app, `/v1/key/import/app-denied-${i}`, { key: s.toString('base64') }],
      [app, '/v1/key/encrypt/app-missing', { plaintext: p.toString('base64') }],
      [root, '/v1/key/encrypt/app-imported-1', { plaintext: p.toString('base64') + '!' }],
    )
  }
  for (const [who, target, body] of refused) {
    const res = keep(await env.request(who, target, { method: 'POST', body }))
    assert.ok(res.status >= 400 && res.status < 500, `${target}: ${res.status}`)
  }
  // A key file that is damaged on disk (its bytes are secrets too): the error log must name it, not dump it.
  const damaged = randomBytes(32)
  secrets.push(damaged)
  await writeFile(path.join(env.dir, 'keys', 'app-damaged'), `{"bytes":"${damaged.toString('base64')}","algorithm":`)
  const damagedPlaintext = randomBytes(16)
  secrets.push(damagedPlaintext)
  assert.ok(keep(await env.request(root, '/v1/key/describe/app-damaged')).status >= 500)
  assert.ok(keep(await env.request(root, '/v1/key/encrypt/app-damaged', { method: 'POST', body: { plaintext: damagedPlaintext.toString('base64') } })).status >= 500)
  keep(await env.request(root, '/v1/metrics', { headers: { accept: 'text/plain; version=0.0.4' } }))
  keep(await env.request(root, '/v1/metrics'))
  keep(await env.request(root, '/v1/status'))
  keep(await env.request(root, '/v1/key/list/*'))
  for (let i = 0; i < 4; i++) keep(await env.request(root, `/v1/key/describe/app-imported-${i}`))

  // Let the traces catch up with the last request, then stop the server cleanly (the audit file is flushed).
  await withTimeout(auditTrace.waitForLines(40), 'audit trace')
  auditTrace.close()
  errorTrace.close()
  env.resetConnections()
  assert.equal(await withTimeout(server.stop('SIGTERM'), 'server stop'), 0)
  const outputs: Array<[string, Buffer]> = [
    ['stdout', Buffer.from(server.stdout())],
    ['stderr', Buffer.from(server.stderr())],
    ['audit file', await readFile(path.join(env.dir, 'audit.log'))],
    ['audit trace', Buffer.from(auditTrace.lines.join('\n'))],
    ['error trace', Buffer.from(errorTrace.lines.join('\n'))],
    ['responses', Buffer.from(kept.join('\n'))],
  ]
  server = undefined
  // The run did produce output to search: audit events everywhere, errors in the error log.
  assert.ok(outputs.every(([, b]) => b.length > 0), outputs.map(([n, b]) => `${n}: ${b.length}`).join(', '))
  let searched = 0
  for (const secret of secrets) {
    for (const form of encodings(secret)) {
      for (const [where, out] of outputs) {
        searched++
        assert.equal(out.indexOf(form), -1, `a secret appears in ${where}`)
      }
    }
  }
  t.diagnostic(`${secrets.length} secrets in ${encodings(Buffer.alloc(1)).length} encodings searched in ${outputs.length} outputs (${searched} searches)`)
})
