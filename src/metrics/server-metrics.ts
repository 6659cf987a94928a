import { Counter, Gauge, Histogram, Registry } from './registry.js'
import type { CounterChild } from './registry.js'

/** What the metrics need to know about a completed request. */
export interface RequestSample {
  /** The route (`/v1/key/generate`), or `unknown` for paths that match none: bounded label values. */
  readonly api: string
  readonly status: number
  readonly seconds: number
}

/** Read at scrape time from the key cache. */
export interface CacheStats {
  readonly hits: number
  readonly misses: number
  readonly size: number
}

/**
 * Who reads `/v1/metrics`: `prometheus` (a scraper naming a Prometheus
 * exposition format in Accept) gets every family with its labels; `kes`
 * (everyone else: KES client libraries send no Accept) gets the KES families
 * only, each as exactly one series, since the KES 0.17 client refuses any
 * family with more than one.
 */
export type MetricsAudience = 'prometheus' | 'kes'

// The families KES itself exported, which KES clients read.
const KES_FAMILY = /^kes_(http|log|system)_/

// Buckets of the seed's kes_http_response_time histogram, in seconds.
const RESPONSE_TIME_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 3, 5, 10]
// Key store operations are far faster than requests on the fs store.
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

/**
 * Every metric OpenKES exports: the seed's series with their exact names and
 * help texts (KES dashboards and alerts use them), then ours.
 */
export class ServerMetrics {
  readonly registry = new Registry()
  readonly active: Gauge
  readonly requestError: Counter
  readonly requestFailure: Counter
  readonly requestSuccess: Counter
  readonly responseTime: Histogram
  readonly requests: Counter
  readonly keystoreSeconds: Histogram
  readonly auditEvents: Counter
  readonly auditDropped: Counter
  readonly auditLost: Counter
  readonly errorEvents: Counter
  readonly errorDropped: Counter
  readonly tlsHandshakeFailures: Counter
  readonly connectionsRefused: Counter
  readonly #startedAt = Date.now()
  // kes_http_requests_total by api, then status: found without building a label key per request.
  readonly #requestsByApi = new Map<string, Map<number, CounterChild>>()
  #cache: () => CacheStats = () => ({ hits: 0, misses: 0, size: 0 })
  #auditFileHealthy: () => boolean = () => true

  constructor() {
    const r = this.registry
    this.active = r.register(new Gauge('kes_http_request_active', 'Number of active requests that are not finished, yet.'))
    this.requestError = r.register(new Counter('kes_http_request_error', 'Number of request that failed due to some error. (HTTP 4xx status code)', []))
    this.requestFailure = r.register(new Counter('kes_http_request_failure', 'Number of request that failed due to some internal failure. (HTTP 5xx status code)', []))
    this.requestSuccess = r.register(new Counter('kes_http_request_success', 'Number of requests that have been served successfully.', []))
    this.responseTime = r.register(new Histogram('kes_http_response_time', 'Histogram of request response times spawning from 10ms to 10s.', RESPONSE_TIME_BUCKETS))
    this.requests = r.register(new Counter('kes_http_requests_total', 'Requests by API and HTTP status code.', ['api', 'code']))
    this.keystoreSeconds = r.register(new Histogram('kes_keystore_operation_seconds', 'Latency of key store operations in seconds, by table and operation.', STORE_BUCKETS, ['table', 'op']))
    r.register(new Counter('kes_cache_hits_total', 'Key cache lookups that found the key.', [], () => this.#cache().hits))
    r.register(new Counter('kes_cache_misses_total', 'Key cache lookups that had to read the key store.', [], () => this.#cache().misses))
    r.register(new Gauge('kes_cache_size', 'Keys held in the key cache.', [], () => this.#cache().size))
    this.auditEvents = r.register(new Counter('kes_log_audit_events', 'Number of audit log events written to the audit log targets.', []))
    this.auditDropped = r.register(new Counter('kes_log_audit_events_dropped_total', 'Audit events not delivered to a trace reader that fell behind.', []))
    this.auditLost = r.register(new Counter('kes_log_audit_events_lost_total', 'Audit events that could not be written to the audit file (disk full, file system gone).', []))
    r.register(new Gauge('kes_log_audit_file_healthy', 'Whether the last write to the audit file succeeded (1) or failed (0); 1 without an audit file.', [], () => (this.#auditFileHealthy() ? 1 : 0)))
    this.errorEvents = r.register(new Counter('kes_log_error_events', 'Number of error log events written to the error log targets.', []))
    this.errorDropped = r.register(new Counter('kes_log_error_events_dropped_total', 'Error events not delivered to a trace reader that fell behind.', []))
    this.tlsHandshakeFailures = r.register(new Counter('kes_tls_handshake_failures_total', 'TLS handshakes that failed or presented no client certificate.', []))
    this.connectionsRefused = r.register(new Counter('kes_connections_refused_total', 'Connections closed at once: over limits.connections or limits.connections_per_address.', []))
    r.register(new Gauge('kes_system_up_time', 'The time the server has been up and running in seconds.', [], () => Math.floor((Date.now() - this.#startedAt) / 1000)))
    r.register(new Counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', [], () => {
      const u = process.cpuUsage()
      return (u.user + u.system) / 1e6
    }))
    r.register(new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', [], () => process.memoryUsage.rss()))
    r.register(new Gauge('process_heap_bytes', 'V8 heap in use, in bytes.', [], () => process.memoryUsage().heapUsed))
    r.register(new Gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch in seconds.', [], () => Math.floor(this.#startedAt / 1000)))
  }

  /** Where the cache statistics come from (set once the key cache exists). */
  setCacheStats(read: () => CacheStats): void {
    this.#cache = read
  }

  /** Where the audit file's health comes from (set once the audit log exists). */
  setAuditFileHealth(read: () => boolean): void {
    this.#auditFileHealthy = read
  }

  /** Counts one completed request. */
  observeRequest(s: RequestSample): void {
    if (s.status >= 500) this.requestFailure.inc()
    else if (s.status >= 400) this.requestError.inc()
    else this.requestSuccess.inc()
    this.responseTime.observe(s.seconds)
    let byStatus = this.#requestsByApi.get(s.api)
    if (byStatus === undefined) {
      byStatus = new Map()
      this.#requestsByApi.set(s.api, byStatus)
    }
    let series = byStatus.get(s.status)
    if (series === undefined) {
      series = this.requests.child([s.api, String(s.status)])
      byStatus.set(s.status, series)
    }
    series.inc()
  }

  /** The exposition text for an audience (default: every family, as Prometheus sees it). */
  render(audience: MetricsAudience = 'prometheus'): string {
    if (audience === 'prometheus') return this.registry.render()
    return this.registry.renderTotals((name) => KES_FAMILY.test(name))
  }
}
