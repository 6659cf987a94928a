// The audit log's own rules: a chain key that can't be used is refused clearly, a file that
// can't be configured leaves the old outputs working, a file cut off by a crash is repaired
// and reported, and a failing file is reported when it fails, reminded of every 10 s while it
// fails (not on every event) and reported when it works again.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, mock, test } from 'node:test'
import { NEEDS_DEV_FULL, pointAt } from '../../test/support/failing-disk.js'
import { tempDirPerSuite } from '../../test/support/temp-dir.js'
import { parseChainFields } from './audit-chain.js'
import { AuditLog, MIN_CHAIN_KEY_BYTES, formatAuditEvent, readChainKey } from './audit-log.js'
import type { AuditRecord } from './audit-log.js'
import { EventHub } from './event-hub.js'

const WAIT_MS = 10_000

const dir = tempDirPerSuite('audit-log')

let n = 0
const fresh = (name: string): string => path.join(dir(), `${++n}-${name}`)

function request(i: number): AuditRecord {
  return { time: new Date(1_700_000_000_000 + i), method: 'POST', path: `/v1/key/generate/k${i}`, identity: 'ab'.repeat(32), ip: '127.0.0.1', status: 200, durationNs: 1000n, error: undefined }
}

/** An audit log whose error lines and lost counts are recorded. */
function auditLog(): { log: AuditLog; errors: string[]; lost: () => number } {
  const errors: string[] = []
  let lost = 0
  const log = new AuditLog({ hub: new EventHub({ maxBufferedBytes: 1 << 20 }), onError: (m) => errors.push(m), onLost: (k) => (lost += k) })
  return { log, errors, lost: () => lost }
}

/** Polls `done` every 10 ms until it holds (fails after WAIT_MS). */
async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + WAIT_MS
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const linesOf = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(0, -1)

describe('the audit chain key', () => {
  test('is read trimmed; a missing or short key file is refused, naming the file', async () => {
    const good = fresh('chain.key')
    await writeFile(good, `  ${'k'.repeat(MIN_CHAIN_KEY_BYTES)}\n`)
    assert.deepEqual(await readChainKey(good), Buffer.from('k'.repeat(MIN_CHAIN_KEY_BYTES)))
    const missing = fresh('missing.key')
    await assert.rejects(readChainKey(missing), { message: `cannot read audit chain key '${missing}': ENOENT` })
    const short = fresh('short.key')
    await writeFile(short, `${'k'.repeat(MIN_CHAIN_KEY_BYTES - 1)}\n`)
    await assert.rejects(readChainKey(short), {
      message: `audit chain key '${short}' is too short: it needs at least ${MIN_CHAIN_KEY_BYTES} bytes (e.g. openssl rand -base64 32)`,
    })
  })
})

describe('configuring the audit log', () => {
  test('a file that cannot be opened, or a chain key that cannot be read, is refused and the old file keeps every event', async () => {
    const { log, errors } = auditLog()
    const file = fresh('audit.log')
    await log.configure({ stdout: false, file })
    try {
      log.record(request(1))
      const missingDir = path.join(dir(), 'no-such-dir', 'audit.log')
      await assert.rejects(log.configure({ stdout: false, file: missingDir }), { message: `cannot open audit file '${missingDir}': ENOENT` })
      const missingKey = fresh('missing.key')
      await assert.rejects(log.configure({ stdout: false, file: fresh('other.log'), chainKeyFile: missingKey }), {
        message: `cannot read audit chain key '${missingKey}': ENOENT`,
      })
      log.record(request(2))
      log.record(request(3))
    } finally {
      await log.close()
    }
    const lines = await linesOf(file)
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { request: { path: string } }).request.path),
      ['/v1/key/generate/k1', '/v1/key/generate/k2', '/v1/key/generate/k3'],
    )
    assert.deepEqual(errors, [])
  })

  test('a file whose last line a crash cut off is repaired, reported, and the chain records the lost event', async () => {
    const file = fresh('audit.log')
    const first = auditLog()
    await first.log.configure({ stdout: false, file })
    first.log.record(request(1))
    first.log.record(request(2))
    await first.log.close()
    const whole = await readFile(file, 'utf8')
    await writeFile(file, `${whole}{"time":"2024-01-01T00:00:00Z","requ`)

    const second = auditLog()
    await second.log.configure({ stdout: false, file })
    try {
      assert.deepEqual(second.errors, [`audit: '${file}' ended in a line cut off (a crash?); removed it, the chain records it as lost`])
      second.log.record(request(3))
    } finally {
      await second.log.close()
    }
    const lines = await linesOf(file)
    assert.equal(lines.length, 3)
    const last = parseChainFields(lines[2] ?? '')
    assert.equal(last?.lost, 1)
    assert.equal(last?.seq, 4)
  })

  test('with no output and no trace reader, recording builds nothing and writes nothing', async () => {
    let events = 0
    const log = new AuditLog({ hub: new EventHub({ maxBufferedBytes: 1024 }), onError: () => assert.fail('no error expected'), onEvent: () => events++ })
    log.record(request(1))
    assert.equal(events, 1)
    assert.equal(log.fileHealthy, true)
    assert.equal(log.refusing, false)
    await log.close()
  })
})

describe('a failing audit file', NEEDS_DEV_FULL, () => {
  test('is reported once, reminded of every 10 s while it fails, refuses when fail-closed, and is reported working again', async (t) => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 })
    t.after(() => mock.timers.reset())
    const link = fresh('audit.log')
    const real = fresh('audit.real')
    await pointAt(link, '/dev/full')
    const { log, errors, lost } = auditLog()
    await log.configure({ stdout: false, file: link, failClosed: true })
    try {
      log.record(request(1))
      await until(() => !log.fileHealthy && errors.length === 1, 'the failure report')
      assert.deepEqual(errors, [`audit: cannot write '${link}': ENOSPC; events are lost (and counted) until it works again`])
      assert.equal(log.refusing, true)

      // Within 10 s of the report: counted, not reported again.
      mock.timers.tick(9_999)
      log.record(request(2))
      await until(() => lost() === 2, 'the second loss')
      assert.equal(errors.length, 1)

      // 10 s after it: one reminder with the count so far.
      mock.timers.tick(1)
      log.record(request(3))
      await until(() => lost() === 3, 'the third loss')
      assert.deepEqual(errors.slice(1), [`audit: cannot write '${link}'; 3 events lost so far`])

      // And not again at once.
      log.record(request(4))
      await until(() => lost() === 4, 'the fourth loss')
      assert.equal(errors.length, 2)

      await pointAt(link, real)
      log.record(request(5))
      await until(() => log.fileHealthy, 'the file to work again')
      assert.deepEqual(errors.slice(2), [`audit: writing '${link}' again; 4 events were lost`])
      assert.equal(log.refusing, false)
    } finally {
      await log.close()
    }
    // The one event written records the four lost before it.
    const lines = await linesOf(real)
    assert.equal(lines.length, 1)
    assert.equal(parseChainFields(lines[0] ?? '')?.lost, 4)
    assert.equal(lines[0]?.startsWith(formatAuditEvent(request(5)).slice(0, -2)), true)
  })
})
