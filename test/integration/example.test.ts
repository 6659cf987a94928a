// The README's library example runs with the README's command, `npm run
// example`, against a server like `openkes server --dev`: as the root
// identity, from a directory with openkes-dev/ in it, whatever keys exist.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import { deadPort } from '../cli/client-env.js'
import { REPO_ROOT } from '../support/repo-root.js'
import { TestEnv, makeClient } from './harness.js'

const run = promisify(execFile)
const root = makeClient('root')
let env: TestEnv
let project: string
before(async () => {
  env = await TestEnv.create()
  await env.start(`admin:\n  identity: ${root.identity}\n`)
  // A project directory as the README has it: this package (its package.json
  // and build) and the dev server's openkes-dev/ files, kept out of the
  // repository so a developer's own openkes-dev/ is left alone.
  project = path.join(env.dir, 'project')
  await mkdir(path.join(project, 'openkes-dev'), { recursive: true })
  await copyFile(path.join(REPO_ROOT, 'package.json'), path.join(project, 'package.json'))
  await symlink(path.join(REPO_ROOT, 'dist'), path.join(project, 'dist'))
  await writeFile(path.join(project, 'openkes-dev', 'root.cert'), root.cert.certPem)
  await writeFile(path.join(project, 'openkes-dev', 'root.key'), root.cert.keyPem)
  await writeFile(path.join(project, 'openkes-dev', 'server.cert'), env.serverCert.certPem)
})
after(async () => {
  await env.dispose()
})

/** `npm run example` in the project directory against `server`. */
function npmRunExample(server: string): Promise<{ stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, KES_SERVER: server }
  delete childEnv['KES_CLIENT_CERT']
  delete childEnv['KES_CLIENT_KEY']
  return run('npm', ['run', 'example'], { cwd: project, env: childEnv, timeout: 60_000 })
}

test('`npm run example` recovers the data key, shows the missing-key error and leaves no key behind', async () => {
  await env.request(root, '/v1/key/create/my-key', { method: 'POST' }) // state of a walk-through: irrelevant
  const { stdout } = await npmRunExample(`https://127.0.0.1:${env.port}`)
  assert.match(stdout, /^data key recovered: true$/m)
  assert.match(stdout, /^a missing key is an error: 404 key does not exist$/m)
  const keys = await env.request(root, '/v1/key/list/*')
  assert.equal(keys.status, 200)
  assert.equal(keys.text, '{"name":"my-key"}\n', 'the example deleted the key it created')
})

test('an unexpected error is shown, not swallowed: exit code 1 and the error on stderr', async () => {
  const closed = await deadPort()
  await assert.rejects(npmRunExample(`https://127.0.0.1:${closed}`), (err: { code?: unknown; stderr?: unknown }) => {
    assert.equal(err.code, 1)
    assert.match(String(err.stderr), /ECONNREFUSED/)
    return true
  })
})
