// Taken slots at the front of the queue are cut off once there are this many and they are half of it.
const COMPACT_AFTER = 1024

/**
 * Lets at most `perTurn` tasks start per turn of the event loop; the others start in the turns
 * that follow, in the order they came. The server uses it for the work of HTTP/2 requests
 * whose bodies have arrived (./http2-fast-path.ts).
 *
 * Why: an HTTP/2 client sends its requests in bursts (a client's 64 streams and their bodies
 * can arrive in one TLS record), and Node writes a session's answers only once the work of the
 * current turn is done. Worked through all at once, a burst is answered all at once: the client
 * reads no answer before the last request of the burst is done, and sits idle while the server
 * works, then the server sits idle while the client reads. Worked through a group at a time,
 * each group's answers are written between turns, so the client reads them and sends its next
 * requests while the server works on the rest. It also bounds how long one burst holds the
 * event loop: timers, other connections and health checks wait for one group at most.
 *
 * A task that is gone by its turn (`isGone`: its client gave up) is dropped then, and does not
 * count against the turn: a client that opens and resets streams without end costs no work.
 */
export class RequestTurns<T> {
  readonly #perTurn: number
  readonly #start: (task: T) => void
  readonly #isGone: (task: T) => boolean
  readonly #schedule: (next: () => void) => void
  /** Started since the last scheduled turn began. */
  #started = 0
  /** A next turn is scheduled. */
  #armed = false
  readonly #waiting: Array<T | undefined> = []
  /** The first waiting task's index in #waiting (taken from the front without shifting the array). */
  #head = 0

  /**
   * `start` starts a task (it should not throw: a throw reaches the caller of `admit`, or
   * ends a turn early). `schedule` runs its callback in a later turn (default: setImmediate,
   * which runs after Node has written what the current turn answered).
   */
  constructor(
    perTurn: number,
    start: (task: T) => void,
    isGone: (task: T) => boolean,
    schedule: (next: () => void) => void = (next) => void setImmediate(next),
  ) {
    if (!Number.isSafeInteger(perTurn) || perTurn < 1) throw new RangeError('requests per turn must be a positive integer')
    this.#perTurn = perTurn
    this.#start = start
    this.#isGone = isGone
    this.#schedule = schedule
  }

  /** Requests waiting for a turn (gone ones included until their turn drops them). */
  get waiting(): number {
    return this.#waiting.length - this.#head
  }

  /** Starts `task` now if this turn has room and nothing waits before it; else queues it. */
  admit(task: T): void {
    if (this.#started < this.#perTurn && this.#head === this.#waiting.length) {
      this.#started++
      this.#start(task)
      return
    }
    this.#waiting.push(task)
    this.#arm()
  }

  // The turn counter is reset only by a scheduled turn, and one is scheduled only when a task
  // has to wait: a server that never gets a burst schedules nothing. So a lone request may wait
  // for one turn after `perTurn` earlier starts; never longer.
  #arm(): void {
    if (this.#armed) return
    this.#armed = true
    this.#schedule(this.#turn)
  }

  readonly #turn = (): void => {
    this.#armed = false
    this.#started = 0
    try {
      while (this.#started < this.#perTurn && this.#head < this.#waiting.length) {
        const task = this.#waiting[this.#head] as T
        this.#waiting[this.#head++] = undefined
        if (this.#isGone(task)) continue
        this.#started++
        this.#start(task)
      }
    } finally {
      if (this.#head === this.#waiting.length) {
        this.#waiting.length = 0
        this.#head = 0
      } else {
        // A queue that never empties (a server behind its load) is compacted now and then.
        if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#waiting.length) {
          this.#waiting.splice(0, this.#head)
          this.#head = 0
        }
        this.#arm()
      }
    }
  }
}
