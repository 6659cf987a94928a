import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { FrozenMap } from './frozen-map.js'

test('a FrozenMap reads like a Map and cannot be changed', () => {
  const source = new Map([['a', 1], ['b', 2]])
  const m = new FrozenMap(source)
  source.set('c', 3)
  assert.equal(m.size, 2)
  assert.equal(m.get('a'), 1)
  assert.equal(m.get('c'), undefined)
  assert.equal(m.has('b'), true)
  assert.deepEqual([...m], [['a', 1], ['b', 2]])
  assert.deepEqual([...m.keys()], ['a', 'b'])
  assert.deepEqual([...m.values()], [1, 2])
  assert.deepEqual([...m.entries()], [['a', 1], ['b', 2]])
  const seen: string[] = []
  m.forEach((v, k, map) => {
    assert.equal(map, m)
    seen.push(`${k}=${v}`)
  })
  assert.deepEqual(seen, ['a=1', 'b=2'])
  assert.equal(Object.isFrozen(m), true)
  assert.equal('set' in m, false)
  assert.equal('delete' in m, false)
  assert.equal('clear' in m, false)
  assert.equal(Object.prototype.toString.call(m), '[object FrozenMap]')
  assert.equal(inspect(m), "FrozenMap(2) { 'a' => 1, 'b' => 2 }")
})
