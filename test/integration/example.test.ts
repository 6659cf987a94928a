// The README's library example runs as written against a real server.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')
const app = makeClient('app')
let env: TestEnv
before(async () => {
  env = await TestEnv.create()
  await env.start(`admin:\n  identity: ${root.identity}\npolicy:\n  app:\n    allow: [/v1/key/generate/*, /v1/key/decrypt/*]\n    identities: [${app.identity}]\nkeys:\n- name: my-key\n`)
})
after(async () => {
  await env.dispose()
})

test('examples/generate-data-key.ts prints true and "no such key"', async () => {
  const cwd = path.join(env.dir, 'walkthrough')
  await mkdir(path.join(cwd, 'openkes-dev'), { recursive: true })
  await writeFile(path.join(cwd, 'app.cert'), app.cert.certPem)
  await writeFile(path.join(cwd, 'app.key'), app.cert.keyPem)
  await writeFile(path.join(cwd, 'openkes-dev', 'server.cert'), env.serverCert.certPem)
  // The compiled example of the same build, next to this compiled test (dist/test/integration → dist/examples).
  const script = fileURLToPath(new URL('../../examples/generate-data-key.js', import.meta.url))
  const { stdout } = await promisify(execFile)(process.execPath, [script], {
    cwd,
    env: { ...process.env, KES_SERVER: `https://127.0.0.1:${env.port}` },
  })
  assert.equal(stdout, 'true\nno such key\n')
})
