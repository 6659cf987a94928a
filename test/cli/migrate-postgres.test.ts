// `openkes migrate` filesystem → PostgreSQL → filesystem: every key file comes back byte for
// byte, policies, assignments and kept deletions too, and a server on the PostgreSQL copy
// decrypts what KES encrypted with those keys, what a rotated key sealed before its rotations,
// and restores the kept deletion.
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { openFsStore } from '../../src/keystore/fs/fs-store.js'
import { TestPostgres } from '../support/postgres.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../support/kes-key-files.js'
import { within } from '../support/within.js'
import { TestEnv, makeClient, usePostgres } from '../integration/harness.js'
import { runCli } from './run.js'

const db = await TestPostgres.start()
after(() => db.stop())

const root = makeClient('root')
let dir: string
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-migrate-pg-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const vectors = await readKesKeyFileVectors()

test('fs → PostgreSQL → fs round trip: the same bytes, verified by migrate and by a server', { timeout: 180_000 }, async () => {
  const version = 'v0.17.6'
  const source = path.join(dir, 'source')
  await cp(path.join(KES_KEY_FILES, version), source, { recursive: true })
  // A policy and an assignment as OpenKES keeps them.
  const fs = await openFsStore(source)
  await fs.policies.put('app-pol', Buffer.from('{"allow":["/v1/key/generate/*"],"deny":[],"form":"allow-deny"}'))
  await fs.identities.put('a'.repeat(64), Buffer.from('{"policy":"app-pol"}'))
  await fs.close()
  // A key rotated twice (OpenKES's versioned entry) and a deleted key kept for its retention
  // period, made by a server on the source directory.
  const lifecycle = await TestEnv.create()
  let rotatedCiphertexts: Array<{ ciphertext: string; plaintext: string }>
  let deletedCiphertext: { ciphertext: string; plaintext: string }
  try {
    await lifecycle.start(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ${source}\n`)
    const call = async <T>(method: string, target: string, body?: object): Promise<T> => {
      const res = await lifecycle.request(root, target, { method, body })
      assert.equal(res.status, 200, `${method} ${target}: ${res.text}`)
      return res.json as T
    }
    await call('POST', '/v1/key/create/rotated')
    rotatedCiphertexts = [await call('POST', '/v1/key/generate/rotated', {})]
    await call('POST', '/v1/key/rotate/rotated')
    rotatedCiphertexts.push(await call('POST', '/v1/key/generate/rotated', {}))
    await call('POST', '/v1/key/rotate/rotated')
    await call('POST', '/v1/key/create/removed')
    deletedCiphertext = await call('POST', '/v1/key/generate/removed', {})
    await call('DELETE', '/v1/key/delete/removed')
  } finally {
    await lifecycle.dispose()
  }
  const deletedIds = (await readdir(path.join(source, '.openkes', 'deleted'))).filter((n) => !n.startsWith('.'))
  assert.equal(deletedIds.length, 1)

  const schema = db.newSchema('migrate')
  const pgConfig = path.join(dir, 'pg.yml')
  await writeFile(pgConfig, `admin:\n  identity: ${root.identity}\ntls:\n  key: ./server.key\n  cert: ./server.cert\n${db.keystoreYaml(schema)}`)
  const env = { ...process.env, ...db.env }
  const back = path.join(dir, 'back')

  const there = await within(runCli(['migrate', '--from', source, '--to', pgConfig], { env }), 120_000, 'migrate fs → postgres')
  assert.equal(there.code, 0, there.stderr + there.stdout)
  assert.match(there.stdout, /deleted: +1 copied, 0 already there, 0 conflicts, 0 failed/)
  const home = await within(runCli(['migrate', '--from', pgConfig, '--to', back], { env }), 120_000, 'migrate postgres → fs')
  assert.equal(home.code, 0, home.stderr + home.stdout)
  // The password never shows.
  assert.ok(!(there.stdout + there.stderr + home.stdout + home.stderr).includes(db.password))

  // Every key file, byte for byte; the rows hold the same bytes.
  const names = (await readdir(source, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name)
  assert.ok(names.length > 0)
  for (const name of names) {
    const original = await readFile(path.join(source, name))
    assert.deepEqual(await readFile(path.join(back, name)), original, name)
    const row = await db.admin((c) => c.query(`SELECT value FROM "${schema}".keys WHERE name = $1`, [name]))
    assert.deepEqual(row.rows[0]?.value, original, `${name} in PostgreSQL`)
  }
  assert.ok(names.includes('rotated') && !names.includes('removed'))
  assert.equal((JSON.parse((await readFile(path.join(back, 'rotated'))).toString('utf8')) as { versions: unknown[] }).versions.length, 3)
  // The kept deletion, byte for byte, under the same entry name (it encodes the deletion time).
  for (const id of deletedIds) {
    const original = await readFile(path.join(source, '.openkes', 'deleted', id))
    assert.deepEqual(await readFile(path.join(back, '.openkes', 'deleted', id)), original, `deleted ${id}`)
    const row = await db.admin((c) => c.query(`SELECT value FROM "${schema}".deleted WHERE name = $1`, [id]))
    assert.deepEqual(row.rows[0]?.value, original, `deleted ${id} in PostgreSQL`)
  }
  const restored = await openFsStore(back)
  assert.deepEqual(await restored.deleted.list(), deletedIds)
  assert.deepEqual(await restored.policies.list(), ['app-pol'])
  assert.deepEqual(await restored.identities.get('a'.repeat(64)), Buffer.from('{"policy":"app-pol"}'))
  await restored.close()

  // A server on the PostgreSQL copy opens KES's ciphertexts.
  usePostgres(db)
  const server = await TestEnv.create({ schema })
  try {
    await server.start(`admin:\n  identity: ${root.identity}\n`)
    for (const v of vectors.filter((x) => x.version === version && x.key !== null)) {
      const res = await server.request(root, `/v1/key/decrypt/${v.name}`, {
        method: 'POST',
        body: { ciphertext: v.raw_sample.ciphertext, context: v.raw_sample.context },
      })
      assert.equal(res.status, 200, `${v.name}: ${res.text}`)
      assert.deepEqual(res.json, { plaintext: v.raw_sample.plaintext })
    }
    // The rotated key: every version came along; new ciphertexts use the newest.
    for (const g of rotatedCiphertexts) {
      const res = await server.request(root, '/v1/key/decrypt/rotated', { method: 'POST', body: { ciphertext: g.ciphertext } })
      assert.deepEqual([res.status, res.json], [200, { plaintext: g.plaintext }])
    }
    const described = (await server.request(root, '/v1/key/describe/rotated')).json as { id: string; versions?: unknown[] }
    assert.equal(described.versions?.length, 3)
    // The deletion is listed and can be restored on PostgreSQL; its old ciphertext opens again.
    assert.match((await server.request(root, '/v1/key/deleted/*')).text, /"name":"removed"/)
    assert.equal((await server.request(root, '/v1/key/restore/removed', { method: 'POST' })).status, 200)
    const reopened = await server.request(root, '/v1/key/decrypt/removed', { method: 'POST', body: { ciphertext: deletedCiphertext.ciphertext } })
    assert.deepEqual([reopened.status, reopened.json], [200, { plaintext: deletedCiphertext.plaintext }])
  } finally {
    await server.dispose()
  }
})
