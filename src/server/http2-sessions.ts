// The server's HTTP/2 sessions, and the closing of idle ones.
//
// A session with no stream open for `limits.idle_timeout` is closed. Node's own
// session.setTimeout() would do it, but its timer is refreshed on every frame read and
// every response written (four times per request), and a refresh moves the timer in
// Node's timer lists: a measurable part of what a small HTTP/2 request costs. Here a
// session only notes when its last stream closed, and one timer for all sessions looks
// for idle ones a few times per idle period.
import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2'

// Sweeps are a fraction of the idle timeout, clamped: short timeouts (tests) are served
// promptly, long ones cost a sweep every few seconds at most.
const MIN_SWEEP_MS = 100
const MAX_SWEEP_MS = 5_000

/** How often sessions are checked for idleness: a session closes at most this late. */
export function sweepIntervalFor(idleTimeoutMs: number): number {
  return Math.min(Math.max(Math.floor(idleTimeoutMs / 4), MIN_SWEEP_MS), MAX_SWEEP_MS)
}

/** What is known of one session: its open streams, and since when it has had none. */
interface SessionActivity {
  open: number
  idleSince: number
}

/** The open HTTP/2 sessions; idle ones are closed after `idleTimeoutMs`. */
export class Http2Sessions {
  readonly #idleTimeoutMs: number
  readonly #now: () => number
  readonly #sessions = new Map<ServerHttp2Session, SessionActivity>()
  readonly #sweep: NodeJS.Timeout

  /** `now` is a monotonic clock in ms (tests may inject one). */
  constructor(idleTimeoutMs: number, now: () => number = () => performance.now()) {
    this.#idleTimeoutMs = idleTimeoutMs
    this.#now = now
    this.#sweep = setInterval(() => this.closeIdle(), sweepIntervalFor(idleTimeoutMs))
    // The sweep keeps no process alive: a server is kept alive by its listening socket.
    this.#sweep.unref()
  }

  /** Sessions open now. */
  get size(): number {
    return this.#sessions.size
  }

  /** Tracks `session` until it closes. */
  add(session: ServerHttp2Session): void {
    const activity: SessionActivity = { open: 0, idleSince: this.#now() }
    this.#sessions.set(session, activity)
    session.once('close', () => this.#sessions.delete(session))
    session.on('stream', (stream: ServerHttp2Stream) => {
      activity.open++
      stream.once('close', () => {
        if (--activity.open === 0) activity.idleSince = this.#now()
      })
    })
  }

  /** Closes every session that has had no stream open for the idle timeout (its streams are done). */
  closeIdle(): void {
    const now = this.#now()
    for (const [session, activity] of this.#sessions) {
      if (activity.open === 0 && now - activity.idleSince >= this.#idleTimeoutMs) session.close()
    }
  }

  /** Shutdown: every session is told to go away (GOAWAY) and closes once its open streams are done. */
  closeAll(): void {
    for (const session of this.#sessions.keys()) session.close()
  }

  /** Stops the sweep (the server is closing). */
  stop(): void {
    clearInterval(this.#sweep)
  }
}
