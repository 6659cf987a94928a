import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { ExpiringCache } from './cache.js'
import type { CacheOptions } from './cache.js'

interface Clock {
  now: () => number
  advance(ms: number): void
}

function fakeClock(): Clock {
  let time = 1_000_000
  return {
    now: () => time,
    advance(ms: number) {
      time += ms
    },
  }
}

function newCache(t: TestContext, opts: Omit<CacheOptions, 'now'>, clock = fakeClock()) {
  const cache = new ExpiringCache<string>({ ...opts, now: clock.now })
  t.after(() => cache.close())
  return { cache, clock }
}

/** A loader that counts its calls and resolves when the test says so. */
function controlledLoader<V>() {
  let calls = 0
  let resolve: (value: V | undefined) => void = () => {}
  let reject: (err: unknown) => void = () => {}
  const load = (): Promise<V | undefined> => {
    calls++
    return new Promise<V | undefined>((res, rej) => {
      resolve = res
      reject = rej
    })
  }
  return {
    load,
    get calls() {
      return calls
    },
    resolve: (value: V | undefined) => resolve(value),
    reject: (err: unknown) => reject(err),
  }
}

// Lets the cache's internal promise chain start the loader, which it calls in a later microtask.
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

function counting(value: string | undefined) {
  const loader = {
    calls: 0,
    load: async (): Promise<string | undefined> => {
      loader.calls++
      return value
    },
  }
  return loader
}

test('any: an entry expires that long after loading, however often it is used', async (t) => {
  const { cache, clock } = newCache(t, { expiryAnyMs: 1_000, expiryUnusedMs: 0 })
  const loader = counting('v1')
  assert.equal(await cache.get('k', loader.load), 'v1')
  for (let i = 0; i < 9; i++) {
    clock.advance(100)
    assert.equal(await cache.get('k', loader.load), 'v1')
  }
  assert.equal(loader.calls, 1)
  clock.advance(99)
  assert.equal(cache.peek('k'), 'v1')
  clock.advance(1)
  assert.equal(cache.peek('k'), undefined)
  assert.equal(await cache.get('k', loader.load), 'v1')
  assert.equal(loader.calls, 2)
})

test('unused: an entry expires when not used for that long, and each use extends it', async (t) => {
  const { cache, clock } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 500 })
  const loader = counting('v1')
  await cache.get('k', loader.load)
  for (let i = 0; i < 10; i++) {
    clock.advance(499)
    assert.equal(await cache.get('k', loader.load), 'v1')
  }
  clock.advance(499)
  assert.equal(cache.peek('k'), 'v1') // a peek hit is a use too
  clock.advance(499)
  assert.equal(loader.calls, 1)
  assert.equal(cache.size, 1)
  clock.advance(1)
  assert.equal(await cache.get('k', loader.load), 'v1')
  assert.equal(loader.calls, 2)
})

test('any and unused together: whichever comes first drops the entry', (t) => {
  const { cache, clock } = newCache(t, { expiryAnyMs: 1_000, expiryUnusedMs: 300 })
  cache.set('idle', 'a')
  cache.set('busy', 'b')
  for (let i = 0; i < 3; i++) {
    clock.advance(250)
    assert.equal(cache.peek('busy'), 'b')
  }
  assert.equal(cache.peek('idle'), undefined) // unused for 750 ms
  clock.advance(249)
  assert.equal(cache.peek('busy'), 'b')
  clock.advance(1)
  assert.equal(cache.peek('busy'), undefined) // used 1 ms ago, but loaded 1000 ms ago
})

test('with both rules disabled entries never expire', async (t) => {
  const { cache, clock } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  const loader = counting('v1')
  await cache.get('k', loader.load)
  clock.advance(1e12)
  cache.sweep()
  assert.equal(await cache.get('k', loader.load), 'v1')
  assert.equal(loader.calls, 1)
})

test('get never serves an expired entry, even before a sweep', async (t) => {
  const { cache, clock } = newCache(t, { expiryAnyMs: 100, expiryUnusedMs: 0 })
  cache.set('k', 'old')
  clock.advance(100)
  assert.equal(cache.size, 1)
  assert.equal(await cache.get('k', async () => 'new'), 'new')
  assert.equal(cache.peek('k'), 'new')
})

test('sweep drops exactly the expired entries', (t) => {
  const { cache, clock } = newCache(t, { expiryAnyMs: 1_000, expiryUnusedMs: 0 })
  cache.set('a', '1')
  clock.advance(600)
  cache.set('b', '2')
  clock.advance(400)
  cache.sweep()
  assert.equal(cache.size, 1)
  assert.equal(cache.peek('a'), undefined)
  assert.equal(cache.peek('b'), '2')
})

test('single flight: 20 concurrent gets load once and all get the value', async (t) => {
  const { cache } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  const loader = controlledLoader<string>()
  const gets = Array.from({ length: 20 }, () => cache.get('k', loader.load))
  await settle()
  assert.equal(loader.calls, 1)
  loader.resolve('v1')
  assert.deepEqual(await Promise.all(gets), Array(20).fill('v1'))
  assert.equal(await cache.get('k', loader.load), 'v1')
  assert.equal(loader.calls, 1)
  assert.equal(cache.misses, 20)
  assert.equal(cache.hits, 1)
})

test('a loader resolving undefined caches nothing', async (t) => {
  const { cache } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  const loader = counting(undefined)
  assert.equal(await cache.get('k', loader.load), undefined)
  assert.equal(await cache.get('k', loader.load), undefined)
  assert.equal(loader.calls, 2)
  assert.equal(cache.size, 0)
})

