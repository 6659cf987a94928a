import type { KeyStore, Table } from '../keystore/keystore.js'

/** Receives the duration of one key store operation. */
export type StoreObserver = (table: string, op: string, seconds: number) => void

/** Wraps a key store so that every table operation reports its latency (success or failure alike). */
export function instrumentStore(store: KeyStore, observe: StoreObserver): KeyStore {
  return {
    kind: store.kind,
    keys: instrumentTable(store.keys, 'keys', observe),
    policies: instrumentTable(store.policies, 'policies', observe),
    identities: instrumentTable(store.identities, 'identities', observe),
    deleted: instrumentTable(store.deleted, 'deleted', observe),
    changes: store.changes,
    ping: () => store.ping(),
    close: () => store.close(),
  }
}

function instrumentTable(table: Table, name: string, observe: StoreObserver): Table {
  const timed = <T>(op: string, run: () => Promise<T>): Promise<T> => {
    const start = process.hrtime.bigint()
    return run().finally(() => observe(name, op, Number(process.hrtime.bigint() - start) / 1e9))
  }
  return {
    create: (n, v) => timed('create', () => table.create(n, v)),
    put: (n, v) => timed('put', () => table.put(n, v)),
    get: (n) => timed('get', () => table.get(n)),
    replace: (n, e, v) => timed('replace', () => table.replace(n, e, v)),
    delete: (n) => timed('delete', () => table.delete(n)),
    deleteIf: (n, e) => timed('deleteIf', () => table.deleteIf(n, e)),
    list: () => timed('list', () => table.list()),
  }
}
