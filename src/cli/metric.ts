// `openkes metric`: a live view of a server's request rates and latency,
// computed from `GET /v1/metrics` (the seed's kes_http_* series).
import { performance } from 'node:perf_hooks'
import { parseDuration } from '../config/duration.js'
import { UsageError } from './command-spec.js'
import type { ClientCommand, Invocation } from './command-spec.js'
import { EXIT_OK } from './io.js'
import { formatRate, formatSeconds, jsonLine } from './output.js'
import type { Painter } from './output.js'

/** One sample of the Prometheus text format: a series name, its labels and value. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/

/**
 * Parses the Prometheus text exposition format (0.0.4): comments and blank
 * lines are skipped; every other line is `name{label="value",...} value
 * [timestamp]`. Throws an Error naming the line for a malformed one.
 */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim()
    if (line === '' || line.startsWith('#')) continue
    const sample = parseSampleLine(line)
    if (sample === undefined) throw new Error(`metrics: line ${i + 1}: not a prometheus sample`)
    samples.push(sample)
  }
  return samples
}

function parseSampleLine(line: string): Sample | undefined {
  const name = METRIC_NAME.exec(line)?.[0]
  if (name === undefined) return undefined
  let rest = line.slice(name.length)
  const labels: Record<string, string> = {}
  if (rest.startsWith('{')) {
    rest = rest.slice(1).trimStart()
    while (!rest.startsWith('}')) {
      const label = LABEL_NAME.exec(rest)?.[0]
      if (label === undefined) return undefined
      rest = rest.slice(label.length).trimStart()
      if (!rest.startsWith('="')) return undefined
      const parsed = parseLabelValue(rest.slice(2))
      if (parsed === undefined) return undefined
      labels[label] = parsed.value
      rest = parsed.rest.trimStart()
      if (rest.startsWith(',')) rest = rest.slice(1).trimStart()
      else if (!rest.startsWith('}')) return undefined
    }
    rest = rest.slice(1)
  }
  const fields = rest.trim().split(/\s+/)
  if (fields.length < 1 || fields.length > 2 || rest.trim() === '') return undefined
  const value = parseSampleValue(fields[0] ?? '')
  if (value === undefined) return undefined
  return { name, labels, value }
}

// A label value up to its closing quote, with the format's three escapes.
function parseLabelValue(s: string): { value: string; rest: string } | undefined {
  let value = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === '"') return { value, rest: s.slice(i + 1) }
    if (c === '\\') {
      const next = s[++i]
      if (next === 'n') value += '\n'
      else if (next === '\\' || next === '"') value += next
      else return undefined
    } else {
      value += c
    }
  }
  return undefined
}

function parseSampleValue(s: string): number | undefined {
  if (s === '+Inf' || s === 'Inf') return Infinity
  if (s === '-Inf') return -Infinity
  if (s === 'NaN') return NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return undefined
  return Number(s)
}

/** One cumulative histogram bucket: the count of observations up to `le` seconds. */
export interface Bucket {
  readonly le: number
  readonly count: number
}

/** The request counters and response-time histogram of one scrape. */
export interface MetricSnapshot {
  readonly success: number
  readonly error: number
  readonly failure: number
  /** Cumulative buckets sorted by bound, the last one `+Inf` when the server sends it. */
  readonly buckets: readonly Bucket[]
  /** The histogram's sum of observed seconds and number of observations. */
  readonly latencySum: number
  readonly latencyCount: number
}

const SUCCESS = 'kes_http_request_success'
const ERROR = 'kes_http_request_error'
const FAILURE = 'kes_http_request_failure'
const RESPONSE_TIME_BUCKET = 'kes_http_response_time_bucket'
const RESPONSE_TIME_SUM = 'kes_http_response_time_sum'
const RESPONSE_TIME_COUNT = 'kes_http_response_time_count'

/**
 * Picks the request counters (2xx, 4xx, 5xx) and response-time buckets out
 * of a scrape, summing over any further labels. Throws when the scrape has
 * none of the `kes_http_request_*` counters (not a KES-compatible server).
 */
