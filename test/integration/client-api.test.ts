// Every KesClient method against a real OpenKES server over mutual TLS, over
// HTTP/2 and over HTTP/1.1, as root, as policy-bound identities and as an
// identity without a policy: results, and errors as canonical KesErrors.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  ErrDecrypt,
  ErrIdentityIsRoot,
  ErrIdentityNotFound,
  ErrInvalidCiphertext,
  ErrInvalidKey,
  ErrInvalidKeyName,
  ErrKeyExists,
  ErrKeyNotFound,
  ErrNotAllowed,
  ErrPolicyNotFound,
  ErrSelfAssign,
  KesError,
} from '../../src/api/errors.js'
import type { KesClient } from '../../src/client/kes-client.js'
import { clientFor } from './client-harness.js'
import { SEED_CONFIG, app, nopol, ops, other, root } from './fixtures.js'
import { TestEnv } from './harness.js'

const CONFIG = SEED_CONFIG

/** Asserts that `promise` rejects with a KesError of exactly `want`'s status and message. */
async function rejectsWith(promise: Promise<unknown>, want: KesError): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof KesError, `not a KesError: ${String(err)}`)
    assert.equal(err.status, want.status)
    assert.equal(err.message, want.message)
    return true
  })
}

const bytes = (s: string): Buffer => Buffer.from(s)

