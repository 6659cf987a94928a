import type { ApiSetting } from '../config/validate.js'
import type { AuditLog } from '../log/audit-log.js'
import type { ErrorLog } from '../log/error-log.js'
import type { ServerMetrics } from '../metrics/server-metrics.js'
import type { MetricsSnapshot } from '../metrics/snapshot.js'
import type { AccessControl } from './access.js'
import type { DeletedKeys } from './deleted-keys.js'
import type { KeyRing } from './key-ring.js'

/**
 * Everything a handler may use. A config reload builds a new snapshot and
 * swaps it in; requests in flight finish with the one they started with.
 */
export interface ServerState {
  readonly version: string
  readonly keys: KeyRing
  /** Deleted keys kept for restore until their retention period ends. */
  readonly deletedKeys: DeletedKeys
  readonly access: AccessControl
  readonly errorLog: ErrorLog
  readonly auditLog: AuditLog
  readonly metrics: ServerMetrics
  /** When the server started, on the monotonic clock (`performance.now()`), for `/v1/status` uptime. */
  readonly startedAtMs: number
  /** The config's per-API settings (`api:`), by route path. */
  readonly api: ReadonlyMap<string, ApiSetting>
  /** Under `--workers N`: every worker's metrics, merged (for `/v1/metrics`); undefined for one process. */
  readonly gatherMetrics?: (() => Promise<MetricsSnapshot>) | undefined
}
