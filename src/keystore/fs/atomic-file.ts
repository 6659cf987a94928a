/**
 * File primitives of the filesystem store: durable atomic writes through a temp
 * dot-file, directory fsync, and bounded reads of regular files. They throw the
 * underlying fs errors; fs-table.ts turns them into StoreErrors.
 */
import { constants } from 'node:fs'
import { chmod, link, mkdir, open, rename, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { newTempName } from './temp-name.js'

/** Mode of every file the store writes (as KES). */
export const FILE_MODE = 0o600
/** Mode of every directory the store creates (as KES). */
export const DIR_MODE = 0o700
export { TEMP_PREFIX } from './temp-name.js'

/** A file that exists but must not be read as an entry (a directory, a FIFO, too large, ...). */
export class RejectedFileError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'RejectedFileError'
  }
}

/** Returns the errno code of a Node fs error (e.g. 'ENOENT'), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined
  return typeof err.code === 'string' ? err.code : undefined
}

/**
 * Writes `value` to a new temp dot-file in `dir` with mode 0600 (whatever the umask) and
 * fsyncs it. Returns the temp file's path. Throws the fs error (ENOENT when `dir` is
 * missing) and leaves no temp file behind on failure.
 */
export async function writeTempFile(dir: string, value: Uint8Array): Promise<string> {
  const tmp = path.join(dir, newTempName())
  // 'wx' never follows or reuses an existing file, so nobody else's file is written to.
  const fh = await open(tmp, 'wx', FILE_MODE)
  try {
    await fh.chmod(FILE_MODE)
    await fh.writeFile(value)
    await fh.sync()
  } catch (err) {
    await closeQuietly(fh)
    await removeQuietly(tmp)
    throw err
  }
  try {
    await fh.close()
  } catch (err) {
    await removeQuietly(tmp)
    throw err
  }
  return tmp
}

/**
 * Makes the temp file `tmp` visible as `target` in the same directory. 'create' hard-links it,
 * which fails atomically with EEXIST when `target` exists (even against another process);
 * 'replace' renames it over `target`. The temp file is gone afterwards, whatever happens.
 * Throws the fs error of the link or rename.
 */
export async function publishTempFile(tmp: string, target: string, mode: 'create' | 'replace'): Promise<void> {
  try {
    if (mode === 'create') await link(tmp, target)
    else await rename(tmp, target)
  } catch (err) {
    await removeQuietly(tmp)
    throw err
  }
  // The entry exists now, so a leftover temp dot-file is no reason to report a failure.
  if (mode === 'create') await removeQuietly(tmp)
}

/**
 * Fsyncs a directory so that entries created, renamed or removed in it survive a crash.
 * A no-op on Windows, where directories can't be opened. Throws the fs error.
 */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await closeQuietly(fh)
  }
}

/**
 * Creates the directory `dir` with mode 0700 (whatever the umask) unless it exists; its parent
 * must exist. Throws the fs error (ENOENT when the parent is missing).
 */
export async function ensureDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: DIR_MODE })
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return
    throw err
  }
  await chmod(dir, DIR_MODE)
}

// Symlinks are followed, as KES did: key directories mounted from Kubernetes secrets are
// symlinks to regular files. What is opened must still be a regular file (checked below).
// O_NONBLOCK: opening a FIFO for reading would otherwise block a libuv thread until a writer shows up.
const readFlags = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

/**
 * Reads a regular file (or a symlink to one) of at most `maxBytes` into a zero-initialised
 * buffer. Returns undefined when the file does not exist. Throws RejectedFileError for a
 * directory, FIFO or other non-regular file and for a file larger than `maxBytes`; other fs
 * errors as they are.
 */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer | undefined> {
  let fh: FileHandle
  try {
    fh = await open(file, readFlags)
  } catch (err) {
    const code = errorCode(err)
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP' || code === 'EISDIR' || code === 'ENXIO') throw new RejectedFileError('not a regular file')
    throw err
  }
  try {
    const stats = await fh.stat()
    if (!stats.isFile()) throw new RejectedFileError('not a regular file')
    if (stats.size > maxBytes) throw new RejectedFileError(`larger than ${maxBytes} bytes`)
    const buf = Buffer.alloc(stats.size)
    let filled = 0
    while (filled < buf.length) {
      const { bytesRead } = await fh.read(buf, filled, buf.length - filled, filled)
      if (bytesRead === 0) break
      filled += bytesRead
    }
    if (filled === buf.length) return buf
    // Only someone bypassing the store truncates files in place; return what was there.
    const short = Buffer.alloc(filled)
    buf.copy(short, 0, 0, filled)
    buf.fill(0)
    return short
  } finally {
    await closeQuietly(fh)
  }
}

/** Removes a file, ignoring every error (used to clean up temp files). */
export async function removeQuietly(file: string): Promise<void> {
  try {
    await unlink(file)
  } catch {
    // Cleanup only: the original error is the one worth reporting.
  }
}

async function closeQuietly(fh: FileHandle): Promise<void> {
  try {
    await fh.close()
  } catch {
    // Cleanup only: the original error is the one worth reporting.
  }
}
