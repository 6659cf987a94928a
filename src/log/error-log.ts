/** Where error-log lines go; the default is the process's stderr. */
export type LineSink = (line: string) => void

/**
 * The error log: operational failures (key store errors, TLS handshake
 * failures, ...), one line each. Messages must never carry key material,
 * plaintexts or request bodies; callers pass only names and causes.
 */
export class ErrorLog {
  readonly #enabled: boolean
  readonly #sink: LineSink

  constructor(opts: { enabled: boolean; sink?: LineSink }) {
    this.#enabled = opts.enabled
    this.#sink = opts.sink ?? ((line) => process.stderr.write(line))
  }

  /** Records one error event. */
  error(message: string): void {
    if (!this.#enabled) return
    // One event per line, whatever the message holds.
    const oneLine = message.replace(/[\r\n]+/g, ' ')
    this.#sink(`${new Date().toISOString()} error: ${oneLine}\n`)
  }
}
