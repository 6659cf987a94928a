/**
 * The filesystem key store. Keys are files directly in the store directory (file
 * name = key name, mode 0600, directory 0700), exactly as KES wrote them, so an
 * existing KES key directory is served as it is. Policies and identities live in
 * `.openkes/policies/` and `.openkes/identities/`, deleted keys kept for their retention
 * period in `.openkes/deleted/`. A leading dot is never a valid name, so they can't collide with keys or show up in the key list.
 */
import { constants } from 'node:fs'
import { access, chmod, lstat, mkdir, readdir, stat, statfs, unlink } from 'node:fs/promises'
import path from 'node:path'
import { LocalChangeFeed } from '../change-feed.js'
import { PING_OP, StoreUnavailableError } from '../keystore.js'
import type { KeyStore, Table } from '../keystore.js'
import { DIR_MODE, TEMP_PREFIX, errorCode } from './atomic-file.js'
import { FOREIGN_STALE_MS, judgeTempFile } from './temp-name.js'
import { FsTable } from './fs-table.js'
import type { FsRoot } from './fs-table.js'

/** The directory inside the store directory that holds everything that is not a key. */
export const OPENKES_DIR = '.openkes'

const openOp = 'failed to open key store'

// Kernel pseudo file systems (statfs f_type, linux/magic.h): their directories list thousands
// of entries that are not keys and some "files" never end; a key store there is a mistake.
const PSEUDO_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
])

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
    const pseudo = PSEUDO_FILE_SYSTEMS.get((await statfs(root)).type)
    if (pseudo !== undefined) {
      throw new StoreUnavailableError(openOp, `keystore/fs: '${root}' is on the kernel's ${pseudo} file system, not a place for keys`)
    }
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw err
    const code = errorCode(err)
    const detail = code === 'EEXIST' || code === 'ENOTDIR' ? 'not a directory' : (code ?? String(err))
    throw new StoreUnavailableError(openOp, `keystore/fs: cannot open '${root}': ${detail}`, { cause: err })
  }
  await removeStaleTempFiles([root, ...['policies', 'identities', 'deleted'].map((d) => path.join(root, OPENKES_DIR, d))])
  return new FsStore(root)
}

/**
 * Removes the temp files a crash left behind, at every start: a temp file is
 * a whole key never published, or (after a crash between link and unlink) a
 * second name of a key file that would keep the key's bytes on disk after the
 * key is deleted. Only files that can't belong to a write in progress by
 * another server sharing the directory are removed (see temp-name.ts).
 * Best effort: failures are ignored.
 */
async function removeStaleTempFiles(dirs: readonly string[]): Promise<void> {
  const cutoff = Date.now() - FOREIGN_STALE_MS
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
        const verdict = judgeTempFile(name)
        if (verdict === 'remove' || (await lstat(file)).mtimeMs < cutoff) await unlink(file)
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
  readonly deleted: Table
  // Writers in other processes (`--workers`) are relayed into this feed (see announceWrites).
  readonly changes = new LocalChangeFeed()
  readonly #dir: string
  #closed = false

  constructor(dir: string) {
    this.#dir = dir
    const openkes = path.join(dir, OPENKES_DIR)
    const root: FsRoot = {
      dir,
      isClosed: () => this.#closed,
      isUsable: () => isUsableDirectory(dir),
    }
    const policies = path.join(openkes, 'policies')
    const identities = path.join(openkes, 'identities')
    const deleted = path.join(openkes, 'deleted')
    this.keys = new FsTable('keys', dir, [], root)
    this.policies = new FsTable('policies', policies, [openkes, policies], root)
    this.identities = new FsTable('identities', identities, [openkes, identities], root)
    this.deleted = new FsTable('deleted', deleted, [openkes, deleted], root)
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
