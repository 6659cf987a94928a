// A real filesystem key store with switchable failures: a table operation can
// be made to throw, as a broken disk or an unreachable database would. It is
// passed to the real server (StartOptions.store), so the whole path from the
// store through authorization and the handlers to the HTTP answer runs.
import { openFsStore } from '../../src/keystore/fs/fs-store.js'
import type { KeyStore, Table, TableName } from '../../src/keystore/keystore.js'
import { checkedTable } from '../support/table.js'
import type { TableOp } from '../support/table.js'

export type { TableOp }

/** A key store whose operations fail while a failure is set for them. */
export interface FailingStore extends KeyStore {
  /** From now on `table.op` throws what `makeError` returns. */
  fail(table: TableName, op: TableOp, makeError: () => Error): void
  /** Removes every failure. */
  heal(): void
}

/** Opens a real fs store in `dir`, wrapped so that failures can be switched on. */
export async function openFailingStore(dir: string): Promise<FailingStore> {
  const inner = await openFsStore(dir)
  const failures = new Map<string, () => Error>()
  const check = (table: TableName, op: TableOp): void => {
    const makeError = failures.get(`${table}.${op}`)
    if (makeError !== undefined) throw makeError()
  }
  const wrap = (name: TableName, t: Table): Table => checkedTable(t, (op) => check(name, op))
  return {
    kind: inner.kind,
    keys: wrap('keys', inner.keys),
    policies: wrap('policies', inner.policies),
    identities: wrap('identities', inner.identities),
    deleted: wrap('deleted', inner.deleted),
    changes: inner.changes,
    ping: () => inner.ping(),
    close: () => inner.close(),
    fail(table, op, makeError) {
      failures.set(`${table}.${op}`, makeError)
    },
    heal() {
      failures.clear()
    },
  }
}
