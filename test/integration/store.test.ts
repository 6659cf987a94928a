// What the server keeps: keys, policies and assignments survive a restart,
// KES key directories are served as they are, and every golden ciphertext
// opens through the API.
import assert from 'node:assert/strict'
import { copyFile, cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, afterEach, before, describe, test } from 'node:test'
import { loadConfigFile } from '../../src/config/load.js'
import { startServer } from '../../src/server/server.js'
import { KES_CONFIGS, KES_VECTORS } from '../support/fixtures.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../support/kes-key-files.js'
import { FS_KEYSTORE, TestEnv, adminConfig, makeClient, storeKind } from './harness.js'

const VECTORS = KES_VECTORS
const root = makeClient('root')
const app = makeClient('app')

const config = (extra = ''): string => adminConfig(root.identity, `${FS_KEYSTORE}${extra}`)

describe('restart persistence', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
  })
  // A failed assertion must not leave the server running (the tests restart it).
  afterEach(async () => {
    await env.stop()
  })
  after(async () => {
    await env.dispose()
  })

  test('keys, API policies and assignments survive a restart', async () => {
    await env.start(config())
    assert.equal((await env.request(root, '/v1/key/create/persist-key', { method: 'POST' })).status, 200)
    const gen = await env.request(root, '/v1/key/generate/persist-key', { method: 'POST', body: {} })
    const { plaintext, ciphertext } = gen.json as { plaintext: string; ciphertext: string }
    await env.request(root, '/v1/policy/write/persist-pol', { method: 'POST', body: { allow: ['/v1/key/decrypt/persist-*'], deny: ['/v1/key/decrypt/persist-x'] } })
    await env.request(root, `/v1/identity/assign/persist-pol/${app.identity}`, { method: 'POST' })
    await env.stop()

    await env.start(config())
    const dec = await env.request(app, '/v1/key/decrypt/persist-key', { method: 'POST', body: { ciphertext } })
    assert.equal(dec.status, 200)
    assert.deepEqual(dec.json, { plaintext })
    const pol = await env.request(root, '/v1/policy/read/persist-pol')
    assert.deepEqual(pol.json, { allow: ['/v1/key/decrypt/persist-*'], deny: ['/v1/key/decrypt/persist-x'] })
    const ids = await env.request(root, '/v1/identity/list/*')
    assert.deepEqual(ids.json, { [app.identity]: 'persist-pol' })
    // The key file is ours: JSON with the cipher and who created it, mode 0600 in a 0700 directory.
    const keyFile = path.join(env.dir, 'keys', 'persist-key')
    const stored = JSON.parse((await env.readEntry('keys', 'persist-key'))?.toString('utf8') ?? '') as Record<string, string>
    assert.equal(stored['version'], 'v1')
    assert.equal(stored['algorithm'], 'AES256')
    assert.equal(stored['created_by'], root.identity)
    assert.equal(Buffer.from(stored['bytes'] ?? '', 'base64').length, 32)
    if (env.store === 'fs') {
      assert.equal((await stat(keyFile)).mode & 0o777, 0o600)
      assert.equal((await stat(path.join(env.dir, 'keys'))).mode & 0o777, 0o700)
    }
    // Policies and identities never show up as keys.
    const list = await env.request(root, '/v1/key/list/*')
    assert.equal(list.text, '{"name":"persist-key"}\n')
    await env.stop()
  })

  test('a corrupt stored policy is a 502 to read and grants nothing', async () => {
    await env.start(config())
    await env.request(root, '/v1/policy/write/corrupt-pol', { method: 'POST', body: { allow: ['/v1/key/list/*'] } })
    await env.request(root, `/v1/identity/assign/corrupt-pol/${app.identity}`, { method: 'POST' })
    assert.equal((await env.request(app, '/v1/key/list/*')).status, 200)
    await env.stop()
    await env.writeEntry('policies', 'corrupt-pol', Buffer.from('{bad'))
    await env.start(config())
    const read = await env.request(root, '/v1/policy/read/corrupt-pol')
    assert.equal(read.status, 502)
    assert.deepEqual(read.json, { message: 'bad gateway: failed to read policy' })
    assert.equal((await env.request(app, '/v1/key/list/*')).status, 403)
    assert.ok(env.errorLines.some((l) => l.includes("policy 'corrupt-pol' is corrupt")))
    await env.stop()
  })

  test('keys named in the config are created at start, once', async () => {
    await env.start(config('keys:\n- name: cfg-key\n'))
    const first = await env.readEntry('keys', 'cfg-key')
    assert.ok(first !== undefined)
    await env.stop()
    await env.start(config('keys:\n- name: cfg-key\n'))
    assert.deepEqual(await env.readEntry('keys', 'cfg-key'), first)
    assert.equal((await env.request(root, '/v1/key/generate/cfg-key', { method: 'POST' })).status, 200)
    await env.stop()
  })
})

const expected = await readKesKeyFileVectors()

