// Idle HTTP/2 sessions, on stand-in sessions and an injected clock.
// (test/integration/edge-limits.test.ts closes a real idle session over TLS.)
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { ServerHttp2Session } from 'node:http2'
import { after, describe, test } from 'node:test'
import { Http2Sessions, sweepIntervalFor } from './http2-sessions.js'

class FakeSession extends EventEmitter {
  closeCalls = 0
  close(): void {
    this.closeCalls++
  }
  get asSession(): ServerHttp2Session {
    return this as unknown as ServerHttp2Session
  }
  /** A new stream on this session; emit 'close' on what it returns to end it. */
  openStream(): EventEmitter {
    const stream = new EventEmitter()
    this.emit('stream', stream)
    return stream
  }
}

describe('Http2Sessions', () => {
  let now = 0
  const sessions = new Http2Sessions(1000, () => now)
  after(() => sessions.stop())
  /** Sweeps at `ms` on the test clock and returns how often `s` has been told to close by then. */
  const closeCallsAfterSweepAt = (ms: number, s: FakeSession): number => {
    now = ms
    sessions.closeIdle()
    return s.closeCalls
  }

  test('a session without streams closes once it has been idle for the timeout, not before', () => {
    now = 0
    const s = new FakeSession()
    sessions.add(s.asSession)
    assert.equal(closeCallsAfterSweepAt(999, s), 0)
    assert.equal(closeCallsAfterSweepAt(1000, s), 1)
    s.emit('close')
  })

  test('a session with a stream open is never idle; idleness counts from its last stream\'s close', () => {
    now = 0
    const s = new FakeSession()
    sessions.add(s.asSession)
    const a = s.openStream()
    const b = s.openStream()
    assert.equal(closeCallsAfterSweepAt(5000, s), 0, 'two streams open')
    a.emit('close')
    assert.equal(closeCallsAfterSweepAt(6000, s), 0, 'one stream still open (a quiet log stream is not idle)')
    b.emit('close')
    assert.equal(closeCallsAfterSweepAt(6999, s), 0, 'idle for 999 ms only')
    assert.equal(closeCallsAfterSweepAt(7000, s), 1)
    s.emit('close')
  })

  test('a closed session is forgotten; closeAll tells every open one to go away', () => {
    now = 0
    const before = sessions.size
    const gone = new FakeSession()
    const open = [new FakeSession(), new FakeSession()]
    for (const s of [gone, ...open]) sessions.add(s.asSession)
    assert.equal(sessions.size, before + 3)
    gone.emit('close')
    assert.equal(sessions.size, before + 2)
    sessions.closeAll()
    assert.deepEqual([gone.closeCalls, ...open.map((s) => s.closeCalls)], [0, 1, 1])
    for (const s of open) s.emit('close')
    assert.equal(sessions.size, before)
  })
})

describe('sweepIntervalFor', () => {
  const cases: ReadonlyArray<[number, number]> = [
    [1, 100],
    [1000, 250],
    [30_000, 5000],
    [3_600_000, 5000],
  ]
  for (const [idle, sweep] of cases) {
    test(`idle timeout ${idle} ms → a sweep every ${sweep} ms`, () => assert.equal(sweepIntervalFor(idle), sweep))
  }
})