export function snapshotOf(samples: readonly Sample[]): MetricSnapshot {
  const sum = (name: string): number | undefined => {
    const values = samples.filter((s) => s.name === name).map((s) => s.value)
    return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0)
  }
  const success = sum(SUCCESS)
  const error = sum(ERROR)
  const failure = sum(FAILURE)
  if (success === undefined && error === undefined && failure === undefined) {
    throw new Error(`metrics: the server reports no ${SUCCESS}, ${ERROR} or ${FAILURE} counters`)
  }
  const byBound = new Map<number, number>()
  for (const s of samples) {
    if (s.name !== RESPONSE_TIME_BUCKET) continue
    const le = parseSampleValue(s.labels['le'] ?? '')
    if (le === undefined || Number.isNaN(le)) continue
    byBound.set(le, (byBound.get(le) ?? 0) + s.value)
  }
  const buckets = [...byBound].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le)
  return {
    success: success ?? 0,
    error: error ?? 0,
    failure: failure ?? 0,
    buckets,
    latencySum: sum(RESPONSE_TIME_SUM) ?? 0,
    latencyCount: sum(RESPONSE_TIME_COUNT) ?? buckets.at(-1)?.count ?? 0,
  }
}

/**
 * Estimates the `q` quantile (0..1) of a cumulative histogram by linear
 * interpolation within the bucket that holds it, as Prometheus'
 * `histogram_quantile` does; a quantile in the `+Inf` bucket is reported as
 * the largest finite bound. Returns null for an empty histogram.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  const total = buckets.at(-1)?.count ?? 0
  if (total <= 0) return null
  const rank = q * total
  let lowerBound = 0
  let lowerCount = 0
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerBound
      if (b.count === lowerCount) return b.le
      return lowerBound + ((b.le - lowerBound) * (rank - lowerCount)) / (b.count - lowerCount)
    }
    lowerBound = b.le
    lowerCount = b.count
  }
  return lowerBound
}

// A counter that went down was reset (a server restart): all of it is new.
function increase(before: number, after: number): number {
  return after >= before ? after - before : after
}

function bucketIncrease(before: readonly Bucket[], after: readonly Bucket[]): Bucket[] {
  const previous = new Map(before.map((b) => [b.le, b.count]))
  const deltas = after.map((b) => ({ le: b.le, count: b.count - (previous.get(b.le) ?? 0) }))
  return deltas.some((d) => d.count < 0) ? [...after] : deltas
}

/** What one refresh of `openkes metric` shows (and prints with --json). */
export interface MetricView {
  readonly time: string
  readonly interval_seconds: number
  readonly requests_per_second: number
  readonly success_per_second: number
  readonly error_per_second: number
  readonly failure_per_second: number
  /** The counters since the server started. */
  readonly total: { readonly success: number; readonly error: number; readonly failure: number }
  /**
   * Response times of the requests in this interval (null when there were
   * none): the mean, and quantiles estimated from the histogram buckets.
   * A quantile in the lowest bucket is only known to be at most its bound,
   * `floor`.
   */
  readonly latency_seconds: {
    readonly mean: number | null
    readonly p50: number | null
    readonly p90: number | null
    readonly p99: number | null
    readonly floor: number | null
  }
}

