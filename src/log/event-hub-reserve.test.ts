import assert from 'node:assert/strict'
import { test } from 'node:test'
import { EventHub } from './event-hub.js'
import type { SubscriberSink } from './event-hub.js'

const sink = (): SubscriberSink => ({ write: () => true, end: () => undefined, writableLength: 0 })

test('event hub: reserved places count against the cap before anyone subscribes', () => {
  const hub = new EventHub({ maxBufferedBytes: 1024, maxSubscribers: 2 })
  const a = hub.reserve()
  const b = hub.reserve()
  assert.ok(a !== undefined && b !== undefined)
  assert.equal(hub.reserve(), undefined, 'a third place while two are only reserved')
  assert.equal(hub.full, true)
  const sub = a.subscribe(sink())
  assert.equal(hub.size, 1)
  assert.equal(hub.reserve(), undefined)
  b.release()
  const c = hub.reserve()
  assert.ok(c !== undefined, 'a released place is free again')
  c.release()
  c.release() // twice is harmless
  sub.cancel()
  assert.equal(hub.size, 0)
  assert.ok(hub.reserve() !== undefined && hub.reserve() !== undefined)
  assert.equal(hub.reserve(), undefined)
})

test('event hub: a reservation subscribes once', () => {
  const hub = new EventHub({ maxBufferedBytes: 1024 })
  const r = hub.reserve()
  assert.ok(r !== undefined)
  r.subscribe(sink())
  assert.throws(() => r.subscribe(sink()), /already used/)
  r.release() // after subscribe: no effect on the live reader
  assert.equal(hub.size, 1)
})
