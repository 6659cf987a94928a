/**
 * Sealing at the store boundary: a KeyStore wrapper (below the key cache, above the backend)
 * that stores every value of the tables holding key material wrapped by the root key, so the
 * fs and PostgreSQL backends need no knowledge of it and the change feed still carries names.
 *
 * A sealed value is JSON text, `{"openkes_sealed":1,"iv":"<base64>","data":"<base64>"}`, where
 * data is AES-256-GCM(root key, iv, value) ‖ tag with associated data
 * `openkes-seal-v1 NUL <store id> NUL <table> NUL <name>`: a blob copied to another name,
 * table or store does not unseal.
 *
 * The store id and a check value live in the entry SEAL_CHECK_NAME of the keys table (a name no
 * API client can use: '~' is not allowed in key names), `{"openkes_seal":1,"store":"<hex>",
 * "root":"<description>","check":<sealed value of CHECK_TEXT>}`; opening unseals it, so a wrong
 * root key is found at start, not at the first request.
 */
import { randomBytes } from 'node:crypto'
import { InvalidNameError, MAX_VALUE_BYTES, StoreError, StoreUnavailableError, TABLE_NAMES, operation } from '../keystore.js'
import type { KeyStore, Table, TableName, TableVerb } from '../keystore.js'
import { SEAL_IV_BYTES } from './root-key.js'
import type { SealRoot } from './root-key.js'

/** The tables whose values are sealed: every table holding key material, by name. */
export const SEALED_TABLES: readonly string[] = ['keys', 'deleted']

/** The entry of the keys table that marks a store as sealed and checks the root key. */
export const SEAL_CHECK_NAME = '~openkes-seal'

const CHECK_TEXT = 'openkes seal check v1'

/**
 * The largest value a sealed table takes: its seal (base64 of value and tag, IV, 43 bytes of
 * JSON) must fit in MAX_VALUE_BYTES. About 786 KB; key entries are a few hundred bytes.
 */
export const SEALED_MAX_VALUE_BYTES = 3 * Math.floor((MAX_VALUE_BYTES - 64) / 4) - 16
const AAD_PREFIX = 'openkes-seal-v1'

/** A store can't be opened as configured (sealed without a seal, wrong root key, unsealed keys...). */
export class SealError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'SealError'
  }
}

function aad(storeId: string, table: string, name: string): Buffer {
  return Buffer.from(`${AAD_PREFIX}\0${storeId}\0${table}\0${name}`, 'utf8')
}

/** Whether bytes read from a store are a sealed value (by their start, no parsing). */
export function looksSealed(value: Uint8Array): boolean {
  return Buffer.from(value.buffer, value.byteOffset, Math.min(value.length, 18)).toString('latin1') === '{"openkes_sealed":'
}

async function sealValue(root: SealRoot, storeId: string, table: string, name: string, value: Uint8Array): Promise<Buffer> {
  const iv = randomBytes(SEAL_IV_BYTES)
  const data = await root.encrypt(iv, Buffer.from(value.buffer, value.byteOffset, value.length), aad(storeId, table, name))
  return Buffer.from(`{"openkes_sealed":1,"iv":"${iv.toString('base64')}","data":"${data.toString('base64')}"}`)
}

async function unsealValue(root: SealRoot, storeId: string, table: string, name: string, stored: Uint8Array): Promise<Buffer> {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(stored).toString('utf8'))
  } catch {
    parsed = undefined
  }
  const p = parsed as { openkes_sealed?: unknown; iv?: unknown; data?: unknown } | undefined
  if (p?.openkes_sealed !== 1 || typeof p.iv !== 'string' || typeof p.data !== 'string') {
    throw new Error('it is not sealed (an unsealed value in a sealed store: written around OpenKES, or copied in)')
  }
  const iv = Buffer.from(p.iv, 'base64')
  if (iv.length !== SEAL_IV_BYTES) throw new Error('its IV is malformed')
  try {
    return await root.decrypt(iv, Buffer.from(p.data, 'base64'), aad(storeId, table, name))
  } catch (err) {
    throw new Error('it does not unseal: it was sealed under another name, table, store or root key, or it was altered', { cause: err })
  }
}

