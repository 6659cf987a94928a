// `npm run build`, `npm test` and `prepare` recreate dist/; the CLI entry point
// must come out of each with its run bit, or every `npx openkes ...` fails
// with "Permission denied".
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../support/repo-root.js'

const run = promisify(execFile)
const SCRIPT = path.join(REPO_ROOT, 'scripts', 'make-bin-executable.mjs')

interface PackageJson {
  readonly bin: Record<string, string>
  readonly scripts: Record<string, string>
}

async function packageJson(): Promise<PackageJson> {
  return JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson
}

test('build, prepare and test all go through the one build script, which sets the run bit after tsc', async () => {
  const { scripts } = await packageJson()
  assert.match(scripts['build'] ?? '', /tsc -p \. && node scripts\/make-bin-executable\.mjs$/)
  assert.equal(scripts['prepare'], 'npm run build')
  assert.match(scripts['test'] ?? '', /^npm run build && /)
})

test('make-bin-executable gives each bin its run bit, and the file then runs by its path', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-bin-'))
  try {
    await mkdir(path.join(dir, 'dist', 'src'), { recursive: true })
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'x', bin: { x: 'dist/src/main.js' } }))
    const main = path.join(dir, 'dist', 'src', 'main.js')
    await writeFile(main, '#!/usr/bin/env node\nconsole.log("ran")\n')
    await chmod(main, 0o644)
    await assert.rejects(run(main), /EACCES/, 'without the bit the file cannot run')

    await run(process.execPath, [SCRIPT, dir])
    assert.equal((await stat(main)).mode & 0o777, 0o755)
    assert.equal((await run(main)).stdout, 'ran\n')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

// Under `npm test` the build just ran: the real entry point must be runnable,
// through npx as the README uses it. (A bare `tsc` build doesn't set the bit.)
const underNpmTest = process.env['npm_lifecycle_event'] === 'test'
test('after npm test\'s build, dist/src/main.js is executable and `npx openkes --version` works', { skip: underNpmTest ? false : 'runs under `npm test`, right after its build' }, async () => {
  const { bin } = await packageJson()
  const main = path.join(REPO_ROOT, bin['openkes'] ?? '')
  assert.equal((await stat(main)).mode & 0o111, 0o111)
  const { stdout } = await run('npx', ['--no-install', 'openkes', '--version'], { cwd: REPO_ROOT, timeout: 60_000 })
  assert.match(stdout, /^\d+\.\d+\.\d+/)
})
