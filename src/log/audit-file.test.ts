// The audit file on its own: what happens to events when the disk fails, when the file can't
// be reopened, when a write is torn, when events pile up faster than the disk takes them, and
// when the file is closed with a write in flight. Every event is written or counted as lost.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, open, readFile, truncate, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, test } from 'node:test'
import { NEEDS_DEV_FULL, pointAt } from '../../test/support/failing-disk.js'
import { tempDirPerSuite } from '../../test/support/temp-dir.js'
import { within } from '../../test/support/within.js'
import { AuditChain, parseChainFields } from './audit-chain.js'
import { AuditFile, describeWriteError, readChainTail } from './audit-file.js'
import type { AuditFileEvents } from './audit-file.js'

const WAIT_MS = 10_000

const dir = tempDirPerSuite('audit-file')

let n = 0
/** A fresh path in the temp dir. */
const fresh = (name: string): string => path.join(dir(), `${++n}-${name}`)

/** Events of one file, recorded: lost counts, health changes and a way to wait for them. */
class Recorder implements AuditFileEvents {
  lost = 0
  readonly health: Array<[boolean, string | undefined]> = []
  #waiters: Array<() => void> = []
  onLost(count: number): void {
    this.lost += count
    this.#wake()
  }
  onHealthChange(healthy: boolean, err: unknown): void {
    this.health.push([healthy, err === undefined ? undefined : describeWriteError(err)])
    this.#wake()
  }
  /** Resolves once `done()` holds (checked after every event; fails after WAIT_MS). */
  until(done: () => boolean, what: string): Promise<void> {
    if (done()) return Promise.resolve()
    return within(
      new Promise<void>((resolve) => {
        const check = (): void => (done() ? resolve() : void this.#waiters.push(check))
        this.#waiters.push(check)
      }),
      WAIT_MS,
      what,
    )
  }
  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }
}

const line = (i: number): string => `{"event":${i}}\n`
const lines = (from: number, to: number): string => Array.from({ length: to - from }, (_, i) => line(from + i)).join('')

describe('an audit file', () => {
  test('that cannot be opened is refused, naming the file and why', async () => {
    const missingDir = path.join(dir(), 'no-such-dir', 'audit.log')
    await assert.rejects(AuditFile.open(missingDir, new Recorder()), { message: `cannot open audit file '${missingDir}': ENOENT` })
  })

  test('closed with writes in flight writes them all first; later events are counted as lost', async () => {
    const file = fresh('audit.log')
    const events = new Recorder()
    const audit = await AuditFile.open(file, events)
    for (let i = 0; i < 100; i++) audit.write(line(i))
    await audit.close()
    assert.equal(await readFile(file, 'utf8'), lines(0, 100))
    audit.write(line(100))
    audit.write(line(101))
    assert.equal(events.lost, 2)
    assert.equal(await readFile(file, 'utf8'), lines(0, 100))
    assert.deepEqual(events.health, [])
    assert.equal(audit.healthy, true)
  })

  test('holds at most 16384 events waiting for the disk; every event beyond is counted as lost, none is reordered', async () => {
    const file = fresh('audit.log')
    const events = new Recorder()
    const chain = new AuditChain(undefined, undefined)
    const audit = await AuditFile.open(file, events, { chain })
    // The first event goes to the disk at once; the next 16384 wait; 10 more are too many.
    const total = 1 + 16_384 + 10
    for (let i = 0; i < total; i++) audit.write(line(i))
    assert.equal(events.lost, 10)
    await audit.close()
    const written = (await readFile(file, 'utf8')).split('\n').slice(0, -1)
    assert.equal(written.length, total - 10)
    assert.deepEqual(
      written.map((l) => (JSON.parse(l) as { event: number }).event),
      Array.from({ length: total - 10 }, (_, i) => i),
    )
    // The chain records the gap: one line says 10 events were lost, and the sequence counts them.
    assert.deepEqual(
      written.flatMap((l, i) => (parseChainFields(l)?.lost === 10 ? [i] : [])),
      [1],
    )
    assert.equal(parseChainFields(written.at(-1) ?? '')?.seq, total)
  })

  describe('on a failing disk', NEEDS_DEV_FULL, () => {
    test('counts every lost event, reports the failure once, survives a file it cannot reopen and recovers by itself', async () => {
      const link = fresh('audit.log')
      const real = fresh('audit.real')
      await pointAt(link, '/dev/full')
      const events = new Recorder()
      const audit = await AuditFile.open(link, events)
      try {
        audit.write(line(0))
        await events.until(() => events.lost === 1 && events.health.length === 1, 'the first write to fail')
        assert.deepEqual(events.health, [[false, 'ENOSPC']])
        assert.equal(audit.healthy, false)
        audit.write(line(1))
        await events.until(() => events.lost === 2, 'the second write to fail')

        // The file moves somewhere it can't be opened: still lost and counted, no new report.
        await pointAt(link, path.join(dir(), 'gone', 'audit.log'))
        audit.write(line(2))
        await events.until(() => events.lost === 3, 'the reopen to fail')
        assert.deepEqual(events.health, [[false, 'ENOSPC']])

        // Writable again: the next event reopens the file and lands in it.
        await pointAt(link, real)
        audit.write(line(3))
        await events.until(() => events.health.length === 2, 'the file to work again')
        assert.deepEqual(events.health, [
          [false, 'ENOSPC'],
          [true, undefined],
        ])
        assert.equal(audit.healthy, true)
        audit.write(line(4))
      } finally {
        await audit.close()
      }
      assert.equal(events.lost, 3)
      assert.equal(await readFile(real, 'utf8'), lines(3, 5))
    })
  })

  test('a write torn mid-line is followed by a new line, so no event runs into another', async (t) => {
    const fifo = fresh('audit.fifo')
    try {
      await promisify(execFile)('mkfifo', [fifo], { timeout: 10_000 })
    } catch {
      t.skip('needs mkfifo')
      return
    }
    // A reader takes part of a large write, then goes away: the write is cut short (EPIPE).
    // (Opening a FIFO waits for the other end: reader and writer open together.)
    const events = new Recorder()
    const [reader, audit] = await within(Promise.all([open(fifo, 'r'), AuditFile.open(fifo, events)]), WAIT_MS, 'the FIFO to open')
    const big = `{"event":0,"pad":"${'x'.repeat(256 * 1024)}"}\n`
    audit.write(big)
    const first = Buffer.alloc(4096)
    const { bytesRead } = await reader.read(first, 0, first.length)
    assert.ok(bytesRead > 0)
    await reader.close()
    await events.until(() => events.lost === 1 && events.health.length === 1, 'the torn write to fail')
    assert.equal(events.health[0]?.[0], false)

    // The next write (to the next reader) starts on a new line: whatever the old reader had
    // of the torn event ends there.
    const opening = open(fifo, 'r')
    audit.write(line(1))
    const next = await within(opening, WAIT_MS, 'the second reader to open')
    try {
      await events.until(() => events.health.length === 2, 'the next write')
      const buf = Buffer.alloc(64)
      const got = await next.read(buf, 0, buf.length)
      assert.equal(buf.subarray(0, got.bytesRead).toString(), `\n${line(1)}`)
    } finally {
      await audit.close()
      await next.close()
    }
    assert.equal(events.lost, 1)
  })
})

