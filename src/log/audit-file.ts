import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { headOfLastLine } from './audit-chain.js'
import type { AuditChain, ChainHead } from './audit-chain.js'

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
  readonly #chain: AuditChain | undefined
  // Writing starts once this settles (the file this one replaces has written its last event).
  #after: Promise<void> | undefined

  private constructor(path: string, fh: FileHandle, events: AuditFileEvents, chained: ChainedOptions | undefined) {
    this.path = path
    this.#fh = fh
    this.#events = events
    this.#chain = chained?.chain
    this.#after = chained?.after
  }

  /**
   * Opens (creating with mode 0600) `path` for appending. Rejects when it can't be opened.
   * With `chained`, every line written is chained (audit-chain.ts) and writing waits for
   * `chained.after`, so that a rotated-to file links to the true last event of the old one.
   */
  static async open(path: string, events: AuditFileEvents, chained?: ChainedOptions): Promise<AuditFile> {
    let fh: FileHandle
    try {
      fh = await open(path, 'a', 0o600)
    } catch (err) {
      throw new Error(`cannot open audit file '${path}': ${messageOf(err)}`, { cause: err })
    }
    return new AuditFile(path, fh, events, chained)
  }

  /** Whether the last write succeeded. */
  get healthy(): boolean {
    return this.#healthy
  }

  /** Queues one line (with its newline). Never throws, never waits. */
  write(line: string): void {
    if (this.#closed || this.#pending.length >= MAX_PENDING_EVENTS) {
      this.#chain?.lose(1)
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
    if (this.#after !== undefined) {
      await this.#after
      this.#after = undefined
      this.#chain?.relink()
    }
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
    const chained = this.#chain?.chain(batch)
    const data = Buffer.from((this.#torn ? '\n' : '') + (chained?.text ?? batch.join('')))
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
      this.#chain?.lose(batch.length)
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
    if (chained !== undefined) this.#chain?.commit(chained)
    if (!this.#healthy) {
      this.#healthy = true
      this.#events.onHealthChange(true, undefined)
    }
  }
}

/** How an audit file takes part in the hash chain. */
export interface ChainedOptions {
  readonly chain: AuditChain
  /** Settles when the file this one replaces is closed. */
  readonly after?: Promise<void> | undefined
}

// An audit line is well below this; the tail read at open looks this far back.
const TAIL_BYTES = 64 * 1024

/**
 * Reads where the chain of an existing audit file stands (its last line), so that a restarted
 * server goes on with it. A last line cut off by a crash is removed, and counted as one lost
 * event (at least one was). A missing or empty file has no head.
 */
export async function readChainTail(path: string): Promise<{ head: ChainHead | undefined; tornCut: boolean }> {
  let fh: FileHandle
  try {
    fh = await open(path, 'r+')
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') return { head: undefined, tornCut: false }
    throw new Error(`cannot open audit file '${path}': ${messageOf(err)}`, { cause: err })
  }
  try {
    const { size } = await fh.stat()
    if (size === 0) return { head: undefined, tornCut: false }
    const start = Math.max(0, size - TAIL_BYTES)
    const buf = Buffer.alloc(size - start)
    await fh.read(buf, 0, buf.length, start)
    let end = buf.length
    let tornCut = false
    if (buf[end - 1] !== 0x0a) {
      const lastNewline = buf.lastIndexOf(0x0a)
      if (lastNewline < 0 && start > 0) return { head: undefined, tornCut: false }
      end = lastNewline + 1
      await fh.truncate(start + end)
      tornCut = true
    }
    const text = buf.subarray(0, end).toString('utf8')
    const lines = text.split('\n')
    // text ends with '\n' (or is empty), so the last element is ''.
    const last = start > 0 && lines.length < 3 ? undefined : lines[lines.length - 2]
    return { head: headOfLastLine(last), tornCut }
  } finally {
    await fh.close().catch(() => {})
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
