// The README's "Sealing keys with an HSM" walk-through runs as written (with SoftHSM2 and
// opensc's pkcs11-tool; skipped with the reason when they are missing, except in CI), and
// the key it creates is sealed on disk.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { MAIN } from '../cli/run.js'
import { REPO_ROOT } from '../support/repo-root.js'

const run = promisify(execFile)

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const address = s.address()
  await new Promise((resolve) => s.close(resolve))
  return typeof address === 'object' && address !== null ? address.port : 0
}

async function missingTools(): Promise<string | undefined> {
  for (const [tool, pkg] of [['softhsm2-util', 'softhsm2'], ['pkcs11-tool', 'opensc']] as const) {
    try {
      await run(tool, ['--help'], { timeout: 10_000 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `${tool} is not installed (apt-get install -y ${pkg}; .ci/run installs it)`
    }
  }
  try {
    await run('test', ['-e', '/usr/lib/softhsm/libsofthsm2.so'])
  } catch {
    return 'the walk-through names /usr/lib/softhsm/libsofthsm2.so (Debian), which is not there'
  }
  return undefined
}

test("the README's HSM walk-through runs as written and leaves a sealed key", async (t) => {
  const missing = await missingTools()
  if (missing !== undefined) {
    if (process.env['CI'] === 'true') assert.fail(`the README seal walk-through must run in CI: ${missing}`)
    process.stderr.write(`readme-seal.test: SKIPPING: ${missing}\n`)
    return t.skip(missing)
  }
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8')
  const section = readme.split('\n## Sealing keys with an HSM\n')[1]?.split('\n## ')[0]
  assert.ok(section !== undefined, 'README has the section')
  const script = /```sh\n([^]*?)```/.exec(section)?.[1]
  assert.ok(script !== undefined && script.includes('seal:') && script.includes('kill %1'))
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-readme-seal-'))
  try {
    const port = await freePort()
    const prelude = `set -euo pipefail\nnpx() { [ "$1" = openkes ] || return 127; shift; "${process.execPath}" "${MAIN}" "$@"; }\nexport KES_SERVER=https://127.0.0.1:${port}\n`
    // On a loaded machine the server may need longer than the README's `sleep 2`: wait for its port.
    assert.match(script, /^sleep 2 .*$/m)
    const body = script
      .replaceAll('127.0.0.1:7373', `127.0.0.1:${port}`)
      .replace(/^sleep 2 .*$/m, `for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && break; sleep 0.2; done`)
    const child = spawn('bash', ['-c', prelude + body], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'SOFTHSM2_CONF')),
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()))
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(-1), 90_000)
      // 'exit', not 'close': a server left running by a failed step would hold the pipes open.
      child.on('exit', (c) => {
        clearTimeout(timer)
        resolve(c)
      })
    })
    // The script's process group: its background server too, if a step failed before `kill %1`.
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM')
    } catch {
      // Already gone.
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 10_000).unref())])
    assert.equal(code, 0, `the walk-through failed (${code}): ${stderr}`)
    assert.match(stdout, /\{"openkes_sealed":1,"iv":"[^"]+","data":"[^"]+"\}/, 'cat keys/my-key shows a sealed key')
    assert.match(stdout, /"plaintext":"[^"]+","ciphertext":"[^"]+"/, 'generate worked')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
