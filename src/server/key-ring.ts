import { ErrKeyExists, ErrKeyNotFound, KesError } from '../api/errors.js'
import { KeyVersions, MAX_KEY_VERSIONS, formatKeyFile, formatKeyVersions, parseKeyEntry } from '../crypto/key-version.js'
import { NotAuthenticError, SecretKey } from '../crypto/secret-key.js'
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

// A decrypt that no cached version opens reloads the key (another server may have rotated it),
// but at most this often per key, so bad ciphertexts can't turn into a flood of store reads.
const RELOAD_AFTER_MS = 1_000
// Rotations retried this often against concurrent writers before giving up (503).
const MAX_ROTATE_ATTEMPTS = 20

/** A cached key: its versions and when they were read (performance.now()). */
interface CachedKey {
  readonly key: KeyVersions
  readonly loadedAt: number
}
// After the store was found unreachable, requests for keys held offline go straight to the
// offline copy for this long instead of waiting for the store again.
const OFFLINE_RETRY_MS = 1_000

/**
 * The master keys: the key store's `keys` table behind an in-memory cache of
 * parsed keys (all versions of each). Every store failure is logged with its cause and answered
 * with a client error that carries no detail (502, or 503 when the store is
 * unreachable and the key is not cached).
 */
export class KeyRing {
  readonly #store: KeyStore
  readonly #cache: ExpiringCache<CachedKey>
  readonly #errorLog: ErrorLog
  // The last key read from the store, per name, kept for `expiryOfflineMs` after the read: only
  // served while the store is unreachable (undefined when offline serving is off).
  readonly #offline: ExpiringCache<CachedKey> | undefined
  readonly #unsubscribe: () => void
  // Bumped by every drop, so that a load that started before a drop does not refill the offline copy.
  #generation = 0
  #unreachableUntil = 0
  #servingOffline = false
  #hits = 0
  #misses = 0

  constructor(store: KeyStore, cache: KeyCacheOptions, errorLog: ErrorLog) {
    this.#store = store
    this.#cache = new ExpiringCache<CachedKey>(cache)
    this.#errorLog = errorLog
    const offlineMs = cache.expiryOfflineMs ?? 0
    this.#offline = offlineMs > 0 ? new ExpiringCache<CachedKey>({ expiryAnyMs: offlineMs, expiryUnusedMs: 0 }) : undefined
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

  /** The named key when it is cached (a hit), else undefined: the synchronous fast path of `get`. */
  peek(name: string): KeyVersions | undefined {
    const hit = this.#cache.peek(name)
    if (hit === undefined) return undefined
    this.#hits++
    return hit.key
  }

  /** Returns the named key (all its versions). Throws ErrKeyNotFound, 502 or 503. */
  async get(name: string): Promise<KeyVersions> {
    // The hit path (every request but the first in a while) awaits nothing.
    const hit = this.#cache.peek(name)
    if (hit !== undefined) {
      this.#hits++
      return hit.key
    }
    return (await this.#miss(name)).key
  }

  async #miss(name: string): Promise<CachedKey> {
    this.#misses++
    if (this.#offline !== undefined && performance.now() < this.#unreachableUntil) {
      const held = this.#offline.peek(name)
      if (held !== undefined) return held
    }
    const generation = this.#generation
    let cached: CachedKey | undefined
    try {
      cached = await this.#cache.get(name, () => this.#load(name))
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
    if (cached === undefined) throw ErrKeyNotFound
    if (this.#offline !== undefined && generation === this.#generation) this.#offline.set(name, cached)
    return cached
  }

  #serveOffline(key: CachedKey, err: unknown): CachedKey {
    this.#unreachableUntil = performance.now() + OFFLINE_RETRY_MS
    if (!this.#servingOffline) {
      this.#servingOffline = true
      this.#errorLog.error(`keystore: unreachable, serving cached keys (cache.expiry.offline): ${describeError(err)}`)
    }
    return key
  }

  /**
   * Decrypts with the version the ciphertext names. When no cached version opens it and the
   * cached key is older than RELOAD_AFTER_MS, the key is read again once (another server sharing
   * the store may have rotated it). Throws InvalidCiphertextError, NotAuthenticError,
   * ErrKeyNotFound, 502 or 503.
   */
  async decrypt(name: string, ciphertext: Uint8Array, context: Uint8Array | undefined): Promise<Buffer> {
    return this.decryptNow(name, ciphertext, context)
  }

  /**
   * `decrypt` without a turn of the event loop when it can: the plaintext at once (or a throw)
   * when the key is cached and the answer does not need the store, else a promise as `decrypt`
   * gives. The decrypt API calls it on every request.
   */
  decryptNow(name: string, ciphertext: Uint8Array, context: Uint8Array | undefined): Buffer | Promise<Buffer> {
    const cached = this.#cache.peek(name)
    if (cached === undefined) return this.#decryptAfterMiss(name, ciphertext, context)
    this.#hits++
    try {
      return cached.key.decrypt(ciphertext, context)
    } catch (err) {
      if (!(err instanceof NotAuthenticError) || performance.now() - cached.loadedAt < RELOAD_AFTER_MS) throw err
    }
    return this.#decryptReloaded(name, cached, ciphertext, context)
  }

  async #decryptAfterMiss(name: string, ciphertext: Uint8Array, context: Uint8Array | undefined): Promise<Buffer> {
    const cached = await this.#miss(name)
    try {
      return cached.key.decrypt(ciphertext, context)
    } catch (err) {
      if (!(err instanceof NotAuthenticError) || performance.now() - cached.loadedAt < RELOAD_AFTER_MS) throw err
    }
    return this.#decryptReloaded(name, cached, ciphertext, context)
  }

  // No cached version opens the ciphertext: read the key again once, in case it was rotated.
  async #decryptReloaded(name: string, cached: CachedKey, ciphertext: Uint8Array, context: Uint8Array | undefined): Promise<Buffer> {
    this.#cache.delete(name)
    const fresh = await this.#miss(name)
    if (fresh.key.versions.length === cached.key.versions.length) throw new NotAuthenticError()
    return fresh.key.decrypt(ciphertext, context)
  }

