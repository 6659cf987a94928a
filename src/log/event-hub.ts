/** The part of an HTTP response a log subscriber writes to (HTTP/1.1 and HTTP/2 alike). */
export interface SubscriberSink {
  write(chunk: string): unknown
  end(): unknown
  /** Bytes accepted but not yet handed to the network: what a slow reader has left unread. */
  readonly writableLength: number
}

/** One live reader of a log stream. */
export interface Subscription {
  /** Stops delivering (the reader went away); does not end the sink. */
  cancel(): void
  /** Resolves when the subscription ends, by cancel() or by closeAll(). */
  readonly closed: Promise<void>
}

/** Limits of a hub. */
export interface EventHubOptions {
  /** A subscriber with more than this many unread bytes gets no more events until it catches up. */
  readonly maxBufferedBytes: number
  /** Called for every event dropped for a slow subscriber. */
  readonly onDrop?: () => void
  /** At most this many readers at once (default 64): each may hold maxBufferedBytes. */
  readonly maxSubscribers?: number
}

const DEFAULT_MAX_SUBSCRIBERS = 64

/**
 * Asks whether a reader may still read (its identity and policy as they are now).
 * Rejects when that can't be known (the store is down): the reader is then closed too.
 */
export type StillAllowed = () => Promise<boolean>

/** A reader's place, taken before it subscribes (see EventHub.reserve). */
export interface Reservation {
  /** Subscribes in the reserved place (once). */
  subscribe(sink: SubscriberSink, stillAllowed?: StillAllowed): Subscription
  /** Gives the place back unused (the stream was never opened); harmless after subscribe. */
  release(): void
}

interface Subscriber {
  readonly sink: SubscriberSink
  readonly finish: () => void
  readonly stillAllowed: StillAllowed | undefined
}

/**
 * Fans log lines out to any number of live readers. Publishing never waits
 * for a reader: a reader that falls behind by more than maxBufferedBytes has
 * events dropped (and counted) instead of slowing the server or growing its
 * memory without bound.
 */
export class EventHub {
  readonly #subscribers = new Set<Subscriber>()
  readonly #opts: EventHubOptions
  // Places taken by reserve() whose readers have not subscribed yet.
  #reserved = 0

  constructor(opts: EventHubOptions) {
    this.#opts = opts
  }

  /** The number of live readers. */
  get size(): number {
    return this.#subscribers.size
  }

  /** True when no more readers may subscribe (counting the places reserved). */
  get full(): boolean {
    return this.#subscribers.size + this.#reserved >= (this.#opts.maxSubscribers ?? DEFAULT_MAX_SUBSCRIBERS)
  }

  /**
   * Takes a reader's place now, or returns undefined when the hub is full.
   * Checking `full` and subscribing later would let every request that
   * checked before the first one subscribed in: the check and the taking of
   * the place must be one step.
   */
  reserve(): Reservation | undefined {
    if (this.full) return undefined
    this.#reserved++
    let pending = true
    const settle = (): void => {
      if (pending) {
        pending = false
        this.#reserved--
      }
    }
    return {
      subscribe: (sink, stillAllowed) => {
        if (!pending) throw new Error('event hub: reservation already used')
        settle()
        return this.subscribe(sink, stillAllowed)
      },
      release: settle,
    }
  }

  /**
   * Adds a reader; it receives every line published from now on, for as long
   * as `stillAllowed` (asked by `reauthorize`) says it may.
   */
  subscribe(sink: SubscriberSink, stillAllowed?: StillAllowed): Subscription {
    let finish!: () => void
    const closed = new Promise<void>((resolve) => (finish = resolve))
    const sub: Subscriber = { sink, finish, stillAllowed }
    this.#subscribers.add(sub)
    return {
      cancel: () => {
        if (this.#subscribers.delete(sub)) finish()
      },
      closed,
    }
  }

  /** Sends one line (with its newline) to every reader that keeps up. */
  publish(line: string): void {
    for (const sub of this.#subscribers) {
      if (sub.sink.writableLength > this.#opts.maxBufferedBytes) {
        this.#opts.onDrop?.()
        continue
      }
      sub.sink.write(line)
    }
  }

  /**
   * Asks every reader whether it may still read, and ends the stream of each
   * one that may not (its policy was deleted or changed, its identity
   * forgotten or reassigned, a reload removed it) or whose answer can't be
   * known: a revoked reader must not keep receiving events. Resolves to the
   * number of streams ended.
   */
  async reauthorize(): Promise<number> {
    const checks = [...this.#subscribers].map(async (sub) => {
      if (sub.stillAllowed === undefined) return false
      let allowed: boolean
      try {
        allowed = await sub.stillAllowed()
      } catch {
        allowed = false
      }
      if (allowed || !this.#subscribers.delete(sub)) return false
      sub.sink.end()
      sub.finish()
      return true
    })
    const ended = await Promise.all(checks)
    return ended.filter((e) => e).length
  }

  /** Ends every reader's stream (server shutdown). */
  closeAll(): void {
    for (const sub of this.#subscribers) {
      this.#subscribers.delete(sub)
      sub.sink.end()
      sub.finish()
    }
  }
}
