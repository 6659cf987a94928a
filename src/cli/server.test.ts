import assert from 'node:assert/strict'
import os from 'node:os'
import { test } from 'node:test'
import { UsageError } from './command-spec.js'
import { parseWorkers } from './server.js'

test('--workers: a whole number from 1; by default the number of CPUs', () => {
  assert.equal(parseWorkers(undefined), os.availableParallelism())
  assert.equal(parseWorkers('1'), 1)
  assert.equal(parseWorkers('16'), 16)
  for (const bad of ['0', '', 'two', '1.5', '-1', ' 2', '1025', true]) {
    assert.throws(() => parseWorkers(bad), (e: unknown) => e instanceof UsageError && /--workers needs a whole number from 1 to 1024/.test(e.message), String(bad))
  }
})
