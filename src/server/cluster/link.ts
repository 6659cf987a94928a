import type { KeyStore } from '../../keystore/keystore.js'
import type { AuditLog, AuditLogEvents } from '../../log/audit-log.js'
import type { EventHub, EventHubOptions } from '../../log/event-hub.js'
import type { MetricsSnapshot } from './metrics-api.js'

/**
 * What a worker of `openkes server --workers N` gives startServer (StartOptions.cluster): the
 * pieces that make N processes behave as one server. Without it startServer is the single process.
 */
export interface ClusterLink {
  /** The TLS session ticket keys every worker shares (at start, and after a reload that changed the TLS material). */
  ticketKeys(): Buffer
  /** The error log's hub: lines of every process reach the readers of every worker. */
  errorHub(opts: EventHubOptions): EventHub
  /** The audit log: the primary writes the file and stdout; readers of every worker see every event. */
  auditLog(hub: EventHubOptions, events: { onError: (message: string) => void } & AuditLogEvents): AuditLog
  /** The store, wrapped so that this worker's writes reach the other workers' caches and theirs reach this one's. */
  shareStore(store: KeyStore): KeyStore
  /** Where this worker's metrics come from when the primary gathers a scrape. */
  serveMetrics(snapshot: () => MetricsSnapshot): void
  /** Every process's metrics, merged (for `/v1/metrics`). */
  gatherMetrics(): Promise<MetricsSnapshot>
}
