/**
 * The change feed: how caches in front of a shared key store learn that an entry changed
 * somewhere else. After a committed write a store announces `(table, name)` — never bytes —
 * to every other process that uses the same store; a cache drops what it hears about.
 *
 * - PostgreSQL (several servers) announces with NOTIFY in the writing transaction and hears
 *   through a LISTEN connection (src/keystore/postgres/listener.ts).
 * - Several processes on one machine (the planned `--workers` mode) relay the same events:
 *   each process wraps its store with `announceWrites`, sends what it announces to the others
 *   (IPC through the primary), and `publish`es what it receives into its own LocalChangeFeed.
 *
 * A process never hears its own writes: the writer updates its own cache as part of the write.
 * A feed can lose events (a dropped connection, a restarted relay); it then emits 'reset', which
 * means "drop everything, you cannot know what you missed". Cache expiry still bounds staleness.
 */
import type { KeyStore, Table, TableName } from './keystore.js'

/** One announcement: an entry of `table` changed (created, replaced or deleted), or 'reset'. */
export type ChangeEvent =
  | { readonly kind: 'change'; readonly table: TableName; readonly name: string }
  | { readonly kind: 'reset' }

/** Receives events. It must not throw (a throw is caught and ignored) and should not block. */
export type ChangeListener = (event: ChangeEvent) => void

/** What caches subscribe to. */
export interface ChangeFeed {
  /** Calls `listener` for every later event; returns the function that unsubscribes it. */
  subscribe(listener: ChangeListener): () => void
}

/** The event that tells every cache to drop everything. */
export const RESET: ChangeEvent = Object.freeze({ kind: 'reset' })

/** A change event of `table`/`name`. */
export function changed(table: TableName, name: string): ChangeEvent {
  return { kind: 'change', table, name }
}

/**
 * An in-process feed: `publish` delivers to every subscriber synchronously. Stores own one
 * (a store whose only writer is this process never publishes), and a relay between worker
 * processes publishes the events it receives into it.
 */
export class LocalChangeFeed implements ChangeFeed {
  readonly #listeners = new Set<ChangeListener>()

  subscribe(listener: ChangeListener): () => void {
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const entry: ChangeListener = (event) => listener(event)
    this.#listeners.add(entry)
    return () => {
      this.#listeners.delete(entry)
    }
  }

  /** Delivers `event` to every subscriber; one subscriber's throw does not keep it from the others. */
  publish(event: ChangeEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event)
      } catch {
        // A cache that fails to drop an entry still expires it; the feed must keep going.
      }
    }
  }

  /** The number of subscribers (tests, and a relay that only forwards while someone listens). */
  get size(): number {
    return this.#listeners.size
  }
}

/** Receives the announcements of a process's own committed writes (to send to the others). */
export type Announce = (event: ChangeEvent) => void

/**
 * Wraps `store` so that every committed write (create, put, delete of an existing name, a
 * successful replace) is passed to `announce` after it resolved. For stores without a
 * change feed of their own shared by several processes (the fs store under `--workers`): the
 * caller relays what is announced to the other processes, which publish it into `incoming`.
 * The returned store's `changes` carries the inner store's events and those published into
 * `incoming`.
 */
export function announceWrites(store: KeyStore, announce: Announce, incoming: LocalChangeFeed): KeyStore {
  const forward = (table: TableName, name: string): void => {
    try {
      announce(changed(table, name))
    } catch {
      // The write is committed; a relay failure must not turn it into an error.
    }
  }
  const changes: ChangeFeed = {
    subscribe(listener) {
      const a = store.changes.subscribe(listener)
      const b = incoming.subscribe(listener)
      return () => {
        a()
        b()
      }
    },
  }
  return {
    kind: store.kind,
    keys: announcingTable(store.keys, 'keys', forward),
    policies: announcingTable(store.policies, 'policies', forward),
    identities: announcingTable(store.identities, 'identities', forward),
    deleted: announcingTable(store.deleted, 'deleted', forward),
    changes,
    ping: () => store.ping(),
    close: () => store.close(),
  }
}

function announcingTable(table: Table, tableName: TableName, forward: (table: TableName, name: string) => void): Table {
  return {
    create: async (name, value) => {
      await table.create(name, value)
      forward(tableName, name)
    },
    put: async (name, value) => {
      await table.put(name, value)
      forward(tableName, name)
    },
    get: (name) => table.get(name),
    delete: async (name) => {
      const deleted = await table.delete(name)
      if (deleted) forward(tableName, name)
      return deleted
    },
    deleteIf: async (name, expected) => {
      const deleted = await table.deleteIf(name, expected)
      if (deleted) forward(tableName, name)
      return deleted
    },
    list: () => table.list(),
    replace: async (name, expected, value) => {
      const replaced = await table.replace(name, expected, value)
      if (replaced) forward(tableName, name)
      return replaced
    },
  }
}
