import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ErrIdentityIsRoot, ErrPolicyNotFound, ErrSelfAssign, KesError } from '../api/errors.js'
import { createMemStore } from '../keystore/mem/mem-store.js'
import { ErrorLog } from '../log/error-log.js'
import { AccessControl } from './access.js'

const ADMIN = 'a'.repeat(64)
const APP = 'b'.repeat(64)
const OPS = 'c'.repeat(64)
const GEN = '/v1/key/generate/k'

function setup(): { access: AccessControl; store: ReturnType<typeof createMemStore>; errors: string[] } {
  const store = createMemStore()
  const errors: string[] = []
  const access = new AccessControl({
    adminIdentity: ADMIN,
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
