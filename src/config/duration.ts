import { ConfigError } from './config-error.js'

// Go's time.ParseDuration units, in nanoseconds (both micro signs are accepted, as in Go).
const UNIT_NS: ReadonlyMap<string, number> = new Map([
  ['ns', 1],
  ['us', 1e3],
  ['\u00b5s', 1e3],
  ['\u03bcs', 1e3],
  ['ms', 1e6],
  ['s', 1e9],
  ['m', 60e9],
  ['h', 3600e9],
])

// Go durations are int64 nanoseconds; anything larger is an overflow error there.
const MAX_NS = 2 ** 63 - 1

// One "[digits][.digits]unit" element; the unit is everything up to the next digit or '.'.
const ELEMENT = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/

/**
 * Parses a Go duration string (`1h2m3.5s`, `300ms`, `1.5s`, `0`) into nanoseconds.
 * Units: ns, us (µs, μs), ms, s, m, h; elements combine. A bare number needs a unit, except `0`.
 * Throws `RangeError` (`invalid duration '<s>'`) for malformed, negative or overflowing input.
 * Values above 2^53 ns (about 104 days) lose sub-microsecond precision.
 */
export function parseDuration(s: string): number {
  const invalid = (): RangeError => new RangeError(`invalid duration '${s}'`)
  let rest = s
  let negative = false
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest[0] === '-'
    rest = rest.slice(1)
  }
  if (rest === '0') return 0
  if (rest === '') throw invalid()
  let total = 0
  while (rest !== '') {
    const m = ELEMENT.exec(rest)
    const whole = m?.[1] ?? ''
    const fraction = m?.[2]
    const unit = UNIT_NS.get(m?.[3] ?? '')
    if (m === null || (whole === '' && (fraction === undefined || fraction === ''))) throw invalid()
    if (unit === undefined) throw invalid()
    total += Number(whole === '' ? '0' : whole) * unit
    if (fraction !== undefined && fraction !== '') {
      // Truncated like Go: fraction digits scaled to the unit, remainder dropped.
      total += Math.trunc(Number(fraction) * (unit / 10 ** fraction.length))
    }
    if (!Number.isFinite(total) || total > MAX_NS) throw invalid()
    rest = rest.slice(m[0].length)
  }
  // Go accepts negative durations, but no setting of ours can use one.
  if (negative && total !== 0) throw invalid()
  return total
}

const NS_PER_MS = 1e6

/**
 * The duration setting at YAML path `path` (a Go duration string) in milliseconds, for every
 * duration of the config. Rounded up, so a tiny non-zero duration never turns into 0 (which
 * several settings read as "disabled"). Throws ConfigError (`config: <path>: invalid duration
 * '<s>'`) when `s` is not a duration parseDuration accepts.
 */
export function durationSettingMs(s: string, path: string): number {
  let ns: number
  try {
    ns = parseDuration(s)
  } catch (err) {
    throw new ConfigError(path, (err as Error).message)
  }
  return Math.ceil(ns / NS_PER_MS)
}