describe('reading the chain tail of an existing audit file', () => {
  /** `count` chained lines as AuditFile writes them, and the head after them. */
  function chained(count: number): { text: string; head: { seq: number; hash: string } } {
    const chain = new AuditChain(undefined, undefined)
    const out = chain.chain(Array.from({ length: count }, (_, i) => line(i)))
    return out
  }

  test('a missing or empty file has no head; a whole last line is the head', async () => {
    assert.deepEqual(await readChainTail(fresh('missing.log')), { head: undefined, tornCut: false })
    const empty = fresh('empty.log')
    await writeFile(empty, '')
    assert.deepEqual(await readChainTail(empty), { head: undefined, tornCut: false })
    const file = fresh('audit.log')
    const { text, head } = chained(3)
    await writeFile(file, text)
    assert.deepEqual(await readChainTail(file), { head, tornCut: false })
    assert.equal(await readFile(file, 'utf8'), text)
  })

  test('a last line cut off by a crash is removed and reported; the head is the line before', async () => {
    const file = fresh('audit.log')
    const three = chained(3)
    const two = chained(2)
    await writeFile(file, three.text)
    // Cut into the third line.
    await truncate(file, two.text.length + 10)
    assert.deepEqual(await readChainTail(file), { head: two.head, tornCut: true })
    assert.equal(await readFile(file, 'utf8'), two.text)
  })

  test('a file that is not readable as a file is refused, naming it and why', async () => {
    const sub = fresh('a-directory')
    await mkdir(sub)
    await assert.rejects(readChainTail(sub), { message: `cannot open audit file '${sub}': EISDIR` })
  })

  test('a last line longer than the tail that is read gives no head and is left alone', async () => {
    const file = fresh('audit.log')
    const { text } = chained(2)
    // Two events, then a line of 100 KiB without its newline (more than the 64 KiB tail read).
    const long = `${text}{"event":9,"pad":"${'y'.repeat(100 * 1024)}"`
    await writeFile(file, long)
    assert.deepEqual(await readChainTail(file), { head: undefined, tornCut: false })
    assert.equal((await readFile(file, 'utf8')).length, long.length)
    // With its newline, the one whole line in the tail is not taken for the head either: it
    // could be the end of a line that started before the tail.
    await writeFile(file, `${long}}\n`)
    assert.deepEqual(await readChainTail(file), { head: undefined, tornCut: false })
  })

  test('the head is read from the last line of a file larger than the tail', async () => {
    const file = fresh('audit.log')
    const many = chained(2_000)
    assert.ok(many.text.length > 64 * 1024)
    await writeFile(file, many.text)
    assert.deepEqual(await readChainTail(file), { head: many.head, tornCut: false })
    const fields = parseChainFields(many.text.split('\n').at(-2) ?? '')
    assert.equal(fields?.seq, 2_000)
  })
})

test('describeWriteError names the errno code, else the message', () => {
  assert.equal(describeWriteError(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })), 'ENOSPC')
  assert.equal(describeWriteError(new Error('no bytes written')), 'no bytes written')
  assert.equal(describeWriteError('plain'), 'plain')
})
