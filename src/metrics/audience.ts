// Which audience a `/v1/metrics` request belongs to, from its Accept header.
import type { MetricsAudience } from './server-metrics.js'

/**
 * `prometheus` when `accept` names a Prometheus exposition format with a
 * non-zero quality: `text/plain` with `version=0.0.4` (or the `1.0.0` of
 * Prometheus 3), `application/openmetrics-text`, or Prometheus's protobuf
 * (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily`).
 * Prometheus always names them; KES client libraries send no Accept at all.
 * Anything else (no header, a wildcard, `text/plain` without a version) is `kes`. Media
 * types and parameter names are case-insensitive; spaces, quoted values and
 * other parameters are tolerated.
 */
export function metricsAudience(accept: string | undefined): MetricsAudience {
  if (accept === undefined) return 'kes'
  for (const range of accept.split(',')) {
    const [type = '', ...rest] = range.split(';')
    const params = new Map<string, string>()
    for (const p of rest) {
      const eq = p.indexOf('=')
      if (eq < 0) continue
      params.set(p.slice(0, eq).trim().toLowerCase(), unquote(p.slice(eq + 1).trim()))
    }
    // q=0 means "not acceptable" (RFC 9110 §12.4.2).
    const q = params.get('q')
    if (q !== undefined && !(Number(q) > 0)) continue
    if (namesPrometheusFormat(type.trim().toLowerCase(), params)) return 'prometheus'
  }
  return 'kes'
}

const TEXT_VERSIONS = new Set(['0.0.4', '1.0.0'])

function namesPrometheusFormat(type: string, params: ReadonlyMap<string, string>): boolean {
  switch (type) {
    case 'text/plain':
      return TEXT_VERSIONS.has(params.get('version') ?? '')
    case 'application/openmetrics-text':
      return true
    case 'application/vnd.google.protobuf':
      return params.get('proto') === 'io.prometheus.client.MetricFamily'
    default:
      return false
  }
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v
}
