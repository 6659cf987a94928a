import type { ChangeFeed } from './change-feed.js'

/**
 * The key store contract every backend implements (fs, mem, later PostgreSQL).
 * Stores keep opaque bytes: what a key file contains is decided by crypto/, and
 * which names are allowed on the API is decided by the callers.
 */

/**
 * One namespace of name → bytes. Names are validated by callers, but a store still
 * refuses names that could escape its namespace (empty, starting with '.', containing
 * '/', '\\' or NUL, a lone UTF-16 surrogate, longer than 255 UTF-8 bytes) with
 * InvalidNameError. Values larger than MAX_VALUE_BYTES are refused with StoreError, and so
 * is every other backend failure.
 */
export interface Table {
  /** Stores `value` under a new name atomically; throws EntryExistsError if the name exists. */
  create(name: string, value: Uint8Array): Promise<void>
  /** Stores `value` under `name` atomically, replacing any previous value. */
  put(name: string, value: Uint8Array): Promise<void>
  /** Returns a fresh copy of the value, or undefined when the name does not exist. */
  get(name: string): Promise<Buffer | undefined>
  /**
   * Compare-and-swap: atomically replaces the value stored under `name` with `value` only if the
   * current value equals `expected` byte for byte. Resolves false (and changes nothing) when the
   * name is missing or holds another value. Atomic against every other `replace` and `delete` of
   * the same name, also by other processes or servers sharing the store (a rotation racing on
   * several servers, or racing a delete, loses cleanly instead of losing a write).
   */
  replace(name: string, expected: Uint8Array, value: Uint8Array): Promise<boolean>
  /** Removes the name; returns false when it did not exist. */
  delete(name: string): Promise<boolean>
  /**
   * Compare-and-delete: atomically removes `name` only if its current value equals `expected`
   * byte for byte. Resolves false (and changes nothing) when the name is missing or holds another
   * value. Atomic against every `replace`, `delete` and `deleteIf` of the same name, also by
   * other processes or servers sharing the store (a delete that copied a key to the `deleted`
   * table removes exactly what it copied, never a rotation that landed meanwhile).
   */
  deleteIf(name: string, expected: Uint8Array): Promise<boolean>
  /** Returns every name, sorted in UTF-8 byte order. */
  list(): Promise<string[]>
}

/** A key store: the tables of TABLE_NAMES, in one backend. */
export interface KeyStore {
  /** Master keys, one entry per key. */
  readonly keys: Table
  /** Policies written through the API. */
  readonly policies: Table
  /** Identity → policy assignments written through the API. */
  readonly identities: Table
  /**
   * Deleted keys kept for their retention period (so a delete can be undone), one entry per
   * deletion; the entries are written and read by server/deleted-keys.ts.
   */
  readonly deleted: Table
  /** The backend, for logs and metrics: 'fs' | 'mem' | 'postgres' | ... */
  readonly kind: string
  /**
   * Changes made by other processes sharing this store (see change-feed.ts), so that caches
   * drop what they hear about. A store with no other writer never emits.
   */
  readonly changes: ChangeFeed
  /**
   * Checks that the backend can be reached now (readiness probes, `/v1/status`), without
   * reading any entry. Throws StoreUnavailableError (op PING_OP) when it can't, or was closed.
   */
  ping(): Promise<void>
  /** Releases the backend; afterwards every call fails with StoreUnavailableError. Idempotent. */
  close(): Promise<void>
}

/** The `StoreError.op` of a failed `KeyStore.ping`. */
export const PING_OP = 'failed to reach key store'

/** `Table.create` found the name already taken. */
export class EntryExistsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'EntryExistsError'
  }
}

/** The name could escape the table's namespace (see `Table`). */
export class InvalidNameError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'InvalidNameError'
  }
}

/**
 * Any other failure of the backend (I/O, corrupt entry, ...). `op` says what failed in
 * words a client may see, e.g. 'failed to create key'; the message and `cause` carry the
 * details for the error log. Neither ever contains stored bytes.
 */
export class StoreError extends Error {
  readonly op: string
  constructor(op: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.op = op
    this.name = new.target.name
  }
}

/** The backend cannot be reached at all (its directory vanished, a database is down, it was closed). */
export class StoreUnavailableError extends StoreError {}

/** The tables of a key store, as backends name them in paths, ops and messages. */
export type TableName = 'keys' | 'policies' | 'identities' | 'deleted'

/** Every table of a key store, in the order backends create and tools copy them. */
export const TABLE_NAMES: readonly TableName[] = ['keys', 'policies', 'identities', 'deleted']

/** What a table operation does, as used in `StoreError.op`. */
export type TableVerb = 'create' | 'write' | 'read' | 'delete' | 'list'

const nouns: Readonly<Record<TableName, { one: string; many: string }>> = {
  keys: { one: 'key', many: 'keys' },
  policies: { one: 'policy', many: 'policies' },
  identities: { one: 'identity', many: 'identities' },
  deleted: { one: 'deleted key', many: 'deleted keys' },
}

/**
 * Returns the `StoreError.op` text for an operation on a table:
 * `operation('keys', 'read')` → 'failed to read key', `operation('policies', 'list')` → 'failed to list policies'.
 */
export function operation(table: TableName, verb: TableVerb): string {
  const noun = nouns[table]
  return `failed to ${verb} ${verb === 'list' ? noun.many : noun.one}`
}

/**
 * The largest value a store keeps (1 MiB). Key files are a few hundred bytes; the cap keeps a
 * stray giant file from exhausting memory, and writes refuse what reads would refuse.
 */
export const MAX_VALUE_BYTES = 1 << 20

/** The longest name a store accepts, in UTF-8 bytes (the usual file-name limit). */
export const MAX_NAME_BYTES = 255

// Outside a pair, a surrogate would be written as U+FFFD, so two names could share one entry.
const loneSurrogate = /\p{Surrogate}/u
const separatorOrNul = /[/\\\0]/

/** Returns why `name` can't be a store entry name, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'empty'
  if (name.startsWith('.')) return "starts with '.'"
  if (separatorOrNul.test(name)) return "contains '/', '\\' or NUL"
  if (loneSurrogate.test(name)) return 'contains a lone surrogate'
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return `longer than ${MAX_NAME_BYTES} bytes`
  return undefined
}

/**
 * Checks that `name` can be an entry name (see `Table`).
 * Throws InvalidNameError saying why not; the name itself is left out because it is unchecked input.
 */
export function checkName(name: string): void {
  const problem = nameProblem(name)
  if (problem !== undefined) throw new InvalidNameError(`keystore: invalid name: ${problem}`)
}

/** Compares two well-formed strings in UTF-8 byte order (= code point order), for `Table.list`. */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

// UTF-16 puts surrogates (code points above U+FFFF) before U+E000..U+FFFF; UTF-8 puts them after.
function codePointRank(unit: number): number {
  return unit >= 0xd800 && unit <= 0xdfff ? unit + 0x10000 : unit
}
