// The report of `npm run bench`: medians over the rounds, ratios computed per round
// between servers measured in the same round (then their median), the tables, the
// decomposition ladder and the target lines.
import { LADDER_PREFIX, SERVERS, WORKERS_PREFIX } from './scenarios.js'
import type { Scenario, ServerId } from './scenarios.js'

/** The figures of a scenario on one server: one round's (Measurement) or the rounds' medians (Summary). */
export interface Summary {
  readonly requests: number
  readonly errors: number
  readonly resumed: number
  readonly rps: number
  readonly p50Us: number
  readonly p90Us: number
  readonly p99Us: number
  readonly maxUs: number
  /** The server's CPU time (every process of it: a cluster's primary and workers) ÷ requests. */
  readonly cpuUsPerRequest: number
  /** The part of it spent by a cluster's primary (NaN for a single process). */
  readonly primaryCpuUsPerRequest: number
}

/** What one scenario measured on one server in one round. */
export interface Measurement extends Summary {
  readonly server: ServerId
  readonly scenario: string
  readonly round: number
  readonly errorKinds: Record<string, number>
  /** How many processes the server was (1, or a primary and its workers). */
  readonly processes: number
}

export interface Ratio {
  readonly rps: number
  readonly p99: number
  readonly cpuPerRequest: number
}

/** One row of a table: a scenario on one server, against a reference server of the same rounds. */
export interface Row {
  readonly scenario: string
  readonly server: ServerId
  /** The server the ratios divide by (measured in the same rounds), if any. */
  readonly vs: ServerId | undefined
  readonly measured: Summary
  readonly reference: Summary | undefined
  /** Medians over the rounds of server ÷ reference (per round). */
  readonly ratio: Ratio | undefined
}