  /**
   * Adds a new random version (same cipher as the newest) with one compare-and-swap on the
   * store, retried while other writers change the entry. `isDue`, when given, is asked about the
   * newest version inside the loop: scheduled rotation on several servers then adds one version,
   * not one per server. Resolves the new versions, or undefined when `isDue` said no.
   * Throws ErrKeyNotFound, 400 at MAX_KEY_VERSIONS, 502 or 503.
   */
  async rotate(name: string, createdBy: string | undefined, isDue?: (newest: SecretKey) => boolean): Promise<KeyVersions | undefined> {
    try {
      for (let attempt = 0; attempt < MAX_ROTATE_ATTEMPTS; attempt++) {
        const content = await this.#store.keys.get(name)
        if (content === undefined) throw ErrKeyNotFound
        let next: Buffer | undefined
        try {
          const current = parseKeyEntry(content)
          if (isDue !== undefined && !isDue(current.newest)) return undefined
          if (current.versions.length >= MAX_KEY_VERSIONS) throw new KesError(400, `key has the most versions a key can have (${MAX_KEY_VERSIONS})`)
          const added = SecretKey.generate(current.newest.cipher, { createdAt: new Date().toISOString(), createdBy })
          const versions = new KeyVersions([...current.versions, added])
          next = formatKeyVersions(versions.versions)
          if (await this.#store.keys.replace(name, content, next)) {
            // Not cached here (see create): the next use reads the new entry.
            this.#drop(name)
            return versions
          }
        } finally {
          content.fill(0)
          next?.fill(0)
        }
      }
    } catch (err) {
      if (err instanceof KesError) throw err
      throw storeFailure(err, 'failed to rotate key', this.#errorLog, name)
    }
    throw new KesError(503, 'key is changed by others too often: try again')
  }

  /**
   * Stores a new key. Throws ErrKeyExists, 502 or 503. The key is not cached
   * here: a delete racing this create could otherwise be undone by a late
   * cache fill, leaving a key in use that is no longer on disk.
   */
  async create(name: string, key: SecretKey): Promise<void> {
    await this.createEntry(name, formatKeyFile(key))
  }

  /** Stores a key entry as it is (a restored deleted key) and zeroes `file`. Throws like create. */
  async createEntry(name: string, file: Buffer): Promise<void> {
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

  /**
   * Deletes a key only while its stored entry is byte for byte `expected` (see Table.deleteIf);
   * resolves false when it changed or is gone. Throws 502 or 503.
   */
  async deleteIf(name: string, expected: Uint8Array): Promise<boolean> {
    this.#cache.delete(name)
    let deleted: boolean
    try {
      deleted = await this.#store.keys.deleteIf(name, expected)
    } catch (err) {
      throw storeFailure(err, 'failed to delete key', this.#errorLog, name)
    }
    // As in delete: a concurrent get may have cached it meanwhile.
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
    this.#unsubscribe()
    this.#offline?.close()
    this.#cache.close()
  }

  /** Drops a key from the cache (it was deleted or changed through another path). */
  forget(name: string): void {
    this.#drop(name)
  }

  async #load(name: string): Promise<CachedKey | undefined> {
    const content = await this.#store.keys.get(name)
    if (content === undefined) return undefined
    try {
      return { key: parseKeyEntry(content), loadedAt: performance.now() }
    } finally {
      content.fill(0)
    }
  }

}
