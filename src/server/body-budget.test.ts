import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BodyBudget } from './body-budget.js'

test('body budget: the per-connection cap, released bytes come back', () => {
  const budget = new BodyBudget({ bodyBytesPerConnection: 100, bodyBytesTotal: 1000 })
  const conn = {}
  const a = budget.account(conn)
  const b = budget.account(conn)
  assert.equal(a.charge(60), true)
  assert.equal(b.charge(50), false, 'over the connection cap')
  assert.equal(b.charge(40), true)
  assert.equal(budget.inFlight, 100)
  // Another connection is not affected.
  assert.equal(budget.account({}).charge(100), true)
  a.release()
  assert.equal(budget.inFlight, 140)
  assert.equal(budget.account(conn).charge(60), true)
  // A released account charges nothing more.
  assert.equal(a.charge(1), false)
  a.release()
  assert.equal(budget.inFlight, 200)
})

test('body budget: the server-wide cap spans connections', () => {
  const budget = new BodyBudget({ bodyBytesPerConnection: 100, bodyBytesTotal: 150 })
  const a = budget.account({})
  const b = budget.account({})
  assert.equal(a.charge(100), true)
  assert.equal(b.charge(60), false)
  assert.equal(b.charge(50), true)
  b.release()
  a.release()
  assert.equal(budget.inFlight, 0)
})