export function median(xs: readonly number[]): number {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

function summarize(ms: readonly Measurement[]): Summary {
  return {
    rps: median(ms.map((m) => m.rps)),
    p50Us: median(ms.map((m) => m.p50Us)),
    p90Us: median(ms.map((m) => m.p90Us)),
    p99Us: median(ms.map((m) => m.p99Us)),
    maxUs: Math.max(...ms.map((m) => m.maxUs)),
    cpuUsPerRequest: median(ms.map((m) => m.cpuUsPerRequest)),
    primaryCpuUsPerRequest: median(ms.map((m) => m.primaryCpuUsPerRequest)),
    requests: ms.reduce((n, m) => n + m.requests, 0),
    errors: ms.reduce((n, m) => n + m.errors, 0),
    resumed: ms.reduce((n, m) => n + m.resumed, 0),
  }
}

/** The measurements of a scenario on a server, by round. */
function of(all: readonly Measurement[], scenario: string, server: ServerId): Measurement[] {
  return all.filter((m) => m.scenario === scenario && m.server === server)
}

/** Median over the rounds of combine(a's, b's measurement of that round). */
function perRound(all: readonly Measurement[], scenario: string, a: ServerId, b: ServerId, combine: (x: Measurement, y: Measurement) => number): number {
  const theirs = of(all, scenario, b)
  return median(
    of(all, scenario, a).flatMap((m) => {
      const t = theirs.find((x) => x.round === m.round)
      return t === undefined ? [] : [combine(m, t)]
    }),
  )
}

function row(all: readonly Measurement[], scenario: string, server: ServerId, vs: ServerId | undefined): Row {
  const reference = vs === undefined ? [] : of(all, scenario, vs)
  const ratio = (f: (m: Measurement) => number): number => perRound(all, scenario, server, vs as ServerId, (x, y) => f(x) / f(y))
  return {
    scenario,
    server,
    vs: reference.length === 0 ? undefined : vs,
    measured: summarize(of(all, scenario, server)),
    reference: reference.length === 0 ? undefined : summarize(reference),
    ratio: reference.length === 0 ? undefined : { rps: ratio((m) => m.rps), p99: ratio((m) => m.p99Us), cpuPerRequest: ratio((m) => m.cpuUsPerRequest) },
  }
}

/** Rows of the main and store sets: OpenKES (1 process) ÷ baseline. */
export function mainRows(all: readonly Measurement[], list: readonly Scenario[]): Row[] {
  return list.filter((s) => s.set === 'main' || s.set === 'store').map((s) => row(all, s.name, 'openkes', s.set === 'main' ? 'baseline' : undefined))
}

/** Rows of the workers set: one process, then each --workers 2 variant ÷ one process. */
export function workersRows(all: readonly Measurement[], list: readonly Scenario[]): Row[] {
  return list
    .filter((s) => s.set === 'workers')
    .flatMap((s) => s.servers.map((server) => row(all, s.name, server, server === 'openkes' ? undefined : 'openkes')))
}

/** One rung comparison of the ladder: CPU µs per request and req/s at each level, and the steps between them. */
export interface LadderRow {
  readonly scenario: string
  readonly cpuUsPerRequest: { readonly tlsHttp: number; readonly crypto: number; readonly openkes: number }
  readonly rps: { readonly tlsHttp: number; readonly crypto: number; readonly openkes: number }
  /** Medians over the rounds of per-round differences in CPU µs per request. */
  readonly extraCpuUs: {
    /** baseline (crypto) − baseline tls+http: the crypto and JSON work. */
    readonly cryptoOverTlsHttp: number
    /** OpenKES − baseline (crypto): routing, auth, audit, metrics, limits. */
    readonly openkesOverCrypto: number
    /** OpenKES − baseline tls+http: everything above TLS and HTTP. */
    readonly openkesOverTlsHttp: number
  }
}

export function ladderRows(all: readonly Measurement[], list: readonly Scenario[]): LadderRow[] {
  const cpu = (x: Measurement, y: Measurement): number => x.cpuUsPerRequest - y.cpuUsPerRequest
  return list
    .filter((s) => s.set === 'ladder')
    .map((s) => {
      const sum = (id: ServerId): Summary => summarize(of(all, s.name, id))
      const [t, c, o] = [sum('baseline-tls-http'), sum('baseline'), sum('openkes')]
      return {
        scenario: s.name,
        cpuUsPerRequest: { tlsHttp: t.cpuUsPerRequest, crypto: c.cpuUsPerRequest, openkes: o.cpuUsPerRequest },
        rps: { tlsHttp: t.rps, crypto: c.rps, openkes: o.rps },
        extraCpuUs: {
          cryptoOverTlsHttp: perRound(all, s.name, 'baseline', 'baseline-tls-http', cpu),
          openkesOverCrypto: perRound(all, s.name, 'openkes', 'baseline', cpu),
          openkesOverTlsHttp: perRound(all, s.name, 'openkes', 'baseline-tls-http', cpu),
        },
      }
    })
}

/** rr ÷ none, per round then the median, for each workers scenario: which distribution is faster. */
export interface DistributionRow {
  readonly scenario: string
  readonly rrOverNone: { readonly rps: number; readonly cpuPerRequest: number }
}

export function distributionRows(all: readonly Measurement[], list: readonly Scenario[]): DistributionRow[] {
  return list
    .filter((s) => s.set === 'workers')
    .map((s) => ({
      scenario: s.name,
      rrOverNone: {
        rps: perRound(all, s.name, 'openkes-w2-rr', 'openkes-w2-none', (x, y) => x.rps / y.rps),
        cpuPerRequest: perRound(all, s.name, 'openkes-w2-rr', 'openkes-w2-none', (x, y) => x.cpuUsPerRequest / y.cpuUsPerRequest),
      },
    }))
}

// ---- targets ----

/** One target of the issue, checked on the ratios of this run. */
export interface Target {
  readonly target: string
  /** The scenario (or, for memory, the server) it is checked on. */
  readonly scenario: string
  /** A ratio of this run, or for memory MB. */
  readonly value: number
  readonly limit: number
  readonly comparison: '>=' | '<='
  /** Null when the scenario did not run (or a figure is missing). */
  readonly met: boolean | null
}

function target(name: string, scenario: string, value: number | undefined, comparison: '>=' | '<=', limit: number): Target {
  const v = value ?? NaN
  const met = Number.isNaN(v) ? null : comparison === '>=' ? v >= limit : v <= limit
  return { target: name, scenario, value: v, limit, comparison, met }
}

/** Idle RSS per process in MB, the highest of each OpenKES server's processes. */
export type IdleRss = Partial<Record<ServerId, number>>

export function targets(main: readonly Row[], workers: readonly Row[], idleRss: IdleRss): Target[] {
  const find = (rows: readonly Row[], scenario: string, server: ServerId): Row | undefined =>
    rows.find((r) => r.scenario === scenario && r.server === server)
  const out: Target[] = []
  for (const op of ['generate', 'decrypt']) {
    const c16 = find(main, `${op} h1 c=16`, 'openkes')?.ratio
    out.push(target('1 process req/s ÷ baseline', `${op} h1 c=16`, c16?.rps, '>=', 1))
    out.push(target('1 process CPU/req ÷ baseline', `${op} h1 c=16`, c16?.cpuPerRequest, '<=', 1))
    out.push(target('1 process p99 ÷ baseline', `${op} h1 c=16`, c16?.p99, '<=', 1.3))
    out.push(target('1 process HTTP/2 req/s ÷ baseline', `${op} h2 64 streams/1 conn`, find(main, `${op} h2 64 streams/1 conn`, 'openkes')?.ratio?.rps, '>=', 1))
  }
  for (const server of ['openkes-w2-rr', 'openkes-w2-none'] as const) {
    for (const op of ['generate', 'decrypt']) {
      const scenario = `${WORKERS_PREFIX}${op} h1 c=64`
      const r = find(workers, scenario, server)?.ratio
      out.push(target(`${SERVERS[server].label} req/s ÷ 1 process`, scenario, r?.rps, '>=', 1))
      out.push(target(`${SERVERS[server].label} CPU/req ÷ 1 process`, scenario, r?.cpuPerRequest, '<=', 1.1))
    }
  }
  for (const server of ['openkes', 'openkes-w2-rr', 'openkes-w2-none'] as const) {
    out.push(target('idle RSS of any one process, MB', SERVERS[server].label, idleRss[server], '<=', 80))
  }
  return out
}

/** The target lines of the targets that were measured, and how many were not (their scenarios did not run). */
export function formatTargets(list: readonly Target[]): string {
  const measured = list.filter((t) => t.met !== null)
  const what = measured.map((t) => `${t.target} ${t.comparison} ${t.limit.toFixed(2)}`)
  const w0 = Math.max(0, ...what.map((w) => w.length))
  const w1 = Math.max(0, ...measured.map((t) => t.scenario.length))
  const lines = measured.map(
    (t, i) => `target  ${(what[i] as string).padEnd(w0)}  ${t.scenario.padEnd(w1)}  ${t.value.toFixed(2).padStart(6)}  ${t.met === true ? 'met' : 'NOT MET'}`,
  )
  const missing = list.length - measured.length
  if (missing > 0) lines.push(`(${missing} target(s) not measured: their scenarios did not run)`)
  return lines.join('\n')
}

// ---- tables ----

const f0 = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(0))
const f1 = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(1))
const f2 = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(2))

