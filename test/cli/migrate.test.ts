// `openkes migrate` between two real filesystem stores (temporary directories), run as a child
// process: KES key directories and Vault-style exports as sources, KES config files as arguments.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { runOpenkes } from '../../src/cli/commands.js'
import { processContext } from '../../src/cli/connect.js'
import { parseKeyFile } from '../../src/crypto/key-version.js'
import { TestEnv, makeClient } from '../integration/harness.js'
import { KES_CONFIGS } from '../support/fixtures.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../support/kes-key-files.js'
import type { KesKeyFileVector } from '../support/kes-key-files.js'
import { runCli } from './run.js'
import type { Finished } from './run.js'


const vectors = await readKesKeyFileVectors()
const versions = [...new Set(vectors.map((v) => v.version))]

const root = makeClient('root')
const app = makeClient('app')
const configEnv = { ...process.env, KES_ROOT_IDENTITY: root.identity, KES_APP_IDENTITY: app.identity }

/** Every file under `dir` (recursively, dot-directories included) with its bytes. */
async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  let entries
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true })
  } catch {
    return files
  }
  for (const e of entries) {
    const full = path.join(e.parentPath, e.name)
    files.set(path.relative(dir, full) + (e.isDirectory() ? '/' : ''), e.isDirectory() ? Buffer.alloc(0) : await readFile(full))
  }
  return files
}

/** Every secret a key file holds, in the spellings that could leak into output. */
async function secretsOf(dir: string): Promise<string[]> {
  const secrets: string[] = []
  for (const name of await readdir(dir)) {
    const file = path.join(dir, name)
    if (!(await stat(file)).isFile()) continue
    const text = (await readFile(file, 'utf8')).trim()
    secrets.push(text)
    if (text.startsWith('{')) {
      const json = JSON.parse(text) as Record<string, unknown>
      for (const field of ['bytes', 'hmac_key']) if (typeof json[field] === 'string') secrets.push(json[field] as string)
    }
  }
  for (const v of vectors) {
    if (v.key !== null) secrets.push(v.key, Buffer.from(v.key, 'base64').toString('hex'))
    if (v.hmac_key !== undefined) secrets.push(v.hmac_key)
  }
  return secrets
}

function assertNoSecrets(outputs: readonly Finished[], secrets: readonly string[]): void {
  for (const out of outputs) {
    for (const secret of secrets) {
      assert.ok(!out.stdout.includes(secret) && !out.stderr.includes(secret), 'key material in the output')
    }
  }
}

/** Decrypts every sample of a vector with the key file found in `dir`. */
async function assertSamplesOpen(dir: string, version: string): Promise<void> {
  for (const v of vectors.filter((x) => x.version === version)) {
    const key = parseKeyFile(await readFile(path.join(dir, v.name)))
    for (const s of [v.sample, v.raw_sample]) {
      if (s === undefined) continue
      const plaintext = key.decrypt(Buffer.from(s.ciphertext, 'base64'), Buffer.from(s.context, 'base64'))
      assert.equal(plaintext.toString('base64'), s.plaintext, `${version}/${v.name}`)
    }
  }
}

