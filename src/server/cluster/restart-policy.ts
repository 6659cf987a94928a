/** The restart rules of a worker slot. */
export interface RestartRules {
  /** A worker that ran less than this (or never served) died "at once": a crash-loop candidate. */
  readonly quickExitMs: number
  /** After this many quick exits in a row the primary gives up. */
  readonly maxQuickExits: number
  /** The wait before the first restart after a quick exit; doubled with each further one. */
  readonly firstDelayMs: number
  /** The longest wait between restarts. */
  readonly maxDelayMs: number
}

export const DEFAULT_RESTART_RULES: RestartRules = { quickExitMs: 1_000, maxQuickExits: 5, firstDelayMs: 100, maxDelayMs: 3_200 }

/** What to do after a worker died. */
export type RestartDecision = { readonly restart: true; readonly delayMs: number } | { readonly restart: false; readonly quickExits: number }

/**
 * When to restart a worker slot: a worker that served a while is replaced at once; one that
 * dies quickly again and again is restarted after growing waits, and after `maxQuickExits` in
 * a row the slot gives up (the primary then exits rather than spinning).
 */
export class RestartPolicy {
  readonly #rules: RestartRules
  #quickExits = 0

  constructor(rules: RestartRules = DEFAULT_RESTART_RULES) {
    this.#rules = rules
  }

  /** A worker of this slot died after serving for `servedMs` (undefined: it never served). */
  exited(servedMs: number | undefined): RestartDecision {
    if (servedMs !== undefined && servedMs >= this.#rules.quickExitMs) {
      this.#quickExits = 0
      return { restart: true, delayMs: 0 }
    }
    this.#quickExits++
    if (this.#quickExits >= this.#rules.maxQuickExits) return { restart: false, quickExits: this.#quickExits }
    const delayMs = Math.min(this.#rules.firstDelayMs * 2 ** (this.#quickExits - 1), this.#rules.maxDelayMs)
    return { restart: true, delayMs }
  }
}
