// `openkes status`: whether each configured server answers, its version and
// round-trip time.
import { performance } from 'node:perf_hooks'
import { KesError } from '../api/errors.js'
import type { ClientCommand, Invocation } from './command-spec.js'
import { describeError } from './connect.js'
import { EXIT_FAILURE, EXIT_OK } from './io.js'
import { formatNanos, jsonLine, table } from './output.js'
import type { Painter } from './output.js'

/** What `openkes status` found out about one endpoint (printed as is with --json). */
export interface EndpointStatus {
  readonly endpoint: string
  /** Whether the server answered over TLS (even with an API error). */
  readonly reachable: boolean
  readonly version: string | null
  /** Round-trip time of a `/version` call on an open connection, in milliseconds. */
  readonly latency_ms: number | null
  readonly error: string | null
}

// A status check should answer quickly: no retries, a short timeout.
const CHECK_TIMEOUT_MS = 5000

async function checkEndpoint(inv: Invocation, endpoint: string): Promise<EndpointStatus> {
  const client = inv.newClient({ ...inv.clientOptions, endpoints: [endpoint], maxRetries: 0, timeoutMs: CHECK_TIMEOUT_MS })
  try {
    // the first call pays for the TLS handshake; the second one is the round trip
    await client.version()
    const started = performance.now()
    const version = await client.version()
    const latencyMs = performance.now() - started
    return { endpoint, reachable: true, version, latency_ms: Math.round(latencyMs * 1000) / 1000, error: null }
  } catch (err) {
    return { endpoint, reachable: err instanceof KesError, version: null, latency_ms: null, error: describeError(err) }
  }
}

/** The status of endpoints as a table: endpoint, online/offline, version, latency, error. */
export function formatStatus(statuses: readonly EndpointStatus[], p: Painter): string {
  const rows = statuses.map((s) => [
    s.endpoint,
    s.reachable ? p.paint('green', 'online') : p.paint('red', 'offline'),
    s.version ?? '-',
    s.latency_ms === null ? '-' : formatNanos(s.latency_ms * 1e6),
    s.error ?? '',
  ])
  return table(['ENDPOINT', 'STATUS', 'VERSION', 'LATENCY', 'ERROR'], rows, p)
}

/** `openkes status`: its options, help and action, as data. */
export const statusCommand: ClientCommand = {
  name: 'status',
  summary: 'check which servers are reachable, their version and latency',
  args: [],
  description: `Calls /version on every endpoint (--server or KES_SERVER). Exits with 1 when
none is reachable. --json prints an array of
{"endpoint","reachable","version","latency_ms","error"}.`,
  examples: ['openkes status', 'openkes status -s https://kes-1:7373,https://kes-2:7373 --json'],
  async run(inv) {
    const statuses = await Promise.all(inv.clientOptions.endpoints.map((e) => checkEndpoint(inv, e)))
    inv.print(inv.json ? jsonLine(statuses) : formatStatus(statuses, inv.out))
    return statuses.some((s) => s.reachable) ? EXIT_OK : EXIT_FAILURE
  },
}

