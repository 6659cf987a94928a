import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'

/** What an audit file reports about its health. */
export interface AuditFileEvents {
  /** `n` events could not be written (they are lost). */
  onLost(n: number): void
  /** Writing failed (`err`) after having worked, or worked again after failing. */
  onHealthChange(healthy: boolean, err: unknown): void
}

// Events waiting for the disk; beyond this many the newest are counted as lost
// rather than held in memory without bound while the disk is slow or failing.
const MAX_PENDING_EVENTS = 16_384

/**
 * An append-only audit file that survives write errors (a full disk, a
 * removed or unmounted file system): a failed write counts its events as
 * lost, marks the file unhealthy and drops the file handle; the next event
 * reopens the file and tries again, so writing resumes by itself as soon as
 * it can. Events are written in order, batched while a write is in flight.
 * A write torn by the failure is cut off again (or, if even that fails,
 * followed by a newline), so every line in the file is a whole event.
 */
export class AuditFile {
  readonly path: string
  readonly #events: AuditFileEvents
  #fh: FileHandle | undefined
  #pending: string[] = []
  #writing: Promise<void> | undefined
  #healthy = true
  #torn = false
  #closed = false

  private constructor(path: string, fh: FileHandle, events: AuditFileEvents) {
    this.path = path
    this.#fh = fh
    this.#events = events
  }

  /** Opens (creating with mode 0600) `path` for appending. Rejects when it can't be opened. */
  static async open(path: string, events: AuditFileEvents): Promise<AuditFile> {
    let fh: FileHandle
    try {
      fh = await open(path, 'a', 0o600)
    } catch (err) {
      throw new Error(`cannot open audit file '${path}': ${messageOf(err)}`, { cause: err })
    }
    return new AuditFile(path, fh, events)
  }

  /** Whether the last write succeeded. */
  get healthy(): boolean {
    return this.#healthy
  }

  /** Queues one line (with its newline). Never throws, never waits. */
  write(line: string): void {
    if (this.#closed) {
      this.#events.onLost(1)
      return
    }
    if (this.#pending.length >= MAX_PENDING_EVENTS) {
      this.#events.onLost(1)
      return
    }
    this.#pending.push(line)
    this.#writing ??= this.#drain()
  }

  /** Writes what is queued, then closes the file. */
  async close(): Promise<void> {
    this.#closed = true
    await this.#writing
    const fh = this.#fh
    this.#fh = undefined
    await fh?.close().catch(() => {})
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending
      this.#pending = []
      await this.#writeBatch(batch)
    }
    this.#writing = undefined
  }

  /** Removes the last `bytes` bytes of the file (a torn write); false when it can't. */
  async #cutOff(bytes: number): Promise<boolean> {
    try {
      const fh = this.#fh
      if (fh === undefined) return false
      const { size } = await fh.stat()
      await fh.truncate(Math.max(0, size - bytes))
      return true
    } catch {
      return false
    }
  }

  async #writeBatch(batch: readonly string[]): Promise<void> {
    const data = Buffer.from((this.#torn ? '\n' : '') + batch.join(''))
    let written = 0
    try {
      this.#fh ??= await open(this.path, 'a', 0o600)
      while (written < data.length) {
        const { bytesWritten } = await this.#fh.write(data, written, data.length - written)
        if (bytesWritten === 0) throw new Error('no bytes written')
        written += bytesWritten
      }
    } catch (err) {
      // Part of the batch got out and ends mid-line: cut it off again, or if that fails
      // too, make the next write start a new line.
      if (written > 0 && !(await this.#cutOff(written))) this.#torn = true
      this.#events.onLost(batch.length)
      const fh = this.#fh
      this.#fh = undefined
      await fh?.close().catch(() => {})
      if (this.#healthy) {
        this.#healthy = false
        this.#events.onHealthChange(false, err)
      }
      return
    }
    this.#torn = false
    if (!this.#healthy) {
      this.#healthy = true
      this.#events.onHealthChange(true, undefined)
    }
  }
}

function messageOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code
  return err instanceof Error ? err.message : String(err)
}

/** The errno code or message of a write failure, for the error log. */
export function describeWriteError(err: unknown): string {
  return messageOf(err)
}
