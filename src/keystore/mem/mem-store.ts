/**
 * An in-memory key store with the same semantics as the filesystem store, for tests
 * and throw-away servers. Values are copied in and out, so callers can't change what
 * is stored, and they live in private fields, so printing the store shows no bytes.
 */
import {
  EntryExistsError,
  MAX_VALUE_BYTES,
  PING_OP,
  StoreError,
  StoreUnavailableError,
  checkName,
  compareNames,
  operation,
} from '../keystore.js'
import type { KeyStore, Table, TableName, TableVerb } from '../keystore.js'
import { LocalChangeFeed } from '../change-feed.js'

/** Creates an empty in-memory store (kind 'mem'). It never fails except after `close()`. */
export function createMemStore(): KeyStore {
  return new MemStore()
}

class MemStore implements KeyStore {
  readonly kind = 'mem'
  readonly keys: Table
  readonly policies: Table
  readonly identities: Table
  readonly deleted: Table
  // One process owns a mem store, so nobody else ever writes to it.
  readonly changes = new LocalChangeFeed()
  #closed = false

  constructor() {
    const isClosed = (): boolean => this.#closed
    this.keys = new MemTable('keys', isClosed)
    this.policies = new MemTable('policies', isClosed)
    this.identities = new MemTable('identities', isClosed)
    this.deleted = new MemTable('deleted', isClosed)
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError(PING_OP, 'keystore/mem: store is closed')
  }

  async close(): Promise<void> {
    this.#closed = true
  }
}

class MemTable implements Table {
  readonly #table: TableName
  readonly #isClosed: () => boolean
  readonly #entries = new Map<string, Buffer>()

  constructor(table: TableName, isClosed: () => boolean) {
    this.#table = table
    this.#isClosed = isClosed
  }

  async create(name: string, value: Uint8Array): Promise<void> {
    this.#check(name, 'create')
    if (this.#entries.has(name)) throw new EntryExistsError(`keystore/mem: '${name}' already exists`)
    this.#entries.set(name, this.#copyIn(value, 'create'))
  }

  async put(name: string, value: Uint8Array): Promise<void> {
    this.#check(name, 'write')
    const copy = this.#copyIn(value, 'write')
    this.#entries.get(name)?.fill(0)
    this.#entries.set(name, copy)
  }

  async get(name: string): Promise<Buffer | undefined> {
    this.#check(name, 'read')
    const value = this.#entries.get(name)
    if (value === undefined) return undefined
    const copy = Buffer.alloc(value.length)
    value.copy(copy)
    return copy
  }

  // Nothing else runs between the comparison and the swap: JavaScript runs one callback at a time.
  async replace(name: string, expected: Uint8Array, value: Uint8Array): Promise<boolean> {
    this.#check(name, 'write')
    const copy = this.#copyIn(value, 'write')
    const current = this.#entries.get(name)
    if (current === undefined || !current.equals(expected)) {
      copy.fill(0)
      return false
    }
    current.fill(0)
    this.#entries.set(name, copy)
    return true
  }

  async delete(name: string): Promise<boolean> {
    this.#check(name, 'delete')
    const value = this.#entries.get(name)
    if (value === undefined) return false
    value.fill(0)
    this.#entries.delete(name)
    return true
  }

  async deleteIf(name: string, expected: Uint8Array): Promise<boolean> {
    this.#check(name, 'delete')
    const value = this.#entries.get(name)
    if (value === undefined || !value.equals(expected)) return false
    value.fill(0)
    this.#entries.delete(name)
    return true
  }

  async list(): Promise<string[]> {
    this.#checkOpen('list')
    return [...this.#entries.keys()].sort(compareNames)
  }

  #check(name: string, verb: TableVerb): void {
    this.#checkOpen(verb)
    checkName(name)
  }

  #checkOpen(verb: TableVerb): void {
    if (this.#isClosed()) throw new StoreUnavailableError(operation(this.#table, verb), 'keystore/mem: store is closed')
  }

  #copyIn(value: Uint8Array, verb: TableVerb): Buffer {
    if (value.length > MAX_VALUE_BYTES) {
      throw new StoreError(operation(this.#table, verb), `keystore/mem: value larger than ${MAX_VALUE_BYTES} bytes`)
    }
    const copy = Buffer.alloc(value.length)
    copy.set(value)
    return copy
  }
}
