// What a PostgreSQL failure becomes for a client: unreachable (503, served from the caches) or
// failed (502), and never a message that quotes a row (a row holds key bytes).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StoreError, StoreUnavailableError } from '../keystore.js'
import { isUnreachable, sqlState, storeErrorOf } from './pg-errors.js'

const coded = (code: string, message = 'failed'): Error => Object.assign(new Error(message), { code })

test('which failures mean the database cannot be reached now', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['connection refused', coded('ECONNREFUSED'), true],
    ['a DNS failure', coded('ENOTFOUND'), true],
    ['admin shutdown (pg_terminate_backend)', coded('57P01'), true],
    ['a standby after fail-over', coded('25006'), true],
    ['class 08: connection failure', coded('08006'), true],
    ['class 08: with letters', coded('08P01'), true],
    ['too many connections', coded('53300'), true],
    ['statement timeout', coded('57014'), true],
    ['node-postgres: connection terminated', new Error('Connection terminated unexpectedly'), true],
    ['node-postgres: connect timeout', new Error('timeout exceeded when trying to connect'), true],
    ['every address refused', new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'connect failed'), true],
    ['an address family missing, another refused', new AggregateError([coded('EAFNOSUPPORT'), coded('ECONNREFUSED')], 'connect failed'), true],
    ['no address reachable for other reasons', new AggregateError([coded('EACCES')], 'connect failed'), false],
    ['a unique violation', coded('23505', 'duplicate key value violates unique constraint'), false],
    ['a missing table', coded('42P01', 'relation "x.keys" does not exist'), false],
    ['a permission error', coded('42501', 'permission denied for table keys'), false],
    ['class 080 is not class 08', coded('0800'), false],
    ['a non-string code', Object.assign(new Error('odd'), { code: 8006 }), false],
    ['not an Error', 'ECONNREFUSED', false],
    ['undefined', undefined, false],
  ]
  for (const [what, err, unreachable] of cases) assert.equal(isUnreachable(err), unreachable, what)
})

test('a failure becomes a StoreError for the operation: unavailable when unreachable, without the row PostgreSQL quotes', () => {
  const secret = 'c2VjcmV0LWtleS1ieXRlcw=='
  const violation = Object.assign(new Error('duplicate key value violates unique constraint "keys_pkey"'), {
    code: '23505',
    detail: `Key (name, value)=(k, ${secret}) already exists.`,
  })
  const failed = storeErrorOf('failed to create key', violation)
  assert.equal(failed.constructor, StoreError)
  assert.equal(failed.op, 'failed to create key')
  assert.equal(failed.message, 'keystore/postgres: 23505: duplicate key value violates unique constraint "keys_pkey"')
  assert.equal(failed.cause, undefined)
  assert.ok(!JSON.stringify({ ...failed, message: failed.message }).includes(secret))

  const down = storeErrorOf('failed to read key', coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'))
  assert.ok(down instanceof StoreUnavailableError)
  assert.equal(down.message, 'keystore/postgres: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5432')

  const uncoded = storeErrorOf('failed to list keys', new Error('Connection terminated unexpectedly'))
  assert.ok(uncoded instanceof StoreUnavailableError)
  assert.equal(uncoded.message, 'keystore/postgres: Connection terminated unexpectedly')

  assert.equal(storeErrorOf('failed to list keys', 'a thrown string').message, 'keystore/postgres: a thrown string')
  // A StoreError (from a lower layer) passes through as it is.
  const inner = new StoreUnavailableError('failed to reach key store', 'keystore/postgres: closed')
  assert.equal(storeErrorOf('failed to read key', inner), inner)
})

test('sqlState is the SQLSTATE of a database error, nothing else', () => {
  assert.equal(sqlState(coded('23505')), '23505')
  assert.equal(sqlState(new Error('no code')), undefined)
  assert.equal(sqlState({ code: '23505' }), undefined)
  assert.equal(sqlState(Object.assign(new Error('numeric'), { code: 5 })), undefined)
})
