// `npm run test:mutation`: mutation testing of the security core with Stryker
// (tools/mutation/stryker.config.mjs says what is mutated and which tests run).
//
// Stryker is not a dependency of the project: it is 177 packages that neither
// the server nor `npm test` needs, so it is installed here, on demand, from
// tools/mutation/package-lock.json (pinned, integrity-checked) into
// tools/mutation/node_modules. The report goes to reports/mutation/.
//
// A full run takes hours on two cores; see the README for narrower runs
// (OPENKES_MUTATE, OPENKES_MUTATION_TESTS). Extra arguments go to `stryker run`.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const tools = path.join(repo, 'tools', 'mutation')
const stryker = path.join(tools, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: repo, stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

// Reinstall when the lock file changed since the last install.
const lock = readFileSync(path.join(tools, 'package-lock.json'), 'utf8')
const installed = path.join(tools, 'node_modules', '.package-lock.json')
if (!existsSync(stryker) || !existsSync(installed) || !sameVersions(lock, readFileSync(installed, 'utf8'))) {
  run(npm, ['ci', '--prefix', tools, '--no-audit', '--no-fund'])
}
run(process.execPath, [stryker, 'run', path.join(tools, 'stryker.config.mjs'), ...process.argv.slice(2)])

function sameVersions(a, b) {
  const versions = (text) => {
    const out = {}
    for (const [k, v] of Object.entries(JSON.parse(text).packages ?? {})) if (k !== '') out[k] = v.version
    return JSON.stringify(out, Object.keys(out).sort())
  }
  return versions(a) === versions(b)
}