test('a failing load is not cached and every waiter gets the error', async (t) => {
  const { cache } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  const loader = controlledLoader<string>()
  const gets = Array.from({ length: 5 }, () => cache.get('k', loader.load))
  await settle()
  const failure = new Error('store down')
  loader.reject(failure)
  for (const result of await Promise.allSettled(gets)) {
    assert.equal(result.status, 'rejected')
    assert.equal(result.status === 'rejected' ? result.reason : undefined, failure)
  }
  assert.equal(cache.size, 0)
  assert.equal(await cache.get('k', async () => 'v2'), 'v2')
  assert.equal(loader.calls, 1)
})

test('a loader that throws synchronously rejects and leaves no flight behind', async (t) => {
  const { cache } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  const failing = (): Promise<string | undefined> => {
    throw new Error('sync failure')
  }
  await assert.rejects(cache.get('k', failing), /sync failure/)
  assert.equal(await cache.get('k', async () => 'v'), 'v')
})

test('delete during a load keeps its result out of the cache', async (t) => {
  const { cache } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  const stale = controlledLoader<string>()
  const waiting = cache.get('k', stale.load)
  await settle()
  cache.delete('k')
  // A get after the delete must not join the stale load.
  const fresh = controlledLoader<string>()
  const after = cache.get('k', fresh.load)
  await settle()
  assert.equal(fresh.calls, 1)
  stale.resolve('stale')
  assert.equal(await waiting, 'stale')
  assert.equal(cache.peek('k'), undefined)
  fresh.resolve('fresh')
  assert.equal(await after, 'fresh')
  assert.equal(cache.peek('k'), 'fresh')
})

test('set during a load wins over the loaded value', async (t) => {
  const { cache } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  const loader = controlledLoader<string>()
  const waiting = cache.get('k', loader.load)
  await settle()
  cache.set('k', 'set')
  loader.resolve('loaded')
  assert.equal(await waiting, 'loaded')
  assert.equal(cache.peek('k'), 'set')
})

test('clear drops entries and keeps loads in flight out of the cache', async (t) => {
  const { cache } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  cache.set('a', '1')
  const loader = controlledLoader<string>()
  const waiting = cache.get('b', loader.load)
  await settle()
  cache.clear()
  assert.equal(cache.size, 0)
  loader.resolve('2')
  assert.equal(await waiting, '2')
  assert.equal(cache.size, 0)
})

test('hits and misses count get calls', async (t) => {
  const { cache, clock } = newCache(t, { expiryAnyMs: 100, expiryUnusedMs: 0 })
  const loader = counting('v')
  await cache.get('a', loader.load) // miss
  await cache.get('a', loader.load) // hit
  await cache.get('a', loader.load) // hit
  await cache.get('b', counting(undefined).load) // miss
  clock.advance(100)
  await cache.get('a', loader.load) // miss: expired
  cache.peek('a')
  assert.equal(cache.hits, 2)
  assert.equal(cache.misses, 3)
})

test('peek never loads', (t) => {
  const { cache } = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 0 })
  assert.equal(cache.peek('k'), undefined)
  assert.equal(cache.size, 0)
  cache.set('k', 'v')
  assert.equal(cache.peek('k'), 'v')
  cache.delete('k')
  assert.equal(cache.peek('k'), undefined)
})

test('negative or non-finite expiries are refused', () => {
  assert.throws(() => new ExpiringCache({ expiryAnyMs: -1, expiryUnusedMs: 0 }), RangeError)
  assert.throws(() => new ExpiringCache({ expiryAnyMs: 0, expiryUnusedMs: Number.NaN }), RangeError)
  assert.throws(() => new ExpiringCache({ expiryAnyMs: Infinity, expiryUnusedMs: 0 }), RangeError)
})

test('the sweep timer runs every min(any, unused)/2 while entries exist', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const { cache, clock } = newCache(t, { expiryAnyMs: 10_000, expiryUnusedMs: 4_000 })
  cache.set('k', 'v')
  clock.advance(4_000)
  t.mock.timers.tick(1_999)
  assert.equal(cache.size, 1)
  t.mock.timers.tick(1)
  assert.equal(cache.size, 0)
})

test('the sweep period is at least one second and at most a minute', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const short = newCache(t, { expiryAnyMs: 10, expiryUnusedMs: 0 })
  short.cache.set('k', 'v')
  short.clock.advance(10)
  t.mock.timers.tick(999)
  assert.equal(short.cache.size, 1)
  t.mock.timers.tick(1)
  assert.equal(short.cache.size, 0)

  const long = newCache(t, { expiryAnyMs: 0, expiryUnusedMs: 3_600_000 })
  long.cache.set('k', 'v')
  long.clock.advance(3_600_000)
  t.mock.timers.tick(59_999)
  assert.equal(long.cache.size, 1)
  t.mock.timers.tick(1)
  assert.equal(long.cache.size, 0)
})

test('close stops the sweep timer', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const { cache, clock } = newCache(t, { expiryAnyMs: 2_000, expiryUnusedMs: 0 })
  cache.set('a', '1')
  cache.close()
  assert.equal(cache.size, 0)
  cache.set('b', '2')
  clock.advance(2_000)
  t.mock.timers.tick(10_000)
  assert.equal(cache.size, 1) // nobody swept it
  assert.equal(cache.peek('b'), undefined) // but it is not served
})
