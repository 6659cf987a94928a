// Metrics as plain data: what one process counted, in a form that crosses a
// process boundary (`process.send`, structured clone, JSON), can be added up
// with the other processes' and rendered as the text exposition format 0.0.4.
// Every process of a server counts locally; a scrape gathers the snapshots,
// merges them and renders the result once.

/**
 * How a gauge combines across the processes of one server: `sum` adds them
 * (active requests, cache entries, memory), `first` takes the value of the
 * first snapshot in the list that has the gauge (one value for the whole
 * server that only one process knows, e.g. the health of the audit file its
 * writer holds; the caller puts that process's snapshot first).
 */
export type GaugeMerge = 'sum' | 'first'

/** One series of a counter or gauge: label values in the order of the family's label names. */
export interface NumberSeriesSnapshot {
  readonly labels: readonly string[]
  readonly value: number
}

/** One series of a histogram: per-bucket (not cumulative) counts, one per bound, then sum and count. */
export interface HistogramSeriesSnapshot {
  readonly labels: readonly string[]
  readonly counts: readonly number[]
  readonly sum: number
  readonly count: number
}

interface FamilyHead {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
}

/** A counter family: series add across processes. */
export interface CounterSnapshot extends FamilyHead {
  readonly type: 'counter'
  readonly series: readonly NumberSeriesSnapshot[]
}

/** A gauge family, with the rule its series merge by. */
export interface GaugeSnapshot extends FamilyHead {
  readonly type: 'gauge'
  readonly merge: GaugeMerge
  readonly series: readonly NumberSeriesSnapshot[]
}

/** A histogram family: bucket counts, sums and counts add across processes. */
export interface HistogramSnapshot extends FamilyHead {
  readonly type: 'histogram'
  /** Upper bounds of the buckets, ascending, without +Inf. */
  readonly bounds: readonly number[]
  readonly series: readonly HistogramSeriesSnapshot[]
}

/** One metric family. */
export type FamilySnapshot = CounterSnapshot | GaugeSnapshot | HistogramSnapshot

/**
 * Every metric family of a registry, in registration order, as plain data
 * (objects, arrays, strings, numbers): it survives `process.send`,
 * `structuredClone` and a JSON round trip unchanged, as long as its numbers
 * are finite (JSON has no NaN or infinities; no OpenKES metric produces them).
 * It holds no reference to live counters: later observations don't change it.
 */
export interface MetricsSnapshot {
  readonly families: readonly FamilySnapshot[]
}

/**
 * Who reads `/v1/metrics`: `prometheus` (a scraper naming a Prometheus
 * exposition format in Accept) gets every family with its labels; `kes`
 * (everyone else: KES client libraries send no Accept) gets the KES families
 * only, each as exactly one series, since the KES 0.17 client refuses any
 * family with more than one.
 */
export type MetricsAudience = 'prometheus' | 'kes'

// The families KES itself exported, which KES clients read.
const KES_FAMILY = /^kes_(http|log|system)_/

/**
 * The exposition text of a snapshot for an audience: for `prometheus` every
 * family with all its series; for `kes` the `kes_http_*`, `kes_log_*` and
 * `kes_system_*` families, each as one unlabelled series that sums the
 * family's series. On a merged snapshot the totals are taken after the merge,
 * so a KES client sees the whole server: requests of every process, active
 * requests summed, `first` gauges (up time, audit file health) as the first
 * snapshot had them. For one process's snapshot this is exactly what
 * `ServerMetrics#render(audience)` gives.
 */
export function renderSnapshot(s: MetricsSnapshot, audience: MetricsAudience): string {
  let out = ''
  for (const f of s.families) {
    if (audience === 'prometheus') out += renderFamily(f)
    else if (KES_FAMILY.test(f.name)) out += renderFamilyTotal(f)
  }
  return out
}

/** The exposition text of a family with all its series. */
export function renderFamily(f: FamilySnapshot): string {
  let out = header(f)
  if (f.type === 'histogram') for (const s of f.series) out += histogramText(f, s)
  else for (const s of f.series) out += `${f.name}${labelText(f.labelNames, s.labels)} ${formatNumber(s.value)}\n`
  return out
}

/** The exposition text of a family as exactly one unlabelled series: its series summed (0 when it has none). */
export function renderFamilyTotal(f: FamilySnapshot): string {
  if (f.type === 'histogram') {
    const counts = new Array<number>(f.bounds.length).fill(0)
    let sum = 0
    let count = 0
    for (const s of f.series) {
      addInto(counts, s.counts)
      sum += s.sum
      count += s.count
    }
    return header(f) + histogramText(f, { labels: [], counts, sum, count })
  }
  let total = 0
  for (const s of f.series) total += s.value
  return `${header(f)}${f.name} ${formatNumber(total)}\n`
}

