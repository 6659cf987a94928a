import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RandomPool, randomPool } from './random-pool.js'

test('take returns buffers of the requested length, zero included', () => {
  const pool = new RandomPool(64)
  for (const n of [0, 1, 12, 16, 28, 63, 64, 65, 1000]) assert.equal(pool.take(n).length, n)
})

test('take never returns the same bytes twice', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 20_000; i++) {
    const chunk = randomPool.take(16).toString('hex')
    assert.equal(seen.has(chunk), false)
    seen.add(chunk)
  }
})

test('handed-out bytes are zeroed in the pool, and refills happen when it runs dry', () => {
  const pools: Buffer[] = []
  let fills = 0
  const pool = new RandomPool(32, (b) => {
    fills++
    pools.push(b)
    b.fill(0xa0 + fills)
  })
  const first = pool.take(10)
  assert.deepEqual(first, Buffer.alloc(10, 0xa1))
  const inner = pools[0]
  assert.ok(inner)
  assert.deepEqual(inner.subarray(0, 10), Buffer.alloc(10))
  assert.deepEqual(inner.subarray(10), Buffer.alloc(22, 0xa1))
  assert.deepEqual(pool.take(20), Buffer.alloc(20, 0xa1))
  assert.equal(fills, 1)
  // 2 bytes remain; asking for 3 refills instead of mixing old and new bytes
  assert.deepEqual(pool.take(3), Buffer.alloc(3, 0xa2))
  assert.equal(fills, 2)
  assert.deepEqual(inner.subarray(0, 3), Buffer.alloc(3))
})

test('requests larger than the pool are filled directly, not from the pool', () => {
  const filled: number[] = []
  const pool = new RandomPool(16, (b) => {
    filled.push(b.length)
    b.fill(7)
  })
  assert.deepEqual(pool.take(17), Buffer.alloc(17, 7))
  assert.deepEqual(filled, [17])
})

test('the default pool hands out non-constant bytes', () => {
  const a = randomPool.take(100_000)
  assert.equal(a.length, 100_000)
  assert.notDeepEqual(a.subarray(0, 32), Buffer.alloc(32))
  assert.notDeepEqual(randomPool.take(32), Buffer.alloc(32))
})

test('invalid sizes are rejected', () => {
  assert.throws(() => new RandomPool(0), RangeError)
  assert.throws(() => randomPool.take(-1), RangeError)
  assert.throws(() => randomPool.take(1.5), RangeError)
})

test('takeInto writes fresh bytes where asked, touches nothing else, and refuses what does not fit', () => {
  const pool = new RandomPool(64, (b) => b.fill(0xab))
  const target = Buffer.alloc(40)
  pool.takeInto(target, 10, 28)
  assert.deepEqual([...target.subarray(0, 10)], new Array(10).fill(0))
  assert.deepEqual([...target.subarray(10, 38)], new Array(28).fill(0xab))
  assert.deepEqual([...target.subarray(38)], [0, 0])
  assert.throws(() => pool.takeInto(target, 30, 11), RangeError)
  assert.throws(() => pool.takeInto(target, -1, 1), RangeError)
  // Larger than the pool: filled directly, still only the asked range.
  const big = Buffer.alloc(200)
  pool.takeInto(big, 50, 100)
  assert.equal(big[49], 0)
  assert.equal(big[50], 0xab)
  assert.equal(big[149], 0xab)
  assert.equal(big[150], 0)
})
