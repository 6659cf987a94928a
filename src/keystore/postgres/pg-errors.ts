/**
 * What a PostgreSQL failure means for OpenKES: the database cannot be reached (503, serve
 * from the cache), or something else went wrong (502). A database error is never "not found"
 * and never an authorization decision; callers only ever see StoreError.
 */
import { StoreError, StoreUnavailableError } from '../keystore.js'

// Socket errors: the server is down, restarting, or the network is cut.
const UNREACHABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
])

// SQLSTATEs of a server that is going away or cannot take us now.
const UNREACHABLE_SQLSTATE = new Set([
  '57P01', // admin_shutdown (also pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovery)
  '57014', // query_canceled (statement_timeout)
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction (a standby after a fail-over, until clients reconnect)
])

// node-postgres reports these without a code.
const UNREACHABLE_MESSAGE =
  /connection terminated|timeout exceeded when trying to connect|query read timeout|not queryable|connection ended|connection timeout/i

/** True when `err` says the database cannot be reached now (as opposed to refusing what we asked). */
export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') {
    if (UNREACHABLE_ERRNO.has(code) || UNREACHABLE_SQLSTATE.has(code)) return true
    // Class 08: connection exception.
    if (/^08[0-9A-Z]{3}$/.test(code)) return true
  }
  // Node reports a failed connect to every address of a name as an AggregateError.
  if (err instanceof AggregateError && err.errors.some(isUnreachable)) return true
  return UNREACHABLE_MESSAGE.test(err.message)
}

/**
 * The StoreError for a failure of `op`. Only the SQLSTATE and message are kept: PostgreSQL's
 * `detail` can quote a row, and a row holds key bytes, so the original error is not attached.
 */
export function storeErrorOf(op: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined
  const message = err instanceof Error ? err.message : String(err)
  const text = `keystore/postgres: ${typeof code === 'string' ? `${code}: ` : ''}${message}`
  return isUnreachable(err) ? new StoreUnavailableError(op, text) : new StoreError(op, text)
}

/** The SQLSTATE of a unique violation. */
export const UNIQUE_VIOLATION = '23505'

/** The SQLSTATE of `err`, if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : undefined
}
