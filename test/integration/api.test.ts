// The seed API over real mutual TLS, as root, as policy-bound identities and
// as an identity without a policy (docs/api.md).
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { SEED_CONFIG, app, nopol, ops, other, root } from './fixtures.js'
import { TestEnv } from './harness.js'
import type { Client, Response } from './harness.js'

const CONFIG = SEED_CONFIG

function assertError(res: Response, status: number, message: string): void {
  assert.equal(res.status, status, `status of ${res.text}`)
  assert.deepEqual(res.json, { message })
  assert.match(String(res.headers['content-type']), /^application\/json/)
  assert.equal(res.headers['x-content-type-options'], 'nosniff')
}

for (const http2 of [false, true]) {
  describe(`seed API over ${http2 ? 'HTTP/2' : 'HTTP/1.1'}`, () => {
    let env: TestEnv
    const call = (client: Client, method: string, target: string, body?: string | object): Promise<Response> =>
      env.request(client, target, { method, body, http2 })

    before(async () => {
      env = await TestEnv.create()
      await env.start(CONFIG)
    })
    after(async () => {
      await env.dispose()
    })

    test('/version answers every identity with a certificate', async () => {
      for (const c of [root, nopol, app]) {
        const res = await call(c, 'GET', '/version')
        assert.equal(res.status, 200)
        assert.match(String(res.headers['content-type']), /^application\/json/)
        assert.match((res.json as { version: string }).version, /^\d+\.\d+\.\d+/)
      }
    })

    test('a wrong method is 405 with an Allow header', async () => {
      const res = await call(root, 'GET', '/v1/key/create/x')
      assertError(res, 405, 'Method Not Allowed')
      assert.equal(res.headers['allow'], 'POST, PUT')
      assertError(await call(root, 'POST', '/version'), 405, 'Method Not Allowed')
      assertError(await call(root, 'PUT', '/v1/key/delete/x'), 405, 'Method Not Allowed')
    })

    test('unknown paths are 404 not found', async () => {
      for (const p of ['/', '/v1', '/v1/nope', '/version/', '/v1/key', '/v1/key/unknown/x', '/v1/key//create/x', '/nope/%2F', '/v1/nothing/../version', '/v1/%zz/create']) {
        assertError(await call(nopol, 'GET', p), 404, 'not found')
      }
    })

    test('the path shape is checked after the method (404 → 405 → 400)', async () => {
      for (const p of ['/v1/key/create/a%2Fb', '/v1/key/create/../x', '/v1/key/create/%zz']) {
        const res = await call(root, 'GET', p)
        assertError(res, 405, 'Method Not Allowed')
        assertError(await call(root, 'POST', p), 400, 'invalid path')
      }
      // The absolute form of a request target (RFC 9112 §3.2.2) is a path like any other.
      if (!http2) assert.equal((await call(root, 'GET', `https://127.0.0.1:${env.port}/version`)).status, 200)
    })

    test('key lifecycle as root: create, exists, generate, decrypt, delete', async () => {
      assert.equal((await call(root, 'POST', '/v1/key/create/life-key')).status, 200)
      const again = await call(root, 'POST', '/v1/key/create/life-key')
      assertError(again, 400, 'key does already exist')
      const gen = await call(root, 'POST', '/v1/key/generate/life-key', { context: Buffer.from('ctx').toString('base64') })
      assert.equal(gen.status, 200)
      const { plaintext, ciphertext } = gen.json as { plaintext: string; ciphertext: string }
      assert.equal(Buffer.from(plaintext, 'base64').length, 32)
      const sealed = JSON.parse(Buffer.from(ciphertext, 'base64').toString()) as Record<string, string>
      assert.deepEqual(Object.keys(sealed), ['aead', 'id', 'iv', 'nonce', 'bytes'])
      assert.equal(sealed['aead'], 'AES-256-GCM-HMAC-SHA-256')
      const dec = await call(root, 'POST', '/v1/key/decrypt/life-key', { ciphertext, context: Buffer.from('ctx').toString('base64') })
      assert.equal(dec.status, 200)
      assert.deepEqual(dec.json, { plaintext })
      const wrongCtx = await call(root, 'POST', '/v1/key/decrypt/life-key', { ciphertext, context: Buffer.from('other').toString('base64') })
      assertError(wrongCtx, 400, 'decryption failed: ciphertext is not authentic')
      const noCtx = await call(root, 'POST', '/v1/key/decrypt/life-key', { ciphertext })
      assertError(noCtx, 400, 'decryption failed: ciphertext is not authentic')
      assert.equal((await call(root, 'DELETE', '/v1/key/delete/life-key')).status, 200)
      // Delete is idempotent: the KES 0.17 client suite deletes twice, and its client retries.
      const again2 = await call(root, 'DELETE', '/v1/key/delete/life-key')
      assert.equal(again2.status, 200)
      assert.equal(again2.text, '')
      assertError(await call(root, 'POST', '/v1/key/generate/life-key', {}), 404, 'key does not exist')
    })

    test('the seed examples: import, encrypt, decrypt, delete with POST', async () => {
      const imp = await call(root, 'POST', '/v1/key/import/my-key', { bytes: 'uNta318uv2GvEmMs5U4HiIWE/GtrpADR0cYZg+nhrkI=' })
      assert.equal(imp.status, 200)
      assert.equal(imp.text, '')
      const enc = await call(root, 'POST', '/v1/key/encrypt/my-key', { plaintext: 'SGVsbG8gV29ybGQhCg==' })
      assert.equal(enc.status, 200)
      const { ciphertext } = enc.json as { ciphertext: string }
      const dec = await call(root, 'POST', '/v1/key/decrypt/my-key', { ciphertext })
      assert.deepEqual(dec.json, { plaintext: 'SGVsbG8gV29ybGQhCg==' })
      // The id in the ciphertext is the first 16 bytes of SHA-256(key), as KES writes it.
      const sealed = JSON.parse(Buffer.from(ciphertext, 'base64').toString()) as { id: string }
      const { createHash } = await import('node:crypto')
      const want = createHash('sha256').update(Buffer.from('uNta318uv2GvEmMs5U4HiIWE/GtrpADR0cYZg+nhrkI=', 'base64')).digest('hex').slice(0, 32)
      assert.equal(sealed.id, want)
      // The seed document's own example deletes with POST.
      assert.equal((await call(root, 'POST', '/v1/key/delete/my-key')).status, 200)
    })

    test('import: current-client form, ChaCha20 keys, and bad keys', async () => {
      const key = Buffer.alloc(32, 7).toString('base64')
      assert.equal((await call(root, 'PUT', '/v1/key/import/imp-chacha', { key, cipher: 'ChaCha20' })).status, 200)
      const enc = await call(root, 'POST', '/v1/key/encrypt/imp-chacha', { plaintext: 'aGk=' })
      const sealed = JSON.parse(Buffer.from((enc.json as { ciphertext: string }).ciphertext, 'base64').toString()) as { aead: string }
      assert.equal(sealed.aead, 'ChaCha20Poly1305')
      assertError(await call(root, 'POST', '/v1/key/import/imp-short', { bytes: Buffer.alloc(16).toString('base64') }), 400, 'invalid key')
      assertError(await call(root, 'POST', '/v1/key/import/imp-none', {}), 400, 'invalid key')
      assertError(await call(root, 'POST', '/v1/key/import/imp-chacha', { key }), 400, 'key does already exist')
      // The body is checked before the existence of the key.
      assertError(await call(root, 'POST', '/v1/key/import/imp-chacha', { key: 'AAAA' }), 400, 'invalid key')
      assertError(await call(root, 'POST', '/v1/key/import/imp-x', { key, cipher: 'DES' }), 400, 'invalid cipher: must be AES256 or ChaCha20')
    })

    test('list: nd-json sorted, glob and prefix patterns', async () => {
      for (const n of ['lst-b', 'lst-a', 'lst-c1', 'other-lst']) {
        assert.equal((await call(root, 'POST', `/v1/key/create/${n}`)).status, 200)
      }
      const res = await call(root, 'GET', '/v1/key/list/lst-*')
      assert.equal(res.status, 200)
      assert.equal(res.headers['content-type'], 'application/x-ndjson')
      assert.equal(res.text, '{"name":"lst-a"}\n{"name":"lst-b"}\n{"name":"lst-c1"}\n')
      const prefix = await call(root, 'GET', '/v1/key/list/lst-c')
      assert.equal(prefix.text, '{"name":"lst-c1"}\n')
      const q = await call(root, 'GET', '/v1/key/list/lst-%3F')
      assert.equal(q.text, '{"name":"lst-a"}\n{"name":"lst-b"}\n')
      const all = await call(root, 'GET', '/v1/key/list')
      const names = all.text.trim().split('\n').map((l) => (JSON.parse(l) as { name: string }).name)
      assert.deepEqual(names, [...names].sort())
      assert.ok(names.includes('other-lst'))
      assertError(await call(root, 'GET', '/v1/key/list/%5B'), 400, 'invalid pattern')
      const none = await call(root, 'GET', '/v1/key/list/zzz')
      assert.equal(none.status, 200)
      assert.equal(none.text, '')
    })

    test('generate: an empty body is {}, bad bodies are 400', async () => {
      await call(root, 'POST', '/v1/key/create/gen-key')
      assert.equal((await call(root, 'POST', '/v1/key/generate/gen-key')).status, 200)
      assertError(await call(root, 'POST', '/v1/key/generate/gen-key', '{"context":'), 400, 'invalid json')
      assertError(await call(root, 'POST', '/v1/key/generate/gen-key', '[]'), 400, 'invalid json')
      assertError(await call(root, 'POST', '/v1/key/generate/gen-key', { context: 'not base64!' }), 400, "invalid json: 'context' is not valid base64")
      assertError(await call(root, 'POST', '/v1/key/generate/gen-key', { context: 42 }), 400, "invalid json: 'context' must be a base64 string")
      // Body errors come before the key lookup.
      assertError(await call(root, 'POST', '/v1/key/generate/no-such-key', '{'), 400, 'invalid json')
    })

    test('decrypt: malformed ciphertexts are 400 invalid ciphertext', async () => {
      await call(root, 'POST', '/v1/key/create/dec-key')
      for (const ciphertext of ['not base64', 'AAAA', '', 'e30=']) {
        assertError(await call(root, 'POST', '/v1/key/decrypt/dec-key', { ciphertext }), 400, 'invalid ciphertext')
      }
      assertError(await call(root, 'POST', '/v1/key/decrypt/dec-key', {}), 400, 'invalid ciphertext')
      const empty = await call(root, 'POST', '/v1/key/encrypt/dec-key', { plaintext: '' })
      const back = await call(root, 'POST', '/v1/key/decrypt/dec-key', { ciphertext: (empty.json as { ciphertext: string }).ciphertext })
      assert.deepEqual(back.json, { plaintext: '' })
    })

    test('bodies over 1 MiB are 413', async () => {
      await call(root, 'POST', '/v1/key/create/big-key')
      const big = JSON.stringify({ plaintext: Buffer.alloc(800 * 1024).toString('base64') })
      assertError(await call(root, 'POST', '/v1/key/encrypt/big-key', big), 413, 'request body too large')
      // Far over the limit: on HTTP/2 the rest must be discarded without stalling the connection.
      const huge = JSON.stringify({ plaintext: Buffer.alloc(3 << 20).toString('base64') })
      assertError(await call(root, 'POST', '/v1/key/encrypt/big-key', huge), 413, 'request body too large')
      // The connection (or session) is still usable afterwards.
      assert.equal((await call(root, 'GET', '/version')).status, 200)
      const fits = JSON.stringify({ plaintext: Buffer.alloc(700 * 1024).toString('base64') })
      assert.equal((await call(root, 'POST', '/v1/key/encrypt/big-key', fits)).status, 200)
      // APIs without a body ignore one, within the same limit.
      assert.equal((await call(root, 'POST', '/v1/key/create/body-ignored', Buffer.alloc(200 * 1024))).status, 200)
      assertError(await call(root, 'POST', '/v1/key/create/body-too-big', Buffer.alloc((1 << 20) + 1)), 413, 'request body too large')
      // (Node's HTTP/2 client sends no body with a GET.)
      if (!http2) assertError(await call(root, 'GET', '/version', Buffer.alloc((1 << 20) + 1)), 413, 'request body too large')
      assert.equal((await call(root, 'GET', '/version')).status, 200)
    })

    test('invalid names and paths are 400 before authorization', async () => {
      const cases: Array<[string, string]> = [
        ['/v1/key/create/', 'invalid key name'],
        ['/v1/key/create', 'invalid key name'],
        ['/v1/key/create/has%20space', 'invalid key name'],
        ['/v1/key/create/.hidden', 'invalid key name'],
        ['/v1/key/create/glob*', 'invalid key name'],
        ['/v1/key/create/unic%C3%B6de', 'invalid key name'],
        ['/v1/key/create/a/b', 'invalid key name'],
        ['/v1/key/create/' + 'k'.repeat(256), 'invalid key name'],
        ['/v1/key/create/a%2Fb', 'invalid path'],
        ['/v1/key/create/..', 'invalid path'],
        ['/v1/key/create/%2E%2E', 'invalid path'],
        ['/v1/key/create/.', 'invalid path'],
        ['/v1/key/create/%zz', 'invalid path'],
        ['/v1/policy/write/bad%20name', 'invalid policy name'],
        ['/v1/identity/forget/not-hex', 'invalid identity'],
        ['/v1/identity/assign/p1/' + 'A'.repeat(64), 'invalid identity'],
      ]
      for (const [p, message] of cases) {
        for (const c of [root, nopol]) {
          const method = p.startsWith('/v1/identity/forget') ? 'DELETE' : 'POST'
          assertError(await call(c, method, p), 400, message)
        }
      }
      assert.equal((await call(root, 'POST', '/v1/key/create/' + 'k'.repeat(255))).status, 200)
      assert.equal((await call(root, 'POST', '/v1/key/create/query-ok?x=1')).status, 200)
    })

    test('authorization table: policies, denials before lookups', async () => {
      await call(root, 'POST', '/v1/key/create/my-auth')
      await call(root, 'POST', '/v1/key/create/other-auth')
      await call(root, 'POST', '/v1/key/create/my-secret-auth')
      const rows: Array<[Client, string, string, number, string?]> = [
        [app, 'POST', '/v1/key/create/my-auth-new', 200],
        [app, 'POST', '/v1/key/create/other-auth-new', 403, 'prohibited by policy'],
        [app, 'POST', '/v1/key/generate/my-auth', 200],
        [app, 'POST', '/v1/key/generate/my-secret-auth', 403, 'prohibited by policy'],
        [app, 'POST', '/v1/key/generate/other-auth', 403, 'prohibited by policy'],
        [app, 'POST', '/v1/key/generate/no-such-key', 403, 'prohibited by policy'],
        [app, 'POST', '/v1/key/generate/my-no-such-key', 404, 'key does not exist'],
        [app, 'POST', '/v1/key/encrypt/my-secret-auth', 200],
        [app, 'DELETE', '/v1/key/delete/my-auth', 403, 'prohibited by policy'],
        [app, 'POST', '/v1/key/import/my-imp', 403, 'prohibited by policy'],
        [app, 'GET', '/v1/key/list/*', 200],
        [app, 'GET', '/v1/key/list', 200],
        [app, 'GET', '/v1/policy/list/*', 403, 'prohibited by policy'],
        [app, 'GET', '/v1/identity/list/*', 403, 'prohibited by policy'],
        [app, 'POST', '/v1/policy/write/p-app', 403, 'prohibited by policy'],
        [nopol, 'GET', '/v1/key/list/*', 403, 'prohibited by policy'],
        [nopol, 'POST', '/v1/key/generate/my-auth', 403, 'prohibited by policy'],
        [nopol, 'POST', '/v1/key/create/x-nopol', 403, 'prohibited by policy'],
        [nopol, 'GET', '/v1/policy/read/my-app', 403, 'prohibited by policy'],
        [nopol, 'DELETE', '/v1/identity/forget/' + nopol.identity, 403, 'prohibited by policy'],
        [ops, 'POST', '/v1/key/create/x-ops', 403, 'prohibited by policy'],
        [ops, 'GET', '/v1/policy/list/*', 200],
        [ops, 'GET', '/v1/policy/read/my-app', 200],
        [ops, 'GET', '/v1/identity/list/*', 200],
        [ops, 'POST', `/v1/identity/assign/my-app/${ops.identity}`, 403, 'identity cannot assign policy to itself'],
        [ops, 'POST', `/v1/identity/assign/my-app/${root.identity}`, 400, 'identity is root'],
        [ops, 'DELETE', `/v1/identity/forget/${root.identity}`, 400, 'identity is root'],
        [ops, 'DELETE', '/v1/key/delete/other-auth', 200],
        [root, 'POST', '/v1/key/generate/my-secret-auth', 200],
      ]
      for (const [c, method, p, status, message] of rows) {
        const res = await call(c, method, p, method === 'POST' || method === 'PUT' ? {} : undefined)
        if (message === undefined) assert.equal(res.status, status, `${c.name} ${method} ${p}: ${res.text}`)
        else assertError(res, status, message)
      }
    })

    test('policies: write, read, list, delete; config policies are fixed', async () => {
      const w = await call(ops, 'POST', '/v1/policy/write/pol-a', { paths: ['/v1/key/generate/pol-*', '/v1/key/decrypt/pol-*'] })
      assert.equal(w.status, 200)
      const r = await call(ops, 'GET', '/v1/policy/read/pol-a')
      // Read back in the form it was written in (the seed's), nothing more.
      assert.deepEqual(r.json, { paths: ['/v1/key/generate/pol-*', '/v1/key/decrypt/pol-*'] })
      await call(ops, 'POST', '/v1/policy/write/pol-b', { allow: ['/v1/key/list/*'], deny: ['/v1/key/list/x'] })
      assert.deepEqual((await call(ops, 'GET', '/v1/policy/read/pol-b')).json, { allow: ['/v1/key/list/*'], deny: ['/v1/key/list/x'] })
      const list = await call(ops, 'GET', '/v1/policy/list/*')
      assert.equal(list.status, 200)
      const names = list.json as string[]
      assert.deepEqual(names, [...names].sort())
      for (const n of ['my-app', 'ops', 'pol-a', 'pol-b']) assert.ok(names.includes(n), n)
      assert.deepEqual((await call(ops, 'GET', '/v1/policy/list/pol-*')).json, ['pol-a', 'pol-b'])
      assertError(await call(ops, 'POST', '/v1/policy/write/my-app', { allow: [] }), 400, "policy 'my-app' is defined in the server configuration")
      assertError(await call(ops, 'DELETE', '/v1/policy/delete/ops'), 400, "policy 'ops' is defined in the server configuration")
      assertError(await call(ops, 'POST', '/v1/policy/write/pol-bad', { allow: ['/v1/key/['] }), 400, "invalid policy: syntax error in pattern '/v1/key/['")
      assertError(await call(ops, 'GET', '/v1/policy/read/pol-none'), 404, 'policy does not exist')
      assert.equal((await call(ops, 'DELETE', '/v1/policy/delete/pol-a')).status, 200)
      assertError(await call(ops, 'DELETE', '/v1/policy/delete/pol-a'), 404, 'policy does not exist')
      assertError(await call(ops, 'GET', '/v1/policy/read/pol-a'), 404, 'policy does not exist')
    })

    test('identities: assign grants, forget revokes, policy delete removes assignments', async () => {
      await call(root, 'POST', '/v1/key/create/id-key')
      assertError(await call(other, 'POST', '/v1/key/generate/id-key', {}), 403, 'prohibited by policy')
      await call(ops, 'POST', '/v1/policy/write/id-pol', { allow: ['/v1/key/generate/id-*'] })
      assertError(await call(ops, 'POST', `/v1/identity/assign/no-such-pol/${other.identity}`), 404, 'policy does not exist')
      assert.equal((await call(ops, 'POST', `/v1/identity/assign/id-pol/${other.identity}`)).status, 200)
      assert.equal((await call(other, 'POST', '/v1/key/generate/id-key', {})).status, 200)
      assertError(await call(other, 'POST', '/v1/key/decrypt/id-key', {}), 403, 'prohibited by policy')
      const list = await call(ops, 'GET', '/v1/identity/list/*')
      const ids = list.json as Record<string, string>
      assert.equal(ids[other.identity], 'id-pol')
      assert.equal(ids[app.identity], 'my-app')
      assert.equal(ids[root.identity], undefined)
      assert.deepEqual(Object.keys(ids), Object.keys(ids).sort())
      assertError(await call(ops, 'POST', `/v1/identity/assign/ops/${app.identity}`), 400, `identity '${app.identity}' is defined in the server configuration`)
      // Deleting the policy removes its assignments: re-creating it restores nothing.
      assert.equal((await call(ops, 'DELETE', '/v1/policy/delete/id-pol')).status, 200)
      assertError(await call(other, 'POST', '/v1/key/generate/id-key', {}), 403, 'prohibited by policy')
      await call(ops, 'POST', '/v1/policy/write/id-pol', { allow: ['/v1/key/generate/id-*'] })
      assertError(await call(other, 'POST', '/v1/key/generate/id-key', {}), 403, 'prohibited by policy')
      assert.equal(((await call(ops, 'GET', '/v1/identity/list/*')).json as Record<string, string>)[other.identity], undefined)
      // forget
      await call(ops, 'POST', `/v1/identity/assign/id-pol/${other.identity}`)
      assert.equal((await call(other, 'POST', '/v1/key/generate/id-key', {})).status, 200)
      assert.equal((await call(ops, 'DELETE', `/v1/identity/forget/${other.identity}`)).status, 200)
      assertError(await call(other, 'POST', '/v1/key/generate/id-key', {}), 403, 'prohibited by policy')
      assertError(await call(ops, 'DELETE', `/v1/identity/forget/${other.identity}`), 404, 'identity does not exist')
    })
  })
}
