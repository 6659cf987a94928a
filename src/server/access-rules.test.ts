// The rules of AccessControl one by one, each with a test that fails when the
// rule is broken (written against the mutants Stryker found surviving in
// access.ts; see README "Mutation testing").
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { ErrIdentityIsRoot, ErrIdentityNotFound, ErrPolicyNotFound, KesError } from '../api/errors.js'
import { StoreError } from '../keystore/keystore.js'
import type { KeyStore, Table, TableName } from '../keystore/keystore.js'
import { createMemStore } from '../keystore/mem/mem-store.js'
import { ErrorLog } from '../log/error-log.js'
import { AccessControl } from './access.js'
import { checkedTable, withTables } from '../../test/support/table.js'

const ADMIN = 'a'.repeat(64)
const APP = 'b'.repeat(64)
const OPS = 'c'.repeat(64)
const DEV = 'd'.repeat(64)
const GEN = '/v1/key/generate/k'
const LIST = '/v1/key/list/*'

type Op = keyof Table

interface Setup {
  access: AccessControl
  store: KeyStore
  errors: string[]
  /** From now on `table.op` of the store throws a StoreError. */
  fail(table: TableName, op: Op): void
}

/** AccessControl over a memory store, with the config policy `fixed` for OPS. */
function setup(t: TestContext): Setup {
  const inner = createMemStore()
  const failing = new Set<string>()
  // deleteIf fails with delete: both remove an entry.
  const wrap = (name: TableName): Table =>
    checkedTable(inner[name], (op) => {
      const what = op === 'deleteIf' ? 'delete' : op
      if (failing.has(`${name}.${what}`)) throw new StoreError(`failed to ${what}`, 'broken')
    })
  const store = withTables(inner, { policies: wrap('policies'), identities: wrap('identities') })
  const errors: string[] = []
  const access = new AccessControl({
    adminIdentity: ADMIN,
    policies: new Map([['fixed', { allow: [LIST], deny: [], identities: [OPS] }]]),
    store,
    errorLog: new ErrorLog({ enabled: true, sink: (l) => errors.push(l) }),
  })
  t.after(() => access.close())
  return { access, store, errors, fail: (table, op) => failing.add(`${table}.${op}`) }
}

/** Asserts that `p` rejects with a KesError of this status and message. */
async function rejectsWith(p: Promise<unknown>, status: number, message: string): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof KesError, String(e))
    assert.equal(e.status, status)
    assert.equal(e.message, message)
    return true
  })
}

const put = (table: Table, name: string, value: unknown): Promise<void> =>
  table.put(name, Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)))

test('the admin identity is what was configured', (t) => {
  const { access } = setup(t)
  assert.equal(access.adminIdentity, ADMIN)
})

test('config policies and identities can\'t be changed through the API', async (t) => {
  const { access } = setup(t)
  const policyMsg = "policy 'fixed' is defined in the server configuration"
  const identityMsg = `identity '${OPS}' is defined in the server configuration`
  await rejectsWith(access.writePolicy('fixed', { allow: [], deny: [] }, ADMIN), 400, policyMsg)
  await rejectsWith(access.deletePolicy('fixed'), 400, policyMsg)
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  await rejectsWith(access.assign('p', OPS, ADMIN), 400, identityMsg)
  await rejectsWith(access.forget(OPS), 400, identityMsg)
  // Still the config policy.
  assert.equal(await access.allows(OPS, LIST), true)
  assert.equal(await access.allows(OPS, GEN), false)
})

test('a config identity is authorized without reading the store', async (t) => {
  const { access, fail } = setup(t)
  fail('identities', 'get')
  fail('policies', 'get')
  assert.equal(await access.allows(OPS, LIST), true)
})

