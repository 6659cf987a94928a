import type { ErrorLog } from '../log/error-log.js'
import type { AccessControl } from './access.js'
import type { KeyRing } from './key-ring.js'

/** Everything a handler may use; one instance per running server. */
export interface ServerState {
  readonly version: string
  readonly keys: KeyRing
  readonly access: AccessControl
  readonly errorLog: ErrorLog
}
