// Runs every compiled test file with node's test runner. Node 20 takes no
// globs on its command line and Node 22+ reads a directory argument as a
// file, so the files are listed here, for every supported Node.js alike.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'

// The long tests under test/stress run only when asked for (npm run test:stress
// passes dist/test/stress), not in the default run.
const STRESS = path.join('dist', 'test', 'stress')
const explicit = process.argv.length > 2
const roots = explicit ? process.argv.slice(2) : ['dist']
const files = roots.flatMap((root) =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.js'))
    .map((e) => path.join(e.parentPath ?? e.path, e.name))
    .filter((f) => explicit || !f.startsWith(STRESS + path.sep)),
)
files.sort()
if (files.length === 0) {
  console.error('run-tests: no test files found; run the build first')
  process.exit(1)
}
const stress = files.every((f) => f.startsWith(STRESS + path.sep))
// Stress files run one at a time (each starts a server and measures its memory)
// and may take minutes; no ordinary test may stall the run.
const args = stress ? ['--test-concurrency=1', '--test-timeout=240000'] : []
const result = spawnSync(process.execPath, ['--test', ...args, ...files], { stdio: 'inherit' })
process.exit(result.status ?? 1)
