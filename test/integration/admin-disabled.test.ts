// `admin.identity: disabled` means nobody is admin: every caller, including
// the certificate that would otherwise be root, goes through the policies.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { FS_KEYSTORE, TestEnv, adminConfig, makeClient, serverPerSuite } from './harness.js'

const wouldBeRoot = makeClient('would-be-root')
const app = makeClient('app')

const config = adminConfig(
  'disabled',
  `policy:
  app:
    allow:
    - /v1/key/create/app-*
    - /v1/key/list/*
    identities:
    - ${app.identity}
${FS_KEYSTORE}`,
)

// Routes only the admin (or a policy allowing them) may call.
const adminOnly: Array<[string, string, object | undefined]> = [
  ['POST', '/v1/key/create/root-key', undefined],
  ['GET', '/v1/key/list/*', undefined],
  ['POST', '/v1/policy/write/p', { allow: ['/v1/key/*'] }],
  ['GET', '/v1/policy/list/*', undefined],
  ['GET', '/v1/policy/read/app', undefined],
  ['DELETE', '/v1/policy/delete/app', undefined],
  ['POST', `/v1/identity/assign/app/${'e'.repeat(64)}`, undefined],
  ['GET', '/v1/identity/list/*', undefined],
  ['DELETE', `/v1/identity/forget/${app.identity}`, undefined],
]

describe('admin.identity: disabled', () => {
  const env = serverPerSuite(config)

  test('the server has no admin identity', () => {
    assert.equal(env().server?.state.access.adminIdentity, undefined)
  })

  for (const [method, target, body] of adminOnly) {
    test(`${method} ${target} is 403 for a client without a policy`, async () => {
      for (const http2 of [false, true]) {
        const res = await env().request(wouldBeRoot, target, { method, body, http2 })
        assert.equal(res.status, 403, `${http2 ? 'h2' : 'h1'}: ${res.text}`)
        assert.deepEqual(res.json, { message: 'prohibited by policy' })
      }
    })
  }

  test('policies still apply: the policy-bound client gets what it is allowed, and only that', async () => {
    assert.equal((await env().request(app, '/v1/key/create/app-1', { method: 'POST' })).status, 200)
    const list = await env().request(app, '/v1/key/list/*')
    assert.equal(list.status, 200)
    assert.equal(list.text, '{"name":"app-1"}\n')
    const denied = await env().request(app, '/v1/policy/list/*')
    assert.equal(denied.status, 403)
    assert.deepEqual(denied.json, { message: 'prohibited by policy' })
    // The would-be root still can't see the key the app created.
    assert.equal((await env().request(wouldBeRoot, '/v1/key/generate/app-1', { method: 'POST', body: {} })).status, 403)
  })
})

describe('the certificate that is root when configured is nobody when the admin is disabled', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
  })
  after(async () => {
    await env.dispose()
  })

  test('root, then disabled after a restart', async () => {
    await env.start(config.replace('identity: disabled', `identity: ${wouldBeRoot.identity}`))
    try {
      assert.equal((await env.request(wouldBeRoot, '/v1/policy/list/*')).status, 200)
    } finally {
      await env.stop()
    }
    await env.start(config)
    try {
      const res = await env.request(wouldBeRoot, '/v1/policy/list/*')
      assert.equal(res.status, 403)
      assert.deepEqual(res.json, { message: 'prohibited by policy' })
    } finally {
      await env.stop()
    }
  })
})
