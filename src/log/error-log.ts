import { EventHub } from './event-hub.js'

/** Where error-log lines go; the default is the process's stderr. */
export type LineSink = (line: string) => void

/**
 * The error log: operational failures (key store errors, TLS handshake
 * failures, configuration problems, dropped audit events), one line each,
 * to stderr (`log.error: on`) and to every live `/v1/log/error/trace` reader
 * as `{"message":"..."}`. Callers pass names and causes only, never key
 * material, plaintexts or request bodies.
 */
export class ErrorLog {
  readonly hub: EventHub
  #enabled: boolean
  readonly #sink: LineSink
  readonly #onEvent: () => void

  constructor(opts: { enabled: boolean; sink?: LineSink; hub?: EventHub; onEvent?: () => void }) {
    this.#enabled = opts.enabled
    this.#sink = opts.sink ?? ((line) => process.stderr.write(line))
    this.hub = opts.hub ?? new EventHub({ maxBufferedBytes: 256 * 1024 })
    this.#onEvent = opts.onEvent ?? (() => {})
  }

  /** Turns the stderr output on or off (config reload); trace readers always get events. */
  setEnabled(enabled: boolean): void {
    this.#enabled = enabled
  }

  /** Records one error event. */
  error(message: string): void {
    // One event per line, whatever the message holds.
    const text = `${new Date().toISOString()} ${message.replace(/[\r\n]+/g, ' ')}`
    if (this.#enabled) this.#sink(`${text}\n`)
    this.hub.publish(`${JSON.stringify({ message: text })}\n`)
    this.#onEvent()
  }
}

/**
 * Passes at most `perSecond` lines a second to an error log and reports how
 * many it held back, so that what anyone on the network can trigger (failed
 * TLS handshakes) can't flood the log.
 */
export class RateLimitedLog {
  readonly #log: ErrorLog
  readonly #perSecond: number
  #windowStart = 0
  #inWindow = 0
  #suppressed = 0

  constructor(log: ErrorLog, perSecond: number) {
    this.#log = log
    this.#perSecond = perSecond
  }

  /** Records `message` unless this second's budget is spent. */
  error(message: string, now = Date.now()): void {
    if (now - this.#windowStart >= 1000) {
      if (this.#suppressed > 0) this.#log.error(`${this.#suppressed} similar messages suppressed`)
      this.#windowStart = now
      this.#inWindow = 0
      this.#suppressed = 0
    }
    if (this.#inWindow < this.#perSecond) {
      this.#inWindow++
      this.#log.error(message)
    } else {
      this.#suppressed++
    }
  }
}
