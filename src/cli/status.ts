// `openkes status`: whether each configured server answers, its version and
// round-trip time, and what a server of the 2023+ API tells about itself
// (`/v1/status`: uptime, CPUs, memory, key store). Older servers, and
// identities whose policy does not allow /v1/status, get the first part only.
import { performance } from 'node:perf_hooks'
import { KesError } from '../api/errors.js'
import type { KesApi, ServerStatus } from '../client/api.js'
import type { ClientCommand, Invocation } from './command-spec.js'
import { describeError } from './connect.js'
import { EXIT_FAILURE, EXIT_OK } from './io.js'
import { fields, formatNanos, jsonLine, table } from './output.js'
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
  /** The server's own `/v1/status` answer; null when it has none or refused it. */
  readonly server: ServerStatus | null
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
    return { endpoint, reachable: true, version, latency_ms: Math.round(latencyMs * 1000) / 1000, error: null, server: await serverStatus(client) }
  } catch (err) {
    return { endpoint, reachable: err instanceof KesError, version: null, latency_ms: null, error: describeError(err), server: null }
  }
}

// Servers before the 2023 API answer 404 or 501, and a policy may not allow
// /v1/status (403): then the status is what /version told.
async function serverStatus(client: KesApi): Promise<ServerStatus | null> {
  try {
    return await client.status()
  } catch {
    return null
  }
}

/** Seconds as the two largest units: `42s`, `5m3s`, `2h5m`, `3d4h`. */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  const units: Array<[string, number]> = [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]]
  const parts: string[] = []
  let rest = s
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size)
    rest -= n * size
    if (n > 0 || (parts.length > 0 && parts.length < 2)) parts.push(`${n}${unit}`)
    if (parts.length === 2) break
  }
  return parts.length === 0 ? '0s' : parts.join('')
}

/** Bytes in binary units with one decimal: `512 B`, `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  if (bytes < 1024) return `${Math.max(0, Math.round(bytes))} B`
  let value = bytes
  let unit = 'B'
  for (const u of units) {
    if (value < 1024) break
    value /= 1024
    unit = u
  }
  return `${value.toFixed(1)} ${unit}`
}

/** A server's `/v1/status` as label–value lines under its endpoint. */
export function formatServerStatus(endpoint: string, s: ServerStatus, p: Painter): string {
  const store = s.keystore_unreachable === true ? p.paint('red', 'unreachable') : `${p.paint('green', 'reachable')}, ${s.keystore_latency ?? 0}ms`
  const rows: Array<[string, string]> = [
    ['uptime', formatUptime(s.uptime)],
    ['platform', `${s.os}/${s.arch}, ${s.num_cpu_used} of ${s.num_cpu} CPUs`],
    ['memory', `${formatBytes(s.mem_heap_used)} heap, ${formatBytes(s.mem_stack_used)} stack`],
    ['key store', store],
  ]
  return `${p.paint('bold', endpoint)}\n${fields(rows, p).replace(/^(?=.)/gm, '  ')}`
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
  const details = statuses.flatMap((s) => (s.server === null ? [] : [formatServerStatus(s.endpoint, s.server, p)]))
  return [table(['ENDPOINT', 'STATUS', 'VERSION', 'LATENCY', 'ERROR'], rows, p), ...details].join('\n')
}

/** `openkes status`: its options, help and action, as data. */
export const statusCommand: ClientCommand = {
  name: 'status',
  summary: "check which servers are reachable, their version, latency and status",
  args: [],
  description: `Calls /version on every endpoint (--server or KES_SERVER), then /v1/status, which
servers of the KES 2023+ API answer with uptime, CPUs, memory and whether their key
store is reachable (older servers: the table only). Exits with 1 when none is
reachable. --json prints an array of
{"endpoint","reachable","version","latency_ms","error","server"}, "server" being the
/v1/status answer or null.`,
  examples: ['openkes status', 'openkes status -s https://kes-1:7373,https://kes-2:7373 --json'],
  async run(inv) {
    const statuses = await Promise.all(inv.clientOptions.endpoints.map((e) => checkEndpoint(inv, e)))
    inv.print(inv.json ? jsonLine(statuses) : formatStatus(statuses, inv.out))
    return statuses.some((s) => s.reachable) ? EXIT_OK : EXIT_FAILURE
  },
}

