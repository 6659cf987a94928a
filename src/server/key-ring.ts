import { ErrKeyExists, ErrKeyNotFound } from '../api/errors.js'
import { parseKeyFile, formatKeyFile } from '../crypto/key-version.js'
import type { SecretKey } from '../crypto/secret-key.js'
import { ExpiringCache } from '../keystore/cache.js'
import { EntryExistsError, StoreUnavailableError } from '../keystore/keystore.js'
import type { ChangeEvent } from '../keystore/change-feed.js'
import type { KeyStore } from '../keystore/keystore.js'
import type { ErrorLog } from '../log/error-log.js'
import { storeFailure } from './store-failure.js'
import { describeError } from '../log/describe-error.js'

/** Cache expiry of master keys (KES `cache.expiry`). */
export interface KeyCacheOptions {
  readonly expiryAnyMs: number
  readonly expiryUnusedMs: number
  /** While the store is unreachable, serve a key read up to this long ago (0/absent: don't). */
  readonly expiryOfflineMs?: number
}

// After the store was found unreachable, requests for keys held offline go straight to the
// offline copy for this long instead of waiting for the store again.
const OFFLINE_RETRY_MS = 1_000

/**
 * The master keys: the key store's `keys` table behind an in-memory cache of
 * parsed keys. Every store failure is logged with its cause and answered
 * with a client error that carries no detail (502, or 503 when the store is
 * unreachable and the key is not cached).
 */
export class KeyRing {
  readonly #store: KeyStore
  readonly #cache: ExpiringCache<SecretKey>
  readonly #errorLog: ErrorLog
  // The last key read from the store, per name, kept for `expiryOfflineMs` after the read: only
  // served while the store is unreachable (undefined when offline serving is off).
  readonly #offline: ExpiringCache<SecretKey> | undefined
  readonly #unsubscribe: () => void
  // Bumped by every drop, so that a load that started before a drop does not refill the offline copy.
  #generation = 0
  #unreachableUntil = 0
  #servingOffline = false
  #hits = 0
  #misses = 0

  constructor(store: KeyStore, cache: KeyCacheOptions, errorLog: ErrorLog) {
    this.#store = store
    this.#cache = new ExpiringCache<SecretKey>(cache)
    this.#errorLog = errorLog
    const offlineMs = cache.expiryOfflineMs ?? 0
    this.#offline = offlineMs > 0 ? new ExpiringCache<SecretKey>({ expiryAnyMs: offlineMs, expiryUnusedMs: 0 }) : undefined
    // Another server (or worker) changed a key: drop it, so the next use reads the store.
    this.#unsubscribe = store.changes.subscribe((event) => this.#heard(event))
  }

  #heard(event: ChangeEvent): void {
    if (event.kind === 'reset') {
      this.#generation++
      this.#cache.clear()
      this.#offline?.clear()
    } else if (event.table === 'keys') {
      this.#drop(event.name)
    }
  }

  #drop(name: string): void {
    this.#generation++
    this.#cache.delete(name)
    this.#offline?.delete(name)
  }

  /** Cache statistics, for metrics. */
  cacheStats(): { hits: number; misses: number; size: number } {
    return { hits: this.#hits, misses: this.#misses, size: this.#cache.size }
  }

  /** Returns the named key. Throws ErrKeyNotFound, 502 or 503. */
  async get(name: string): Promise<SecretKey> {
    const hit = this.#cache.peek(name)
    if (hit !== undefined) {
      this.#hits++
      return hit
    }
    this.#misses++
    if (this.#offline !== undefined && performance.now() < this.#unreachableUntil) {
      const held = this.#offline.peek(name)
      if (held !== undefined) return held
    }
    const generation = this.#generation
    let key: SecretKey | undefined
    try {
      key = await this.#cache.get(name, () => this.#load(name))
    } catch (err) {
      const held = err instanceof StoreUnavailableError ? this.#offline?.peek(name) : undefined
      if (held !== undefined) return this.#serveOffline(held, err)
      throw storeFailure(err, 'failed to read key', this.#errorLog, name)
    }
    if (this.#servingOffline) {
      this.#servingOffline = false
      this.#errorLog.error('keystore: reachable again; no longer serving keys from the offline cache')
    }
    this.#unreachableUntil = 0
    // A database answer "no such key" is the only way to ErrKeyNotFound: never an error.
    if (key === undefined) throw ErrKeyNotFound
    if (this.#offline !== undefined && generation === this.#generation) this.#offline.set(name, key)
    return key
  }

  #serveOffline(key: SecretKey, err: unknown): SecretKey {
    this.#unreachableUntil = performance.now() + OFFLINE_RETRY_MS
    if (!this.#servingOffline) {
      this.#servingOffline = true
      this.#errorLog.error(`keystore: unreachable, serving cached keys (cache.expiry.offline): ${describeError(err)}`)
    }
    return key
  }

  /**
   * Stores a new key. Throws ErrKeyExists, 502 or 503. The key is not cached
   * here: a delete racing this create could otherwise be undone by a late
   * cache fill, leaving a key in use that is no longer on disk.
   */
  async create(name: string, key: SecretKey): Promise<void> {
    const file = formatKeyFile(key)
    try {
      await this.#store.keys.create(name, file)
    } catch (err) {
      if (err instanceof EntryExistsError) throw ErrKeyExists
      throw storeFailure(err, 'failed to create key', this.#errorLog, name)
    } finally {
      file.fill(0)
    }
  }

  /**
   * Deletes a key; deleting a missing key succeeds (delete is idempotent, as in
   * KES up to 0.17, whose clients retry a delete whose answer was lost).
   * Resolves to whether a key was there. Throws 502 or 503.
   */
  async delete(name: string): Promise<boolean> {
    this.#drop(name)
    let deleted: boolean
    try {
      deleted = await this.#store.keys.delete(name)
    } catch (err) {
      throw storeFailure(err, 'failed to delete key', this.#errorLog, name)
    }
    // Drop it again: a concurrent get may have cached it while we deleted.
    this.#drop(name)
    return deleted
  }

  /** Every key name, sorted. Throws 502 or 503. */
  async list(): Promise<string[]> {
    try {
      return await this.#store.keys.list()
    } catch (err) {
      throw storeFailure(err, 'failed to list keys', this.#errorLog)
    }
  }

  /**
   * Asks the key store whether it can be reached now; resolves the round trip in ms
   * (fractional), or undefined when it can't be reached. Never throws: readiness probes call
   * this every few seconds, so the reason is not logged here (failing key operations log it).
   */
  async ping(): Promise<number | undefined> {
    const start = performance.now()
    try {
      await this.#store.ping()
    } catch {
      return undefined
    }
    return performance.now() - start
  }

  /** Stops the cache's timer. */
  close(): void {
    this.#unsubscribe()
    this.#offline?.close()
    this.#cache.close()
  }

  async #load(name: string): Promise<SecretKey | undefined> {
    const content = await this.#store.keys.get(name)
    if (content === undefined) return undefined
    try {
      return parseKeyFile(content)
    } finally {
      content.fill(0)
    }
  }

}
