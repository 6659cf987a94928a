// A policy is read back in the form it was written in (`allow`/`deny` or the
// seed's `paths`); the form is stored with it, and records written before the
// form existed read back as allow/deny.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMemStore } from '../keystore/mem/mem-store.js'
import { ErrorLog } from '../log/error-log.js'
import { AccessControl } from './access.js'
import type { PolicyForm } from './access.js'

const ADMIN = 'a'.repeat(64)
const APP = 'b'.repeat(64)
const GEN = '/v1/key/generate/k'

function setup(): { access: AccessControl; store: ReturnType<typeof createMemStore> } {
  const store = createMemStore()
  const access = new AccessControl({
    adminIdentity: ADMIN,
    policies: new Map([
      ['cfg-paths', { allow: [GEN], deny: [], identities: [], form: 'paths' as const }],
      ['cfg-allow', { allow: [GEN], deny: [], identities: [], form: 'allow-deny' as const }],
      ['cfg-unset', { allow: [GEN], deny: [], identities: [] }],
    ]),
    store,
    errorLog: new ErrorLog({ enabled: false }),
  })
  return { access, store }
}

const written: Array<{ name: string; form: PolicyForm | undefined; deny: string[]; want: PolicyForm }> = [
  { name: 'seed form', form: 'paths', deny: [], want: 'paths' },
  { name: 'allow/deny form', form: 'allow-deny', deny: [], want: 'allow-deny' },
  { name: 'no form given', form: undefined, deny: [], want: 'allow-deny' },
  { name: 'seed form with deny rules (never hides them)', form: 'paths', deny: ['/v1/key/generate/x'], want: 'allow-deny' },
]
for (const c of written) {
  test(`written in the ${c.name}: read back as ${c.want}, and the stored record says so`, async (t) => {
    const { access, store } = setup()
    t.after(() => access.close())
    await access.writePolicy('p', { allow: [GEN], deny: c.deny }, ADMIN, c.form)
    const info = await access.readPolicy('p')
    assert.equal(info.form, c.want)
    assert.deepEqual([info.allow, info.deny], [[GEN], c.deny])
    const record = JSON.parse((await store.policies.get('p'))?.toString('utf8') ?? '') as Record<string, unknown>
    assert.equal(record['form'], c.want)
  })
}

const stored: Array<{ name: string; record: object; want: PolicyForm }> = [
  { name: 'a record from before the form existed', record: { allow: [GEN], deny: [] }, want: 'allow-deny' },
  { name: 'a paths record', record: { allow: [GEN], deny: [], form: 'paths' }, want: 'paths' },
  { name: 'a paths record with deny rules', record: { allow: [GEN], deny: ['/x'], form: 'paths' }, want: 'allow-deny' },
  { name: 'an unknown form', record: { allow: [GEN], deny: [], form: 'yaml' }, want: 'allow-deny' },
]
for (const c of stored) {
  test(`${c.name} reads back as ${c.want} and still grants`, async (t) => {
    const { access, store } = setup()
    t.after(() => access.close())
    await store.policies.put('old', Buffer.from(JSON.stringify(c.record)))
    assert.equal((await access.readPolicy('old')).form, c.want)
    await access.assign('old', APP, ADMIN)
    assert.equal(await access.allows(APP, GEN), true)
  })
}

test('config policies keep the form they were configured in (allow/deny when unset)', async (t) => {
  const { access } = setup()
  t.after(() => access.close())
  assert.equal((await access.readPolicy('cfg-paths')).form, 'paths')
  assert.equal((await access.readPolicy('cfg-allow')).form, 'allow-deny')
  assert.equal((await access.readPolicy('cfg-unset')).form, 'allow-deny')
})

test('rewriting a policy in the other form changes the form it is read in', async (t) => {
  const { access } = setup()
  t.after(() => access.close())
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN, 'paths')
  assert.equal((await access.readPolicy('p')).form, 'paths')
  await access.writePolicy('p', { allow: [GEN], deny: [] }, ADMIN, 'allow-deny')
  assert.equal((await access.readPolicy('p')).form, 'allow-deny')
})
