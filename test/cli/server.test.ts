// `openkes server`: the development quick start and configuration errors,
// run as a child process like a user would.
import assert from 'node:assert/strict'
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { identityOfPem } from '../../src/auth/identity.js'
import { createCertificate } from '../../src/x509/certificate.js'
import { KES_CONFIGS } from '../support/fixtures.js'
import { KES_KEY_FILES, readKesKeyFileVectors } from '../support/kes-key-files.js'
import { runCli, startCli } from './run.js'

function get(port: number, target: string, cert: string, key: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: target, cert, key, ca, servername: 'localhost', method: target.startsWith('/v1/key/create') ? 'POST' : 'GET' }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer to ${target} in 20 s`)))
    req.end()
  })
}

describe('openkes server --dev', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-dev-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('creates certificates once, serves as root, reuses them on restart', async () => {
    const first = startCli(['server', '--dev', '--addr', '127.0.0.1:0'], { cwd: dir })
    let identity: string
    let cert: string, key: string, ca: string
    const dev = path.join(dir, 'openkes-dev')
    try {
      const [, port] = await first.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/)
      await first.waitFor(/curl -k --cert (\S+) --key (\S+) https:\/\/127\.0\.0\.1:\d+\/version/)
      ;[cert, key, ca] = (await Promise.all(['root.cert', 'root.key', 'server.cert'].map((f) => readFile(path.join(dev, f), 'utf8')))) as [string, string, string]
      identity = identityOfPem(cert)
      assert.match(first.stdout(), new RegExp(`root identity: +${identity}`))
      assert.equal((await stat(path.join(dev, 'root.key'))).mode & 0o777, 0o600)
      assert.equal((await stat(path.join(dev, 'server.key'))).mode & 0o777, 0o600)
      const version = await get(Number(port), '/version', cert, key, ca)
      assert.equal(version.status, 200)
      assert.equal((await get(Number(port), '/v1/key/create/dev-key', cert, key, ca)).status, 200)
      assert.equal(await first.stop('SIGTERM'), 0)
    } finally {
      await first.stop('SIGKILL') // a no-op once it exited
    }

    const second = startCli(['server', '--dev', '--addr', '127.0.0.1:0'], { cwd: dir })
    try {
      const [, port2] = await second.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/)
      await second.waitFor(/reused/)
      assert.equal(identityOfPem(await readFile(path.join(dev, 'root.cert'))), identity)
      const list = await get(Number(port2), '/v1/key/list/*', cert, key, ca)
      assert.equal(list.body, '{"name":"dev-key"}\n')
      assert.equal(await second.stop('SIGINT'), 0)
    } finally {
      await second.stop('SIGKILL')
    }
  })
})

describe('openkes server --config', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-cfg-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const cases: Array<[string, string, RegExp]> = [
    ['unknown field', 'address: 127.0.0.1:0\nadmin: {identity: disabled}\ntls: {key: k, cert: c, foo: 1}\n', /config: tls\.foo: unknown field/],
    ['unsupported key store', 'admin: {identity: disabled}\ntls: {key: k, cert: c}\nkeystore:\n  vault:\n    endpoint: https://127.0.0.1:8200\n', /keystore\.vault: not supported/],
    ['missing tls key', 'admin: {identity: disabled}\ntls: {cert: c}\n', /config: tls\.key: missing/],
    ['unset variable', 'admin: {identity: "${OPENKES_TEST_UNSET}"}\ntls: {key: k, cert: c}\n', /OPENKES_TEST_UNSET/],
  ]
  for (const [name, yaml, message] of cases) {
    test(`${name}: exit 1 and a message naming the YAML path`, async () => {
      const file = path.join(dir, `${name.replaceAll(' ', '-')}.yml`)
      await writeFile(file, yaml)
      const env = { ...process.env }
      delete env['OPENKES_TEST_UNSET']
      const res = await runCli(['server', '--config', file], { env })
      assert.equal(res.code, 1, res.stderr)
      assert.match(res.stderr, message)
    })
  }

  test('missing TLS files: exit 1, no crash trace', async () => {
    const file = path.join(dir, 'nofiles.yml')
    await writeFile(file, 'address: 127.0.0.1:0\nadmin: {identity: disabled}\ntls: {key: ./nope.key, cert: ./nope.cert}\n')
    const res = await runCli(['server', '--config', file])
    assert.equal(res.code, 1)
    assert.match(res.stderr, /cannot start/)
    assert.doesNotMatch(res.stderr, /\n\s+at /)
  })

  test('usage errors exit 2', async () => {
    assert.equal((await runCli(['server'])).code, 2)
    assert.equal((await runCli(['server', '--bogus'])).code, 2)
    assert.equal((await runCli(['nope'])).code, 2)
    const help = await runCli(['server', '--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /openkes server --dev/)
  })
})

describe('openkes server --config with a KES config file as it is', () => {
  let dir: string
  const serverCert = createCertificate('ecdsa-p256', { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], extKeyUsage: ['serverAuth'] })
  const rootCert = createCertificate('ed25519', { commonName: 'root', extKeyUsage: ['clientAuth'] })
  const appCert = createCertificate('ed25519', { commonName: 'app', extKeyUsage: ['clientAuth'] })
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-kescfg-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  // [fixture, KES key directory it serves]
  const layouts: Array<[string, string]> = [
    ['kes-v0.14.yml', 'v0.7.2'],
    ['kes-v0.17.yml', 'v0.17.6'],
    ['kes-2023.yml', '2023-10-03'],
    ['kes-2024.yml', 'kes-unit-test'],
  ]
  for (const [file, version] of layouts) {
    test(`${file} starts the server and serves a ${version} key directory`, async () => {
      const site = path.join(dir, file)
      await mkdir(site)
      await writeFile(path.join(site, 'server.key'), serverCert.keyPem, { mode: 0o600 })
      await writeFile(path.join(site, 'server.cert'), serverCert.certPem)
      await copyFile(path.join(KES_CONFIGS, file), path.join(site, 'config.yml'))
      await cp(path.join(KES_KEY_FILES, version), path.join(site, 'keys'), { recursive: true })
      const env = { ...process.env, KES_ROOT_IDENTITY: rootCert.identity, KES_APP_IDENTITY: appCert.identity }
      const server = startCli(['server', '--config', path.join(site, 'config.yml'), '--addr', '127.0.0.1:0'], { env })
      try {
        const [, port] = await server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/)
        await server.waitFor(new RegExp(`admin identity: ${rootCert.identity}`))
        const list = await get(Number(port), '/v1/key/list/*', rootCert.certPem, rootCert.keyPem, serverCert.certPem)
        assert.equal(list.status, 200)
        const names = list.body.trim().split('\n').map((l) => (JSON.parse(l) as { name: string }).name)
        const expectedNames = (await readKesKeyFileVectors()).filter((v) => v.version === version).map((v) => v.name)
        for (const name of expectedNames) assert.ok(names.includes(name), `${name} listed`)
        // The policy of the config binds the app identity; listing is not among its rules.
        assert.equal((await get(Number(port), '/v1/key/list/*', appCert.certPem, appCert.keyPem, serverCert.certPem)).status, 403)
      } finally {
        assert.equal(await server.stop('SIGTERM'), 0, server.stderr())
      }
    })
  }

  test('a KES config with a Vault key store fails the start and says what to do', async () => {
    const file = path.join(dir, 'vault.yml')
    const yaml = (await readFile(path.join(KES_CONFIGS, 'kes-v0.17.yml'), 'utf8')).replace(
      /  vault:\n    endpoint: ""/,
      '  vault:\n    endpoint: https://vault.example.net:8200',
    )
    // Without the endpoint the server would start (and this test would wait for it).
    assert.match(yaml, /endpoint: https:\/\/vault\.example\.net:8200/)
    await writeFile(file, yaml)
    const res = await runCli(['server', '--config', file], { env: { ...process.env, KES_ROOT_IDENTITY: rootCert.identity, KES_APP_IDENTITY: appCert.identity } })
    assert.equal(res.code, 1)
    assert.equal(
      res.stderr,
      "openkes server: config: keystore.vault: not supported; export the keys into a directory and bring them in with 'openkes migrate' (see docs/migrating.md)\n",
    )
  })
})