/**
 * Adds up the snapshots of the processes of one server into one snapshot.
 * Families are matched by name and series by label values: counters and
 * histograms (bucket counts, sum, count) add, gauges follow their merge rule.
 * A series or family only some snapshots have is kept as they have it.
 * Families come out in the order they first appear in the list, and series
 * likewise, so a list of one snapshot gives that snapshot back (as new data).
 * The empty list gives a snapshot without families. The inputs are not changed.
 * Throws an Error when two snapshots disagree on a family's type, label names,
 * buckets or gauge merge rule (processes running different code).
 */
export function mergeSnapshots(list: readonly MetricsSnapshot[]): MetricsSnapshot {
  const merged = new Map<string, FamilyMerger>()
  for (const snapshot of list) {
    for (const f of snapshot.families) {
      const m = merged.get(f.name)
      if (m === undefined) merged.set(f.name, new FamilyMerger(f))
      else m.add(f)
    }
  }
  return { families: [...merged.values()].map((m) => m.result()) }
}

/** Merges one family across snapshots; series are keyed by their label values. */
class FamilyMerger {
  readonly #first: FamilySnapshot
  readonly #numbers = new Map<string, { labels: readonly string[]; value: number }>()
  readonly #histograms = new Map<string, { labels: readonly string[]; counts: number[]; sum: number; count: number }>()

  constructor(first: FamilySnapshot) {
    this.#first = first
    this.#addSeries(first)
  }

  add(f: FamilySnapshot): void {
    const why = mismatch(this.#first, f)
    if (why !== undefined) throw new Error(`metrics: cannot merge snapshots of '${f.name}': ${why}`)
    // A `first` gauge is one value for the whole server: later snapshots don't add to it.
    if (f.type === 'gauge' && f.merge === 'first') return
    this.#addSeries(f)
  }

  #addSeries(f: FamilySnapshot): void {
    if (f.type === 'histogram') {
      for (const s of f.series) {
        const key = seriesKey(s.labels)
        const m = this.#histograms.get(key)
        if (m === undefined) this.#histograms.set(key, { labels: [...s.labels], counts: [...s.counts], sum: s.sum, count: s.count })
        else {
          addInto(m.counts, s.counts)
          m.sum += s.sum
          m.count += s.count
        }
      }
      return
    }
    for (const s of f.series) {
      const key = seriesKey(s.labels)
      const m = this.#numbers.get(key)
      if (m === undefined) this.#numbers.set(key, { labels: [...s.labels], value: s.value })
      else m.value += s.value
    }
  }

  result(): FamilySnapshot {
    const f = this.#first
    const head = { name: f.name, help: f.help, labelNames: [...f.labelNames] }
    switch (f.type) {
      case 'histogram':
        return { ...head, type: 'histogram', bounds: [...f.bounds], series: [...this.#histograms.values()] }
      case 'gauge':
        return { ...head, type: 'gauge', merge: f.merge, series: [...this.#numbers.values()] }
      case 'counter':
        return { ...head, type: 'counter', series: [...this.#numbers.values()] }
    }
  }
}

/** Why two snapshots of one family can't be merged, or undefined when they can. */
function mismatch(a: FamilySnapshot, b: FamilySnapshot): string | undefined {
  if (a.type !== b.type) return `type ${a.type} vs ${b.type}`
  if (!sameList(a.labelNames, b.labelNames)) return `label names [${a.labelNames.join(',')}] vs [${b.labelNames.join(',')}]`
  if (a.type === 'histogram' && !sameList(a.bounds, (b as HistogramSnapshot).bounds)) return 'different buckets'
  if (a.type === 'gauge' && a.merge !== (b as GaugeSnapshot).merge) return `merge ${a.merge} vs ${(b as GaugeSnapshot).merge}`
  return undefined
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}

function seriesKey(labels: readonly string[]): string {
  return labels.join('\u0000')
}

function addInto(into: number[], add: readonly number[]): void {
  for (let i = 0; i < into.length; i++) into[i] = (into[i] as number) + (add[i] as number)
}

function header(f: FamilySnapshot): string {
  return `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`
}

function histogramText(f: HistogramSnapshot, s: HistogramSeriesSnapshot): string {
  let out = ''
  let cumulative = 0
  for (let i = 0; i < f.bounds.length; i++) {
    cumulative += s.counts[i] as number
    out += `${f.name}_bucket${labelText(f.labelNames, s.labels, `le="${formatNumber(f.bounds[i] as number)}"`)} ${cumulative}\n`
  }
  out += `${f.name}_bucket${labelText(f.labelNames, s.labels, 'le="+Inf"')} ${s.count}\n`
  out += `${f.name}_sum${labelText(f.labelNames, s.labels)} ${formatNumber(s.sum)}\n`
  out += `${f.name}_count${labelText(f.labelNames, s.labels)} ${s.count}\n`
  return out
}

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = values.map((v, i) => `${names[i] as string}="${escapeLabel(v)}"`)
  if (extra !== '') parts.push(extra)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}
