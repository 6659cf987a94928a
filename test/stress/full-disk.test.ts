// Full disk (issue 9): the key store and the audit file on a tiny tmpfs made
// by the test. Once it is full: writes fail with a clear 5xx and one
// error-log line each, reads keep working, nothing stored is damaged, lost
// audit events are counted; when space returns, writes and the audit file
// work again by themselves. Needs root (mount); skipped, saying so, elsewhere.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, open, readFile, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parseKeyFile } from '../../src/crypto/key-version.js'
import { verifyAuditChain } from '../../src/log/audit-verify.js'
import { TestEnv, makeClient } from '../integration/harness.js'

const root = makeClient('root')
const PROMETHEUS = 'text/plain; version=0.0.4'

function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  return undefined
}

/** Mounts a 1 MiB tmpfs on `dir`; false (with the reason) when this machine can't. */
function tryMount(dir: string): string | undefined {
  if (process.platform !== 'linux') return 'mounting a tmpfs needs Linux'
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', dir], { stdio: 'pipe', timeout: 10_000 })
    return undefined
  } catch (err) {
    return `cannot mount a tmpfs here (needs root and mount rights): ${(err as Error).message.split('\n')[0]}`
  }
}

/** Writes zeros to `file` until the file system is full. */
async function fillUp(file: string): Promise<void> {
  const fh = await open(file, 'w')
  const chunk = Buffer.alloc(16 * 1024)
  try {
    for (let i = 0; i < 1024; i++) await fh.write(chunk)
    assert.fail('the 1 MiB file system never filled up')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally {
    await fh.close()
  }
}

let env: TestEnv
let mnt = ''
let skipReason: string | undefined
before(async () => {
  env = await TestEnv.create()
  mnt = path.join(env.dir, 'small')
  await mkdir(mnt)
  skipReason = tryMount(mnt)
})
after(async () => {
  await env.stop()
  if (skipReason === undefined) {
    try {
      execFileSync('umount', [mnt], { stdio: 'pipe', timeout: 10_000 })
    } catch {
      execFileSync('umount', ['-l', mnt], { stdio: 'pipe', timeout: 10_000 })
    }
  }
  await env.dispose()
})

describe('a full disk under the key store and the audit file', () => {
  test('writes fail cleanly, reads go on, nothing is damaged, audit loss is counted, all recovers', { timeout: 60_000 }, async (t) => {
    if (skipReason !== undefined) {
      t.skip(skipReason)
      return
    }
    await env.start(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./small/keys\nlog:\n  audit_file: ./small/audit.log\n`)
    const metrics = async (): Promise<string> => (await env.request(root, '/v1/metrics', { headers: { accept: PROMETHEUS } })).text
    for (const name of ['a', 'b', 'c']) assert.equal((await env.request(root, `/v1/key/create/${name}`, { method: 'POST' })).status, 200)
    const plaintext = Buffer.from('full disk plaintext').toString('base64')
    const enc = await env.request(root, '/v1/key/encrypt/a', { method: 'POST', body: { plaintext } })
    assert.equal(enc.status, 200)
    const ciphertext = (enc.json as { ciphertext: string }).ciphertext
    const keyDir = path.join(mnt, 'keys')
    const filesBefore = new Map<string, Buffer>()
    for (const n of ['a', 'b', 'c']) filesBefore.set(n, await readFile(path.join(keyDir, n)))

    await fillUp(path.join(mnt, 'filler'))
    const linesBefore = env.errorLines.length

    // Writes: a clear 5xx, one error-log line each, never a half-written key.
    for (const [i, target] of ['/v1/key/create/d', '/v1/key/create/e', '/v1/policy/write/p'].entries()) {
      const res = await env.request(root, target, { method: 'POST', body: target.includes('policy') ? { allow: ['/v1/key/list/*'] } : undefined })
      assert.ok(res.status === 502 || res.status === 503, `${target}: ${res.status} ${res.text}`)
      assert.match((res.json as { message: string }).message, /^(bad gateway: failed to (create key|write policy)|key store is unavailable)/)
      const storeLines = env.errorLines.slice(linesBefore).filter((l) => l.includes('keystore:'))
      assert.equal(storeLines.length, i + 1, `one error-log line per failed write: ${storeLines.join('')}`)
      assert.match(storeLines[i] ?? '', /ENOSPC/)
    }
    // Reads: still served.
    assert.equal((await env.request(root, '/v1/key/describe/a')).status, 200)
    const dec = await env.request(root, '/v1/key/decrypt/a', { method: 'POST', body: { ciphertext } })
    assert.equal(dec.status, 200)
    assert.equal((dec.json as { plaintext: string }).plaintext, plaintext)
    assert.equal((await env.request(root, '/v1/key/encrypt/b', { method: 'POST', body: { plaintext } })).status, 200)
    const list = await env.request(root, '/v1/key/list/*')
    assert.equal(list.status, 200)
    // The audit file can't take events once the rest of its last page is used up (tmpfs
    // allocates by page): lost and counted from then on, and said once.
    let m = await metrics()
    for (let i = 0; i < 100 && sample(m, 'kes_log_audit_file_healthy') !== 0; i++) m = await metrics()
    assert.equal(sample(m, 'kes_log_audit_file_healthy'), 0)
    // Every further event is lost and counted (each scrape is one more event).
    for (let i = 0; i < 50 && (sample(m, 'kes_log_audit_events_lost_total') ?? 0) < 5; i++) m = await metrics()
    assert.ok((sample(m, 'kes_log_audit_events_lost_total') ?? 0) >= 5, 'lost audit events are not counted')
    assert.equal(env.errorLines.filter((l) => l.includes('audit: cannot write')).length, 1)
    // Nothing stored was damaged or left half-written.
    for (const [n, bytes] of filesBefore) assert.ok((await readFile(path.join(keyDir, n))).equals(bytes), `key file '${n}' changed`)
    // (.openkes/ may have been made by the failed policy write: directories fit, files don't.)
    assert.deepEqual((await readdir(keyDir)).filter((n) => n !== '.openkes').sort(), ['a', 'b', 'c'])
    const policyDir = path.join(keyDir, '.openkes', 'policies')
    assert.deepEqual(await readdir(policyDir).catch(() => []), [])

    // Space returns: writes and the audit file recover by themselves.
    await rm(path.join(mnt, 'filler'))
    assert.equal((await env.request(root, '/v1/key/create/d', { method: 'POST' })).status, 200)
    parseKeyFile(await readFile(path.join(keyDir, 'd')))
    assert.equal((await env.request(root, '/v1/policy/write/p', { method: 'POST', body: { allow: ['/v1/key/list/*'] } })).status, 200)
    m = await metrics()
    for (let i = 0; i < 20 && sample(m, 'kes_log_audit_file_healthy') !== 1; i++) m = await metrics()
    assert.equal(sample(m, 'kes_log_audit_file_healthy'), 1)
    assert.ok(env.errorLines.some((l) => /audit: writing '.*audit\.log' again; \d+ events were lost/.test(l)))
    await env.stop()
    const audit = await readFile(path.join(mnt, 'audit.log'), 'utf8')
    for (const line of audit.trimEnd().split('\n')) JSON.parse(line)
    assert.ok(audit.includes('/v1/policy/write/p'), 'events after recovery are in the audit file')
    // The hash chain holds across the loss, which it records honestly as gaps.
    const chain = verifyAuditChain([{ name: 'audit.log', text: audit }], undefined)
    assert.equal(chain.ok, true, chain.problem?.message)
    assert.ok(chain.gaps.reduce((n, g) => n + g.lost, 0) >= 5, 'the chain records the lost events')
  })
})