// Every KES key directory, served by a server started from each KES config layout
// (test/fixtures/kes-configs) exactly as a KES user wrote it.
const layouts: ReadonlyArray<{ file: string; createdKeys: readonly string[]; denied: string | undefined }> = [
  { file: 'kes-v0.14.yml', createdKeys: [], denied: undefined },
  { file: 'kes-v0.17.yml', createdKeys: ['minio-default-key'], denied: 'ks-imported-seq' },
  { file: 'kes-2023.yml', createdKeys: ['minio-default-key'], denied: 'ks-imported-seq' },
  { file: 'kes-2024.yml', createdKeys: ['minio-backup-key', 'minio-default-key'], denied: 'ks-imported-seq' },
]

// KES key directories and golden files are about the fs store: not repeated on PostgreSQL.
const FS_ONLY = { skip: storeKind() === 'postgres' ? 'fs key directories' : false }

describe('KES key directories are served as they are, from every KES config layout', FS_ONLY, () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
  })
  afterEach(async () => {
    await env.stop()
  })
  after(async () => {
    await env.dispose()
  })

  const versions = [...new Set(expected.map((e) => e.file.split('/')[0] as string))]

  for (const layout of layouts) {
    for (const version of versions) {
      test(`a ${version} key directory, config ${layout.file}`, async (t) => {
        // The layout of a KES installation: config, server certificate and ./keys side by side.
        const site = path.join(env.dir, `${layout.file}-${version}`)
        await mkdir(site)
        await Promise.all(['server.key', 'server.cert'].map((f) => copyFile(path.join(env.dir, f), path.join(site, f))))
        await copyFile(path.join(KES_CONFIGS, layout.file), path.join(site, 'config.yml'))
        const keys = path.join(site, 'keys')
        await cp(path.join(KES_KEY_FILES, version), keys, { recursive: true })
        const config = await loadConfigFile(path.join(site, 'config.yml'), {
          KES_ROOT_IDENTITY: root.identity,
          KES_APP_IDENTITY: app.identity,
        })
        env.server = await startServer({ ...config, address: '127.0.0.1:0' }, { errorSink: (l) => env.errorLines.push(l) })
        t.after(() => env.stop())

        const names = [...(await readdir(keys))].sort()
        assert.deepEqual(layout.createdKeys.filter((k) => !names.includes(k)), [], 'keys listed in the config are created')
        const list = await env.request(root, '/v1/key/list/*', { http2: true })
        assert.equal(list.text, names.map((name) => JSON.stringify({ name }) + '\n').join(''))
        for (const e of expected.filter((x) => x.file.startsWith(version + '/'))) {
          for (const sample of [e.sample, e.raw_sample]) {
            if (sample === undefined) continue
            const body = { ciphertext: sample.ciphertext, context: sample.context }
            const res = await env.request(root, `/v1/key/decrypt/${e.name}`, { method: 'POST', body, http2: true })
            assert.equal(res.status, 200, `${e.file}: ${res.text}`)
            assert.deepEqual(res.json, { plaintext: sample.plaintext })
            // The identity of the config's policy may decrypt with ks-* keys, except what it denies.
            const byApp = await env.request(app, `/v1/key/decrypt/${e.name}`, { method: 'POST', body })
            const allowed = e.name.startsWith('ks-') && e.name !== layout.denied
            assert.equal(byApp.status, allowed ? 200 : 403, `${layout.file} ${e.file} as app: ${byApp.text}`)
          }
        }
        assert.equal((await env.request(app, '/v1/key/list/*')).status, 403)
      })
    }
  }
})

interface CiphertextVector {
  id: string
  key: string
  cipher: 'AES256' | 'ChaCha20'
  context: string | null
  plaintext: string | null
  ciphertext: string
  expect: 'ok' | 'not-authentic' | 'invalid'
}

const vectors = JSON.parse(await readFile(path.join(VECTORS, 'ciphertexts.json'), 'utf8')) as CiphertextVector[]

describe('golden ciphertexts through the API', FS_ONLY, () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(config())
  })
  after(async () => {
    await env.dispose()
  })


  test(`all ${vectors.length} vectors, keys imported in both import forms`, async () => {
    let n = 0
    for (const v of vectors) {
      const forms: object[] = [{ key: v.key, cipher: v.cipher }]
      if (v.cipher === 'AES256') forms.push({ bytes: v.key })
      for (const form of forms) {
        const name = `vec-${n++}`
        const imp = await env.request(root, `/v1/key/import/${name}`, { method: 'POST', body: form, http2: true })
        assert.equal(imp.status, 200, imp.text)
        const body: Record<string, string> = { ciphertext: v.ciphertext }
        if (v.context !== null) body['context'] = v.context
        const res = await env.request(root, `/v1/key/decrypt/${name}`, { method: 'POST', body, http2: true })
        if (v.expect === 'ok') {
          assert.equal(res.status, 200, `${v.id}: ${res.text}`)
          assert.deepEqual(res.json, { plaintext: v.plaintext }, v.id)
        } else {
          const message = v.expect === 'invalid' ? 'invalid ciphertext' : 'decryption failed: ciphertext is not authentic'
          assert.equal(res.status, 400, v.id)
          assert.deepEqual(res.json, { message }, v.id)
        }
      }
    }
  })
})