test('reading policies: config and stored, all fields, missing is 404', async (t) => {
  const { access, store } = setup(t)
  assert.deepEqual(await access.readPolicy('fixed'), { allow: [LIST], deny: [], form: 'allow-deny', createdAt: undefined, createdBy: undefined })
  await access.writePolicy('p', { allow: [GEN], deny: ['/v1/key/generate/x'] }, OPS)
  const p = await access.readPolicy('p')
  assert.deepEqual(p.allow, [GEN])
  assert.deepEqual(p.deny, ['/v1/key/generate/x'])
  assert.equal(p.createdBy, OPS)
  assert.ok(p.createdAt !== undefined && !Number.isNaN(Date.parse(p.createdAt)))
  await assert.rejects(access.readPolicy('nope'), (e) => e === ErrPolicyNotFound)
  // Fields of the wrong type are left out, not passed on.
  await put(store.policies, 'odd', { allow: [], deny: [], created_at: 5, created_by: ['x'] })
  assert.deepEqual(await access.readPolicy('odd'), { allow: [], deny: [], form: 'allow-deny', createdAt: undefined, createdBy: undefined })
})

test('listing policies: config and stored, sorted, each once', async (t) => {
  const { access } = setup(t)
  for (const name of ['zeta', 'alpha', 'fixee', 'mid']) await access.writePolicy(name, { allow: [], deny: [] }, ADMIN)
  assert.deepEqual(await access.listPolicies(), ['alpha', 'fixed', 'fixee', 'mid', 'zeta'])
})

test('listing identities: config and stored, sorted by identity, never the admin, never a corrupt record', async (t) => {
  const { access, store } = setup(t)
  await access.writePolicy('p', { allow: [], deny: [] }, ADMIN)
  await access.assign('p', DEV, ADMIN)
  await access.assign('p', APP, ADMIN)
  // Written around the API: an assignment of the admin, and a corrupt one.
  await put(store.identities, ADMIN, { policy: 'p' })
  await put(store.identities, 'e'.repeat(64), '{bad')
  assert.deepEqual(await access.listIdentities(), [
    [APP, 'p'],
    [OPS, 'fixed'],
    [DEV, 'p'],
  ])
})

test('deleting a policy removes exactly its assignments, and a missing policy is 404 after removing dangling ones', async (t) => {
  const { access, store } = setup(t)
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  await access.writePolicy('q', { allow: [GEN], deny: [] }, ADMIN)
  await access.assign('p', APP, ADMIN)
  await access.assign('q', DEV, ADMIN)
  await access.deletePolicy('p')
  assert.equal(await store.identities.get(APP), undefined)
  assert.notEqual(await store.identities.get(DEV), undefined)
  assert.equal(await access.allows(DEV, GEN), true)
  // A dangling assignment to a policy that is already gone.
  await put(store.identities, APP, { policy: 'gone' })
  await assert.rejects(access.deletePolicy('gone'), (e) => e === ErrPolicyNotFound)
  assert.equal(await store.identities.get(APP), undefined)
  assert.notEqual(await store.identities.get(DEV), undefined)
})

test('forgetting: the admin is refused, an unknown identity is 404', async (t) => {
  const { access } = setup(t)
  await assert.rejects(access.forget(ADMIN), (e) => e === ErrIdentityIsRoot)
  await assert.rejects(access.forget(APP), (e) => e === ErrIdentityNotFound)
})

test('assignment age: only an assignment older than its policy is void; records without times are honoured', async (t) => {
  const { access, store } = setup(t)
  const old = '2000-01-01T00:00:00.000Z'
  const later = '2001-01-01T00:00:00.000Z'
  const cases: Array<[string, Record<string, string>, Record<string, string>, boolean]> = [
    ['assignment older than policy', { created_at: old }, { created_at: later }, false],
    ['assignment newer than policy', { created_at: later }, { created_at: old }, true],
    ['same time', { created_at: old }, { created_at: old }, true],
    ['assignment without a time (written by KES)', {}, { created_at: later }, true],
    ['policy without a time (written by KES)', { created_at: old }, {}, true],
    ['neither has a time', {}, {}, true],
  ]
  for (const [name, assignment, policy, granted] of cases) {
    await put(store.policies, 'p', { allow: [GEN], deny: [], ...policy })
    await put(store.identities, APP, { policy: 'p', ...assignment })
    access.clearCache()
    assert.equal(await access.allows(APP, GEN), granted, name)
  }
})

