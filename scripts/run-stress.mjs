// Runs the stress tests (test/stress/*.stress.ts, built to dist/test/stress):
// long runs that try to break the server, kept out of `npm test` so it stays
// fast. CI runs them too (npm run test:stress).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'

const root = path.join('dist', 'test', 'stress')
const files = readdirSync(root)
  .filter((name) => name.endsWith('.stress.js'))
  .map((name) => path.join(root, name))
  .sort()
if (files.length === 0) {
  console.error('run-stress: no stress tests found; run the build first')
  process.exit(1)
}
// One file at a time: each starts a server and measures its memory.
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=240000', ...files], { stdio: 'inherit' })
process.exit(result.status ?? 1)
