import { ErrStoreUnavailable, KesError, badGateway } from '../api/errors.js'
import { StoreUnavailableError } from '../keystore/keystore.js'
import { describeError } from '../log/describe-error.js'
import type { ErrorLog } from '../log/error-log.js'

/**
 * Turns a key store failure into what the client sees: 503 when the store is
 * unreachable, else 502 `bad gateway: <what>`. The cause goes to the error
 * log only. A KesError passes through unchanged.
 */
export function storeFailure(err: unknown, what: string, errorLog: ErrorLog, name?: string): KesError {
  if (err instanceof KesError) return err
  const subject = name === undefined ? '' : ` '${name}'`
  errorLog.error(`keystore: ${what}${subject}: ${describeError(err)}`)
  if (err instanceof StoreUnavailableError) return ErrStoreUnavailable
  return badGateway(what)
}
