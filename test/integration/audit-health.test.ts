// An audit file that can't be written (issue 9 item 3): every lost event is
// counted, the gauge and the error log say so (once, not per event), writing
// resumes by itself once the file can be written again, and with
// log.audit_fail_closed requests are refused (503) meanwhile. A write error is
// made with a symlink to /dev/full (every write fails with ENOSPC), which the
// test then points at a regular file again.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { loadConfigFile } from '../../src/config/load.js'
import { NEEDS_DEV_FULL, pointAt } from '../support/failing-disk.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const PROMETHEUS = 'text/plain; version=0.0.4'

function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  return undefined
}

describe('audit file health', NEEDS_DEV_FULL, () => {
  let env: TestEnv
  beforeEach(async () => {
    env = await TestEnv.create()
  })
  afterEach(async () => {
    await env.dispose()
  })

  async function metrics(): Promise<{ healthy: number | undefined; lost: number | undefined; text: string }> {
    const res = await env.request(root, '/v1/metrics', { headers: { accept: PROMETHEUS } })
    assert.equal(res.status, 200)
    return { healthy: sample(res.text, 'kes_log_audit_file_healthy'), lost: sample(res.text, 'kes_log_audit_events_lost_total'), text: res.text }
  }

  /** Points audit.log at /dev/full (true) or at a regular file (false), atomically. */
  async function diskFull(full: boolean): Promise<void> {
    await pointAt(path.join(env.dir, 'audit.log'), full ? '/dev/full' : path.join(env.dir, 'audit.real'))
  }

  /** Requests until the audit file is seen failing (the first write after the switch fails). */
  async function untilHealthy(want: number): Promise<void> {
    for (let i = 0; i < 50; i++) {
      await env.request(root, '/version')
      if ((await metrics()).healthy === want) return
    }
    assert.fail(`kes_log_audit_file_healthy never became ${want}`)
  }

  test('a failing audit file counts every lost event, logs once and recovers by itself', async () => {
    await diskFull(false)
    await env.start(`admin:\n  identity: ${root.identity}\nlog:\n  audit_file: ./audit.log\n`)
    const m0 = await metrics()
    assert.equal(m0.healthy, 1)
    assert.equal(m0.lost, 0)
    // The server writes to the file it opened; a reload (as SIGHUP) opens the link's new target.
    await diskFull(true)
    await env.server?.reload(await loadConfigFile(path.join(env.dir, 'config.yml'), {}))
    // From here on every request's audit event is lost. A loss is counted once its write has
    // failed, which happens after the response, so a scrape sees at most the events of the
    // requests before it, and (once the writes settle) exactly those: never more, never fewer.
    let sent = 0
    const scrape = async (): Promise<Awaited<ReturnType<typeof metrics>>> => {
      const m = await metrics()
      assert.ok((m.lost ?? 0) <= sent, `${m.lost} events counted lost after ${sent} requests`)
      sent++
      return m
    }
    let healthy: number | undefined = 1
    for (let i = 0; i < 50 && healthy !== 0; i++) {
      assert.equal((await env.request(root, '/version')).status, 200)
      sent++
      healthy = (await scrape()).healthy
    }
    assert.equal(healthy, 0, 'kes_log_audit_file_healthy never became 0')
    for (let i = 0; i < 20; i++) {
      assert.equal((await env.request(root, '/version')).status, 200)
      sent++
    }
    // Requests outrun the failing writes (each is an open, a write and a close on the thread
    // pool); pause before each scrape so that they catch up.
    let settled = await scrape()
    for (let i = 0; i < 100 && settled.lost !== sent - 1; i++) {
      await delay(20)
      settled = await scrape()
    }
    assert.equal(settled.lost, sent - 1, 'every lost event is counted, once')
    assert.equal(settled.healthy, 0)
    const failureLines = env.errorLines.filter((l) => l.includes("audit: cannot write"))
    assert.equal(failureLines.length, 1, `expected one error line, got ${failureLines.length}`)
    assert.match(failureLines[0] ?? '', /ENOSPC/)
    // Space returns: the next event reopens the file and writes resume.
    await diskFull(false)
    await untilHealthy(1)
    assert.ok(env.errorLines.some((l) => /audit: writing '.*audit\.log' again; \d+ events were lost/.test(l)))
    assert.equal((await env.request(root, '/v1/key/list/after-recovery')).status, 200)
    await env.stop()
    const text = await readFile(path.join(env.dir, 'audit.real'), 'utf8')
    assert.ok(text.includes('/v1/key/list/after-recovery'), 'events after recovery are written')
    for (const line of text.trimEnd().split('\n')) JSON.parse(line) // every line whole
  })

  test('log.audit_fail_closed refuses requests (503) while the file fails, but not the probes', async () => {
    await diskFull(false)
    await env.start(`admin:\n  identity: ${root.identity}\nlog:\n  audit_file: ./audit.log\n  audit_fail_closed: on\n`)
    assert.equal((await env.request(root, '/v1/key/create/k1', { method: 'POST' })).status, 200)
    await diskFull(true)
    await env.server?.reload(await loadConfigFile(path.join(env.dir, 'config.yml'), {}))
    await untilHealthy(0)
    const refused = await env.request(root, '/v1/key/create/k2', { method: 'POST' })
    assert.equal(refused.status, 503)
    assert.deepEqual(refused.json, { message: 'audit log cannot be written' })
    assert.equal((await env.request(root, '/v1/key/describe/k1')).status, 503)
    assert.equal((await env.request(root, '/version')).status, 200)
    assert.equal((await env.request(root, '/v1/status')).status, 200)
    // k2 was never created.
    await diskFull(false)
    await untilHealthy(1)
    assert.equal((await env.request(root, '/v1/key/describe/k2')).status, 404)
    assert.equal((await env.request(root, '/v1/key/create/k2', { method: 'POST' })).status, 200)
  })

  test('log.audit_fail_closed without an audit file is a config error', async () => {
    await assert.rejects(env.start(`admin:\n  identity: ${root.identity}\nlog:\n  audit_fail_closed: on\n`), /log\.audit_fail_closed: needs log\.audit_file/)
  })
})
