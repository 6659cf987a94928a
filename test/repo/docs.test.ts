// The documentation stands on its own: every route the server serves is in the
// API reference, every relative link in README.md and docs/ leads to a file
// (and heading) that exists, and nothing cites a document outside the repository.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { routes } from '../../src/api/routes.js'
import { REPO_ROOT } from '../support/repo-root.js'

const run = promisify(execFile)

async function markdownFiles(): Promise<string[]> {
  const docs = (await readdir(path.join(REPO_ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)
  return ['README.md', ...docs]
}

/** GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replaceAll(' ', '-')
}

async function anchorsOf(file: string): Promise<Set<string>> {
  const text = await readFile(path.join(REPO_ROOT, file), 'utf8')
  const withoutCode = text.replace(/```[^]*?```/g, '')
  return new Set([...withoutCode.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1] ?? '')))
}

test('every route of the server is in the endpoint table of docs/api.md', async () => {
  const api = await readFile(path.join(REPO_ROOT, 'docs', 'api.md'), 'utf8')
  const table = api.split('\n## Endpoints\n')[1]?.split('\n## ')[0] ?? ''
  for (const route of routes) {
    assert.match(table, new RegExp(`\`${route.path.replaceAll('/', '\\/')}[\`/]`), `${route.path} is documented`)
  }
})

test('every relative link in README.md and docs/ leads to an existing file and heading', async () => {
  const broken: string[] = []
  for (const file of await markdownFiles()) {
    const text = (await readFile(path.join(REPO_ROOT, file), 'utf8')).replace(/```[^]*?```/g, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (target === undefined || /^[a-z]+:/.test(target)) continue
      const [linkPath, hash] = target.split('#') as [string, string | undefined]
      const resolved = linkPath === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), linkPath))
      if (!existsSync(path.join(REPO_ROOT, resolved))) {
        broken.push(`${file}: ${target} (no file)`)
        continue
      }
      if (hash !== undefined && resolved.endsWith('.md') && !(await anchorsOf(resolved)).has(hash)) broken.push(`${file}: ${target} (no heading)`)
    }
  }
  assert.deepEqual(broken, [])
})

test('nothing in the repository cites the old contract document or a folder outside it', async () => {
  let tracked: string[]
  try {
    tracked = (await run('git', ['ls-files'], { cwd: REPO_ROOT, timeout: 30_000 })).stdout.split('\n').filter((f) => f !== '')
  } catch {
    tracked = []
  }
  if (tracked.length === 0) return // not a git checkout (an unpacked tarball): nothing to check
  const offenders: string[] = []
  for (const file of tracked) {
    if (file === 'test/repo/docs.test.ts' || !/\.(ts|mjs|js|md|json|yml|yaml|sh)$|^\.ci\//.test(file)) continue
    const text = await readFile(path.join(REPO_ROOT, file), 'utf8')
    if (/API-CONTRACT|\.\.\/shared\/|\/work\/shared/.test(text)) offenders.push(file)
  }
  assert.deepEqual(offenders, [])
})
