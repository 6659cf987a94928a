import { ErrKeyExists, ErrKeyNotFound } from '../api/errors.js'
import { parseKeyFile, formatKeyFile } from '../crypto/key-version.js'
import type { SecretKey } from '../crypto/secret-key.js'
import { ExpiringCache } from '../keystore/cache.js'
import { EntryExistsError } from '../keystore/keystore.js'
import type { KeyStore } from '../keystore/keystore.js'
import type { ErrorLog } from '../log/error-log.js'
import { storeFailure } from './store-failure.js'

/** Cache expiry of master keys (KES `cache.expiry`). */
export interface KeyCacheOptions {
  readonly expiryAnyMs: number
  readonly expiryUnusedMs: number
}

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
  #hits = 0
  #misses = 0

  constructor(store: KeyStore, cache: KeyCacheOptions, errorLog: ErrorLog) {
    this.#store = store
    this.#cache = new ExpiringCache<SecretKey>(cache)
    this.#errorLog = errorLog
  }

  /** Cache statistics, for metrics. */
  cacheStats(): { hits: number; misses: number; size: number } {
    return { hits: this.#hits, misses: this.#misses, size: this.#cache.size }
  }

  /** The named key when it is cached (a hit), else undefined: the synchronous fast path of `get`. */
  peek(name: string): SecretKey | undefined {
    const hit = this.#cache.peek(name)
    if (hit !== undefined) this.#hits++
    return hit
  }

  /** Returns the named key. Throws ErrKeyNotFound, 502 or 503. */
  async get(name: string): Promise<SecretKey> {
    const hit = this.#cache.peek(name)
    if (hit !== undefined) {
      this.#hits++
      return hit
    }
    this.#misses++
    let key: SecretKey | undefined
    try {
      key = await this.#cache.get(name, () => this.#load(name))
    } catch (err) {
      throw storeFailure(err, 'failed to read key', this.#errorLog, name)
    }
    if (key === undefined) throw ErrKeyNotFound
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
    this.#cache.delete(name)
    let deleted: boolean
    try {
      deleted = await this.#store.keys.delete(name)
    } catch (err) {
      throw storeFailure(err, 'failed to delete key', this.#errorLog, name)
    }
    // Drop it again: a concurrent get may have cached it while we deleted.
    this.#cache.delete(name)
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
