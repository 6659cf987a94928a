// Stand-ins for a key store Table in tests: one forwarding wrapper, so that a test overrides only
// the operations it cares about and a new Table operation is added here, once, not in every fake.
import type { KeyStore, Table, TableName } from '../../src/keystore/keystore.js'

/** The operations of a Table. */
export type TableOp = keyof Table

/** A Table that forwards every operation to `inner`, except those given in `overrides`. */
export function forwardingTable(inner: Table, overrides: Partial<Table> = {}): Table {
  return {
    create: overrides.create ?? ((n, v) => inner.create(n, v)),
    put: overrides.put ?? ((n, v) => inner.put(n, v)),
    get: overrides.get ?? ((n) => inner.get(n)),
    replace: overrides.replace ?? ((n, e, v) => inner.replace(n, e, v)),
    delete: overrides.delete ?? ((n) => inner.delete(n)),
    deleteIf: overrides.deleteIf ?? ((n, e) => inner.deleteIf(n, e)),
    list: overrides.list ?? (() => inner.list()),
  }
}

/**
 * A Table that calls `before(op)` ahead of every operation and forwards it to `inner` unless
 * `before` throws: the operation then rejects with what it threw (a failing disk or database).
 */
export function checkedTable(inner: Table, before: (op: TableOp) => void): Table {
  const checked =
    <A extends unknown[], R>(op: TableOp, f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      before(op)
      return f(...a)
    }
  return {
    create: checked('create', inner.create.bind(inner)),
    put: checked('put', inner.put.bind(inner)),
    get: checked('get', inner.get.bind(inner)),
    replace: checked('replace', inner.replace.bind(inner)),
    delete: checked('delete', inner.delete.bind(inner)),
    deleteIf: checked('deleteIf', inner.deleteIf.bind(inner)),
    list: checked('list', inner.list.bind(inner)),
  }
}

/** `store` with some of its tables replaced; everything else (change feed, ping, close) is the store's own. */
export function withTables(store: KeyStore, tables: Partial<Record<TableName, Table>>): KeyStore {
  return {
    kind: store.kind,
    keys: tables.keys ?? store.keys,
    policies: tables.policies ?? store.policies,
    identities: tables.identities ?? store.identities,
    deleted: tables.deleted ?? store.deleted,
    changes: store.changes,
    ping: () => store.ping(),
    close: () => store.close(),
  }
}
