// The client library's key lifecycle calls (rotateKey, rewrap, keyVersions, listDeletedKeys,
// restoreKey, purgeKey) against a real OpenKES server over mutual TLS; and, against canned
// servers, what they send and how they refuse malformed answers.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { ErrDecrypt, ErrKeyNotFound, ErrNotAllowed, KesError } from '../../src/api/errors.js'
import type { KesClient } from '../../src/client/kes-client.js'
import { cannedClientOptions, clientFor, sendJson, trackedResources } from './client-harness.js'
import { SEED_CONFIG, app, root } from './fixtures.js'
import { TestEnv } from './harness.js'

const LIMIT = { timeout: 60_000 }

async function rejectsWith(promise: Promise<unknown>, want: { status: number; message: string | RegExp }): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof KesError, `not a KesError: ${String(err)}`)
    assert.equal(err.status, want.status)
    if (typeof want.message === 'string') assert.equal(err.message, want.message)
    else assert.match(err.message, want.message)
    return true
  })
}

/** The key id a JSON-format ciphertext carries. */
function idOf(ciphertext: Buffer): string | undefined {
  return (JSON.parse(ciphertext.toString('utf8')) as { id?: string }).id
}

const DELETED_NOT_FOUND = { status: 404, message: 'deleted key does not exist' }

for (const http1 of [false, true]) {
  describe(`KesClient key lifecycle calls against OpenKES over ${http1 ? 'HTTP/1.1' : 'HTTP/2'}`, LIMIT, () => {
    let env: TestEnv
    let asRoot: KesClient
    let asApp: KesClient
    const n = (name: string): string => `${name}-${http1 ? 'h1' : 'h2'}`
    before(async () => {
      env = await TestEnv.create()
      // SEED_CONFIG sets no deleted_keys: the default retention keeps deletions.
      await env.start(SEED_CONFIG)
      asRoot = clientFor(env, root, { http1 })
      asApp = clientFor(env, app, { http1, maxRetries: 0 })
    })
    after(async () => {
      await Promise.all([asRoot.close(), asApp.close()])
      await env.dispose()
    })

    test('rotateKey resolves the new version id; keyVersions lists every version, oldest first', async () => {
      const name = n('rot')
      await asRoot.createKey(name)
      const first = await asRoot.keyVersions(name)
      assert.equal(first.length, 1)
      assert.equal(first[0]?.id, (await asRoot.describeKey(name)).id)
      assert.equal(first[0]?.createdBy, root.identity)
      const id1 = await asRoot.rotateKey(name)
      const id2 = await asRoot.rotateKey(name)
      assert.match(id1, /^[0-9a-f]{32}$/)
      assert.notEqual(id1, id2)
      const all = await asRoot.keyVersions(name)
      assert.deepEqual(all.map((v) => v.id), [first[0]?.id, id1, id2])
      for (const v of all) {
        assert.equal(v.createdBy, root.identity)
        assert.ok(v.createdAt !== undefined && !Number.isNaN(Date.parse(v.createdAt)), String(v.createdAt))
      }
      // New ciphertexts name the newest version.
      assert.equal(idOf(await asRoot.encrypt(name, Buffer.from('x'))), id2)
      await rejectsWith(asRoot.rotateKey(n('no-such-key')), ErrKeyNotFound)
      await rejectsWith(asRoot.keyVersions(n('no-such-key')), ErrKeyNotFound)
      await rejectsWith(asApp.rotateKey(name), ErrNotAllowed)
    })

    test('rewrap seals an old ciphertext under the newest version with the same context; the plaintext comes back from decrypt', async () => {
      const name = n('wrap')
      await asRoot.createKey(name)
      const context = Buffer.from('bucket/object')
      const old = await asRoot.generateKey(name, context)
      const newest = await asRoot.rotateKey(name)
      const rewrapped = await asRoot.rewrap(name, old.ciphertext, context)
      assert.equal(idOf(rewrapped), newest)
      assert.deepEqual(await asRoot.decrypt(name, rewrapped, context), old.plaintext)
      // Without a context: as for decrypt.
      const plain = await asRoot.encrypt(name, Buffer.from('no context'))
      assert.deepEqual(await asRoot.decrypt(name, await asRoot.rewrap(name, plain), undefined), Buffer.from('no context'))
      await rejectsWith(asRoot.rewrap(name, old.ciphertext, Buffer.from('other')), ErrDecrypt)
      await rejectsWith(asRoot.rewrap(n('no-such-key'), old.ciphertext, context), ErrKeyNotFound)
      await rejectsWith(asApp.rewrap(name, old.ciphertext, context), ErrNotAllowed)
    })

    test('delete → listDeletedKeys → restoreKey brings every version back; a second restore is 404', async () => {
      const name = n('undo')
      await asRoot.createKey(name)
      const sealed = await asRoot.encrypt(name, Buffer.from('kept'))
      await asRoot.rotateKey(name)
      const versions = await asRoot.keyVersions(name)
      await asRoot.deleteKey(name)
      await rejectsWith(asRoot.describeKey(name), ErrKeyNotFound)
      const listed = await asRoot.listDeletedKeys(name)
      assert.equal(listed.length, 1)
      assert.equal(listed[0]?.name, name)
      assert.equal(listed[0]?.deletedBy, root.identity)
      assert.ok(!Number.isNaN(Date.parse(listed[0]?.deletedAt ?? '')))
      assert.deepEqual(Object.keys(listed[0] ?? {}).sort(), ['deletedAt', 'deletedBy', 'name'])
      // No pattern lists everything, this one included.
      assert.ok((await asRoot.listDeletedKeys()).some((d) => d.name === name))
      assert.deepEqual(await asRoot.listDeletedKeys(n('nothing-like-it')), [])
      await asRoot.restoreKey(name)
      assert.deepEqual(await asRoot.keyVersions(name), versions)
      assert.deepEqual(await asRoot.decrypt(name, sealed), Buffer.from('kept'))
      assert.deepEqual(await asRoot.listDeletedKeys(name), [])
      await rejectsWith(asRoot.restoreKey(name), DELETED_NOT_FOUND)
      await rejectsWith(asApp.restoreKey(name), ErrNotAllowed)
    })

    test('restoreKey refuses a name taken again (409); purgeKey destroys the kept deletion, a second purge is 404', async () => {
      const name = n('taken')
      await asRoot.createKey(name)
      await asRoot.deleteKey(name)
      await asRoot.createKey(name)
      await rejectsWith(asRoot.restoreKey(name), { status: 409, message: new RegExp(`^cannot restore key '${name}': a key with this name exists again`) })
      await rejectsWith(asApp.purgeKey(name), ErrNotAllowed)
      await asRoot.purgeKey(name)
      assert.deepEqual(await asRoot.listDeletedKeys(name), [])
      await rejectsWith(asRoot.purgeKey(name), DELETED_NOT_FOUND)
      await rejectsWith(asRoot.restoreKey(name), DELETED_NOT_FOUND)
      // The key under the name now was not touched by the purge.
      assert.equal((await asRoot.keyVersions(name)).length, 1)
    })
  })
}

