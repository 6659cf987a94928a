/**
 * A lock per store entry, so that `replace` (compare, then rename over) and `delete` of one
 * name never interleave — neither inside this process nor between processes (several servers
 * or `--workers` sharing one directory). Readers never take it: a rename is atomic for them.
 *
 * Two layers:
 * - In this process, calls for one lock file queue behind each other (a promise chain), so
 *   concurrent requests don't spin on the file.
 * - Between processes, the lock is a dot-file `.lock-<hash of name>` in the entry's own
 *   directory (so serving a KES key directory creates nothing new in it), published
 *   with link(2), which fails with EEXIST while another holder has it (atomic on every local
 *   file system and on NFSv3+). The file holds its owner's tag (host, boot, pid; see
 *   temp-name.ts), written to a temp file before the link, so a lock never exists without
 *   its owner's tag.
 * - A holder that crashed leaves its lock file behind. It is broken when its owner is a dead
 *   process of this host and boot, or (owner on another host, or a live pid that may be a
 *   reused one) when it is older than STALE_LOCK_MS — a held lock covers one read, one small
 *   fsynced write and a rename, milliseconds. Two processes breaking the same stale lock at
 *   once could both go on; only a crash followed by exactly that race can cause it, and the
 *   worst outcome is one compare-and-swap decided on stale data, not a torn file.
 */
import { createHash } from 'node:crypto'
import { link, open, readFile, stat, unlink } from 'node:fs/promises'
import path from 'node:path'
import { ensureDirectory, errorCode, removeQuietly, FILE_MODE } from './atomic-file.js'
import { judgeTempFile, newTempName } from './temp-name.js'

/** A lock file older than this belongs to no live operation (they take milliseconds). */
export const STALE_LOCK_MS = 30_000
/** Waiting longer than this for a lock fails the operation (LockBusyError). */
export const LOCK_WAIT_MS = 10_000

/** The lock stayed taken for LOCK_WAIT_MS. */
export class LockBusyError extends Error {
  constructor() {
    super(`lock held by another writer for more than ${LOCK_WAIT_MS / 1000} s`)
    this.name = 'LockBusyError'
  }
}

// Lock file path → the tail of the queue of this process's holders.
const queues = new Map<string, Promise<unknown>>()

/** Lock files start with a dot, so they never list as entries. */
export const LOCK_PREFIX = '.lock-'

/** The lock file of entry `name` in its directory `dir`: names can be 255 bytes, so it is hashed. */
export function lockFileOf(dir: string, name: string): string {
  return path.join(dir, `${LOCK_PREFIX}${createHash('sha256').update(name).digest('hex').slice(0, 32)}`)
}

/**
 * Runs `run` while holding the lock file `lockFile`; `lazyDirs` (outermost first, ending with
 * its directory) are created on first use. Throws what `run` throws, LockBusyError, or the fs
 * error of creating the lock.
 */
export async function withEntryLock<T>(lockFile: string, lazyDirs: readonly string[], run: () => Promise<T>): Promise<T> {
  const previous = queues.get(lockFile) ?? Promise.resolve()
  const mine = previous.catch(() => undefined).then(async () => {
    const token = await acquire(lockFile, lazyDirs)
    try {
      return await run()
    } finally {
      await release(lockFile, token)
    }
  })
  queues.set(lockFile, mine)
  try {
    return await mine
  } finally {
    if (queues.get(lockFile) === mine) queues.delete(lockFile)
  }
}

async function acquire(lockFile: string, lazyDirs: readonly string[]): Promise<string> {
  const dir = path.dirname(lockFile)
  const token = newTempName()
  const deadline = Date.now() + LOCK_WAIT_MS
  let pauseMs = 2
  for (;;) {
    const tmp = path.join(dir, token)
    try {
      await writeToken(tmp, token)
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err
      for (const d of lazyDirs) await ensureDirectory(d)
      await writeToken(tmp, token)
    }
    try {
      await link(tmp, lockFile)
      return token
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err
    } finally {
      await removeQuietly(tmp)
    }
    if (await breakIfStale(lockFile)) continue
    if (Date.now() > deadline) throw new LockBusyError()
    await new Promise((resolve) => setTimeout(resolve, pauseMs))
    pauseMs = Math.min(pauseMs * 2, 50)
  }
}

// The lock needs no fsync: after a crash, a lost lock file is as good as a stale one.
async function writeToken(file: string, token: string): Promise<void> {
  const fh = await open(file, 'wx', FILE_MODE)
  try {
    await fh.writeFile(token)
  } finally {
    await fh.close()
  }
}

async function breakIfStale(lockFile: string): Promise<boolean> {
  try {
    const owner = (await readFile(lockFile, 'latin1')).trim()
    const deadOwner = owner !== '' && !ownedByThisProcess(owner) && judgeTempFile(owner) === 'remove'
    if (!deadOwner && Date.now() - (await stat(lockFile)).mtimeMs <= STALE_LOCK_MS) return false
    await unlink(lockFile)
    return true
  } catch (err) {
    // Released meanwhile: try again at once.
    return errorCode(err) === 'ENOENT'
  }
}

// judgeTempFile calls our own pid's files leftovers (true at start-up); a lock with our pid is
// held by an operation of this process (or of a dead one with our pid), so only age breaks it.
function ownedByThisProcess(owner: string): boolean {
  return owner.split('-')[3] === String(process.pid)
}

async function release(lockFile: string, token: string): Promise<void> {
  try {
    // Only our own lock: had it been broken as stale, it may be someone else's now.
    if ((await readFile(lockFile, 'latin1')) === token) await unlink(lockFile)
  } catch {
    // Gone already (broken as stale): nothing to release.
  }
}
