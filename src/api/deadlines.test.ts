// The one-timer deadline list the router uses instead of a timer per request.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Deadlines } from './deadlines.js'

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1))
  assert.ok(cond(), what)
}

test('deadlines expire in time order across lengths, each exactly once', async () => {
  const d = new Deadlines()
  const fired: string[] = []
  d.add(30, () => fired.push('30a'))
  d.add(5, () => fired.push('5'))
  d.add(30, () => fired.push('30b'))
  d.add(15, () => fired.push('15'))
  assert.equal(d.size, 4)
  await until(() => fired.length === 4, 'every deadline fired')
  assert.deepEqual(fired, ['5', '15', '30a', '30b'])
  assert.equal(d.size, 0)
})

test('a cancelled deadline never fires, and cancelling twice is harmless', async () => {
  const d = new Deadlines()
  const fired: string[] = []
  const a = d.add(5, () => fired.push('a'))
  d.add(10, () => fired.push('b'))
  a.cancel()
  a.cancel()
  assert.equal(d.size, 1)
  await until(() => fired.length === 1, 'b fired')
  await new Promise((r) => setTimeout(r, 20))
  assert.deepEqual(fired, ['b'])
})

test('with every deadline cancelled no timer is left to keep the process alive', async () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((h) => h === 'Timeout').length
  const before = timers()
  const d = new Deadlines()
  const fired: string[] = []
  const all = [d.add(60_000, () => fired.push('x')), d.add(60_000, () => fired.push('y'))]
  assert.equal(timers(), before + 1, 'one timer for both')
  for (const x of all) x.cancel()
  assert.equal(d.size, 0)
  assert.equal(timers(), before)
  assert.deepEqual(fired, [])
})

test('a deadline added from an expiry callback is kept and fires', async () => {
  const d = new Deadlines()
  const fired: string[] = []
  d.add(2, () => {
    fired.push('first')
    d.add(2, () => fired.push('second'))
  })
  await until(() => fired.length === 2, 'both fired')
  assert.deepEqual(fired, ['first', 'second'])
})
