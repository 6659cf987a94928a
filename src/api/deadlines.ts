/**
 * The deadlines of requests in flight, on one timer. A request used to arm a
 * setTimeout of its own (and a second one while its body arrived); here it
 * adds a small entry to a list and removes it when it is answered, and one
 * timer, armed for the earliest deadline, serves them all.
 *
 * Requests of one route share one timeout length, so entries of the same
 * length are added in the order they expire: one FIFO list per length stays
 * sorted by itself, and adding or removing an entry is O(1).
 *
 * The timer is not cleared when the last deadline is cancelled (at one request at a time, that
 * would be a setTimeout and a clearTimeout per request): it is only unref'd, so it keeps no
 * process alive, and when it fires with nothing due it re-arms for what is left, if anything.
 */

/** A deadline in force; `cancel` it once the work is done. */
export interface Deadline {
  cancel(): void
}

class Entry implements Deadline {
  prev: Entry | undefined
  next: Entry | undefined
  list: Queue | undefined
  readonly at: number
  readonly onExpire: () => void
  readonly #owner: Deadlines

  constructor(owner: Deadlines, list: Queue, at: number, onExpire: () => void) {
    this.#owner = owner
    this.list = list
    this.at = at
    this.onExpire = onExpire
  }

  cancel(): void {
    if (this.list === undefined) return
    this.list.remove(this)
    this.#owner.removed()
  }
}

/** Entries of one timeout length, earliest first. */
class Queue {
  head: Entry | undefined
  tail: Entry | undefined

  push(e: Entry): void {
    e.prev = this.tail
    if (this.tail === undefined) this.head = e
    else this.tail.next = e
    this.tail = e
  }

  remove(e: Entry): void {
    if (e.prev === undefined) this.head = e.next
    else e.prev.next = e.next
    if (e.next === undefined) this.tail = e.prev
    else e.next.prev = e.prev
    e.prev = undefined
    e.next = undefined
    e.list = undefined
  }
}

/** Deadlines on one timer; `now` is a monotonic clock in ms (tests may inject one). */
export class Deadlines {
  readonly #queues = new Map<number, Queue>()
  readonly #now: () => number
  #count = 0
  #timer: NodeJS.Timeout | undefined
  #timerAt = Infinity

  constructor(now: () => number = () => performance.now()) {
    this.#now = now
  }

  /** Deadlines in force (tests). */
  get size(): number {
    return this.#count
  }

  /** Calls `onExpire` once, `ms` from now, unless the returned deadline is cancelled first. */
  add(ms: number, onExpire: () => void): Deadline {
    let queue = this.#queues.get(ms)
    if (queue === undefined) {
      queue = new Queue()
      this.#queues.set(ms, queue)
    }
    const entry = new Entry(this, queue, this.#now() + ms, onExpire)
    queue.push(entry)
    this.#count++
    if (entry.at < this.#timerAt) this.#arm(entry.at)
    // The timer left armed after the last cancel serves this entry too (it fires no later).
    else if (this.#count === 1) this.#timer?.ref()
    return entry
  }

  /** An entry left its list (cancelled): with none left, the timer stays but no longer keeps the process alive. */
  removed(): void {
    this.#count--
    if (this.#count === 0) this.#timer?.unref()
  }

  #arm(at: number): void {
    this.#disarm()
    this.#timerAt = at
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(at - this.#now())))
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Infinity
  }

  #expire(): void {
    this.#timer = undefined
    this.#timerAt = Infinity
    const now = this.#now()
    const due: Entry[] = []
    let next = Infinity
    for (const queue of this.#queues.values()) {
      while (queue.head !== undefined && queue.head.at <= now) {
        const e = queue.head
        queue.remove(e)
        this.#count--
        due.push(e)
      }
      if (queue.head !== undefined && queue.head.at < next) next = queue.head.at
    }
    if (next !== Infinity) this.#arm(next)
    // A late timer can find several lists due: fire in deadline order (sort is stable).
    if (due.length > 1) due.sort((x, y) => x.at - y.at)
    // After the lists are consistent: a callback may add or cancel deadlines.
    for (const e of due) e.onExpire()
  }
}
