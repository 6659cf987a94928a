/**
 * The filesystem key store. Keys are files directly in the store directory (file
 * name = key name, mode 0600, directory 0700), exactly as KES wrote them, so an
 * existing KES key directory is served as it is. Policies and identities live in
 * `.openkes/policies/` and `.openkes/identities/`: a leading dot is never a valid
 * name, so they can't collide with keys or show up in the key list.
 */
import { constants } from 'node:fs'
import { access, chmod, lstat, mkdir, readdir, stat, unlink } from 'node:fs/promises'
import path from 'node:path'
import { PING_OP, StoreUnavailableError } from '../keystore.js'
import type { KeyStore, Table } from '../keystore.js'
import { DIR_MODE, TEMP_PREFIX, errorCode } from './atomic-file.js'
import { FsTable } from './fs-table.js'
import type { FsRoot } from './fs-table.js'

/** The directory inside the store directory that holds everything that is not a key. */
export const OPENKES_DIR = '.openkes'

const openOp = 'failed to open key store'

/**
 * Opens the filesystem store in `dir`, creating it (and missing parents) with mode 0700
 * if it does not exist. Policy and identity directories are created with their first entry.
 * Throws StoreUnavailableError when `dir` can't be created, is not a directory or can't be read.
 */
export async function openFsStore(dir: string): Promise<KeyStore> {
  const root = path.resolve(dir)
  try {
    const firstCreated = await mkdir(root, { recursive: true, mode: DIR_MODE })
    if (firstCreated !== undefined) await restrictCreated(firstCreated, root)
    const stats = await stat(root)
    if (!stats.isDirectory()) throw new StoreUnavailableError(openOp, `keystore/fs: '${root}' is not a directory`)
    // Read access is enough: a read-only key directory can still serve its keys.
    await access(root, constants.R_OK | constants.X_OK)
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw err
    const code = errorCode(err)
    const detail = code === 'EEXIST' || code === 'ENOTDIR' ? 'not a directory' : (code ?? String(err))
    throw new StoreUnavailableError(openOp, `keystore/fs: cannot open '${root}': ${detail}`, { cause: err })
  }
  await removeStaleTempFiles([root, path.join(root, OPENKES_DIR, 'policies'), path.join(root, OPENKES_DIR, 'identities')])
  return new FsStore(root)
}

// A temp file older than this is left over from a crash, not a write in progress
// (another server may share the directory and be writing right now).
const STALE_TEMP_MS = 10 * 60_000

/**
 * Removes temp files a crash left behind. After a crash between link and
 * unlink, a temp file is a second name of a key file: it would keep the key's
 * bytes on disk after the key is deleted. Best effort: failures are ignored.
 */
async function removeStaleTempFiles(dirs: readonly string[]): Promise<void> {
  const cutoff = Date.now() - STALE_TEMP_MS
  for (const dir of dirs) {
    let names: string[]
    try {
      names = await readdir(dir)
    } catch {
      continue
    }
    for (const name of names) {
      if (!name.startsWith(TEMP_PREFIX)) continue
      const file = path.join(dir, name)
      try {
        if ((await lstat(file)).mtimeMs < cutoff) await unlink(file)
      } catch {
        // Gone already, or not ours to remove: either way nothing to do.
      }
    }
  }
}

// mkdir applies the umask to `mode`; set 0700 on every directory we created, whatever the umask.
async function restrictCreated(firstCreated: string, deepest: string): Promise<void> {
  for (let dir = deepest; ; dir = path.dirname(dir)) {
    await chmod(dir, DIR_MODE)
    if (dir === firstCreated || path.dirname(dir) === dir) return
  }
}

async function isUsableDirectory(dir: string): Promise<boolean> {
  try {
    const stats = await stat(dir)
    if (!stats.isDirectory()) return false
    await access(dir, constants.R_OK | constants.X_OK)
    return true
  } catch {
    return false
  }
}

class FsStore implements KeyStore {
  readonly kind = 'fs'
  readonly keys: Table
  readonly policies: Table
  readonly identities: Table
  readonly #dir: string
  #closed = false

  constructor(dir: string) {
    this.#dir = dir
    const root: FsRoot = {
      dir,
      isClosed: () => this.#closed,
      isUsable: () => isUsableDirectory(dir),
    }
    const openkes = path.join(dir, OPENKES_DIR)
    const policies = path.join(openkes, 'policies')
    const identities = path.join(openkes, 'identities')
    this.keys = new FsTable('keys', dir, [], root)
    this.policies = new FsTable('policies', policies, [openkes, policies], root)
    this.identities = new FsTable('identities', identities, [openkes, identities], root)
  }

  /** The store directory must still exist, be a directory and be readable. */
  async ping(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError(PING_OP, 'keystore/fs: store is closed')
    if (!(await isUsableDirectory(this.#dir))) {
      throw new StoreUnavailableError(PING_OP, `keystore/fs: '${this.#dir}' is missing, not a directory or not readable`)
    }
  }

  async close(): Promise<void> {
    // Every write is complete and fsynced when it resolves, so there is nothing to flush.
    this.#closed = true
  }
}
