// A node:test reporter that writes the run's totals as one line of JSON:
// {"tests":N,"suites":N,"pass":N,"fail":N,"cancelled":N,"skipped":N,"todo":N}.
// scripts/run-tests.mjs adds it when OPENKES_TEST_COUNTS names a file, so that
// CI can check that two runs of the same suite (Node 20 and Node 24) ran the
// same number of tests. It reads the summary the test runner itself prints at
// the end of a run (the diagnostics "tests N", "pass N", ... of the run as a
// whole, the only diagnostics at nesting 0 with no file), which Node 20 and
// Node 24 both emit; a test file's own output carries its file.
const SUMMARY = /^(tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/

export default async function* testCounts(source) {
  const counts = {}
  for await (const event of source) {
    if (event.type !== 'test:diagnostic' || event.data.nesting !== 0 || event.data.file !== undefined) continue
    const m = SUMMARY.exec(event.data.message)
    if (m !== null) counts[m[1]] = Number(m[2])
  }
  yield JSON.stringify(counts) + '\n'
}
