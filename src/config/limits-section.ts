import { ConfigError } from './config-error.js'
import { durationSettingMs } from './duration.js'
import { expandEnv } from './env.js'

/**
 * What the server holds for its clients at most: connections, request body bytes, and how long
 * a connection may stay without doing anything useful. Each bound keeps one client (or many)
 * from taking the memory, file descriptors or time that others need.
 */
export interface Limits {
  /** Open connections (TCP, handshaking or not); more are closed at once. */
  readonly connections: number
  /** Open connections from one client IP address: a flood from one place can't lock out others. */
  readonly connectionsPerAddress: number
  /** A TLS handshake not done after this long is dropped. */
  readonly handshakeTimeoutMs: number
  /** A connection without a request in flight is closed after this long, and an HTTP/1.1 request's headers must arrive within it. */
  readonly idleTimeoutMs: number
  /** Request body bytes read into memory at once on one connection (all its requests together). */
  readonly bodyBytesPerConnection: number
  /** Request body bytes read into memory at once by the whole server. */
  readonly bodyBytesTotal: number
}

const MiB = 1 << 20

/** The defaults: safe under the common `ulimit -n 1024`, and a worst case of 64 MiB of buffered bodies. */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  connections: 512,
  connectionsPerAddress: 64,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  bodyBytesPerConnection: 4 * MiB,
  bodyBytesTotal: 64 * MiB,
})

// The largest request body of any API: a connection must be able to send at least one.
const LARGEST_BODY = MiB

const FIELDS = [
  'connections',
  'connections_per_address',
  'handshake_timeout',
  'idle_timeout',
  'body_bytes_per_connection',
  'body_bytes_total',
] as const

type Raw = null | string | ReadonlyMap<string, Raw> | readonly Raw[]

/**
 * The `limits:` section (an OpenKES extension; KES has none):
 *
 *     limits:
 *       connections: 512
 *       connections_per_address: 64
 *       handshake_timeout: 10s
 *       idle_timeout: 30s
 *       body_bytes_per_connection: 4MiB
 *       body_bytes_total: 64MiB
 *
 * Every field is optional; absent ones take DEFAULT_LIMITS. Counts are positive integers, sizes
 * are bytes with an optional KiB/MiB/GiB suffix, durations are Go durations greater than 0.
 */
export function limitsSection(section: Raw | undefined, env: NodeJS.ProcessEnv): Limits {
  if (section === undefined || section === null) return DEFAULT_LIMITS
  if (!(section instanceof Map)) throw new ConfigError('limits', 'expected a mapping')
  for (const key of section.keys()) {
    if (!(FIELDS as readonly string[]).includes(key)) throw new ConfigError(`limits.${key}`, 'unknown field')
  }
  const text = (field: (typeof FIELDS)[number]): string | undefined => {
    const v = section.get(field)
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'string') throw new ConfigError(`limits.${field}`, 'expected a scalar value')
    const s = expandEnv(v, `limits.${field}`, env).trim()
    return s === '' ? undefined : s
  }
  const limits: Limits = {
    connections: count(text('connections'), 'limits.connections', DEFAULT_LIMITS.connections),
    connectionsPerAddress: count(text('connections_per_address'), 'limits.connections_per_address', DEFAULT_LIMITS.connectionsPerAddress),
    handshakeTimeoutMs: duration(text('handshake_timeout'), 'limits.handshake_timeout', DEFAULT_LIMITS.handshakeTimeoutMs),
    idleTimeoutMs: duration(text('idle_timeout'), 'limits.idle_timeout', DEFAULT_LIMITS.idleTimeoutMs),
    bodyBytesPerConnection: bytes(text('body_bytes_per_connection'), 'limits.body_bytes_per_connection', DEFAULT_LIMITS.bodyBytesPerConnection),
    bodyBytesTotal: bytes(text('body_bytes_total'), 'limits.body_bytes_total', DEFAULT_LIMITS.bodyBytesTotal),
  }
  if (limits.connectionsPerAddress > limits.connections) {
    throw new ConfigError('limits.connections_per_address', `must not exceed limits.connections (${limits.connections})`)
  }
  if (limits.bodyBytesPerConnection < LARGEST_BODY) {
    throw new ConfigError('limits.body_bytes_per_connection', 'must be at least 1MiB (the largest request body)')
  }
  if (limits.bodyBytesTotal < limits.bodyBytesPerConnection) {
    throw new ConfigError('limits.body_bytes_total', 'must not be less than limits.body_bytes_per_connection')
  }
  return Object.freeze(limits)
}

function count(s: string | undefined, path: string, fallback: number): number {
  if (s === undefined) return fallback
  if (!/^[0-9]{1,9}$/.test(s) || Number(s) < 1) throw new ConfigError(path, `expected a positive whole number, not '${s}'`)
  return Number(s)
}

const UNITS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['B', 1],
  ['KiB', 1024],
  ['MiB', MiB],
  ['GiB', 1024 * MiB],
])

function bytes(s: string | undefined, path: string, fallback: number): number {
  if (s === undefined) return fallback
  const m = /^([0-9]{1,12})\s*([A-Za-z]*)$/.exec(s)
  const unit = m === null ? undefined : UNITS.get(m[2] ?? '')
  if (m === null || unit === undefined) throw new ConfigError(path, `expected a size such as 4MiB (units: B, KiB, MiB, GiB), not '${s}'`)
  const n = Number(m[1]) * unit
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(path, `expected a positive size, not '${s}'`)
  return n
}

function duration(s: string | undefined, path: string, fallbackMs: number): number {
  if (s === undefined) return fallbackMs
  const ms = durationSettingMs(s, path)
  if (ms <= 0) throw new ConfigError(path, 'must be greater than 0')
  return ms
}
