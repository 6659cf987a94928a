// A minimal Prometheus registry: counters, gauges and histograms, with
// labels, rendered in the text exposition format 0.0.4. Hand-written because
// we need a dozen series, not a client library and its dependencies, and
// because counting sits on every request's path: a series found once is
// counted with one field update, no label lookup and no allocation.
import { renderFamily, renderFamilyTotal } from './snapshot.js'
import type { CounterSnapshot, FamilySnapshot, GaugeMerge, GaugeSnapshot, HistogramSnapshot, MetricsSnapshot } from './snapshot.js'

/** Label values of one series, in the order of the metric's label names. */
type LabelValues = readonly string[]

/** Something the registry can take a snapshot of. */
export interface Collector {
  /** The metric family's name. */
  readonly name: string
  /** The family's current values as plain data (values read from elsewhere are read now). */
  snapshot(): FamilySnapshot
}

/** One series of a counter or gauge. */
export class NumberSeries {
  readonly labels: LabelValues
  value = 0
  constructor(labels: LabelValues) {
    this.labels = labels
  }
  /** Adds `by` (default 1). */
  inc(by = 1): void {
    this.value += by
  }
}

/** One series of a counter, looked up once: adding to it costs no label lookup. */
export interface CounterChild {
  inc(by?: number): void
}

/** One series of a histogram: per-bucket (not cumulative) counts, sum and count. */
export class HistogramSeries {
  readonly labels: LabelValues
  readonly bounds: readonly number[]
  readonly counts: number[]
  sum = 0
  count = 0
  constructor(labels: LabelValues, bounds: readonly number[]) {
    this.labels = labels
    this.bounds = bounds
    this.counts = new Array<number>(bounds.length).fill(0)
  }
  /** Records one observation. */
  observe(value: number): void {
    const bounds = this.bounds
    const n = bounds.length
    // Searched from the lowest bound: request latencies cluster in the first
    // buckets, so most observations take one comparison. `!(<=)` keeps NaN out
    // of every finite bucket (it counts only in +Inf, sum and count).
    let i = 0
    while (i < n && !(value <= (bounds[i] as number))) i++
    if (i < n) this.counts[i] = (this.counts[i] as number) + 1
    this.sum += value
    this.count++
  }
}

abstract class Metric<S extends { readonly labels: LabelValues }> implements Collector {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  readonly #series = new Map<string, S>()
  // The one series of an unlabelled metric, found without a map lookup.
  #root: S | undefined

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
  }

  /** The series with these label values (none: the unlabelled series), created on first use. Throws a RangeError for a wrong label count. */
  protected series(labels?: LabelValues): S {
    if (labels === undefined || labels.length === 0) return (this.#root ??= this.#create([]))
    return this.#series.get(labels.join('\u0000')) ?? this.#create(labels)
  }

  #create(labels: LabelValues): S {
    if (labels.length !== this.labelNames.length) throw new RangeError(`metrics: ${this.name}: wrong label count`)
    const s = this.newSeries([...labels])
    this.#series.set(labels.join('\u0000'), s)
    return s
  }

  /** Every series, in the order they were created; an unlabelled metric always has its one series (0 until counted). */
  protected allSeries(): S[] {
    if (this.labelNames.length === 0) this.series()
    return [...this.#series.values()]
  }

  protected abstract newSeries(labels: LabelValues): S
  abstract snapshot(): FamilySnapshot
}

