// `openkes migrate` filesystem → PostgreSQL → filesystem: every key file comes back byte for
// byte, policies and assignments too, and a server on the PostgreSQL copy decrypts what KES
// encrypted with those keys.
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { openFsStore } from '../../src/keystore/fs/fs-store.js'
import { TestPostgres } from '../support/postgres.js'
import { KES_VECTORS } from '../support/fixtures.js'
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

interface Sample {
  context: string
  plaintext: string
  ciphertext: string
}
const vectors = JSON.parse(await readFile(path.join(KES_VECTORS, 'keystore-fs', 'expected.json'), 'utf8')) as Array<{
  version: string
  name: string
  key: string | null
  raw_sample: Sample
}>

test('fs → PostgreSQL → fs round trip: the same bytes, verified by migrate and by a server', { timeout: 180_000 }, async () => {
  const version = 'v0.17.6'
  const source = path.join(dir, 'source')
  await cp(path.join(KES_VECTORS, 'keystore-fs', version), source, { recursive: true })
  // A policy and an assignment as OpenKES keeps them.
  const fs = await openFsStore(source)
  await fs.policies.put('app-pol', Buffer.from('{"allow":["/v1/key/generate/*"],"deny":[],"form":"allow-deny"}'))
  await fs.identities.put('a'.repeat(64), Buffer.from('{"policy":"app-pol"}'))
  await fs.close()

  const schema = db.newSchema('migrate')
  const pgConfig = path.join(dir, 'pg.yml')
  await writeFile(pgConfig, `admin:\n  identity: ${root.identity}\ntls:\n  key: ./server.key\n  cert: ./server.cert\n${db.keystoreYaml(schema)}`)
  const env = { ...process.env, ...db.env }
  const back = path.join(dir, 'back')

  const there = await within(runCli(['migrate', '--from', source, '--to', pgConfig], { env }), 120_000, 'migrate fs → postgres')
  assert.equal(there.code, 0, there.stderr + there.stdout)
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
  const restored = await openFsStore(back)
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
  } finally {
    await server.dispose()
  }
})
