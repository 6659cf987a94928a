import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatAuditEvent } from './audit-log.js'
import { describeError } from './describe-error.js'
import { ErrorLog, RateLimitedLog } from './error-log.js'
import { EventHub } from './event-hub.js'
import type { SubscriberSink } from './event-hub.js'

class Sink implements SubscriberSink {
  lines: string[] = []
  writableLength = 0
  ended = false
  write(chunk: string): void {
    this.lines.push(chunk)
  }
  end(): void {
    this.ended = true
  }
}

test('an audit event has the seed layout and nothing else', () => {
  const line = formatAuditEvent({
    time: new Date('2026-11-30T00:00:01.5Z'),
    method: 'POST',
    path: '/v1/key/create/"odd"',
    identity: 'ab'.repeat(32),
    ip: '127.0.0.1',
    status: 400,
    durationNs: 1234n,
    error: 'key does already exist',
  })
  assert.equal(
    line,
    '{"time":"2026-11-30T00:00:01.500Z","request":{"path":"/v1/key/create/\\"odd\\"","identity":"' + 'ab'.repeat(32) +
      '","method":"POST","ip":"127.0.0.1"},"response":{"code":400,"time":1234,"error":"key does already exist"}}\n',
  )
  const ok = JSON.parse(formatAuditEvent({ time: new Date(0), method: 'GET', path: '/version', identity: '', ip: '', status: 200, durationNs: 1n, error: undefined })) as { response: object }
  assert.deepEqual(Object.keys(ok.response), ['code', 'time'])
})

test('the hub delivers to readers that keep up and drops, counted, for those that do not', () => {
  let dropped = 0
  const hub = new EventHub({ maxBufferedBytes: 10, onDrop: () => dropped++, maxSubscribers: 2 })
  const fast = new Sink()
  const slow = new Sink()
  hub.subscribe(fast)
  hub.subscribe(slow)
  assert.equal(hub.full, true)
  hub.publish('a\n')
  slow.writableLength = 11
  hub.publish('b\n')
  assert.deepEqual(fast.lines, ['a\n', 'b\n'])
  assert.deepEqual(slow.lines, ['a\n'])
  assert.equal(dropped, 1)
})

test('cancel stops delivery; closeAll ends every reader and resolves closed', async () => {
  const hub = new EventHub({ maxBufferedBytes: 1024 })
  const a = new Sink()
  const b = new Sink()
  const subA = hub.subscribe(a)
  const subB = hub.subscribe(b)
  subA.cancel()
  await subA.closed
  hub.publish('x\n')
  assert.deepEqual(a.lines, [])
  hub.closeAll()
  await subB.closed
  assert.equal(b.ended, true)
  assert.equal(hub.size, 0)
})

test('the rate-limited log passes N lines a second and reports what it held back', () => {
  const lines: string[] = []
  const log = new RateLimitedLog(new ErrorLog({ enabled: true, sink: (l) => lines.push(l) }), 2)
  for (let i = 0; i < 5; i++) log.error(`e${i}`, 1000)
  log.error('next second', 2000)
  assert.equal(lines.length, 4)
  assert.match(lines[0] as string, / e0\n$/)
  assert.match(lines[1] as string, / e1\n$/)
  assert.match(lines[2] as string, / 3 similar messages suppressed\n$/)
  assert.match(lines[3] as string, / next second\n$/)
})

test('error events are one line each, to stderr only when enabled, always to readers', () => {
  const lines: string[] = []
  const hub = new EventHub({ maxBufferedBytes: 1024 })
  const reader = new Sink()
  hub.subscribe(reader)
  const log = new ErrorLog({ enabled: false, sink: (l) => lines.push(l), hub })
  log.error('two\nlines')
  assert.deepEqual(lines, [])
  const event = JSON.parse(reader.lines[0] as string) as { message: string }
  assert.match(event.message, /^\d{4}-\d\d-\d\dT.* two lines$/)
  log.setEnabled(true)
  log.error('now on')
  assert.equal(lines.length, 1)
})

test('describeError joins an error and its causes on one line, without a stack', () => {
  const err = new Error('keystore: failed to read key', { cause: new Error('EACCES: permission denied', { cause: 'not an Error' }) })
  assert.equal(describeError(err), 'keystore: failed to read key: EACCES: permission denied')
  assert.equal(describeError('plain'), 'plain')
})

test('reauthorize ends the readers no longer allowed, and those whose check fails; others stay', async () => {
  const hub = new EventHub({ maxBufferedBytes: 1024 })
  const verdicts = new Map<string, () => Promise<boolean>>([
    ['allowed', async () => true],
    ['revoked', async () => false],
    ['unknown', async () => Promise.reject(new Error('store down'))],
  ])
  const sinks = new Map<string, Sink>()
  for (const [name, check] of verdicts) {
    const s = new Sink()
    sinks.set(name, s)
    hub.subscribe(s, check)
  }
  const unchecked = new Sink()
  hub.subscribe(unchecked)
  assert.equal(await hub.reauthorize(), 2)
  assert.equal(hub.size, 2)
  hub.publish('after\n')
  assert.deepEqual(sinks.get('allowed')?.lines, ['after\n'])
  assert.equal(sinks.get('allowed')?.ended, false)
  for (const name of ['revoked', 'unknown']) {
    assert.deepEqual(sinks.get(name)?.lines, [])
    assert.equal(sinks.get(name)?.ended, true)
  }
  assert.deepEqual(unchecked.lines, ['after\n'])
})
