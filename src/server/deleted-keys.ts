/**
 * Deletes that can be undone. A deleted key leaves the `keys` table at once (its name is free,
 * it no longer works), and its entry — all versions, byte for byte — goes to the `deleted`
 * table for the retention period, where it can be restored or purged.
 *
 * A `deleted` entry is named `<deleted-at, ms since 1970, 13 digits>-<16 random hex>` (unique
 * per deletion, and the expiry can be read from the name without reading the entry) and holds
 * compact JSON:
 *   {"name":"<key name>","deleted_at":"<RFC 3339>","deleted_by":"<hex identity>","entry":"<base64 of the key entry>"}
 * Purging after the retention period is idempotent (deleting an entry twice is a no-op), so
 * every server sharing the store may run it: the first one removes an entry, the others find it
 * gone.
 */
import { randomBytes } from 'node:crypto'
import { ErrKeyExists, KesError } from '../api/errors.js'
import { decodeBase64Strict } from '../crypto/base64.js'
import type { KeyStore } from '../keystore/keystore.js'
import type { ErrorLog } from '../log/error-log.js'
import type { KeyRing } from './key-ring.js'
import { storeFailure } from './store-failure.js'

/** What `GET /v1/key/deleted/:pattern` shows of one deletion (never bytes). */
export interface DeletedKeyInfo {
  readonly name: string
  readonly deleted_at: string
  readonly deleted_by: string | undefined
}

/** 404 for restore and purge of a name with no deleted key kept. */
export const ErrDeletedKeyNotFound = new KesError(404, 'deleted key does not exist')

/** 409 for restoring a key whose name was taken again after the delete. */
export function restoreConflict(name: string): KesError {
  return new KesError(409, `cannot restore key '${name}': a key with this name exists again (delete or rename it first)`)
}

/** A `deleted` entry as stored; `entry` is the base64 of the key entry (key material). */
interface DeletedRecord extends DeletedKeyInfo {
  readonly entry: string
}

interface DeletedEntry extends DeletedKeyInfo {
  /** The `deleted` table's entry name. */
  readonly id: string
  readonly deletedAtMs: number
}

// Deletes retried this often against concurrent writers (rotations) before giving up (503).
const MAX_DELETE_ATTEMPTS = 20

const ENTRY_NAME = /^([0-9]{13})-[0-9a-f]{16}$/

/** The deletion time (ms) encoded in an entry name, or undefined for a name that is not ours. */
export function deletedAtOf(entryName: string): number | undefined {
  const m = ENTRY_NAME.exec(entryName)
  return m === null ? undefined : Number(m[1])
}

/** Deleted keys of one store, kept for `retentionMs` (0: a delete destroys the key at once, as KES). */
export class DeletedKeys {
  readonly #store: KeyStore
  readonly #keys: KeyRing
  readonly #errorLog: ErrorLog
  readonly retentionMs: number
  readonly #now: () => number

  constructor(store: KeyStore, keys: KeyRing, errorLog: ErrorLog, retentionMs: number, now: () => number = Date.now) {
    this.#store = store
    this.#keys = keys
    this.#errorLog = errorLog
    this.retentionMs = retentionMs
    this.#now = now
  }

