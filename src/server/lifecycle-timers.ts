/**
 * The background work of the key lifecycle: scheduled rotation (config `rotation:`) and the
 * purge of deleted keys past their retention period (`deleted_keys.retention`). Every server
 * sharing a store runs both; they stay correct because rotation re-checks the newest version's
 * age inside its compare-and-swap loop (two servers racing add one version) and a purge is an
 * idempotent delete.
 */
import { ErrKeyNotFound } from '../api/errors.js'
import { compileGlob } from '../auth/glob.js'
import type { RotationRule } from '../config/validate.js'
import type { SecretKey } from '../crypto/secret-key.js'
import { describeError } from '../log/describe-error.js'
import type { ErrorLog } from '../log/error-log.js'
import type { DeletedKeys } from './deleted-keys.js'
import type { KeyRing } from './key-ring.js'

// Ticks are a fraction of the period they serve, clamped: short periods (tests) are served
// promptly, long ones (a year) still get checked every minute.
const MIN_TICK_MS = 100
const MAX_TICK_MS = 60_000

function tickFor(periodMs: number): number {
  return Math.min(Math.max(Math.floor(periodMs / 4), MIN_TICK_MS), MAX_TICK_MS)
}

/**
 * Whether a key whose newest version is `newest` is due for rotation every `everyMs` at `nowMs`.
 * A version without a creation time (keys of old KES releases) counts as due: its age is unknown.
 */
export function isRotationDue(newest: SecretKey, everyMs: number, nowMs: number): boolean {
  if (newest.createdAt === undefined) return true
  const created = Date.parse(newest.createdAt)
  return Number.isNaN(created) || nowMs - created >= everyMs
}

/** Runs scheduled rotation and the purge of expired deleted keys until `close()`. */
export class LifecycleTimers {
  readonly #timers: NodeJS.Timeout[] = []
  readonly #errorLog: ErrorLog
  readonly #running = new Set<string>()

  constructor(opts: {
    keys: KeyRing
    deletedKeys: DeletedKeys
    rotation: readonly RotationRule[]
    /** The identity recorded as creator of scheduled versions (the admin), if any. */
    rotatedBy: string | undefined
    errorLog: ErrorLog
  }) {
    this.#errorLog = opts.errorLog
    const { keys, deletedKeys, rotation, rotatedBy } = opts
    if (deletedKeys.retentionMs > 0) {
      this.#every(tickFor(deletedKeys.retentionMs), 'purge', async () => {
        await deletedKeys.purgeExpired()
      })
    }
    if (rotation.length > 0) {
      const rules = rotation.map((r) => ({ glob: compileGlob(r.pattern), everyMs: r.everyMs }))
      const tickMs = tickFor(Math.min(...rotation.map((r) => r.everyMs)))
      this.#every(tickMs, 'rotation', async () => {
        for (const name of await keys.list()) {
          const rule = rules.find((r) => r.glob.matches(name))
          if (rule === undefined) continue
          try {
            // The cached key answers "not due" without a store read; the loop re-checks on the store.
            if (!isRotationDue((await keys.get(name)).newest, rule.everyMs, Date.now())) continue
            await keys.rotate(name, rotatedBy, (newest) => isRotationDue(newest, rule.everyMs, Date.now()))
          } catch (err) {
            if (err === ErrKeyNotFound) continue // deleted meanwhile
            // A store failure, or a store failure (already in the error log): the next tick retries.
            this.#errorLog.error(`rotation: key '${name}' was not rotated: ${describeError(err)}`)
          }
        }
      })
    }
  }

  /** Stops every timer; a tick in progress finishes on its own. */
  close(): void {
    for (const t of this.#timers) clearInterval(t)
    this.#timers.length = 0
  }

  // A tick never overlaps the previous one of the same job.
  #every(ms: number, job: string, run: () => Promise<void>): void {
    const timer = setInterval(() => {
      if (this.#running.has(job)) return
      this.#running.add(job)
      run()
        .catch((err: unknown) => this.#errorLog.error(`${job}: ${describeError(err)}`))
        .finally(() => this.#running.delete(job))
    }, ms)
    timer.unref()
    this.#timers.push(timer)
  }
}
