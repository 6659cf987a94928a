// The README's "Sealing keys with an HSM" walk-through runs as written (with SoftHSM2 and
// opensc's pkcs11-tool; skipped with the reason when they are missing, except in CI), and
// the key it creates is sealed on disk.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
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
    // The walk-through stops its server with kill %1; the trap does it when a step fails.
    const prelude = `set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\nnpx() { [ "$1" = openkes ] || return 127; shift; "${process.execPath}" "${MAIN}" "$@"; }\nexport KES_SERVER=https://127.0.0.1:${port}\n`
    const { stdout } = await run('bash', ['-c', prelude + script.replaceAll('127.0.0.1:7373', `127.0.0.1:${port}`)], {
      cwd: dir,
      timeout: 120_000,
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'SOFTHSM2_CONF')),
    })
    assert.match(stdout, /\{"openkes_sealed":1,"iv":"[^"]+","data":"[^"]+"\}/, 'cat keys/my-key shows a sealed key')
    assert.match(stdout, /"plaintext":"[^"]+","ciphertext":"[^"]+"/, 'generate worked')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