function layout(header: readonly string[], lines: ReadonlyArray<readonly string[]>, leftColumns: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)))
  const fmt = (cells: readonly string[]): string =>
    cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')
  return [fmt(header), ...lines.map(fmt)].join('\n')
}

/**
 * A table of rows. `refLabel` names the reference in the ratio columns ("base",
 * "1 proc"); `showServer` adds a column naming each row's server.
 */
export function formatTable(rows: readonly Row[], refLabel: string, showServer: boolean): string {
  const header = [
    'scenario',
    ...(showServer ? ['server'] : []),
    'req/s',
    'p50 µs',
    'p90 µs',
    'p99 µs',
    'max µs',
    'CPU µs/req',
    ...(showServer ? ['of it primary'] : []),
    'errors',
    `${refLabel} req/s`,
    `${refLabel} CPU µs/req`,
    `÷${refLabel} req/s`,
    `÷${refLabel} CPU/req`,
    `÷${refLabel} p99`,
  ]
  const lines = rows.map((r) => [
    r.scenario,
    ...(showServer ? [SERVERS[r.server].label] : []),
    f0(r.measured.rps),
    f0(r.measured.p50Us),
    f0(r.measured.p90Us),
    f0(r.measured.p99Us),
    f0(r.measured.maxUs),
    f2(r.measured.cpuUsPerRequest),
    ...(showServer ? [f2(r.measured.primaryCpuUsPerRequest)] : []),
    String(r.measured.errors + (r.reference?.errors ?? 0)),
    f0(r.reference?.rps),
    f2(r.reference?.cpuUsPerRequest),
    f2(r.ratio?.rps),
    f2(r.ratio?.cpuPerRequest),
    f2(r.ratio?.p99),
  ])
  return layout(header, lines, showServer ? 2 : 1)
}

export function formatLadder(rows: readonly LadderRow[]): string {
  const header = [
    'scenario',
    'tls+http CPU µs/req',
    '+crypto',
    'openkes',
    'Δ crypto',
    'Δ openkes over +crypto',
    'Δ openkes over tls+http',
    'tls+http req/s',
    '+crypto req/s',
    'openkes req/s',
  ]
  const lines = rows.map((r) => [
    r.scenario.slice(LADDER_PREFIX.length),
    f1(r.cpuUsPerRequest.tlsHttp),
    f1(r.cpuUsPerRequest.crypto),
    f1(r.cpuUsPerRequest.openkes),
    f1(r.extraCpuUs.cryptoOverTlsHttp),
    f1(r.extraCpuUs.openkesOverCrypto),
    f1(r.extraCpuUs.openkesOverTlsHttp),
    f0(r.rps.tlsHttp),
    f0(r.rps.crypto),
    f0(r.rps.openkes),
  ])
  return layout(header, lines, 1)
}

export function formatDistribution(rows: readonly DistributionRow[]): string {
  return rows
    .map((r) => {
      const faster = Number.isNaN(r.rrOverNone.rps) ? '-' : r.rrOverNone.rps >= 1 ? 'rr' : 'none'
      return `  ${r.scenario.slice(WORKERS_PREFIX.length).padEnd(30)}  rr ÷ none: req/s ${f2(r.rrOverNone.rps)}, CPU/req ${f2(r.rrOverNone.cpuPerRequest)}  (more req/s: ${faster})`
    })
    .join('\n')
}