describe('KesClient key lifecycle calls against canned servers', LIMIT, () => {
  const tracked = trackedResources()
  after(() => tracked.closeAll())

  test('each call uses its method and path, names escaped; the answers of a KES server without versions parse', async () => {
    const server = await tracked.start((req, res) => {
      if (req.url.startsWith('/v1/key/rotate/')) sendJson(res, 200, { id: 'ab'.repeat(16) })
      else if (req.url.startsWith('/v1/key/rewrap/')) sendJson(res, 200, { ciphertext: Buffer.from('sealed').toString('base64') })
      // A KES server's describe: no versions, the key is its only version.
      else if (req.url.startsWith('/v1/key/describe/')) sendJson(res, 200, { name: 'k', id: 'cd'.repeat(16), algorithm: 'AES256' })
      else if (req.url.startsWith('/v1/key/deleted/')) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.end('{"name":"a","deleted_at":"2024-01-02T03:04:05Z","deleted_by":"ef"}\n{"name":"b","deleted_at":"2024-01-02T03:04:06Z"}\n{"continue_at":""}\n')
      } else if (req.url.startsWith('/v1/key/restore/') || req.url.startsWith('/v1/key/purge/')) {
        res.writeHead(200)
        res.end()
      } else sendJson(res, 404, { message: 'not found' })
    })
    const client = tracked.client(cannedClientOptions(server))
    assert.equal(await client.rotateKey('a b'), 'ab'.repeat(16))
    assert.deepEqual(await client.rewrap('k', Buffer.from('c'), Buffer.from('ctx')), Buffer.from('sealed'))
    assert.deepEqual(await client.keyVersions('k'), [{ id: 'cd'.repeat(16), createdAt: undefined, createdBy: undefined }])
    assert.deepEqual(await client.listDeletedKeys('a*'), [
      { name: 'a', deletedAt: '2024-01-02T03:04:05Z', deletedBy: 'ef' },
      { name: 'b', deletedAt: '2024-01-02T03:04:06Z', deletedBy: undefined },
    ])
    await client.restoreKey('k')
    await client.purgeKey('k')
    assert.deepEqual(server.requests.map((r) => r.target), [
      'POST /v1/key/rotate/a%20b',
      'POST /v1/key/rewrap/k',
      'GET /v1/key/describe/k',
      'GET /v1/key/deleted/a*',
      'POST /v1/key/restore/k',
      'POST /v1/key/purge/k',
    ])
  })

  test('malformed answers are InvalidResponseErrors', async () => {
    const server = await tracked.start((req, res) => {
      if (req.url === '/v1/key/rotate/k') sendJson(res, 200, { id: 7 })
      else if (req.url === '/v1/key/rewrap/k') sendJson(res, 200, { ciphertext: 'not base64!' })
      else if (req.url === '/v1/key/describe/not-a-list') sendJson(res, 200, { name: 'k', id: 'x', versions: { id: 'x' } })
      else if (req.url === '/v1/key/describe/not-objects') sendJson(res, 200, { name: 'k', id: 'x', versions: ['x'] })
      else if (req.url === '/v1/key/describe/no-id') sendJson(res, 200, { name: 'k', id: 'x', versions: [{ created_at: 'now' }] })
      else if (req.url === '/v1/key/deleted/array') sendJson(res, 200, [{ name: 'a' }])
      else if (req.url === '/v1/key/deleted/no-time') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.end('{"name":"a"}\n')
      } else sendJson(res, 404, { message: 'not found' })
    })
    const client = tracked.client(cannedClientOptions(server))
    const invalid = { name: 'InvalidResponseError' }
    await assert.rejects(client.rotateKey('k'), invalid)
    await assert.rejects(client.rewrap('k', Buffer.from('c')), invalid)
    await assert.rejects(client.keyVersions('not-a-list'), invalid)
    await assert.rejects(client.keyVersions('not-objects'), invalid)
    await assert.rejects(client.keyVersions('no-id'), invalid)
    await assert.rejects(client.listDeletedKeys('array'), invalid)
    await assert.rejects(client.listDeletedKeys('no-time'), invalid)
  })
})
