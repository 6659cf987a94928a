import { Counter, Gauge, Histogram, Registry } from './registry.js'
import type { CounterChild, HistogramSeries } from './registry.js'
import { renderSnapshot } from './snapshot.js'
import type { MetricsAudience, MetricsSnapshot } from './snapshot.js'

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

export type { MetricsAudience } from './snapshot.js'

// Buckets of the seed's kes_http_response_time histogram, in seconds.
const RESPONSE_TIME_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 3, 5, 10]
// Key store operations are far faster than requests on the fs store.
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

/** Where the process figures come from; tests pass fixed ones so that two renderings can be compared. */
export interface ProcessReaders {
  /** Milliseconds since the Unix epoch. */
  now(): number
  /** User plus system CPU time of this process, in seconds. */
  cpuSeconds(): number
  residentBytes(): number
  heapBytes(): number
}

const THIS_PROCESS: ProcessReaders = {
  now: () => Date.now(),
  cpuSeconds: () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1e6
  },
  residentBytes: () => process.memoryUsage.rss(),
  heapBytes: () => process.memoryUsage().heapUsed,
}

/** Options of {@link ServerMetrics}: both for tests. */
export interface ServerMetricsOptions {
  readonly process?: ProcessReaders
  /** How many (api, status) pairs `observeRequest` keeps found series for; default 1024. */
  readonly maxCachedRequestSeries?: number
}

/** The series one completed request of an (api, status) pair counts in. */
interface RequestSeries {
  /** kes_http_requests_total{api,code}. */
  readonly requests: CounterChild
  /** kes_http_request_success, _error or _failure. */
  readonly outcome: CounterChild
}

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
  readonly #startedAt: number
  readonly #success: CounterChild
  readonly #error: CounterChild
  readonly #failure: CounterChild
  readonly #responseTime: HistogramSeries
  // The series of each (api, status) seen, by api then status: a request
  // counts with two map lookups and no label key built. The api is a route
  // (or `unknown`) and the status one of a few, so this stays small; the cap
  // keeps it bounded whatever callers pass (past it, series are looked up by
  // their labels each time).
  readonly #requestsByApi = new Map<string, Map<number, RequestSeries>>()
  readonly #maxCachedRequestSeries: number
  #cachedRequestSeries = 0
  #cache: () => CacheStats = () => ({ hits: 0, misses: 0, size: 0 })
  #auditFileHealthy: () => boolean = () => true

  constructor(options: ServerMetricsOptions = {}) {
    const proc = options.process ?? THIS_PROCESS
    this.#startedAt = proc.now()
    this.#maxCachedRequestSeries = options.maxCachedRequestSeries ?? 1024
    const r = this.registry
    // Gauges say how they merge across worker processes: `sum` for amounts
    // each process holds its share of, `first` for one value of the whole
    // server (taken from the first snapshot: the audit file writer's).
    this.active = r.register(new Gauge('kes_http_request_active', 'Number of active requests that are not finished, yet.', 'sum'))
    this.requestError = r.register(new Counter('kes_http_request_error', 'Number of request that failed due to some error. (HTTP 4xx status code)', []))
    this.requestFailure = r.register(new Counter('kes_http_request_failure', 'Number of request that failed due to some internal failure. (HTTP 5xx status code)', []))
    this.requestSuccess = r.register(new Counter('kes_http_request_success', 'Number of requests that have been served successfully.', []))
    this.responseTime = r.register(new Histogram('kes_http_response_time', 'Histogram of request response times spawning from 10ms to 10s.', RESPONSE_TIME_BUCKETS))
    this.requests = r.register(new Counter('kes_http_requests_total', 'Requests by API and HTTP status code.', ['api', 'code']))
    this.keystoreSeconds = r.register(new Histogram('kes_keystore_operation_seconds', 'Latency of key store operations in seconds, by table and operation.', STORE_BUCKETS, ['table', 'op']))
    r.register(new Counter('kes_cache_hits_total', 'Key cache lookups that found the key.', [], () => this.#cache().hits))
    r.register(new Counter('kes_cache_misses_total', 'Key cache lookups that had to read the key store.', [], () => this.#cache().misses))
    r.register(new Gauge('kes_cache_size', 'Keys held in the key cache.', 'sum', [], () => this.#cache().size))
    this.auditEvents = r.register(new Counter('kes_log_audit_events', 'Number of audit log events written to the audit log targets.', []))
    this.auditDropped = r.register(new Counter('kes_log_audit_events_dropped_total', 'Audit events not delivered to a trace reader that fell behind.', []))
    this.auditLost = r.register(new Counter('kes_log_audit_events_lost_total', 'Audit events that could not be written to the audit file (disk full, file system gone).', []))
    r.register(new Gauge('kes_log_audit_file_healthy', 'Whether the last write to the audit file succeeded (1) or failed (0); 1 without an audit file.', 'first', [], () => (this.#auditFileHealthy() ? 1 : 0)))
    this.errorEvents = r.register(new Counter('kes_log_error_events', 'Number of error log events written to the error log targets.', []))
    this.errorDropped = r.register(new Counter('kes_log_error_events_dropped_total', 'Error events not delivered to a trace reader that fell behind.', []))
    this.tlsHandshakeFailures = r.register(new Counter('kes_tls_handshake_failures_total', 'TLS handshakes that failed or presented no client certificate.', []))
    this.connectionsRefused = r.register(new Counter('kes_connections_refused_total', 'Connections closed at once: over limits.connections or limits.connections_per_address.', []))
    r.register(new Gauge('kes_system_up_time', 'The time the server has been up and running in seconds.', 'first', [], () => Math.floor((proc.now() - this.#startedAt) / 1000)))
    r.register(new Counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', [], () => proc.cpuSeconds()))
    r.register(new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', 'sum', [], () => proc.residentBytes()))
    r.register(new Gauge('process_heap_bytes', 'V8 heap in use, in bytes.', 'sum', [], () => proc.heapBytes()))
    r.register(new Gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch in seconds.', 'first', [], () => Math.floor(this.#startedAt / 1000)))
    this.#success = this.requestSuccess.child([])
    this.#error = this.requestError.child([])
    this.#failure = this.requestFailure.child([])
    this.#responseTime = this.responseTime.child()
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
    const series = this.#requestsByApi.get(s.api)?.get(s.status) ?? this.#requestSeries(s.api, s.status)
    series.outcome.inc()
    series.requests.inc()
    this.#responseTime.observe(s.seconds)
  }

  #requestSeries(api: string, status: number): RequestSeries {
    const series: RequestSeries = {
      requests: this.requests.child([api, String(status)]),
      outcome: status >= 500 ? this.#failure : status >= 400 ? this.#error : this.#success,
    }
    if (this.#cachedRequestSeries < this.#maxCachedRequestSeries) {
      let byStatus = this.#requestsByApi.get(api)
      if (byStatus === undefined) {
        byStatus = new Map()
        this.#requestsByApi.set(api, byStatus)
      }
      byStatus.set(status, series)
      this.#cachedRequestSeries++
    }
    return series
  }

  /**
   * This process's metrics as plain data, for {@link mergeSnapshots} across
   * worker processes; values read from elsewhere (cache, audit file, process)
   * are read now, as for {@link render}.
   */
  snapshot(): MetricsSnapshot {
    return this.registry.snapshot()
  }

  /** The exposition text for an audience (default: every family, as Prometheus sees it). */
  render(audience: MetricsAudience = 'prometheus'): string {
    return renderSnapshot(this.snapshot(), audience)
  }
}
