// Runs every compiled test file with node's test runner. Node 20 takes no
// globs on its command line and Node 22+ reads a directory argument as a
// file, so the files are listed here, for every supported Node.js alike.
//
// A failing test must fail the run, never stall it:
// - --test-timeout fails any test that runs longer than TEST_TIMEOUT_MS. Node
//   applies it to a describe() as a whole too, and the slowest suite (the CLI
//   key commands, each a child process) takes about 16 s on a loaded 2-core
//   machine: the limit leaves room for a much slower machine;
// - a test file that never exits (its tests are done but something it started,
//   a server, socket, timer or child process, is still open) fails when its
//   time is up: the test timeout applies to each file as a whole too;
// - the whole run is limited to RUN_TIMEOUT_MS, as a last guard: past it the
//   run is killed and fails with a message saying so.
// Not --test-force-exit, which used to end each file's process once its tests
// were done: on Node 24 it ends files while their tests are still running and
// reports nothing (dist/src/crypto/secret-key.test.js ran 37 to 46 of its 52
// tests, a whole run about 2,690 of 2,774, all "passing"). So every test file
// must close what it opens, in after() or finally, and CI compares the number
// of tests run on Node 20 and Node 24 (OPENKES_TEST_COUNTS, below).
//
// Extra node options (e.g. --experimental-test-coverage) can be passed in
// OPENKES_TEST_NODE_OPTIONS, space-separated (scripts/coverage.mjs does).
// OPENKES_TEST_COUNTS=<file>: also write the run's totals there as JSON
// (scripts/test-counts-reporter.mjs); the output on stdout is then the spec
// reporter's, unless OPENKES_TEST_NODE_OPTIONS chooses the reporters.
import { spawnSync } from 'node:child_process'
import { readdirSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const TEST_TIMEOUT_MS = 120_000
// The long tests under test/stress run only when asked for (npm run test:stress
// passes dist/test/stress), not in the default run. They run one file at a time
// (each starts a server and measures its memory) and may take minutes.
const STRESS = path.join('dist', 'test', 'stress')
const STRESS_TIMEOUT_MS = 240_000
// The default run takes about 7 minutes with coverage on a loaded 2-core
// machine (Node 20; 4.5 to 5.5 without, on Node 20 and 24), the stress run
// about 4.5: room for twice that, and still inside CI's budget for a run that
// stalls.
const RUN_TIMEOUT_MS = 15 * 60_000

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
const reporters = []
const countsFile = process.env['OPENKES_TEST_COUNTS'] ?? ''
if (countsFile !== '') {
  rmSync(countsFile, { force: true }) // a run that dies before its end leaves no counts, not old ones
  if (!extra.some((o) => o.startsWith('--test-reporter'))) reporters.push('--test-reporter=spec', '--test-reporter-destination=stdout')
  const counter = fileURLToPath(new URL('test-counts-reporter.mjs', import.meta.url))
  reporters.push(`--test-reporter=${counter}`, `--test-reporter-destination=${path.resolve(countsFile)}`)
}
const args = ['--test', ...timeout, ...extra, ...reporters, ...files]
const result = spawnSync(process.execPath, args, { stdio: 'inherit', timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' })
if (result.error !== undefined) {
  const why =
    result.error.code === 'ETIMEDOUT'
      ? `the test run exceeded ${RUN_TIMEOUT_MS / 60_000} minutes and was stopped (a test file that does not exit? something it started is still open)`
      : `the test run failed: ${result.error.message}`
  console.error(`run-tests: ${why}`)
}
process.exit(result.status ?? 1)
