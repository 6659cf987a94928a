// A minimal Prometheus registry: counters, gauges and histograms, with
// labels, rendered in the text exposition format 0.0.4. Hand-written because
// we need a dozen series, not a client library and its dependencies.

/** Label values of one series, in the order of the metric's label names. */
type LabelValues = readonly string[]

interface Series<T> {
  readonly labels: LabelValues
  value: T
}

/** Something that can render itself as exposition text. */
export interface Collector {
  /** The metric family's name. */
  readonly name: string
  render(): string
  /** The family as exactly one unlabelled series: its labelled series summed. */
  renderTotal(): string
}

abstract class Metric<T> implements Collector {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  readonly #series = new Map<string, Series<T>>()

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
  }

  protected series(labels: LabelValues): Series<T> {
    const key = labels.length === 0 ? '' : labels.join('\u0000')
    let s = this.#series.get(key)
    if (s === undefined) {
      if (labels.length !== this.labelNames.length) throw new RangeError(`metrics: ${this.name}: wrong label count`)
      s = { labels, value: this.initial() }
      this.#series.set(key, s)
    }
    return s
  }

  protected abstract initial(): T
  /** `a` plus `b`, as a new value (for totals over labelled series). */
  protected abstract sum(a: T, b: T): T
  protected abstract renderSeries(s: Series<T>): string
  protected abstract readonly type: string

  /** Brings values that are read from elsewhere up to date before rendering. */
  protected refresh(): void {}

  render(): string {
    this.refresh()
    let out = this.#header()
    if (this.#series.size === 0 && this.labelNames.length === 0) this.series([])
    for (const s of this.#series.values()) out += this.renderSeries(s)
    return out
  }

  renderTotal(): string {
    this.refresh()
    let total = this.initial()
    for (const s of this.#series.values()) total = this.sum(total, s.value)
    return this.#header() + this.renderSeries({ labels: [], value: total })
  }

  #header(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}\n`
  }

  protected labelText(labels: LabelValues, extra = ''): string {
    const parts = labels.map((v, i) => `${this.labelNames[i] as string}="${escapeLabel(v)}"`)
    if (extra !== '') parts.push(extra)
    return parts.length === 0 ? '' : `{${parts.join(',')}}`
  }
}

/** A single number per series (counters and gauges); an unlabelled one may be read from elsewhere when scraped. */
abstract class NumberMetric extends Metric<number> {
  readonly #read: (() => number) | undefined
  constructor(name: string, help: string, labelNames: readonly string[] = [], read?: () => number) {
    super(name, help, labelNames)
    this.#read = read
  }
  protected initial(): number {
    return 0
  }
  protected sum(a: number, b: number): number {
    return a + b
  }
  /** The current value of a series. */
  get(labels: LabelValues = []): number {
    return this.series(labels).value
  }
  protected override refresh(): void {
    if (this.#read !== undefined) this.series([]).value = this.#read()
  }
  protected renderSeries(s: Series<number>): string {
    return `${this.name}${this.labelText(s.labels)} ${formatNumber(s.value)}\n`
  }
}

/** One series of a counter, looked up once: adding to it costs no label lookup. */
export interface CounterChild {
  inc(by?: number): void
}

/** A monotonically increasing count. */
export class Counter extends NumberMetric {
  protected readonly type = 'counter'
  /** Adds `by` (default 1) to the series with these label values. */
  inc(labels: LabelValues = [], by = 1): void {
    this.series(labels).value += by
  }
  /** The series with these label values (created now, so it is exported from now on, at 0). */
  child(labels: LabelValues): CounterChild {
    const s = this.series(labels)
    return {
      inc(by = 1) {
        s.value += by
      },
    }
  }
}

/** A value that goes up and down. */
export class Gauge extends NumberMetric {
  protected readonly type = 'gauge'
  set(value: number, labels: LabelValues = []): void {
    this.series(labels).value = value
  }
  inc(labels: LabelValues = [], by = 1): void {
    this.series(labels).value += by
  }
  dec(labels: LabelValues = [], by = 1): void {
    this.series(labels).value -= by
  }
}

interface Buckets {
  readonly counts: number[]
  sum: number
  count: number
}

/** A histogram with fixed upper bounds (seconds, for latencies). */
export class Histogram extends Metric<Buckets> {
  protected readonly type = 'histogram'
  readonly bounds: readonly number[]
  constructor(name: string, help: string, bounds: readonly number[], labelNames: readonly string[] = []) {
    super(name, help, labelNames)
    this.bounds = bounds
  }
  protected initial(): Buckets {
    return { counts: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 }
  }
  protected sum(a: Buckets, b: Buckets): Buckets {
    return { counts: a.counts.map((c, i) => c + (b.counts[i] ?? 0)), sum: a.sum + b.sum, count: a.count + b.count }
  }
  /** Records one observation. */
  observe(value: number, labels: LabelValues = []): void {
    const b = this.series(labels).value
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= (this.bounds[i] as number)) {
        b.counts[i] = (b.counts[i] as number) + 1
        break
      }
    }
    b.sum += value
    b.count++
  }
  /** The number of observations of a series (tests). */
  count(labels: LabelValues = []): number {
    return this.series(labels).value.count
  }
  protected renderSeries(s: Series<Buckets>): string {
    let out = ''
    let cumulative = 0
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += s.value.counts[i] as number
      out += `${this.name}_bucket${this.labelText(s.labels, `le="${formatNumber(this.bounds[i] as number)}"`)} ${cumulative}\n`
    }
    out += `${this.name}_bucket${this.labelText(s.labels, 'le="+Inf"')} ${s.value.count}\n`
    out += `${this.name}_sum${this.labelText(s.labels)} ${formatNumber(s.value.sum)}\n`
    out += `${this.name}_count${this.labelText(s.labels)} ${s.value.count}\n`
    return out
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
  /** The exposition text of every collector, in registration order. */
  render(): string {
    return this.#collectors.map((c) => c.render()).join('')
  }
  /** The exposition text of the collectors `include` picks, each as one unlabelled series. */
  renderTotals(include: (name: string) => boolean): string {
    return this.#collectors.filter((c) => include(c.name)).map((c) => c.renderTotal()).join('')
  }
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
