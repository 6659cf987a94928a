// Sealing with a root key file or environment variable (no HSM needed): openkes migrate moves
// KES key files (with their HMAC keys) into a sealed store and back byte for byte; a server
// on the sealed store decrypts KES ciphertexts; a wrong root key and an unsealed store under
// seal: are refused at start.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { runCli } from '../cli/run.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../support/kes-key-files.js'
import { TestEnv, makeClient } from './harness.js'

const SOURCE = path.join(KES_KEY_FILES, 'kes-unit-test')
const vectors = (await readKesKeyFileVectors()).filter((v) => v.version === 'kes-unit-test')
const root = makeClient('root')
const rootKey = randomBytes(32).toString('base64')
let env: TestEnv

before(async () => {
  env = await TestEnv.create()
  await writeFile(path.join(env.dir, 'seal.key'), `${rootKey}\n`, { mode: 0o600 })
})
after(async () => {
  await env.dispose()
})

/** A config file next to config.yml (migrate reads only its key store and seal). */
async function config(name: string, body: string): Promise<string> {
  const file = path.join(env.dir, name)
  await writeFile(file, `address: 127.0.0.1:0\ntls:\n  key: ./server.key\n  cert: ./server.cert\nadmin:\n  identity: ${root.identity}\n${body}`)
  return file
}

async function filesUnder(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.set(path.relative(dir, path.join(e.parentPath, e.name)), await readFile(path.join(e.parentPath, e.name)))
  }
  return out
}

test('migrate seals KES key files (HMAC keys too), a sealed server decrypts with them, and migrate unseals them byte for byte', async () => {
  const sealed = await config('sealed.yml', 'keystore:\n  fs:\n    path: ./sealed\nseal:\n  key_file: ./seal.key\n')
  const into = await runCli(['migrate', '--from', SOURCE, '--to', sealed], { cwd: env.dir })
  assert.equal(into.code, 0, into.stderr)

  const files = await filesUnder(path.join(env.dir, 'sealed'))
  assert.deepEqual([...files.keys()].sort(), ['~openkes-seal', ...vectors.map((v) => v.name)].sort())
  const secrets = vectors.flatMap((v) => [v.key, v.hmac_key ?? null]).filter((k): k is string => k !== null)
  assert.ok(secrets.length > vectors.length, 'the vectors include an HMAC key')
  for (const secret of secrets) {
    const raw = Buffer.from(secret, 'base64')
    for (const [name, bytes] of files) {
      for (const needle of [raw, Buffer.from(secret), Buffer.from(raw.toString('hex'))]) assert.equal(bytes.includes(needle), false, `${name} holds key bytes`)
    }
  }

  await env.start(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./sealed\nseal:\n  key_file: ./seal.key\n`)
  try {
    for (const v of vectors) {
      const r = await env.request(root, `/v1/key/decrypt/${v.name}`, { method: 'POST', body: { ciphertext: v.raw_sample.ciphertext, context: v.raw_sample.context } })
      assert.equal(r.status, 200, `${v.name}: ${r.text}`)
      assert.deepEqual(r.json, { plaintext: v.raw_sample.plaintext })
    }
    assert.equal((await env.request(root, '/v1/key/create/new-sealed', { method: 'POST' })).status, 200)
  } finally {
    await env.stop()
  }
  assert.match(await readFile(path.join(env.dir, 'sealed', 'new-sealed'), 'utf8'), /^\{"openkes_sealed":1,/)

  const back = path.join(env.dir, 'unsealed')
  const out = await runCli(['migrate', '--from', sealed, '--to', back], { cwd: env.dir })
  assert.equal(out.code, 0, out.stderr)
  const original = await filesUnder(SOURCE)
  const unsealed = await filesUnder(back)
  assert.equal(unsealed.has('~openkes-seal'), false)
  for (const v of vectors) assert.deepEqual(unsealed.get(v.name), original.get(v.name), `${v.name} came back byte for byte`)
})

test('a wrong root key (seal.key from the environment), an unsealed store under seal: and a bad key are refused at start', async () => {
  const other = randomBytes(32).toString('base64')
  const wrong = await config('wrong.yml', 'keystore:\n  fs:\n    path: ./sealed-2\nseal:\n  key_file: ./seal.key\n')
  // Seal a store with the key file first.
  assert.equal((await runCli(['migrate', '--from', SOURCE, '--to', wrong], { cwd: env.dir })).code, 0)
  const byEnv = await config('by-env.yml', 'keystore:\n  fs:\n    path: ./sealed-2\nseal:\n  key: ${OPENKES_SEAL_KEY}\n')
  const r = await runCli(['server', '--config', byEnv], { cwd: env.dir, env: { ...process.env, OPENKES_SEAL_KEY: other } })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /seal: the root key of seal\.key does not open the key store '.*sealed-2': it was sealed by the root key file '.*seal\.key'; wrong root key/)
  assert.doesNotMatch(r.stderr, new RegExp(other.replace(/[+/=]/g, '.')))

  const plain = await config('plain.yml', 'keystore:\n  fs:\n    path: ./plain\n')
  assert.equal((await runCli(['migrate', '--from', SOURCE, '--to', plain], { cwd: env.dir })).code, 0)
  const plainSealed = await config('plain-sealed.yml', 'keystore:\n  fs:\n    path: ./plain\nseal:\n  key_file: ./seal.key\n')
  const u = await runCli(['server', '--config', plainSealed], { cwd: env.dir })
  assert.equal(u.code, 1)
  assert.match(u.stderr, /seal: the key store '.*plain' holds 3 unsealed entries \(keys\/json-aes256-gcm-sha256, .*\); seal them by moving them with openkes migrate/)

  const bad = await config('bad.yml', 'keystore:\n  fs:\n    path: ./x\nseal:\n  key: not-a-key\n')
  const b = await runCli(['server', '--config', bad], { cwd: env.dir })
  assert.equal(b.code, 1)
  assert.match(b.stderr, /seal\.key: expected 32 bytes as base64/)
})

test('a root key file or audit chain key readable by others is reported at start (refused with --strict)', async () => {
  const { chmod } = await import('node:fs/promises')
  await writeFile(path.join(env.dir, 'chain.key'), 'c'.repeat(40), { mode: 0o600 })
  await chmod(path.join(env.dir, 'seal.key'), 0o644)
  await chmod(path.join(env.dir, 'chain.key'), 0o660)
  try {
    env.errorLines.length = 0
    await env.start(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./perm\nseal:\n  key_file: ./seal.key\nlog:\n  audit_file: ./perm-audit.log\n  audit_chain_key: ./chain.key\n`)
    await env.stop()
    assert.ok(env.errorLines.some((l) => /security: seal\.key_file '.*seal\.key' is .*\(mode 0?644\); chmod 600 it/.test(l)), env.errorLines.join('\n'))
    assert.ok(env.errorLines.some((l) => /security: log\.audit_chain_key '.*chain\.key' is .*\(mode 0?660\); chmod 600 it/.test(l)), env.errorLines.join('\n'))
  } finally {
    await chmod(path.join(env.dir, 'seal.key'), 0o600)
  }
})