  /**
   * Deletes a key: with a retention period, its entry is first copied to the `deleted` table,
   * then removed from `keys` — but only if it still holds exactly the bytes copied
   * (Table.deleteIf). A rotation (or another delete) landing in between makes that fail; the
   * copy just written is then dropped and the delete starts again, so a kept deletion always
   * holds every version the key had when it left `keys`. A crash in between leaves both, never
   * neither. Resolves whether a key was there; a missing key is no error (KES clients retry
   * deletes). Throws 502 or 503 (also after MAX_DELETE_ATTEMPTS changes by others).
   */
  async delete(name: string, deletedBy: string): Promise<boolean> {
    if (this.retentionMs === 0) return await this.#keys.delete(name)
    for (let attempt = 0; attempt < MAX_DELETE_ATTEMPTS; attempt++) {
      let entry: Buffer | undefined
      let id: string
      try {
        entry = await this.#store.keys.get(name)
        if (entry === undefined) return await this.#keys.delete(name)
        id = await this.#keep(name, deletedBy, entry)
      } catch (err) {
        entry?.fill(0)
        throw storeFailure(err, 'failed to delete key', this.#errorLog, name)
      }
      try {
        if (await this.#keys.deleteIf(name, entry)) return true
      } finally {
        entry.fill(0)
      }
      // Changed (rotated) or deleted by someone else since it was read: this copy is not what left.
      try {
        await this.#store.deleted.delete(id)
      } catch (err) {
        throw storeFailure(err, 'failed to delete key', this.#errorLog, name)
      }
    }
    throw new KesError(503, 'key is changed by others too often: try again')
  }

  /** Writes the `deleted` record of one deletion of `name`; resolves its entry name. */
  async #keep(name: string, deletedBy: string, entry: Buffer): Promise<string> {
    const now = this.#now()
    const id = `${String(now).padStart(13, '0')}-${randomBytes(8).toString('hex')}`
    const record = Buffer.from(
      JSON.stringify({ name, deleted_at: new Date(now).toISOString(), deleted_by: deletedBy, entry: entry.toString('base64') }),
    )
    try {
      await this.#store.deleted.create(id, record)
    } finally {
      record.fill(0)
    }
    return id
  }

  /** The kept deletions whose key names `matches`, by name, the newest deletion first. Throws 502 or 503. */
  async list(matches: (name: string) => boolean): Promise<DeletedKeyInfo[]> {
    const entries = await this.#entries(matches)
    return entries.map(({ name, deleted_at, deleted_by }) => ({ name, deleted_at, deleted_by }))
  }

  /**
   * Restores the most recent deletion of `name` as the key `name`, byte for byte (all its
   * versions). Throws ErrDeletedKeyNotFound, 409 when the name was taken again, 502 or 503.
   */
  async restore(name: string): Promise<void> {
    const latest = (await this.#entries((n) => n === name))[0]
    if (latest === undefined) throw ErrDeletedKeyNotFound
    const entry = await this.#read(latest.id, name)
    const bytes = entry === undefined ? undefined : decodeBase64Strict(entry.entry)
    if (bytes === undefined) throw ErrDeletedKeyNotFound
    try {
      await this.#keys.createEntry(name, bytes)
    } catch (err) {
      if (err === ErrKeyExists) throw restoreConflict(name)
      throw err
    } finally {
      bytes.fill(0)
    }
    await this.#remove(latest.id, name)
  }

  /** Destroys every kept deletion of `name` now. Throws ErrDeletedKeyNotFound, 502 or 503. */
  async purge(name: string): Promise<void> {
    const entries = await this.#entries((n) => n === name)
    if (entries.length === 0) throw ErrDeletedKeyNotFound
    for (const e of entries) await this.#remove(e.id, name)
  }

  /**
   * Destroys every deletion older than the retention period; reads only the entry names.
   * Resolves how many this call removed (others sharing the store may have been first).
   */
  async purgeExpired(): Promise<number> {
    if (this.retentionMs === 0) return 0
    const cutoff = this.#now() - this.retentionMs
    let names: string[]
    try {
      names = await this.#store.deleted.list()
    } catch (err) {
      throw storeFailure(err, 'failed to list deleted keys', this.#errorLog)
    }
    let removed = 0
    for (const id of names) {
      const at = deletedAtOf(id)
      if (at === undefined || at > cutoff) continue
      try {
        if (await this.#store.deleted.delete(id)) removed++
      } catch (err) {
        throw storeFailure(err, 'failed to purge deleted key', this.#errorLog)
      }
    }
    return removed
  }

  async #entries(matches: (name: string) => boolean): Promise<DeletedEntry[]> {
    const cutoff = this.retentionMs === 0 ? Infinity : this.#now() - this.retentionMs
    let ids: string[]
    try {
      ids = await this.#store.deleted.list()
    } catch (err) {
      throw storeFailure(err, 'failed to list deleted keys', this.#errorLog)
    }
    const out: DeletedEntry[] = []
    for (const id of ids) {
      const deletedAtMs = deletedAtOf(id)
      // Expired ones count as gone even before the purge gets to them.
      if (deletedAtMs === undefined || deletedAtMs <= cutoff) continue
      const record = await this.#read(id)
      if (record === undefined || !matches(record.name)) continue
      out.push({ id, deletedAtMs, name: record.name, deleted_at: record.deleted_at, deleted_by: record.deleted_by })
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : b.deletedAtMs - a.deletedAtMs || (a.id < b.id ? 1 : -1)))
  }

  /** Reads and parses one record; undefined when it vanished or is malformed (logged). */
  async #read(id: string, name?: string): Promise<DeletedRecord | undefined> {
    let content: Buffer | undefined
    try {
      content = await this.#store.deleted.get(id)
    } catch (err) {
      throw storeFailure(err, 'failed to read deleted key', this.#errorLog, name)
    }
    if (content === undefined) return undefined
    try {
      const parsed: unknown = JSON.parse(content.toString('utf8'))
      if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object')
      const r = parsed as Record<string, unknown>
      const str = (k: string): string | undefined => (typeof r[k] === 'string' ? (r[k] as string) : undefined)
      const keyName = str('name')
      const deletedAt = str('deleted_at')
      const entry = str('entry')
      if (keyName === undefined || deletedAt === undefined || entry === undefined) throw new Error('fields missing')
      return { name: keyName, deleted_at: deletedAt, deleted_by: str('deleted_by'), entry }
    } catch {
      this.#errorLog.error(`keystore: deleted key entry '${id}' is malformed; left as it is`)
      return undefined
    } finally {
      content.fill(0)
    }
  }

  async #remove(id: string, name: string): Promise<void> {
    try {
      await this.#store.deleted.delete(id)
    } catch (err) {
      throw storeFailure(err, 'failed to purge deleted key', this.#errorLog, name)
    }
  }
}
