/**
 * One table of the filesystem store: a directory with one file per entry, the file
 * name being the entry name, exactly like a KES key directory.
 */
import { lstat, readdir, stat, unlink } from 'node:fs/promises'
import type { Dirent } from 'node:fs'
import path from 'node:path'
import {
  EntryExistsError,
  MAX_VALUE_BYTES,
  StoreError,
  StoreUnavailableError,
  checkName,
  compareNames,
  nameProblem,
  operation,
} from '../keystore.js'
import type { Table, TableName, TableVerb } from '../keystore.js'
import {
  RejectedFileError,
  TEMP_PREFIX,
  ensureDirectory,
  errorCode,
  publishTempFile,
  readRegularFile,
  syncDirectory,
  writeTempFile,
} from './atomic-file.js'
import { lockFileOf, withEntryLock } from './entry-lock.js'

/** What the tables of one store share: the store directory and its state. */
export interface FsRoot {
  /** The absolute path of the store directory. */
  readonly dir: string
  /** Whether the store was closed. */
  isClosed(): boolean
  /** Whether the store directory still exists and can be read; asked only after a failure. */
  isUsable(): Promise<boolean>
}

/** A Table kept as files in one directory (see `Table` for the contract). */
export class FsTable implements Table {
  readonly #table: TableName
  readonly #dir: string
  readonly #lazyDirs: readonly string[]
  readonly #root: FsRoot

  /**
   * Serves the entries of `dir`. `lazyDirs` (outermost first, ending with `dir`) are created
   * with mode 0700 on the first write that needs them; empty when `dir` is the store directory.
   */
  constructor(table: TableName, dir: string, lazyDirs: readonly string[], root: FsRoot) {
    this.#table = table
    this.#dir = dir
    this.#lazyDirs = lazyDirs
    this.#root = root
  }

  /** See `Table.create`. Throws EntryExistsError, InvalidNameError, StoreError. */
  async create(name: string, value: Uint8Array): Promise<void> {
    await this.#write(name, value, 'create')
  }

  /** See `Table.put`. Throws InvalidNameError, StoreError. */
  async put(name: string, value: Uint8Array): Promise<void> {
    await this.#write(name, value, 'replace')
  }

