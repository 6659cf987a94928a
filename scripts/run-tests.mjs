// Runs every compiled test file with node's test runner. Node 20 takes no
// globs on its command line and Node 22+ reads a directory argument as a
// file, so the files are listed here, for every supported Node.js alike.
//
// A failing test must fail the run, never stall it:
// - --test-timeout fails any test that runs longer than TEST_TIMEOUT_MS. Node
//   applies it to a describe() as a whole too, and the slowest suite (the CLI
//   key commands, each a child process) takes about 16 s on a loaded 2-core
//   machine: the limit leaves room for a much slower machine;
// - --test-force-exit ends a test file's process once its tests are done, even
//   if a failed test left a server or socket open (test/cli/run.ts kills the
//   child processes it started when that happens).
// Extra node options (e.g. --experimental-test-coverage) can be passed in
// OPENKES_TEST_NODE_OPTIONS, space-separated (scripts/coverage.mjs does).
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'

const TEST_TIMEOUT_MS = 120_000
// The long tests under test/stress run only when asked for (npm run test:stress
// passes dist/test/stress), not in the default run. They run one file at a time
// (each starts a server and measures its memory) and may take minutes.
const STRESS = path.join('dist', 'test', 'stress')
const STRESS_TIMEOUT_MS = 240_000

// Arguments: directories to search (default dist) or single test files.
const explicit = process.argv.length > 2
const roots = explicit ? process.argv.slice(2) : ['dist']
const files = roots.flatMap((root) =>
  statSync(root).isFile()
    ? [root]
    : readdirSync(root, { recursive: true, withFileTypes: true })
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
const timeout = stress ? [`--test-timeout=${STRESS_TIMEOUT_MS}`, '--test-concurrency=1'] : [`--test-timeout=${TEST_TIMEOUT_MS}`]
const extra = (process.env['OPENKES_TEST_NODE_OPTIONS'] ?? '').split(' ').filter((o) => o !== '')
const args = ['--test', ...timeout, '--test-force-exit', ...extra, ...files]
const result = spawnSync(process.execPath, args, { stdio: 'inherit' })
process.exit(result.status ?? 1)
