// The README's CLI walk-through runs as written against `openkes server --dev`,
// and everything it writes lands under openkes-dev/ (ignored by git), never
// beside it in the repository: it creates a private key.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import { MAIN, startCli } from '../cli/run.js'
import type { Running } from '../cli/run.js'
import { REPO_ROOT } from '../support/repo-root.js'
import { within } from '../support/within.js'

/**
 * The shell lines of the README's "Walk-through with the CLI" section, up to
 * the live views (which run until Ctrl-C). A command the README shows failing
 * (followed by a `# openkes: ... (exit code 1)` line) must fail.
 */
function walkthroughScript(readme: string): string {
  const section = readme.split('\n## Walk-through with the CLI\n')[1]?.split('\n## ')[0]
  assert.ok(section !== undefined, 'README has a walk-through section')
  const blocks = [...section.matchAll(/```sh\n([^]*?)```/g)].map((m) => m[1] ?? '')
  const lines = blocks.join('').split('\n# Watch it work\n')[0]?.split('\n') ?? []
  return lines
    .map((line, i) => {
      const next = lines[i + 1] ?? ''
      return /^# openkes: .*\(exit code 1\)$/.test(next) ? `if ${line}; then echo 'expected to fail: ${line.replaceAll("'", '')}' >&2; exit 99; fi` : line
    })
    .join('\n')
}

let dir: string
let server: Running
let port: number
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-walkthrough-'))
  server = startCli(['server', '--dev', '--addr', '127.0.0.1:0'], { cwd: dir })
  const [, p] = await within(server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/), 30_000, 'the dev server')
  port = Number(p)
})
after(async () => {
  await within(server.stop(), 30_000, 'the dev server to stop')
  await rm(dir, { recursive: true, force: true })
})

test('the walk-through succeeds step by step and writes only under openkes-dev/', async () => {
  const script = walkthroughScript(await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8'))
  assert.match(script, /identity new --key openkes-dev\/app\.key/)
  assert.match(script, /^if .* key create other -k; then/m, 'the denied step is checked')
  // `npx openkes` runs the CLI of this build; the server listens on a free port.
  const prelude = `set -euo pipefail\nnpx() { [ "$1" = openkes ] || return 127; shift; "${process.execPath}" "${MAIN}" "$@"; }\n`
  const { stdout } = await promisify(execFile)('bash', ['-c', prelude + script.replaceAll('https://127.0.0.1:7373', `https://127.0.0.1:${port}`)], {
    cwd: dir,
    timeout: 120_000,
  })
  assert.match(stdout, /^aGVsbG8=$/m, 'decrypt gave back the plaintext')
  assert.deepEqual(await readdir(dir), ['openkes-dev'])
  const dev = await readdir(path.join(dir, 'openkes-dev'))
  for (const f of ['app.cert', 'app.key', 'my-policy.json']) assert.ok(dev.includes(f), f)
})

test('.gitignore covers openkes-dev/ and what older walk-throughs left in the repository', async () => {
  const ignored = (await readFile(path.join(REPO_ROOT, '.gitignore'), 'utf8')).split('\n')
  for (const entry of ['openkes-dev/', '/app.key', '/app.cert', '/my-policy.json']) assert.ok(ignored.includes(entry), entry)
})