test('what a grant read from the store is cached until clearCache()', async (t) => {
  const { access, store } = setup(t)
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  await access.assign('p', APP, ADMIN)
  assert.equal(await access.allows(APP, GEN), true)
  await store.identities.delete(APP) // around the API: the cache doesn't know
  assert.equal(await access.allows(APP, GEN), true)
  access.clearCache()
  assert.equal(await access.allows(APP, GEN), false)
})

test('an identity without an assignment and a missing policy log nothing', async (t) => {
  const { access, errors } = setup(t)
  assert.equal(await access.allows(APP, GEN), false)
  await assert.rejects(access.readPolicy('nope'), (e) => e === ErrPolicyNotFound)
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  assert.deepEqual(errors, [])
})

test('corrupt stored records grant nothing, never throw, and are logged once each', async (t) => {
  const { access, store, errors } = setup(t)
  const identityRecords = ['{bad', 'null', '[]', '"p"', '{"policy":5}', '{}']
  for (const record of identityRecords) {
    await put(store.identities, APP, record)
    access.clearCache()
    const from = errors.length
    assert.equal(await access.allows(APP, GEN), false, record)
    assert.deepEqual(
      errors.slice(from).map((l) => l.replace(/^\S+ /, '')),
      [`keystore: identity '${APP}' is corrupt and is treated as unassigned\n`],
      record,
    )
  }
  await put(store.identities, APP, { policy: 'p' })
  const policyRecords = ['{bad', 'null', '[]', '{"allow":"x","deny":[]}', '{"allow":[],"deny":[1]}', '{"allow":["/v1/key/["],"deny":[]}', '{"deny":[]}']
  for (const record of policyRecords) {
    await put(store.policies, 'p', record)
    access.clearCache()
    const from = errors.length
    assert.equal(await access.allows(APP, GEN), false, record)
    assert.deepEqual(errors.slice(from).map((l) => l.replace(/^\S+ /, '')), ["keystore: policy 'p' is corrupt\n"], record)
    await rejectsWith(access.readPolicy('p'), 502, 'bad gateway: failed to read policy')
  }
})

test('store failures name the operation that failed', async (t) => {
  const cases: Array<[TableName, Op, (a: AccessControl) => Promise<unknown>, string]> = [
    ['policies', 'put', (a) => a.writePolicy('p', { allow: [], deny: [] }, ADMIN), 'failed to write policy'],
    ['policies', 'get', (a) => a.writePolicy('p', { allow: [], deny: [] }, ADMIN), 'failed to read policy'],
    ['policies', 'get', (a) => a.readPolicy('p'), 'failed to read policy'],
    ['policies', 'list', (a) => a.listPolicies(), 'failed to list policies'],
    ['policies', 'delete', (a) => a.deletePolicy('p'), 'failed to delete policy'],
    ['identities', 'delete', (a) => a.deletePolicy('p'), 'failed to delete identity'],
    ['identities', 'list', (a) => a.deletePolicy('p'), 'failed to list identities'],
    ['identities', 'put', (a) => a.assign('p', APP, ADMIN), 'failed to write identity'],
    ['policies', 'get', (a) => a.assign('p', APP, ADMIN), 'failed to read policy'],
    ['identities', 'delete', (a) => a.forget(DEV), 'failed to delete identity'],
    ['identities', 'list', (a) => a.listIdentities(), 'failed to list identities'],
    ['identities', 'get', (a) => a.listIdentities(), 'failed to read identity'],
    ['identities', 'get', (a) => a.allows(DEV, GEN), 'failed to read identity'],
    ['policies', 'get', (a) => a.allows(DEV, GEN), 'failed to read policy'],
  ]
  for (const [table, op, call, what] of cases) {
    const { access, fail, errors } = setup(t)
    await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
    await access.assign('p', DEV, ADMIN)
    access.clearCache()
    fail(table, op)
    await rejectsWith(call(access), 502, `bad gateway: ${what}`)
    assert.ok(errors.some((l) => l.includes(`keystore: ${what}`)), `${what}: ${errors.join('')}`)
  }
})
