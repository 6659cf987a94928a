// Master keys sealed by a real PKCS#11 token (SoftHSM2), with real server processes: keys
// survive a restart, no file holds key bytes, and a wrong PIN, a missing token, a wrong root
// key, a sealed store without seal: and a swapped sealed blob are each refused clearly.
// Without softhsm2 these tests are skipped with the reason, except in CI, where they fail.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { copyFile, readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import type { TestContext } from 'node:test'
import { runCli, startCli } from '../cli/run.js'
import type { Running } from '../cli/run.js'
import { createSoftToken, findSoftHsm, generateTokenKey } from '../support/softhsm.js'
import type { SoftToken } from '../support/softhsm.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const WAIT_MS = 30_000
let env: TestEnv
let token: SoftToken | undefined
let missing: string | undefined

before(async () => {
  env = await TestEnv.create()
  const found = await findSoftHsm()
  if ('missing' in found) {
    missing = found.missing
    process.stderr.write(`seal-pkcs11.test: SKIPPING the PKCS#11 seal tests: ${missing}\n`)
    return
  }
  token = await createSoftToken(path.join(env.dir, 'hsm'), found.library, 'openkes-test', '1234')
  await generateTokenKey(token, 'openkes-root')
  await generateTokenKey(token, 'other-root')
})
after(async () => {
  await env.dispose()
})

/** The token, or undefined after skipping the test (CI never skips: there it fails). */
function needToken(t: TestContext): SoftToken | undefined {
  if (token !== undefined) return token
  if (process.env['CI'] === 'true') assert.fail(`the PKCS#11 seal tests must run in CI: ${missing ?? 'no token'}`)
  t.skip(missing)
  return undefined
}

function sealYaml(tok: SoftToken, opts: { tokenLabel?: string; keyLabel?: string } = {}): string {
  return (
    `admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./keys\n` +
    `seal:\n  pkcs11:\n    library: ${tok.library}\n    token_label: ${opts.tokenLabel ?? tok.label}\n` +
    `    pin: \${OPENKES_HSM_PIN}\n    key_label: ${opts.keyLabel ?? 'openkes-root'}\n`
  )
}

async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT_MS)))])
  } finally {
    clearTimeout(timer)
  }
}

async function start(tok: SoftToken, yaml: string, pin = tok.pin): Promise<Running> {
  const config = await env.writeConfig(yaml)
  const server = startCli(['server', '--config', config], { cwd: env.dir, env: { ...tok.env, OPENKES_HSM_PIN: pin } })
  const [, port] = await within(server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/), `server start: ${server.stderr()}`)
  env.useExternalPort(Number(port))
  env.resetConnections()
  return server
}

/** Starts a server that must refuse to start; returns what it said. */
async function refused(tok: SoftToken, yaml: string, pin = tok.pin): Promise<string> {
  const config = await env.writeConfig(yaml)
  const r = await within(runCli(['server', '--config', config], { cwd: env.dir, env: { ...tok.env, OPENKES_HSM_PIN: pin } }), 'refused start')
  assert.equal(r.code, 1, r.stderr)
  return r.stderr
}

async function filesUnder(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = []
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(await readFile(path.join(e.parentPath, e.name)))
  }
  return out
}

const imported = randomBytes(32)
let ciphertexts: { imported: string; made: string } | undefined

