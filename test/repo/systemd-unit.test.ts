// examples/systemd/openkes.service: the hardening it promises, checked as text
// everywhere and by `systemd-analyze verify` where that tool exists; and the
// configuration beside it loads.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { loadConfigFile } from '../../src/config/load.js'
import { REPO_ROOT } from '../support/repo-root.js'

const run = promisify(execFile)
const UNIT = path.join(REPO_ROOT, 'examples', 'systemd', 'openkes.service')
const EXEC = '/usr/local/bin/openkes'

/** The unit's `Key=value` settings (comments and sections left out). */
async function settings(): Promise<Array<[string, string]>> {
  return (await readFile(UNIT, 'utf8'))
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])
}

const required: Array<[string, string]> = [
  ['User', 'openkes'],
  ['Group', 'openkes'],
  ['ExecStart', `${EXEC} server --config /etc/openkes/config.yml`],
  ['ExecReload', '/bin/kill -HUP $MAINPID'],
  ['ConfigurationDirectory', 'openkes'],
  ['StateDirectory', 'openkes'],
  ['StateDirectoryMode', '0700'],
  ['ProtectSystem', 'strict'],
  ['NoNewPrivileges', 'yes'],
  ['PrivateTmp', 'yes'],
  ['ProtectHome', 'yes'],
  ['CapabilityBoundingSet', ''],
  ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'],
  ['SystemCallFilter', '@system-service'],
]

for (const [key, value] of required) {
  test(`the unit sets ${key}=${value}`, async () => {
    assert.ok((await settings()).some(([k, v]) => k === key && v === value))
  })
}

test('the unit does not set MemoryDenyWriteExecute (V8\'s JIT needs W+X memory), and says why', async () => {
  assert.deepEqual((await settings()).filter(([k]) => k === 'MemoryDenyWriteExecute'), [])
  assert.match(await readFile(UNIT, 'utf8'), /^# MemoryDenyWriteExecute= is deliberately NOT set: V8/m)
})

test('the example configuration beside the unit loads, with its state in /var/lib/openkes', async () => {
  const config = await loadConfigFile(path.join(REPO_ROOT, 'examples', 'systemd', 'config.yml'), {})
  assert.deepEqual(config.keystore, { kind: 'fs', path: '/var/lib/openkes/keys' })
  assert.equal(config.tls.keyFile, '/etc/openkes/server.key')
  assert.equal(config.log.auditFile, '/var/log/openkes/audit.log')
})

async function hasSystemdAnalyze(): Promise<boolean> {
  try {
    await run('systemd-analyze', ['--version'], { timeout: 30_000 })
    return true
  } catch {
    return false
  }
}

const analyze = await hasSystemdAnalyze()
test('systemd-analyze verify accepts the unit without a warning', { skip: analyze ? false : 'systemd-analyze is not installed here (apt-get install systemd)' }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-unit-'))
  try {
    // verify checks that ExecStart's program exists: stand in for the install.
    const exec = path.join(dir, 'openkes')
    await writeFile(exec, '#!/bin/sh\n', { mode: 0o755 })
    const unit = path.join(dir, 'openkes.service')
    await writeFile(unit, (await readFile(UNIT, 'utf8')).replace(EXEC, exec))
    const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', unit], { timeout: 60_000 })
    const about = `${stdout}${stderr}`.split('\n').filter((l) => l.includes('openkes'))
    assert.deepEqual(about, [], 'no warning about the unit')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