/** A single number per series (counters and gauges); an unlabelled one may be read from elsewhere when a snapshot is taken. */
abstract class NumberMetric extends Metric<NumberSeries> {
  readonly #read: (() => number) | undefined
  constructor(name: string, help: string, labelNames: readonly string[], read: (() => number) | undefined) {
    super(name, help, labelNames)
    this.#read = read
  }
  protected newSeries(labels: LabelValues): NumberSeries {
    return new NumberSeries(labels)
  }
  /** The current value of a series (none: the unlabelled series). */
  get(labels?: LabelValues): number {
    return this.series(labels).value
  }
  /** Values of every series, brought up to date first when read from elsewhere. */
  protected seriesValues(): Array<{ labels: string[]; value: number }> {
    if (this.#read !== undefined) this.series().value = this.#read()
    return this.allSeries().map((s) => ({ labels: [...s.labels], value: s.value }))
  }
}

/** A monotonically increasing count. */
export class Counter extends NumberMetric {
  constructor(name: string, help: string, labelNames: readonly string[] = [], read?: () => number) {
    super(name, help, labelNames, read)
  }
  /** Adds `by` (default 1) to the series with these label values (none: the unlabelled series). */
  inc(labels?: LabelValues, by = 1): void {
    this.series(labels).value += by
  }
  /** The series with these label values (created now, so it is exported from now on, at 0). */
  child(labels: LabelValues): CounterChild {
    return this.series(labels)
  }
  snapshot(): CounterSnapshot {
    return { name: this.name, help: this.help, type: 'counter', labelNames: [...this.labelNames], series: this.seriesValues() }
  }
}

/** A value that goes up and down, with the rule it merges by across processes. */
export class Gauge extends NumberMetric {
  readonly merge: GaugeMerge
  constructor(name: string, help: string, merge: GaugeMerge, labelNames: readonly string[] = [], read?: () => number) {
    super(name, help, labelNames, read)
    this.merge = merge
  }
  set(value: number, labels?: LabelValues): void {
    this.series(labels).value = value
  }
  inc(labels?: LabelValues, by = 1): void {
    this.series(labels).value += by
  }
  dec(labels?: LabelValues, by = 1): void {
    this.series(labels).value -= by
  }
  snapshot(): GaugeSnapshot {
    return { name: this.name, help: this.help, type: 'gauge', merge: this.merge, labelNames: [...this.labelNames], series: this.seriesValues() }
  }
}

/** A histogram with fixed upper bounds (seconds, for latencies). */
export class Histogram extends Metric<HistogramSeries> {
  readonly bounds: readonly number[]
  constructor(name: string, help: string, bounds: readonly number[], labelNames: readonly string[] = []) {
    super(name, help, labelNames)
    this.bounds = [...bounds]
  }
  protected newSeries(labels: LabelValues): HistogramSeries {
    return new HistogramSeries(labels, this.bounds)
  }
  /** Records one observation in the series with these label values (none: the unlabelled series). */
  observe(value: number, labels?: LabelValues): void {
    this.series(labels).observe(value)
  }
  /** The series with these label values, to observe without a label lookup. */
  child(labels?: LabelValues): HistogramSeries {
    return this.series(labels)
  }
  /** The number of observations of a series (tests). */
  count(labels?: LabelValues): number {
    return this.series(labels).count
  }
  snapshot(): HistogramSnapshot {
    return {
      name: this.name,
      help: this.help,
      type: 'histogram',
      labelNames: [...this.labelNames],
      bounds: [...this.bounds],
      series: this.allSeries().map((s) => ({ labels: [...s.labels], counts: [...s.counts], sum: s.sum, count: s.count })),
    }
  }
}

/** A set of collectors rendered together. */
export class Registry {
  readonly #collectors: Collector[] = []
  /** Adds a collector and returns it. */
  register<C extends Collector>(c: C): C {
    this.#collectors.push(c)
    return c
  }
  /** Every collector's family, in registration order, as plain data. */
  snapshot(): MetricsSnapshot {
    return { families: this.#collectors.map((c) => c.snapshot()) }
  }
  /** The exposition text of every collector, in registration order. */
  render(): string {
    return this.snapshot().families.map(renderFamily).join('')
  }
  /** The exposition text of the collectors `include` picks, each as one unlabelled series. */
  renderTotals(include: (name: string) => boolean): string {
    return this.#collectors
      .filter((c) => include(c.name))
      .map((c) => renderFamilyTotal(c.snapshot()))
      .join('')
  }
}
