import assert from 'node:assert/strict'
import { test } from 'node:test'
import { goArch, goOs } from './go-platform.js'

const osCases: ReadonlyArray<[string, string]> = [
  ['linux', 'linux'],
  ['darwin', 'darwin'],
  ['win32', 'windows'],
  ['freebsd', 'freebsd'],
  ['openbsd', 'openbsd'],
  ['sunos', 'solaris'],
  ['aix', 'aix'],
]
for (const [node, go] of osCases) test(`os ${node} → ${go}`, () => assert.equal(goOs(node), go))

const archCases: ReadonlyArray<[string, string]> = [
  ['x64', 'amd64'],
  ['arm64', 'arm64'],
  ['ia32', '386'],
  ['arm', 'arm'],
  ['ppc64', 'ppc64le'],
  ['s390x', 's390x'],
  ['riscv64', 'riscv64'],
  ['loong64', 'loong64'],
  ['mipsel', 'mipsle'],
]
for (const [node, go] of archCases) test(`arch ${node} → ${go}`, () => assert.equal(goArch(node), go))
