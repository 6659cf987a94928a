/**
 * The in-memory cache the server puts in front of the key store, with the expiry
 * rules of KES `cache.expiry`: `any` drops an entry that long after it was loaded,
 * however often it is used; `unused` drops an entry not used for that long.
 */

/** Expiry settings of an ExpiringCache; 0 disables a rule. */
export interface CacheOptions {
  /** Drop an entry this many ms after it was loaded or set, however often it is used. */
  expiryAnyMs: number
  /** Drop an entry not used (get or peek hit) for this many ms. */
  expiryUnusedMs: number
  /** The clock in ms; a monotonic clock (performance.now) unless a test injects one. */
  now?: () => number
}

interface Entry<V> {
  readonly value: V
  // Deadlines rather than timestamps, so the hit path is two comparisons.
  readonly expiresAt: number
  unusedAt: number
}

interface Flight<V> {
  // Set by delete/set/clear: the load's result is handed to its waiters but not cached.
  cancelled: boolean
  readonly promise: Promise<V | undefined>
}

const minSweepMs = 1_000
const maxSweepMs = 60_000

/**
 * A name → value cache with expiry and single-flight loading. A sweep timer (unref'd, so it
 * never keeps the process alive) runs while entries exist; `close()` stops it.
 */
export class ExpiringCache<V> {
  // Infinity when the rule is disabled, so that no check needs a branch for it.
  readonly #anySpanMs: number
  readonly #unusedSpanMs: number
  readonly #now: () => number
  readonly #sweepMs: number
  readonly #entries = new Map<string, Entry<V>>()
  readonly #flights = new Map<string, Flight<V>>()
  #timer: ReturnType<typeof setInterval> | undefined
  #closed = false
  #hits = 0
  #misses = 0

  /** Throws RangeError when an expiry is negative or not a finite number. */
  constructor(opts: CacheOptions) {
    const anyMs = checkExpiry('expiryAnyMs', opts.expiryAnyMs)
    const unusedMs = checkExpiry('expiryUnusedMs', opts.expiryUnusedMs)
    this.#anySpanMs = anyMs > 0 ? anyMs : Infinity
    this.#unusedSpanMs = unusedMs > 0 ? unusedMs : Infinity
    this.#now = opts.now ?? (() => performance.now())
    const enabled = [anyMs, unusedMs].filter((ms) => ms > 0)
    this.#sweepMs = enabled.length === 0 ? 0 : clamp(Math.min(...enabled) / 2, minSweepMs, maxSweepMs)
  }

  /**
   * Returns the cached value, or loads it once even when many callers ask at the same time
   * (single flight); a loader that resolves `undefined` caches nothing; a loader that throws
   * caches nothing and all concurrent waiters get the error. Every call counts as a hit or a miss.
   */
  get(name: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const entry = this.#entries.get(name)
    if (entry !== undefined) {
      const now = this.#now()
      if (now < entry.expiresAt && now < entry.unusedAt) {
        entry.unusedAt = now + this.#unusedSpanMs
        this.#hits++
        return Promise.resolve(entry.value)
      }
      this.#entries.delete(name)
    }
    this.#misses++
    return this.#flights.get(name)?.promise ?? this.#startLoad(name, load)
  }

  /** Returns the cached value without loading (a hit counts as a use for `unused`), or undefined. */
  peek(name: string): V | undefined {
    const entry = this.#entries.get(name)
    if (entry === undefined) return undefined
    const now = this.#now()
    if (now < entry.expiresAt && now < entry.unusedAt) {
      entry.unusedAt = now + this.#unusedSpanMs
      return entry.value
    }
    this.#entries.delete(name)
    return undefined
  }

  /** Caches `value` as if just loaded; a load in flight for `name` is then not cached. */
  set(name: string, value: V): void {
    this.#cancelFlight(name)
    this.#store(name, value)
  }

  /** Drops `name`; a load in flight for it is then not cached (its waiters still get its result). */
  delete(name: string): void {
    this.#cancelFlight(name)
    this.#entries.delete(name)
    if (this.#entries.size === 0) this.#stopTimer()
  }

  /** Drops every entry and keeps every load in flight from being cached. */
  clear(): void {
    for (const flight of this.#flights.values()) flight.cancelled = true
    this.#flights.clear()
    this.#entries.clear()
    this.#stopTimer()
  }

  /** The number of cached entries, including expired ones the sweep has not dropped yet. */
  get size(): number {
    return this.#entries.size
  }

  /** How many `get` calls were served from the cache. */
  get hits(): number {
    return this.#hits
  }

  /** How many `get` calls found no valid entry (whether they started a load or joined one). */
  get misses(): number {
    return this.#misses
  }

  /**
   * Drops expired entries. The timer calls it every min(any, unused)/2 (at least 1 s apart,
   * at most 60 s) while entries exist; tests call it directly.
   */
  sweep(): void {
    const now = this.#now()
    for (const [name, entry] of this.#entries) {
      if (now >= entry.expiresAt || now >= entry.unusedAt) this.#entries.delete(name)
    }
    if (this.#entries.size === 0) this.#stopTimer()
  }

  /** Stops the sweep timer and drops every entry; the cache still works afterwards, without a timer. */
  close(): void {
    this.#closed = true
    this.clear()
  }

  #startLoad(name: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    // Calling `load` in a later microtask means even a synchronous throw settles after
    // the flight is registered, so it is always removed again.
    const promise = Promise.resolve()
      .then(load)
      .then(
        (value) => {
          this.#endFlight(name, flight)
          if (!flight.cancelled && value !== undefined) this.#store(name, value)
          return value
        },
        (err: unknown) => {
          this.#endFlight(name, flight)
          throw err
        },
      )
    const flight: Flight<V> = { cancelled: false, promise }
    this.#flights.set(name, flight)
    return promise
  }

  #endFlight(name: string, flight: Flight<V>): void {
    if (this.#flights.get(name) === flight) this.#flights.delete(name)
  }

  #cancelFlight(name: string): void {
    const flight = this.#flights.get(name)
    if (flight === undefined) return
    flight.cancelled = true
    this.#flights.delete(name)
  }

  #store(name: string, value: V): void {
    const now = this.#now()
    this.#entries.set(name, {
      value,
      expiresAt: now + this.#anySpanMs,
      unusedAt: now + this.#unusedSpanMs,
    })
    this.#startTimer()
  }

  #startTimer(): void {
    if (this.#timer !== undefined || this.#closed || this.#sweepMs === 0) return
    this.#timer = setInterval(() => this.sweep(), this.#sweepMs)
    this.#timer.unref()
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}

function checkExpiry(field: string, ms: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`cache: ${field} must be a finite number of ms >= 0`)
  }
  return ms
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max)
}
