// `npm pack` gives a package that installs globally and works on its own:
// `openkes` on the PATH, `openkes server --dev` in any directory, and the
// client library importable with its types. Installed into a temporary prefix,
// offline where the npm cache has `yaml` (as after npm ci).
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import { VERSION } from '../../src/version.js'
import { REPO_ROOT } from '../support/repo-root.js'
import { within } from '../support/within.js'

const run = promisify(execFile)
let tmp: string
let prefix: string
let installed: string
let pathEnv: NodeJS.ProcessEnv

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'openkes-pack-'))
  // --ignore-scripts: pack this build as it is (prepare would rebuild dist/
  // under the running tests).
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: REPO_ROOT, timeout: 120_000 })
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }]
  prefix = path.join(tmp, 'prefix')
  await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, filename)], { cwd: tmp, timeout: 180_000 })
  installed = path.join(prefix, 'lib', 'node_modules', 'openkes')
  pathEnv = { ...process.env, PATH: `${path.join(prefix, 'bin')}${path.delimiter}${process.env['PATH'] ?? ''}` }
})
after(async () => {
  await rm(tmp, { recursive: true, force: true })
})

test('the package holds the library, its types and the CLI, and no tests', async () => {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--dry-run', '--json'], { cwd: REPO_ROOT, timeout: 120_000 })
  const [{ files }] = JSON.parse(stdout) as [{ files: Array<{ path: string }> }]
  const paths = files.map((f) => f.path)
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/src/main.js', 'dist/src/index.js', 'dist/src/index.d.ts']) assert.ok(paths.includes(f), f)
  assert.deepEqual(paths.filter((p) => /\.test\.|^test\/|^src\//.test(p)), [])
})

test('`openkes --version` on the PATH', async () => {
  const { stdout } = await run('openkes', ['--version'], { cwd: tmp, env: pathEnv, timeout: 30_000 })
  assert.equal(stdout, `${VERSION}\n`)
})

test('`openkes server --dev` in an unrelated directory serves /version to the generated root certificate', async () => {
  const anywhere = path.join(tmp, 'anywhere')
  await mkdir(anywhere)
  const server = spawn('openkes', ['server', '--dev', '--addr', '127.0.0.1:0'], { cwd: anywhere, env: pathEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => server.on('close', (code) => resolve(code)))
  let out = ''
  let err = ''
  server.stderr.on('data', (c: Buffer) => (err += c.toString()))
  try {
    const port = await within(
      new Promise<number>((resolve, reject) => {
        server.stdout.on('data', (c: Buffer) => {
          out += c.toString()
          const m = /listening on https:\/\/127\.0\.0\.1:(\d+)[^]*\nPID \d+/.exec(out)
          if (m !== null) resolve(Number(m[1]))
        })
        void exited.then((code) => reject(new Error(`exited with ${code}: ${err}`)))
      }),
      30_000,
      'the installed server to listen',
    )
    const dev = path.join(anywhere, 'openkes-dev')
    const [cert, key, ca] = await Promise.all(['root.cert', 'root.key', 'server.cert'].map((f) => readFile(path.join(dev, f))))
    const body = await within(
      new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/version', cert, key, ca, servername: 'localhost' }, (res) => {
            let text = ''
            res.on('data', (c: Buffer) => (text += c.toString()))
            res.on('end', () => resolve(`${res.statusCode} ${text}`))
          })
          .on('error', reject)
      }),
      30_000,
      'GET /version',
    )
    assert.equal(body, `200 {"version":"${VERSION}"}`)
    server.kill('SIGTERM')
    assert.equal(await within(exited, 30_000, 'the server to stop'), 0, err)
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL')
  }
})

test('the library imports from an .mjs and type-checks from TypeScript', async () => {
  const consumer = path.join(tmp, 'consumer')
  await mkdir(path.join(consumer, 'node_modules', '@types'), { recursive: true })
  // As `npm link openkes` would: the installed package, plus Node's types for tsc.
  await symlink(installed, path.join(consumer, 'node_modules', 'openkes'))
  await symlink(path.join(REPO_ROOT, 'node_modules', '@types', 'node'), path.join(consumer, 'node_modules', '@types', 'node'))

  await writeFile(
    path.join(consumer, 'use.mjs'),
    "import { KesClient, KesError, ErrKeyNotFound } from 'openkes'\n" +
      "const kes = new KesClient({ endpoints: ['https://127.0.0.1:7373'], insecure: true })\n" +
      'console.log(typeof kes.generateKey, ErrKeyNotFound instanceof KesError, ErrKeyNotFound.status)\n' +
      'await kes.close()\n',
  )
  const { stdout } = await run(process.execPath, ['use.mjs'], { cwd: consumer, timeout: 30_000 })
  assert.equal(stdout, 'function true 404\n')

  assert.ok((await stat(path.join(installed, 'dist', 'src', 'index.d.ts'))).isFile())
  await writeFile(
    path.join(consumer, 'use.ts'),
    "import { KesClient } from 'openkes'\nimport type { DataKey } from 'openkes'\n" +
      "const kes = new KesClient({ endpoints: ['https://127.0.0.1:7373'] })\n" +
      "export const key: Promise<DataKey> = kes.generateKey('k')\n" +
      "// @ts-expect-error: the types say generateKey takes a string\nexport const wrong = kes.generateKey(42)\n",
  )
  await writeFile(
    path.join(consumer, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'] }, files: ['use.ts'] }),
  )
  const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    await run(process.execPath, [tsc, '-p', '.'], { cwd: consumer, timeout: 120_000 })
  } catch (err) {
    assert.fail(`the package's types don't check: ${(err as { stdout?: string }).stdout ?? String(err)}`)
  }
})
