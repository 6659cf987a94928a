import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseDuration } from './duration.js'

// [input, nanoseconds]: Go time.ParseDuration results.
const valid: ReadonlyArray<readonly [string, number]> = [
  ['0', 0],
  ['+0', 0],
  ['-0', 0],
  ['0s', 0],
  ['1ns', 1],
  ['1us', 1e3],
  ['1\u00b5s', 1e3],
  ['1\u03bcs', 1e3],
  ['300ms', 300e6],
  ['1s', 1e9],
  ['+5s', 5e9],
  ['1.5s', 1.5e9],
  ['.5s', 0.5e9],
  ['1.s', 1e9],
  ['30s', 30e9],
  ['5m0s', 300e9],
  ['5m', 300e9],
  ['1h30m', 5400e9],
  ['1h2m3.5s', 3723.5e9],
  ['1m1m', 120e9],
  ['1h0m0.001s', 3600e9 + 1e6],
  ['0.000000001s', 1],
  ['1.0000000001s', 1e9],
  ['100h', 360000e9],
]
for (const [input, ns] of valid) {
  test(`parseDuration('${input}') = ${ns} ns`, () => assert.equal(parseDuration(input), ns))
}

const invalid: readonly string[] = [
  '',
  '5',
  '10',
  '-1s',
  '-1h30m',
  '5x',
  's',
  '.s',
  '+',
  '-',
  '--1s',
  '1.2.3s',
  '1h ',
  ' 1h',
  '1H',
  '1e3s',
  '1hh',
  '1h-2m',
  'abc',
  '9999999999999999999h',
  '3000000h',
]
for (const input of invalid) {
  test(`parseDuration('${input}') throws`, () => {
    assert.throws(() => parseDuration(input), { name: 'RangeError', message: `invalid duration '${input}'` })
  })
}
