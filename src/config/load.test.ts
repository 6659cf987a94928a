import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ConfigError, loadConfigFile } from './load.js'

const ROOT = '93cce9ac64dadc74b20b334b73e09dcbde4c378742b64a6a09471748e43807fd'

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-config-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test('loadConfigFile resolves relative paths against the directory of the file', async (t) => {
  const dir = await tempDir(t)
  await mkdir(path.join(dir, 'etc'))
  const file = path.join(dir, 'etc', 'config.yml')
  await writeFile(file, `admin:\n  identity: \${ROOT}\ntls:\n  key: server.key\n  cert: ../certs/server.cert\n`)
  const config = await loadConfigFile(file, { ROOT })
  assert.equal(config.adminIdentity, ROOT)
  assert.equal(config.tls.keyFile, path.join(dir, 'etc', 'server.key'))
  assert.equal(config.tls.certFile, path.join(dir, 'certs', 'server.cert'))
  assert.deepEqual(config.keystore, { kind: 'fs', path: path.join(dir, 'etc', 'keys') })
  assert.equal(config.sourceFile, file)
  assert.equal(Object.isFrozen(config), true)
})

test('loadConfigFile takes variables only from the env it is given', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'config.yml')
  await writeFile(file, 'admin:\n  identity: ${OPENKES_TEST_UNSET_ROOT}\ntls: {key: k, cert: c}\n')
  await assert.rejects(loadConfigFile(file, {}), {
    name: 'ConfigError',
    message: "config: admin.identity: environment variable 'OPENKES_TEST_UNSET_ROOT' is not set",
  })
})

test('loadConfigFile reports an unreadable file as a ConfigError', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'missing.yml')
  await assert.rejects(loadConfigFile(file, {}), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.message, `config: cannot read '${file}': ENOENT`)
    return true
  })
  await assert.rejects(loadConfigFile(dir, {}), { message: `config: cannot read '${dir}': EISDIR` })
})