test('keys created sealed by the token survive a restart and decrypt; no file holds their bytes', async (t) => {
  const tok = needToken(t)
  if (tok === undefined) return
  let server = await start(tok, sealYaml(tok))
  try {
    assert.equal((await env.request(root, '/v1/key/import/imported', { method: 'POST', body: { bytes: imported.toString('base64') } })).status, 200)
    assert.equal((await env.request(root, '/v1/key/create/made', { method: 'POST' })).status, 200)
    const enc = async (name: string): Promise<string> => {
      const r = await env.request(root, `/v1/key/encrypt/${name}`, { method: 'POST', body: { plaintext: Buffer.from(`secret of ${name}`).toString('base64') } })
      assert.equal(r.status, 200, r.text)
      return (r.json as { ciphertext: string }).ciphertext
    }
    ciphertexts = { imported: await enc('imported'), made: await enc('made') }
  } finally {
    assert.equal(await within(server.stop(), 'stop'), 0)
  }
  const files = await filesUnder(path.join(env.dir, 'keys'))
  assert.ok(files.length >= 3, 'two keys and the seal entry')
  for (const needle of [imported, Buffer.from(imported.toString('base64')), Buffer.from(imported.toString('hex'))]) {
    assert.equal(files.some((f) => f.includes(needle)), false, 'a key file holds the imported key bytes')
  }
  for (const name of ['imported', 'made']) assert.match((await readFile(path.join(env.dir, 'keys', name), 'utf8')), /^\{"openkes_sealed":1,/)

  server = await start(tok, sealYaml(tok))
  try {
    for (const name of ['imported', 'made'] as const) {
      const r = await env.request(root, `/v1/key/decrypt/${name}`, { method: 'POST', body: { ciphertext: ciphertexts[name] } })
      assert.equal(r.status, 200, r.text)
      assert.equal(Buffer.from((r.json as { plaintext: string }).plaintext, 'base64').toString(), `secret of ${name}`)
    }
    assert.deepEqual(((await env.request(root, '/v1/key/list/*')).text.match(/"name":"[^"]+"/g) ?? []).sort(), ['"name":"imported"', '"name":"made"'])
  } finally {
    assert.equal(await within(server.stop(), 'stop'), 0)
  }
})

test('a wrong PIN, a missing token, a wrong root key and no seal: are refused at start, saying which', async (t) => {
  const tok = needToken(t)
  if (tok === undefined) return
  assert.match(await refused(tok, sealYaml(tok), '0000'), /seal\.pkcs11: cannot log in to the token 'openkes-test': wrong PIN/)
  assert.match(await refused(tok, sealYaml(tok, { tokenLabel: 'no-such-token' })), /seal\.pkcs11\.token_label: no token labelled 'no-such-token'/)
  assert.match(await refused(tok, sealYaml(tok, { keyLabel: 'no-such-key' })), /seal\.pkcs11\.key_label: no secret key labelled 'no-such-key'/)
  assert.match(
    await refused(tok, sealYaml(tok, { keyLabel: 'other-root' })),
    /seal: PKCS#11 token 'openkes-test' key 'other-root' does not open the key store '.*keys': it was sealed by PKCS#11 token 'openkes-test' key 'openkes-root'; wrong root key, token or key label\?/,
  )
  assert.match(await refused(tok, `admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./keys\n`), /seal: the key store '.*keys' is sealed; configure the seal: section/)
})

test('a sealed blob copied over another key is refused when read (502), with the reason in the error log', async (t) => {
  const tok = needToken(t)
  if (tok === undefined || ciphertexts === undefined) return t.skip('needs the keys of the first test')
  await copyFile(path.join(env.dir, 'keys', 'made'), path.join(env.dir, 'keys', 'imported'))
  const server = await start(tok, sealYaml(tok))
  try {
    const r = await env.request(root, '/v1/key/decrypt/imported', { method: 'POST', body: { ciphertext: ciphertexts.imported } })
    assert.equal(r.status, 502)
    assert.deepEqual(r.json, { message: 'bad gateway: failed to read key' })
    await within(
      (async () => {
        while (!/seal: keys entry 'imported' refused: it does not unseal: it was sealed under another name/.test(server.stderr())) await new Promise((res) => setTimeout(res, 20))
      })(),
      'error log line',
    )
    // The key whose blob it is still works.
    assert.equal((await env.request(root, '/v1/key/decrypt/made', { method: 'POST', body: { ciphertext: ciphertexts.made } })).status, 200)
  } finally {
    assert.equal(await within(server.stop(), 'stop'), 0)
  }
})