describe('openkes migrate', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-migrate-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** A fresh directory holding `config` (a fixture file) and, if given, a copy of a KES key directory in ./keys. */
  async function site(name: string, config: string, keysFrom?: string): Promise<{ dir: string; config: string; keys: string }> {
    const at = path.join(dir, name)
    await mkdir(at, { recursive: true })
    await cp(path.join(KES_CONFIGS, config), path.join(at, 'config.yml'))
    if (keysFrom !== undefined) await cp(keysFrom, path.join(at, 'keys'), { recursive: true })
    return { dir: at, config: path.join(at, 'config.yml'), keys: path.join(at, 'keys') }
  }

  for (const version of versions) {
    test(`a ${version} key directory: full copy, dry run, rerun without and with --merge`, async () => {
      const from = await site(`${version}-from`, 'kes-v0.17.yml', path.join(KES_KEY_FILES, version))
      const to = await site(`${version}-to`, 'kes-2023.yml')
      const source = await snapshot(from.keys)
      const secrets = await secretsOf(from.keys)
      const names = [...source.keys()].sort()
      const outputs: Finished[] = []

      // A dry run lists what it would copy and creates nothing, not even the directory.
      const dry = await runCli(['migrate', '--from', from.config, '--to', to.config, '--dry-run'], { env: configEnv })
      outputs.push(dry)
      assert.equal(dry.code, 0, dry.stderr)
      for (const name of names) assert.match(dry.stdout, new RegExp(`^would copy key '${name}'$`, 'm'))
      assert.match(dry.stdout, new RegExp(`^keys: +${names.length} to copy, 0 already there, 0 conflicts, 0 failed$`, 'm'))
      assert.deepEqual(await snapshot(to.keys), new Map())

      const copy = await runCli(['migrate', '--from', from.config, '--to', to.config], { env: configEnv })
      outputs.push(copy)
      assert.equal(copy.code, 0, copy.stderr)
      assert.match(copy.stdout, new RegExp(`^keys: +${names.length} copied, 0 already there, 0 conflicts, 0 failed$`, 'm'))
      // Byte for byte, so every ciphertext KES made still opens.
      assert.deepEqual(await snapshot(to.keys), source)
      await assertSamplesOpen(to.keys, version)
      assert.deepEqual(await snapshot(from.keys), source, 'the source is unchanged')

      // Again without --merge: everything is there already, nothing is touched, exit 1.
      const again = await runCli(['migrate', '--from', from.config, '--to', to.config], { env: configEnv })
      outputs.push(again)
      assert.equal(again.code, 1)
      assert.match(again.stderr, new RegExp(`already holds ${names.length} of the entries to copy`))
      assert.match(again.stderr, /nothing was copied; run again with --merge/)

      const merged = await runCli(['migrate', '--from', from.config, '--to', to.config, '--merge'], { env: configEnv })
      outputs.push(merged)
      assert.equal(merged.code, 0, merged.stderr)
      assert.match(merged.stdout, new RegExp(`^keys: +0 copied, ${names.length} already there, 0 conflicts, 0 failed$`, 'm'))
      assert.deepEqual(await snapshot(to.keys), source)

      assertNoSecrets(outputs, secrets)
    })
  }

  test('policies and assignments are copied, and the destination serves them', async () => {
    const env = await TestEnv.create()
    try {
      // The source: a KES key directory in which an OpenKES server stored a policy and an assignment.
      const keys = path.join(env.dir, 'keys')
      await cp(path.join(KES_KEY_FILES, 'v0.17.6'), keys, { recursive: true })
      await env.start(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./keys\n`)
      const write = await env.request(root, '/v1/policy/write/decrypt-ks', { method: 'POST', body: { allow: ['/v1/key/decrypt/ks-*'] } })
      assert.equal(write.status, 200, write.text)
      assert.equal((await env.request(root, `/v1/identity/assign/decrypt-ks/${app.identity}`, { method: 'POST' })).status, 200)
      await env.stop()

      const dest = path.join(dir, 'with-policies')
      const res = await runCli(['migrate', '--from', keys, '--to', dest])
      assert.equal(res.code, 0, res.stderr)
      assert.match(res.stdout, /^policies: +1 copied, 0 already there, 0 conflicts, 0 failed$/m)
      assert.match(res.stdout, /^assignments: 1 copied, 0 already there, 0 conflicts, 0 failed$/m)
      assert.deepEqual(await snapshot(dest), await snapshot(keys))

      // A server on the destination: the assignment grants what the policy allows.
      await env.start(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ${dest}\n`)
      const v = vectors.find((x) => x.version === 'v0.17.6' && x.name === 'ks-imported') as KesKeyFileVector
      const dec = await env.request(app, '/v1/key/decrypt/ks-imported', { method: 'POST', body: { ciphertext: v.raw_sample.ciphertext, context: v.raw_sample.context } })
      assert.equal(dec.status, 200, dec.text)
      assert.deepEqual(dec.json, { plaintext: v.raw_sample.plaintext })
      assert.equal((await env.request(app, '/v1/key/list/*')).status, 403)
    } finally {
      await env.dispose()
    }
  })

  test('--merge reports a different key as a conflict, copies the rest and exits 1', async () => {
    const from = path.join(dir, 'conflict-from')
    const to = path.join(dir, 'conflict-to')
    await cp(path.join(KES_KEY_FILES, '2023-10-03'), from, { recursive: true })
    await mkdir(to, { mode: 0o700 })
    // Same name, another key; and the same key as the source written in an older file format.
    const other = `{"bytes":"${randomBytes(32).toString('base64')}"}`
    await writeFile(path.join(to, 'ks-random'), other)
    const imported = vectors.find((x) => x.version === '2023-10-03' && x.name === 'ks-imported') as KesKeyFileVector
    await writeFile(path.join(to, 'ks-imported'), `{"bytes":"${imported.key}"}`)
    const before = await snapshot(to)

    const plain = await runCli(['migrate', '--from', from, '--to', to])
    assert.equal(plain.code, 1)
    assert.match(plain.stderr, /already holds 2 of the entries to copy:\n  key 'ks-imported'\n  key 'ks-random'\n/)
    assert.deepEqual(await snapshot(to), before, 'nothing copied without --merge')

    const res = await runCli(['migrate', '--from', from, '--to', to, '--merge'])
    assert.equal(res.code, 1)
    assert.match(res.stderr, /^conflict: key 'ks-random': the destination holds a different key$/m)
    assert.match(res.stderr, /^conflict: key 'ks-imported': the destination holds the same key in another file format$/m)
    assert.match(res.stdout, /^keys: +2 copied, 0 already there, 2 conflicts, 0 failed$/m)
    assert.equal(await readFile(path.join(to, 'ks-random'), 'utf8'), other, 'a conflicting key is never overwritten')
    for (const name of ['ks-imported-chacha', 'ks-random-chacha']) {
      assert.deepEqual(await readFile(path.join(to, name)), await readFile(path.join(from, name)))
    }
    assertNoSecrets([plain, res], [...(await secretsOf(from)), other])
  })

  test('--pattern copies only the matching keys', async () => {
    const from = path.join(dir, 'pattern-from')
    const to = path.join(dir, 'pattern-to')
    await cp(path.join(KES_KEY_FILES, '2023-10-03'), from, { recursive: true })
    const res = await runCli(['migrate', '--from', from, '--to', to, '--pattern', '*-chacha'])
    assert.equal(res.code, 0, res.stderr)
    assert.deepEqual((await readdir(to)).sort(), ['ks-imported-chacha', 'ks-random-chacha'])
    assert.match(res.stdout, /^keys: +2 copied/m)
  })

  test('an entry that is not a key fails, the others are copied, exit 1', async () => {
    const from = path.join(dir, 'bad-from')
    const to = path.join(dir, 'bad-to')
    await cp(path.join(KES_KEY_FILES, 'v0.7.2'), from, { recursive: true })
    await writeFile(path.join(from, 'not-a-key'), '{"bytes":"c2hvcnQ="}')
    const res = await runCli(['migrate', '--from', from, '--to', to])
    assert.equal(res.code, 1)
    assert.match(res.stderr, /^failed: key 'not-a-key': the source entry is not a key: invalid key file: 'bytes' is not 32 bytes$/m)
    assert.match(res.stdout, /^keys: +3 copied, 0 already there, 0 conflicts, 1 failed$/m)
    assert.deepEqual((await readdir(to)).sort(), ['ks-imported', 'ks-imported-seq', 'ks-random'])
  })

  test('without a terminal, progress is a plain line every 100 entries', async () => {
    const from = path.join(dir, 'many-from')
    await mkdir(from)
    const secrets: string[] = []
    for (let i = 0; i < 250; i++) {
      const b64 = randomBytes(32).toString('base64')
      secrets.push(b64)
      await writeFile(path.join(from, `key-${String(i).padStart(3, '0')}`), `{"bytes":"${b64}"}`)
    }
    const res = await runCli(['migrate', '--from', from, '--to', path.join(dir, 'many-to')])
    assert.equal(res.code, 0, res.stderr)
    assert.equal(res.stderr, 'migrate: 100/250 entries\nmigrate: 200/250 entries\n')
    assert.match(res.stdout, /^keys: +250 copied/m)
    assertNoSecrets([res], secrets)
  })

  test('on a terminal, progress is a bar on stderr, ended by a newline', async () => {
    const from = path.join(dir, 'tty-from')
    await cp(path.join(KES_KEY_FILES, '2023-10-03'), from, { recursive: true })
    let stdout = ''
    let stderr = ''
    const io = { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t) }
    const code = await runOpenkes(['migrate', '--from', from, '--to', path.join(dir, 'tty-to')], { ...processContext(io), stderrIsTTY: true, env: {} })
    assert.equal(code, 0, stderr)
    assert.equal(stderr.split('\r').length, 5, 'one redraw per entry')
    assert.match(stderr, /^\r\[#{8}-{22}\] 1\/4 entries\r/)
    assert.match(stderr, /\r\[#{30}\] 4\/4 entries\n$/)
    assert.match(stdout, /^keys: +4 copied/m)
  })

  test('usage errors exit 2, stores that cannot be opened exit 1', async () => {
    const src = path.join(dir, 'usage-src')
    await cp(path.join(KES_KEY_FILES, 'v0.7.2'), src, { recursive: true })
    const cases: Array<[string[], number, RegExp]> = [
      [[], 2, /--from SOURCE is required/],
      [['--from', src], 2, /--to DEST is required/],
      [['--from', src, '--to', path.join(dir, 'x'), '--pattern', '['], 2, /--pattern: syntax error in pattern '\['/],
      [['--from', src, '--to', path.join(dir, 'x'), '--bogus'], 2, /unknown option '--bogus'/],
      [['--from', src, '--to', src], 2, /--from and --to name the same key store/],
      [['--from', path.join(dir, 'missing'), '--to', path.join(dir, 'x')], 1, /key directory '.*missing' does not exist/],
      [['--from', path.join(dir, 'missing.yml'), '--to', path.join(dir, 'x')], 1, /config: cannot read '.*missing\.yml': ENOENT/],
    ]
    for (const [args, code, message] of cases) {
      const res = await runCli(['migrate', ...args])
      assert.equal(res.code, code, `${args.join(' ')}: ${res.stderr}`)
      assert.match(res.stderr, message)
    }
    const help = await runCli(['migrate', '--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /^Usage: openkes migrate --from SOURCE --to DEST/)
    await assert.rejects(stat(path.join(dir, 'x')), 'no destination was created')
  })

  test('an export from Vault or a cloud secret store (one file per key, the stored text) comes in', async () => {
    // KES kept in Vault, AWS, GCP or Azure the same text its fs store writes to a key file; an
    // export loop writes one file per key. `aws ... --output text > file` leaves a newline at the end.
    const exported = path.join(dir, 'vault-export')
    await mkdir(exported, { mode: 0o700 })
    const picks: Array<[string, string, string]> = [
      ['minio-v017', 'v0.17.6', 'ks-imported'],
      ['minio-2023', '2023-09-28', 'ks-imported-xchacha'],
      ['minio-2024', 'kes-unit-test', 'protobuf-base64'],
      ['minio-aws-cli', '2023-10-03', 'ks-random-chacha'],
    ]
    for (const [name, version, file] of picks) {
      const text = await readFile(path.join(KES_KEY_FILES, version, file), 'utf8')
      await writeFile(path.join(exported, name), name === 'minio-aws-cli' ? `${text}\n` : text, { mode: 0o600 })
    }
    const to = await site('from-export', 'kes-2023.yml')
    const res = await runCli(['migrate', '--from', exported, '--to', to.config], { env: configEnv })
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /^keys: +4 copied, 0 already there, 0 conflicts, 0 failed$/m)
    assert.deepEqual(await snapshot(to.keys), await snapshot(exported))
    for (const [name, version, file] of picks) {
      const v = vectors.find((x) => x.version === version && x.name === file) as KesKeyFileVector
      const key = parseKeyFile(await readFile(path.join(to.keys, name)))
      const plaintext = key.decrypt(Buffer.from(v.raw_sample.ciphertext, 'base64'), Buffer.from(v.raw_sample.context, 'base64'))
      assert.equal(plaintext.toString('base64'), v.raw_sample.plaintext, name)
    }
    assertNoSecrets([res], await secretsOf(exported))
  })

  test('a KES config with a Vault key store names the way out', async () => {
    const cfg = path.join(dir, 'vault.yml')
    await writeFile(cfg, `admin: {identity: ${root.identity}}\ntls: {key: k, cert: c}\nkeystore:\n  vault:\n    endpoint: https://vault:8200\n`)
    const res = await runCli(['migrate', '--from', cfg, '--to', path.join(dir, 'y')])
    assert.equal(res.code, 1)
    assert.match(res.stderr, /keystore\.vault: not supported; export the keys into a directory and bring them in with 'openkes migrate' \(see docs\/migrating\.md\)/)
  })
})