for (const http1 of [false, true]) {
  describe(`KesClient against OpenKES over ${http1 ? 'HTTP/1.1' : 'HTTP/2'}`, () => {
    let env: TestEnv
    let asRoot: KesClient
    let asApp: KesClient
    let asOps: KesClient
    let asNopol: KesClient

    before(async () => {
      env = await TestEnv.create()
      await env.start(CONFIG)
      asRoot = clientFor(env, root, { http1 })
      asApp = clientFor(env, app, { http1 })
      asOps = clientFor(env, ops, { http1 })
      asNopol = clientFor(env, nopol, { http1 })
    })
    after(async () => {
      await Promise.all([asRoot.close(), asApp.close(), asOps.close(), asNopol.close()])
      await env.dispose()
    })

    test('version answers every identity', async () => {
      assert.match(await asRoot.version(), /^\d+\.\d+\.\d+/)
      assert.equal(await asNopol.version(), await asRoot.version())
    })

    test('createKey, then again is ErrKeyExists; deleteKey, then again succeeds (idempotent)', async () => {
      await asRoot.createKey('life-key')
      await rejectsWith(asRoot.createKey('life-key'), ErrKeyExists)
      await asRoot.deleteKey('life-key')
      await asRoot.deleteKey('life-key')
      await rejectsWith(asRoot.generateKey('life-key'), ErrKeyNotFound)
      await rejectsWith(asRoot.encrypt('life-key', bytes('x')), ErrKeyNotFound)
    })

    test('generateKey gives a 32-byte data key that decrypts only with its context', async () => {
      await asRoot.createKey('gen-key')
      const dek = await asRoot.generateKey('gen-key', bytes('ctx'))
      assert.equal(dek.plaintext.length, 32)
      assert.deepEqual(await asRoot.decrypt('gen-key', dek.ciphertext, bytes('ctx')), dek.plaintext)
      await rejectsWith(asRoot.decrypt('gen-key', dek.ciphertext, bytes('other')), ErrDecrypt)
      await rejectsWith(asRoot.decrypt('gen-key', dek.ciphertext), ErrDecrypt)
      const noContext = await asRoot.generateKey('gen-key')
      assert.deepEqual(await asRoot.decrypt('gen-key', noContext.ciphertext), noContext.plaintext)
    })

    test('encrypt and decrypt round-trip, also an empty plaintext', async () => {
      await asRoot.createKey('enc-key')
      const sealed = await asRoot.encrypt('enc-key', bytes('hello world'), bytes('ctx'))
      assert.deepEqual(await asRoot.decrypt('enc-key', sealed, bytes('ctx')), bytes('hello world'))
      const empty = await asRoot.encrypt('enc-key', Buffer.alloc(0))
      assert.deepEqual(await asRoot.decrypt('enc-key', empty), Buffer.alloc(0))
      await rejectsWith(asRoot.decrypt('enc-key', bytes('short')), ErrInvalidCiphertext)
    })

    test('importKey takes AES256 and ChaCha20 keys, refuses bad lengths and existing names', async () => {
      const key = Buffer.alloc(32, 7)
      await asRoot.importKey('imp-aes', key)
      await asRoot.importKey('imp-chacha', key, 'ChaCha20')
      const aead = async (name: string): Promise<string> => {
        const sealed = await asRoot.encrypt(name, bytes('hi'))
        return (JSON.parse(sealed.toString()) as { aead: string }).aead
      }
      assert.equal(await aead('imp-aes'), 'AES-256-GCM-HMAC-SHA-256')
      assert.equal(await aead('imp-chacha'), 'ChaCha20Poly1305')
      await rejectsWith(asRoot.importKey('imp-short', Buffer.alloc(16)), ErrInvalidKey)
      await rejectsWith(asRoot.importKey('imp-aes', key), ErrKeyExists)
    })

    test('listKeys: all (sorted), glob and prefix', async () => {
      for (const name of ['ls-b', 'ls-a', 'ls-c1']) await asRoot.createKey(name)
      const all = await asRoot.listKeys()
      assert.deepEqual(
        all.filter((n) => n.startsWith('ls-')),
        ['ls-a', 'ls-b', 'ls-c1'],
      )
      assert.deepEqual(all, [...all].sort())
      assert.deepEqual(await asRoot.listKeys('*'), all)
      assert.deepEqual(await asRoot.listKeys('ls-?'), ['ls-a', 'ls-b'])
      assert.deepEqual(await asRoot.listKeys('ls-c'), ['ls-c1'])
      assert.deepEqual(await asRoot.listKeys('nothing-*'), [])
    })

    test('key names are percent-encoded and checked by the server', async () => {
      await rejectsWith(asRoot.createKey('has space'), ErrInvalidKeyName)
      await rejectsWith(asRoot.createKey(''), ErrInvalidKeyName)
      await rejectsWith(asRoot.createKey('a?b'), ErrInvalidKeyName)
    })

    test('a policy-bound identity gets what its policy allows, and ErrNotAllowed otherwise', async () => {
      await asApp.createKey('my-app-key')
      const dek = await asApp.generateKey('my-app-key')
      assert.deepEqual(await asApp.decrypt('my-app-key', dek.ciphertext), dek.plaintext)
      assert.ok((await asApp.listKeys()).includes('my-app-key'))
      await rejectsWith(asApp.createKey('other-key'), ErrNotAllowed)
      await rejectsWith(asApp.generateKey('my-secret-key'), ErrNotAllowed)
      // Authorization comes before the lookup: a refused caller learns nothing.
      await rejectsWith(asApp.deleteKey('my-app-key'), ErrNotAllowed)
      await rejectsWith(asApp.deleteKey('no-such-key'), ErrNotAllowed)
    })

    test('an identity without a policy is refused everything but version', async () => {
      await rejectsWith(asNopol.listKeys(), ErrNotAllowed)
      await rejectsWith(asNopol.createKey('nopol-key'), ErrNotAllowed)
      await rejectsWith(asNopol.listPolicies(), ErrNotAllowed)
      await rejectsWith(asNopol.listIdentities(), ErrNotAllowed)
    })

    test('policies: write, read, list, delete', async () => {
      await asOps.writePolicy('pol-a', { allow: ['/v1/key/generate/a-*', '/v1/key/decrypt/a-*'], deny: ['/v1/key/generate/a-secret'] })
      await asOps.writePolicy('pol-b', { allow: [], deny: [] })
      assert.deepEqual(await asOps.readPolicy('pol-a'), {
        allow: ['/v1/key/generate/a-*', '/v1/key/decrypt/a-*'],
        deny: ['/v1/key/generate/a-secret'],
      })
      assert.deepEqual(await asOps.readPolicy('pol-b'), { allow: [], deny: [] })
      const all = await asOps.listPolicies()
      assert.ok(['my-app', 'ops', 'pol-a', 'pol-b'].every((p) => all.includes(p)), all.join(','))
      assert.deepEqual(await asOps.listPolicies('pol-*'), ['pol-a', 'pol-b'])
      await asOps.deletePolicy('pol-b')
      await rejectsWith(asOps.readPolicy('pol-b'), ErrPolicyNotFound)
      await rejectsWith(asOps.deletePolicy('pol-b'), ErrPolicyNotFound)
      await rejectsWith(asApp.readPolicy('pol-a'), ErrNotAllowed)
    })

    test('identities: assign, list, forget, and the refusals', async () => {
      await asOps.writePolicy('pol-id', { allow: ['/v1/key/list/*'], deny: [] })
      await asOps.assignIdentity('pol-id', other.identity)
      const listed = await asOps.listIdentities()
      assert.equal(listed[other.identity], 'pol-id')
      assert.equal(listed[app.identity], 'my-app')
      assert.equal(listed[root.identity], undefined)
      assert.deepEqual(Object.keys(listed), Object.keys(listed).sort())
      const prefix = other.identity.slice(0, 10)
      assert.deepEqual(await asOps.listIdentities(`${prefix}*`), { [other.identity]: 'pol-id' })
      await asOps.forgetIdentity(other.identity)
      assert.equal((await asOps.listIdentities())[other.identity], undefined)
      await rejectsWith(asOps.forgetIdentity(other.identity), ErrIdentityNotFound)
      await rejectsWith(asOps.assignIdentity('pol-id', root.identity), ErrIdentityIsRoot)
      await rejectsWith(asOps.assignIdentity('pol-id', ops.identity), ErrSelfAssign)
      await rejectsWith(asOps.assignIdentity('no-such-policy', other.identity), ErrPolicyNotFound)
    })

    test('metrics returns the Prometheus text: the KES families by default, every family as Prometheus', async () => {
      await asRoot.version()
      const text = await asRoot.metrics()
      assert.match(text, /^kes_http_request_success\b/m)
      assert.match(text, /kes_http_response_time_bucket\{le="0.01"\}/)
      assert.match(text, /^kes_http_requests_total \d+$/m)
      assert.doesNotMatch(text, /^process_|^kes_cache_/m)
      const all = await asRoot.metrics('prometheus')
      assert.match(all, /^kes_http_requests_total\{api="\/version",code="200"\} \d+$/m)
      assert.match(all, /^process_cpu_seconds_total /m)
      await rejectsWith(asNopol.metrics(), ErrNotAllowed)
    })

    test('auditLog streams one event per request, the trace request first', async () => {
      const stream = await asRoot.auditLog()
      const events = stream[Symbol.asyncIterator]()
      const first = await events.next()
      assert.equal(first.done, false)
      assert.equal(first.value?.request.path, '/v1/log/audit/trace')
      assert.equal(first.value?.request.identity, root.identity)
      await rejectsWith(asApp.createKey('not-mine'), ErrNotAllowed)
      let seen = await events.next()
      while (seen.done === false && seen.value.request.path !== '/v1/key/create/not-mine') seen = await events.next()
      assert.equal(seen.done, false)
      assert.equal(seen.value?.request.identity, app.identity)
      assert.equal(seen.value?.response.code, 403)
      stream.close()
      assert.deepEqual(await events.next(), { done: true, value: undefined })
      await rejectsWith(asNopol.auditLog(), ErrNotAllowed)
    })

    test('errorLog opens with 200 and closes on request', async () => {
      const stream = await asRoot.errorLog()
      const next = stream[Symbol.asyncIterator]().next()
      stream.close()
      assert.deepEqual(await next, { done: true, value: undefined })
      await rejectsWith(asApp.errorLog(), ErrNotAllowed)
    })
  })
}
