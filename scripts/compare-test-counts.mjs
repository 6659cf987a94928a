// CI: the same suite must run the same number of tests on every Node.js it
// runs on. Reads the totals two runs wrote (OPENKES_TEST_COUNTS, see
// scripts/run-tests.mjs) and fails, naming both counts, when the numbers of
// tests differ or a run left no totals: a test runner that ends files early
// (Node 24 with --test-force-exit did) still reports 0 failures, and only the
// count shows it.
//
// Usage: node scripts/compare-test-counts.mjs <counts.json> <counts.json>
// (each run is named after its file, e.g. node20.json -> node20).
import { readFileSync } from 'node:fs'
import path from 'node:path'

const files = process.argv.slice(2)
if (files.length !== 2) {
  console.error('usage: compare-test-counts.mjs <counts.json> <counts.json>')
  process.exit(2)
}

/** The totals of one run, or an error message saying why there are none. */
function read(file) {
  let counts
  try {
    counts = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    return { error: `no test counts in ${file} (did that run reach its end?): ${err.message}` }
  }
  if (typeof counts !== 'object' || counts === null || !Number.isInteger(counts.tests)) return { error: `no number of tests in ${file}: ${JSON.stringify(counts)}` }
  return { counts }
}

const runs = files.map((file) => ({ name: path.basename(file, '.json'), ...read(file) }))
const errors = runs.flatMap((r) => (r.error === undefined ? [] : [r.error]))
if (errors.length > 0) {
  for (const e of errors) console.error(`compare-test-counts: ${e}`)
  process.exit(1)
}
const describe = ({ counts: c }) => `${c.tests} tests (pass ${c.pass}, fail ${c.fail}, cancelled ${c.cancelled}, skipped ${c.skipped}, todo ${c.todo})`
for (const r of runs) console.log(`${r.name}: ${describe(r)}`)
const [a, b] = runs
if (a.counts.tests !== b.counts.tests) {
  console.error(`compare-test-counts: the runs ran different numbers of tests: ${a.name} ${a.counts.tests}, ${b.name} ${b.counts.tests} (tests silently not run?)`)
  process.exit(1)
}
console.log(`compare-test-counts: both runs ran ${a.counts.tests} tests`)