/** The rates and latency quantiles between two snapshots taken `seconds` apart. */
export function metricView(before: MetricSnapshot, after: MetricSnapshot, seconds: number, now: Date): MetricView {
  const per = (n: number): number => round(seconds > 0 ? n / seconds : 0, 3)
  const success = increase(before.success, after.success)
  const error = increase(before.error, after.error)
  const failure = increase(before.failure, after.failure)
  const buckets = bucketIncrease(before.buckets, after.buckets)
  const reset = after.latencyCount < before.latencyCount
  const observations = reset ? after.latencyCount : after.latencyCount - before.latencyCount
  const observedSeconds = reset ? after.latencySum : after.latencySum - before.latencySum
  const firstBound = buckets[0]?.le
  const quantile = (q: number): number | null => {
    const v = histogramQuantile(q, buckets)
    return v === null ? null : round(v, 6)
  }
  return {
    time: now.toISOString(),
    interval_seconds: round(seconds, 3),
    requests_per_second: per(success + error + failure),
    success_per_second: per(success),
    error_per_second: per(error),
    failure_per_second: per(failure),
    total: { success: after.success, error: after.error, failure: after.failure },
    latency_seconds: {
      mean: observations > 0 ? round(observedSeconds / observations, 6) : null,
      p50: quantile(0.5),
      p90: quantile(0.9),
      p99: quantile(0.99),
      floor: firstBound !== undefined && Number.isFinite(firstBound) ? firstBound : null,
    },
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

const COLUMNS = [
  ['TIME', 8],
  ['REQ/S', 8],
  ['SUCCESS/S', 9],
  ['ERROR/S', 8],
  ['FAILURE/S', 9],
  ['MEAN', 7],
  ['P50', 7],
  ['P90', 7],
  ['P99', 7],
] as const

/** The header line of the human view. */
export function metricHeader(p: Painter): string {
  return p.paint('bold', COLUMNS.map(([title, width]) => title.padEnd(width)).join('  ').trimEnd()) + '\n'
}

/** One refresh as a line of the human view (local time of day, rates, quantiles). */
export function formatMetricView(view: MetricView, p: Painter): string {
  const time = new Date(view.time).toTimeString().slice(0, 8)
  const warn = (rate: number, style: 'yellow' | 'red', width: number): string => {
    const text = formatRate(rate).padEnd(width)
    return rate > 0 ? p.paint(style, text) : text
  }
  const widths = COLUMNS.map(([, w]) => w)
  // interpolating inside the lowest bucket would invent precision the histogram lacks
  const floor = view.latency_seconds.floor
  const quantileText = (q: number | null): string => (q !== null && floor !== null && q <= floor ? `<${formatSeconds(floor)}` : formatSeconds(q))
  const cells = [
    time.padEnd(widths[0] ?? 0),
    formatRate(view.requests_per_second).padEnd(widths[1] ?? 0),
    formatRate(view.success_per_second).padEnd(widths[2] ?? 0),
    warn(view.error_per_second, 'yellow', widths[3] ?? 0),
    warn(view.failure_per_second, 'red', widths[4] ?? 0),
    formatSeconds(view.latency_seconds.mean).padEnd(widths[5] ?? 0),
    quantileText(view.latency_seconds.p50).padEnd(widths[6] ?? 0),
    quantileText(view.latency_seconds.p90).padEnd(widths[7] ?? 0),
    quantileText(view.latency_seconds.p99),
  ]
  return cells.join('  ').trimEnd() + '\n'
}

function positiveInteger(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`invalid ${flag} '${String(value)}': want a whole number of at least 1`)
  return n
}

// Shorter intervals than this would measure little but the scrape itself.
const MIN_INTERVAL_MS = 10

function intervalMs(value: unknown): number {
  if (value === undefined) return 2000
  let ns: number
  try {
    ns = parseDuration(String(value))
  } catch {
    throw new UsageError(`invalid --interval '${String(value)}': want a duration like 2s or 500ms`)
  }
  if (ns / 1e6 < MIN_INTERVAL_MS) throw new UsageError(`invalid --interval '${String(value)}': want at least ${MIN_INTERVAL_MS}ms`)
  return ns / 1e6
}

// Resolves after `ms`, or at once when the user interrupts.
function pause(ms: number, interrupted: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))
  return Promise.race([elapsed, interrupted]).finally(() => clearTimeout(timer))
}

async function watch(inv: Invocation): Promise<number> {
  const everyMs = intervalMs(inv.options['interval'])
  const count = positiveInteger(inv.options['count'], '--count')
  const client = inv.client()
  let stop = false
  let onInterrupt = (): void => {}
  const interrupted = new Promise<void>((resolve) => (onInterrupt = resolve))
  const stopListening = inv.ctx.onInterrupt(() => {
    stop = true
    onInterrupt()
  })
  const scrape = async (): Promise<{ snapshot: MetricSnapshot; at: number }> => {
    const text = await client.metrics()
    return { snapshot: snapshotOf(parsePrometheusText(text)), at: performance.now() }
  }
  try {
    let previous = await scrape()
    if (!inv.json) inv.print(metricHeader(inv.out))
    for (let shown = 0; count === undefined || shown < count; shown++) {
      await pause(everyMs, interrupted)
      if (stop) break
      const current = await scrape()
      const view = metricView(previous.snapshot, current.snapshot, (current.at - previous.at) / 1000, new Date())
      inv.print(inv.json ? jsonLine(view) : formatMetricView(view, inv.out))
      previous = current
    }
  } catch (err) {
    // a scrape cut short by Ctrl-C is not an error
    if (!stop) throw err
  } finally {
    stopListening()
  }
  return EXIT_OK
}

/** `openkes metric`: its options, help and action, as data. */
export const metricCommand: ClientCommand = {
  name: 'metric',
  aliases: ['metrics'],
  summary: "show a server's request rates and response times, refreshed live",
  args: [],
  options: {
    interval: { type: 'string', value: 'DURATION', help: 'time between refreshes (default 2s)' },
    count: { type: 'string', value: 'N', help: 'stop after N refreshes (default: until Ctrl-C)' },
  },
  description: `Each refresh shows requests per second (all, 2xx, 4xx, 5xx) over the last
interval, their mean response time, and the 50th, 90th and 99th percentile
estimated from the server's kes_http_response_time histogram (shown as '<10ms'
when it falls in the lowest bucket). --json prints one object per refresh.`,
  examples: ['openkes metric', 'openkes metric --interval 5s', 'openkes metric --count 3 --json'],
  validate(_args, options) {
    intervalMs(options['interval'])
    positiveInteger(options['count'], '--count')
  },
  run: watch,
}