/** One table whose values are sealed. */
class SealedTable implements Table {
  readonly #inner: Table
  readonly #table: TableName
  readonly #root: SealRoot
  readonly #storeId: string
  readonly #isClosed: () => boolean

  constructor(inner: Table, table: TableName, root: SealRoot, storeId: string, isClosed: () => boolean) {
    this.#inner = inner
    this.#table = table
    this.#root = root
    this.#storeId = storeId
    this.#isClosed = isClosed
  }

  // A closed store has released its root key: fail as every closed store does, before sealing.
  #checkName(name: string, verb: TableVerb): void {
    if (this.#isClosed()) throw new StoreUnavailableError(operation(this.#table, verb), 'keystore: store is closed')
    if (this.#table === 'keys' && name === SEAL_CHECK_NAME) throw new InvalidNameError('keystore: invalid name: reserved for the seal')
  }

  #seal(name: string, value: Uint8Array): Promise<Buffer> {
    if (value.length > SEALED_MAX_VALUE_BYTES) {
      return Promise.reject(new StoreError(operation(this.#table, 'write'), `seal: value larger than ${SEALED_MAX_VALUE_BYTES} bytes (the limit of a sealed table)`))
    }
    return sealValue(this.#root, this.#storeId, this.#table, name, value)
  }

  async #unseal(name: string, stored: Uint8Array): Promise<Buffer> {
    try {
      return await unsealValue(this.#root, this.#storeId, this.#table, name, stored)
    } catch (err) {
      throw new StoreError(operation(this.#table, 'read'), `seal: ${this.#table} entry '${name}' refused: ${(err as Error).message}`, { cause: err })
    }
  }

  async create(name: string, value: Uint8Array): Promise<void> {
    this.#checkName(name, 'create')
    await this.#inner.create(name, await this.#seal(name, value))
  }

  async put(name: string, value: Uint8Array): Promise<void> {
    this.#checkName(name, 'write')
    await this.#inner.put(name, await this.#seal(name, value))
  }

  async get(name: string): Promise<Buffer | undefined> {
    this.#checkName(name, 'read')
    const stored = await this.#inner.get(name)
    return stored === undefined ? undefined : this.#unseal(name, stored)
  }

  async delete(name: string): Promise<boolean> {
    this.#checkName(name, 'delete')
    return this.#inner.delete(name)
  }

  /** Compare-and-delete, like replace: compares the unsealed value, removes the sealed bytes it read. */
  async deleteIf(name: string, expected: Uint8Array): Promise<boolean> {
    this.#checkName(name, 'delete')
    const currentSealed = await this.#inner.get(name)
    if (currentSealed === undefined) return false
    if (!(await this.#holds(name, currentSealed, expected))) return false
    return this.#inner.deleteIf(name, currentSealed)
  }

  // Whether the sealed bytes hold `expected` (the unsealed copy is wiped after comparing).
  async #holds(name: string, sealed: Buffer, expected: Uint8Array): Promise<boolean> {
    const current = await this.#unseal(name, sealed)
    try {
      return current.equals(Buffer.from(expected.buffer, expected.byteOffset, expected.length))
    } finally {
      current.fill(0)
    }
  }

  async list(): Promise<string[]> {
    const names = await this.#inner.list()
    return this.#table === 'keys' ? names.filter((n) => n !== SEAL_CHECK_NAME) : names
  }

  /**
   * Compare-and-swap: the comparison is on the unsealed values (every seal has a fresh IV),
   * then the backend swaps the sealed bytes it read for the new seal, so a concurrent
   * writer still makes it fail.
   */
  async replace(name: string, expected: Uint8Array, value: Uint8Array): Promise<boolean> {
    this.#checkName(name, 'write')
    const inner = this.#inner
    const currentSealed = await inner.get(name)
    if (currentSealed === undefined) return false
    if (!(await this.#holds(name, currentSealed, expected))) return false
    return inner.replace(name, currentSealed, await this.#seal(name, value))
  }
}

interface CheckEntry {
  readonly store: string
  readonly root: string
}

function parseCheckEntry(bytes: Buffer): CheckEntry & { check: Buffer } {
  let p: unknown
  try {
    p = JSON.parse(bytes.toString('utf8'))
  } catch {
    p = undefined
  }
  const e = p as { openkes_seal?: unknown; store?: unknown; root?: unknown; check?: unknown } | undefined
  if (e?.openkes_seal !== 1 || typeof e.store !== 'string' || !/^[0-9a-f]{32}$/.test(e.store) || typeof e.check !== 'object' || e.check === null) {
    throw new SealError(`seal: the seal entry '${SEAL_CHECK_NAME}' of the key store is malformed`)
  }
  return { store: e.store, root: typeof e.root === 'string' ? e.root : 'unknown', check: Buffer.from(JSON.stringify(e.check)) }
}

/**
 * Wraps `inner` so that the tables in SEALED_TABLES are sealed by `root`. A new (empty) store
 * gets its seal entry; a store sealed by another root key, or holding unsealed keys, is refused
 * with a SealError saying what to do. `where` names the store in messages.
 */
export async function openSealedStore(inner: KeyStore, root: SealRoot, where: string): Promise<KeyStore> {
  const existing = await inner.keys.get(SEAL_CHECK_NAME)
  let storeId: string
  if (existing !== undefined) {
    const entry = parseCheckEntry(existing)
    storeId = entry.store
    let check: Buffer
    try {
      check = await unsealValue(root, storeId, 'keys', SEAL_CHECK_NAME, entry.check)
    } catch (err) {
      throw new SealError(
        `seal: ${root.description} does not open the key store ${where}: it was sealed by ${entry.root}; wrong root key, token or key label?`,
        { cause: err },
      )
    }
    if (check.toString('utf8') !== CHECK_TEXT) throw new SealError(`seal: the seal check of the key store ${where} is wrong`)
  } else {
    const unsealed: string[] = []
    for (const table of TABLE_NAMES) {
      if (!SEALED_TABLES.includes(table)) continue
      unsealed.push(...(await inner[table].list()).map((n) => `${table}/${n}`))
    }
    const first = unsealed[0]
    if (first !== undefined) {
      const [table = 'keys', name = ''] = first.split('/')
      const value = await inner[table as TableName].get(name)
      if (value !== undefined && looksSealed(value)) {
        throw new SealError(`seal: the key store ${where} holds sealed entries but its seal entry '${SEAL_CHECK_NAME}' is missing; restore it from a backup`)
      }
    }
    if (unsealed.length > 0) {
      throw new SealError(
        `seal: the key store ${where} holds ${unsealed.length} unsealed entr${unsealed.length === 1 ? 'y' : 'ies'} (${unsealed.slice(0, 3).join(', ')}${unsealed.length > 3 ? ', ...' : ''}); ` +
          'seal them by moving them with openkes migrate into a new store configured with seal:',
      )
    }
    storeId = randomBytes(16).toString('hex')
    const check = await sealValue(root, storeId, 'keys', SEAL_CHECK_NAME, Buffer.from(CHECK_TEXT))
    const entry = `{"openkes_seal":1,"store":"${storeId}","root":${JSON.stringify(root.description)},"check":${check.toString('utf8')}}`
    await inner.keys.create(SEAL_CHECK_NAME, Buffer.from(entry))
  }
  let closed = false
  const isClosed = (): boolean => closed
  const sealed = new Map<string | symbol, Table>()
  for (const table of TABLE_NAMES) {
    if (SEALED_TABLES.includes(table)) sealed.set(table, new SealedTable(inner[table], table, root, storeId, isClosed))
  }
  // Everything else (ping, close, kind, whatever a backend adds) is the backend's own;
  // close also releases the root (logs out of the token).
  return new Proxy(inner, {
    get(target, prop) {
      const table = sealed.get(prop)
      if (table !== undefined) return table
      if (prop === 'close') {
        return async () => {
          closed = true
          try {
            await target.close()
          } finally {
            await root.close()
          }
        }
      }
      const v: unknown = Reflect.get(target, prop, target)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

/**
 * Refuses a sealed store opened without `seal:`: its keys would be unreadable (and new keys
 * would be written unsealed next to sealed ones).
 */
export async function refuseIfSealed(store: KeyStore, where: string): Promise<void> {
  if ((await store.keys.get(SEAL_CHECK_NAME)) !== undefined) {
    throw new SealError(`seal: the key store ${where} is sealed; configure the seal: section with its root key (key file, environment variable or PKCS#11 token) to open it`)
  }
}
