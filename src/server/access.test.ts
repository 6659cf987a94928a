import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ErrIdentityIsRoot, ErrPolicyNotFound, ErrSelfAssign, ErrStoreUnavailable, KesError } from '../api/errors.js'
import { StoreError, StoreUnavailableError } from '../keystore/keystore.js'
import type { KeyStore } from '../keystore/keystore.js'
import { createMemStore } from '../keystore/mem/mem-store.js'
import { ErrorLog } from '../log/error-log.js'
import { AccessControl } from './access.js'
import { forwardingTable, withTables } from '../../test/support/table.js'

const ADMIN = 'a'.repeat(64)
const APP = 'b'.repeat(64)
const OPS = 'c'.repeat(64)
const GEN = '/v1/key/generate/k'

function setup(opts: { adminIdentity?: string | undefined } = { adminIdentity: ADMIN }): { access: AccessControl; store: ReturnType<typeof createMemStore>; errors: string[] } {
  const store = createMemStore()
  const errors: string[] = []
  const access = new AccessControl({
    adminIdentity: opts.adminIdentity,
    policies: new Map([['fixed', { allow: ['/v1/key/list/*'], deny: [], identities: [OPS] }]]),
    store,
    errorLog: new ErrorLog({ enabled: true, sink: (l) => errors.push(l) }),
  })
  return { access, store, errors }
}

test('assign grants, forget revokes, config identities keep their policy', async (t) => {
  const { access } = setup()
  t.after(() => access.close())
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  assert.equal(await access.allows(APP, GEN), false)
  await access.assign('p', APP, ADMIN)
  assert.equal(await access.allows(APP, GEN), true)
  assert.equal(await access.allows(OPS, '/v1/key/list/x'), true)
  await access.forget(APP)
  assert.equal(await access.allows(APP, GEN), false)
  await assert.rejects(access.assign('p', ADMIN, OPS), (e) => e === ErrIdentityIsRoot)
  await assert.rejects(access.assign('p', OPS, OPS), (e) => e === ErrSelfAssign)
  await assert.rejects(access.assign('nope', APP, ADMIN), (e) => e === ErrPolicyNotFound)
})

test('an assignment older than its policy (an assign that raced a delete) grants nothing', async (t) => {
  const { access, store } = setup()
  t.after(() => access.close())
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  await store.identities.put(APP, Buffer.from(JSON.stringify({ policy: 'p', created_at: '2000-01-01T00:00:00.000Z' })))
  access.clearCache()
  assert.equal(await access.allows(APP, GEN), false)
})

test('rewriting a policy keeps its assignments; deleting and re-creating it does not', async (t) => {
  const { access } = setup()
  t.after(() => access.close())
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  await access.assign('p', APP, ADMIN)
  await access.writePolicy('p', { allow: [GEN, '/v1/key/list/*'], deny: [] }, OPS)
  assert.equal(await access.allows(APP, '/v1/key/list/x'), true)
  const info = await access.readPolicy('p')
  assert.equal(info.createdBy, ADMIN)
  await access.deletePolicy('p')
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  assert.equal(await access.allows(APP, GEN), false)
})

test('a corrupt stored policy grants nothing and is a 502 to read', async (t) => {
  const { access, store, errors } = setup()
  t.after(() => access.close())
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
  await access.assign('p', APP, ADMIN)
  await store.policies.put('p', Buffer.from('{bad'))
  access.clearCache()
  assert.equal(await access.allows(APP, GEN), false)
  await assert.rejects(access.readPolicy('p'), (e) => e instanceof KesError && e.status === 502 && e.message === 'bad gateway: failed to read policy')
  assert.ok(errors.some((l) => l.includes("policy 'p' is corrupt")))
})

test('a disabled admin (undefined) makes nobody admin, whoever asks', async (t) => {
  const { access } = setup({ adminIdentity: undefined })
  t.after(() => access.close())
  assert.equal(access.adminIdentity, undefined)
  for (const id of [ADMIN, APP, OPS, '', 'undefined']) assert.equal(access.isAdmin(id), false, id)
  // Without an admin, nobody is refused as "root" and nobody is left out of the listing.
  await access.writePolicy('p', { allow: [GEN], deny: [] }, OPS)
  await access.assign('p', ADMIN, OPS)
  assert.deepEqual(await access.listIdentities(), [[ADMIN, 'p'], [OPS, 'fixed']])
  assert.equal(await access.allows(ADMIN, GEN), true)
  assert.equal(await access.allows(ADMIN, '/v1/policy/list/*'), false)
})

test('the configured admin is admin, and only it', (t) => {
  const { access } = setup()
  t.after(() => access.close())
  assert.equal(access.isAdmin(ADMIN), true)
  assert.equal(access.isAdmin(APP), false)
  assert.equal(access.isAdmin(''), false)
})

/** The store with its identities or policies table failing on get. */
function failingOn(store: KeyStore, table: 'identities' | 'policies', err: () => Error): KeyStore {
  return withTables(store, { [table]: forwardingTable(store[table], { get: async () => Promise.reject(err()) }) })
}

for (const table of ['identities', 'policies'] as const) {
  for (const [kind, err, status] of [
    ['unreachable', () => new StoreUnavailableError('x', 'down'), 503],
    ['failing', () => new StoreError('x', 'broken'), 502],
    ['throwing a plain error', () => new Error('bug'), 502],
  ] as const) {
    test(`allows() rejects with ${status} when the ${table} table is ${kind}, never answers yes`, async (t) => {
      const { access: writer, store } = setup()
      t.after(() => writer.close())
      await writer.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN)
      await writer.assign('p', APP, ADMIN)
      assert.equal(await writer.allows(APP, GEN), true)
      const errors: string[] = []
      const access = new AccessControl({
        adminIdentity: ADMIN,
        policies: new Map(),
        store: failingOn(store, table, err),
        errorLog: new ErrorLog({ enabled: true, sink: (l) => errors.push(l) }),
      })
      t.after(() => access.close())
      const what = table === 'identities' ? 'failed to read identity' : 'failed to read policy'
      await assert.rejects(access.allows(APP, GEN), (e) => {
        assert.ok(e instanceof KesError)
        assert.equal(e.status, status)
        if (status === 503) assert.equal(e, ErrStoreUnavailable)
        else assert.equal(e.message, `bad gateway: ${what}`)
        return true
      })
      assert.equal(errors.length, 1, errors.join(''))
      assert.match(errors[0] ?? '', new RegExp(`keystore: ${what}`))
    })
  }
}