  /** See `Table.get`. Throws InvalidNameError, StoreError (also for a directory or oversized file). */
  async get(name: string): Promise<Buffer | undefined> {
    const file = this.#entryPath(name, 'read')
    let value: Buffer | undefined
    try {
      value = await readRegularFile(file, MAX_VALUE_BYTES)
    } catch (err) {
      throw await this.#failure('read', name, err)
    }
    // A vanished store directory looks like a missing entry; it must not read as "not found".
    if (value === undefined && !(await this.#root.isUsable())) throw this.#unavailable('read', name)
    return value
  }

  /**
   * See `Table.replace`: under the entry's lock (entry-lock.ts), reads the file, compares, and
   * renames a fully written temp file over it. Throws InvalidNameError, StoreError.
   */
  async replace(name: string, expected: Uint8Array, value: Uint8Array): Promise<boolean> {
    const target = this.#entryPath(name, 'write')
    if (value.length > MAX_VALUE_BYTES) {
      throw new StoreError(operation(this.#table, 'write'), `keystore/fs: cannot store '${name}': larger than ${MAX_VALUE_BYTES} bytes`)
    }
    try {
      return await this.#locked(name, true, async () => {
        const current = await readRegularFile(target, MAX_VALUE_BYTES)
        const same = current !== undefined && current.equals(expected)
        current?.fill(0)
        if (!same) return false
        const tmp = await this.#writeTemp(value)
        await publishTempFile(tmp, target, 'replace')
        await syncDirectory(this.#dir)
        return true
      })
    } catch (err) {
      throw await this.#failure('write', name, err)
    }
  }

  /** See `Table.delete`. Under the entry's lock, so a `replace` can't bring the entry back. Throws InvalidNameError, StoreError. */
  async delete(name: string): Promise<boolean> {
    const file = this.#entryPath(name, 'delete')
    try {
      // No directories are created for a delete: a missing directory (ENOENT taking the lock) holds no entry.
      const existed = await this.#locked(name, false, async () => {
        try {
          await this.#removeSecondNames(file)
          await unlink(file)
          return true
        } catch (err) {
          if (errorCode(err) !== 'ENOENT') throw err
          return false
        }
      }).catch((err: unknown) => {
        if (errorCode(err) === 'ENOENT') return false
        throw err
      })
      if (!existed) {
        if (await this.#root.isUsable()) return false
        throw this.#unavailable('delete', name)
      }
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err
      throw await this.#failure('delete', name, err)
    }
    try {
      await syncDirectory(this.#dir)
    } catch (err) {
      throw await this.#failure('delete', name, err)
    }
    return true
  }

  /**
   * See `Table.deleteIf`: under the entry's lock (the one `replace` and `delete` take), reads the
   * file, compares, and unlinks it. Throws InvalidNameError, StoreError.
   */
  async deleteIf(name: string, expected: Uint8Array): Promise<boolean> {
    const file = this.#entryPath(name, 'delete')
    let removed: boolean
    try {
      // As in delete: no directories are created, and a missing one (ENOENT taking the lock) holds no entry.
      removed = await this.#locked(name, false, async () => {
        const current = await readRegularFile(file, MAX_VALUE_BYTES)
        const same = current !== undefined && current.equals(expected)
        current?.fill(0)
        if (!same) return false
        await this.#removeSecondNames(file)
        await unlink(file)
        return true
      }).catch((err: unknown) => {
        if (errorCode(err) === 'ENOENT') return false
        throw err
      })
      if (removed) await syncDirectory(this.#dir)
    } catch (err) {
      throw await this.#failure('delete', name, err)
    }
    // A vanished store directory looks like a missing entry; it must not read as "not there".
    if (!removed && !(await this.#root.isUsable())) throw this.#unavailable('delete', name)
    return removed
  }

  /** See `Table.list`: regular files with valid names only, so temp dot-files never show. Throws StoreError. */
  async list(): Promise<string[]> {
    this.#checkOpen('list')
    let entries: Dirent[]
    try {
      entries = await readdir(this.#dir, { withFileTypes: true })
    } catch (err) {
      // Policy and identity directories appear with their first entry.
      if (errorCode(err) === 'ENOENT' && this.#lazyDirs.length > 0 && (await this.#root.isUsable())) return []
      throw await this.#failure('list', undefined, err)
    }
    const names: string[] = []
    for (const entry of entries) {
      if (nameProblem(entry.name) !== undefined) continue
      if (entry.isFile() || (entry.isSymbolicLink() && (await isRegularFile(path.join(this.#dir, entry.name))))) {
        names.push(entry.name)
      }
    }
    return names.sort(compareNames)
  }

  /**
   * A crash between publishing a temp file and removing it leaves the temp
   * file as a second name of the entry: remove those first, so a delete
   * leaves no copy of the value behind. Costs one lstat unless there is one.
   */
  async #removeSecondNames(file: string): Promise<void> {
    let stats
    try {
      stats = await lstat(file)
    } catch {
      return // missing: the unlink reports it
    }
    if (!stats.isFile() || stats.nlink < 2) return
    for (const entry of await readdir(this.#dir)) {
      if (!entry.startsWith(TEMP_PREFIX)) continue
      const other = path.join(this.#dir, entry)
      try {
        const o = await lstat(other)
        if (o.ino === stats.ino && o.dev === stats.dev) await unlink(other)
      } catch {
        // Gone meanwhile: nothing to remove.
      }
    }
  }

  #locked<T>(name: string, createDirs: boolean, run: () => Promise<T>): Promise<T> {
    return withEntryLock(lockFileOf(this.#dir, name), createDirs ? this.#lazyDirs : [], run)
  }

  async #write(name: string, value: Uint8Array, mode: 'create' | 'replace'): Promise<void> {
    const verb: TableVerb = mode === 'create' ? 'create' : 'write'
    const target = this.#entryPath(name, verb)
    if (value.length > MAX_VALUE_BYTES) {
      throw new StoreError(operation(this.#table, verb), `keystore/fs: cannot store '${name}': larger than ${MAX_VALUE_BYTES} bytes`)
    }
    try {
      const tmp = await this.#writeTemp(value)
      try {
        await publishTempFile(tmp, target, mode)
      } catch (err) {
        if (mode === 'create' && errorCode(err) === 'EEXIST') {
          throw new EntryExistsError(`keystore/fs: '${name}' already exists`)
        }
        throw err
      }
      await syncDirectory(this.#dir)
    } catch (err) {
      if (err instanceof EntryExistsError) throw err
      throw await this.#failure(verb, name, err)
    }
  }

  async #writeTemp(value: Uint8Array): Promise<string> {
    try {
      return await writeTempFile(this.#dir, value)
    } catch (err) {
      if (errorCode(err) !== 'ENOENT' || this.#lazyDirs.length === 0) throw err
    }
    // Without `recursive`, a vanished store directory stays missing and the retry fails with ENOENT.
    for (const dir of this.#lazyDirs) await ensureDirectory(dir)
    return await writeTempFile(this.#dir, value)
  }

  #entryPath(name: string, verb: TableVerb): string {
    this.#checkOpen(verb)
    checkName(name)
    return path.join(this.#dir, name)
  }

  #checkOpen(verb: TableVerb): void {
    if (this.#root.isClosed()) {
      throw new StoreUnavailableError(operation(this.#table, verb), 'keystore/fs: store is closed')
    }
  }

  #unavailable(verb: TableVerb, name: string | undefined, cause?: unknown): StoreUnavailableError {
    const op = operation(this.#table, verb)
    const message = `keystore/fs: ${op}${quoted(name)}: store directory '${this.#root.dir}' is not accessible`
    return new StoreUnavailableError(op, message, cause === undefined ? undefined : { cause })
  }

  async #failure(verb: TableVerb, name: string | undefined, cause: unknown): Promise<StoreError> {
    if (!(cause instanceof RejectedFileError) && !(await this.#root.isUsable())) {
      return this.#unavailable(verb, name, cause)
    }
    const op = operation(this.#table, verb)
    return new StoreError(op, `keystore/fs: ${op}${quoted(name)}: ${describe(cause)}`, { cause })
  }
}

function quoted(name: string | undefined): string {
  return name === undefined ? '' : ` '${name}'`
}

// The errno code is enough for the message; the full error (with paths) stays in `cause`.
function describe(err: unknown): string {
  if (err instanceof RejectedFileError) return err.message
  const code = errorCode(err)
  if (code !== undefined) return code
  return err instanceof Error ? err.message : 'unknown error'
}

/** True for a regular file, following symlinks; false for anything else, or a dangling link. */
async function isRegularFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile()
  } catch {
    return false
  }
}
