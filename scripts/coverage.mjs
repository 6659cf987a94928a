// `npm run coverage`: runs the whole suite (scripts/run-tests.mjs) with Node's
// built-in coverage, writes coverage/lcov.info, prints the totals of the
// shipped code (dist/src, without the tests) and fails when a total falls
// below its floor. Built-in coverage needs no dependency and works on Node 20;
// the floors are checked here because Node's own threshold flags need Node 22+.
//
// Only code that some test loads in the test process is counted (CLI tests run
// `openkes` in child processes, whose coverage is not collected).
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// Just under what the suite measures (at the last change of the floors, with worker
// processes merged and the error-path tests of the audit file, PostgreSQL listener and seal:
// lines 98.44 %, branches 93.34-93.40 %, functions 96.79-96.85 % in two CI runs; the issue
// that set the first floors asked for at least ~97 % lines and ~91 % branches). Raise them
// as coverage grows; never lower them to make a change pass.
const FLOOR = { lines: 98.2, branches: 93.0, functions: 96.5 }

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const outDir = path.join(repo, 'coverage')
const lcov = path.join(outDir, 'lcov.info')
rmSync(outDir, { recursive: true, force: true })
mkdirSync(outDir)

const reporters = [
  '--experimental-test-coverage',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=lcov',
  `--test-reporter-destination=${lcov}`,
]
const run = spawnSync(process.execPath, [path.join(repo, 'scripts', 'run-tests.mjs'), ...process.argv.slice(2)], {
  cwd: repo,
  stdio: 'inherit',
  env: { ...process.env, OPENKES_TEST_NODE_OPTIONS: reporters.join(' ') },
})

/** Sums the LCOV counters of the shipped source files. */
function totals(text) {
  const sum = { LF: 0, LH: 0, BRF: 0, BRH: 0, FNF: 0, FNH: 0 }
  let counted = false
  for (const line of text.split('\n')) {
    if (line.startsWith('SF:')) {
      const file = path.relative(repo, path.resolve(repo, line.slice(3))).split(path.sep).join('/')
      counted = file.startsWith('dist/src/') && !file.endsWith('.test.js')
    } else if (counted) {
      const m = /^(LF|LH|BRF|BRH|FNF|FNH):(\d+)$/.exec(line)
      if (m !== null) sum[m[1]] += Number(m[2])
    }
  }
  return sum
}

let text
try {
  text = readFileSync(lcov, 'utf8')
} catch {
  console.error('coverage: no coverage/lcov.info was written')
  process.exit(1)
}
const t = totals(text)
const pct = (hit, found) => (found === 0 ? 100 : (100 * hit) / found)
const measured = { lines: pct(t.LH, t.LF), branches: pct(t.BRH, t.BRF), functions: pct(t.FNH, t.FNF) }
let ok = run.status === 0
if (!ok) console.error(`coverage: the tests failed (exit ${run.status})`)
console.log('\ncoverage of dist/src (without tests):')
for (const [name, value] of Object.entries(measured)) {
  const floor = FLOOR[name]
  const pass = value >= floor
  ok &&= pass
  console.log(`  ${name.padEnd(9)} ${value.toFixed(2).padStart(6)} %  (floor ${floor.toFixed(2)} %)${pass ? '' : '  BELOW THE FLOOR'}`)
}
process.exit(ok ? 0 : 1)
