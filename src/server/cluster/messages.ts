/**
 * The messages between the primary of `openkes server --workers N` and its workers (IPC,
 * JSON-serialised by Node). Every message carries `openkes: 1` and a `k` naming its kind, so
 * anything else on the channel is ignored. Nothing here is sent per request: audit and error
 * lines travel in batches (one message per event-loop turn at most), change events once per
 * committed write, the rest once per scrape, reload or start.
 */
import type { ChangeEvent } from '../../keystore/change-feed.js'
import type { TableName } from '../../keystore/keystore.js'
import type { MetricsSnapshot } from './metrics-api.js'

/** A log stream that can be read live (`/v1/log/audit`, `/v1/log/error`). */
export type StreamName = 'audit' | 'error'

/** Worker → primary. */
export type WorkerMessage =
  /** The worker listens for messages (what is sent before is lost): the primary answers with 'init'. */
  | { readonly openkes: 1; readonly k: 'ready' }
  /** The worker serves (host and port as bound). */
  | { readonly openkes: 1; readonly k: 'listening'; readonly host: string; readonly port: number }
  /** The worker could not start (the message is startServer's error). */
  | { readonly openkes: 1; readonly k: 'failed'; readonly message: string }
  /** A write the worker committed to the shared store (to relay to the others). */
  | { readonly openkes: 1; readonly k: 'change'; readonly table: TableName; readonly name: string }
  /** Log lines (each ending in a newline) the worker recorded since its last batch. */
  | { readonly openkes: 1; readonly k: 'lines'; readonly stream: StreamName; readonly lines: readonly string[] }
  /** How many live readers of `stream` the worker has now. */
  | { readonly openkes: 1; readonly k: 'readers'; readonly stream: StreamName; readonly count: number }
  /** A `/v1/metrics` request: gather every worker's snapshot (answered by 'metrics'). */
  | { readonly openkes: 1; readonly k: 'scrape'; readonly id: number }
  /** The answer to 'snapshot'. */
  | { readonly openkes: 1; readonly k: 'snapshot'; readonly id: number; readonly snapshot: MetricsSnapshot }
  /** The outcome of 'reload': `error` when the worker kept its configuration. */
  | { readonly openkes: 1; readonly k: 'reloaded'; readonly id: number; readonly error?: string; readonly tlsChanged: boolean }
  /** The worker stopped serving after 'shutdown' and sent everything it had (it exits next). */
  | { readonly openkes: 1; readonly k: 'closing' }

/** Primary → worker. */
export type PrimaryMessage =
  /** The answer to 'ready', before the worker starts its server: the TLS ticket keys (base64) and the audit file's health. */
  | { readonly openkes: 1; readonly k: 'init'; readonly ticketKeys: string; readonly auditHealthy: boolean }
  /** A write another worker committed. */
  | { readonly openkes: 1; readonly k: 'change'; readonly table: TableName; readonly name: string }
  /** Log lines of other processes, for this worker's live readers. */
  | { readonly openkes: 1; readonly k: 'lines'; readonly stream: StreamName; readonly lines: readonly string[] }
  /** Whether some other process has a live reader of `stream` (so this worker sends its lines). */
  | { readonly openkes: 1; readonly k: 'forward'; readonly stream: StreamName; readonly on: boolean }
  /** The audit file (written by the primary) became healthy or unhealthy. */
  | { readonly openkes: 1; readonly k: 'audit-health'; readonly healthy: boolean }
  /** Asks for this worker's metrics snapshot (answered by 'snapshot'). */
  | { readonly openkes: 1; readonly k: 'snapshot'; readonly id: number }
  /** The answer to 'scrape': every answering process's metrics, merged. */
  | { readonly openkes: 1; readonly k: 'metrics'; readonly id: number; readonly snapshot: MetricsSnapshot }
  /** Reload the configuration (SIGHUP); ticket keys to use if the TLS material changed. */
  | { readonly openkes: 1; readonly k: 'reload'; readonly id: number; readonly ticketKeys: string }
  /** Stop serving gracefully and exit. */
  | { readonly openkes: 1; readonly k: 'shutdown' }

type Kinds<M> = M extends { readonly k: infer K } ? K : never
const WORKER_KINDS: ReadonlySet<string> = new Set<Kinds<WorkerMessage>>(['ready', 'listening', 'failed', 'change', 'lines', 'readers', 'scrape', 'snapshot', 'reloaded', 'closing'])
const PRIMARY_KINDS: ReadonlySet<string> = new Set<Kinds<PrimaryMessage>>(['init', 'change', 'lines', 'forward', 'audit-health', 'snapshot', 'metrics', 'reload', 'shutdown'])

function tagged(m: unknown, kinds: ReadonlySet<string>): boolean {
  if (typeof m !== 'object' || m === null) return false
  const r = m as { openkes?: unknown; k?: unknown }
  return r.openkes === 1 && typeof r.k === 'string' && kinds.has(r.k)
}

/**
 * A message from a worker, or undefined for anything else on the channel. The sender is our
 * own process (same program, same build): the tag and kind are checked, the fields trusted.
 */
export function asWorkerMessage(m: unknown): WorkerMessage | undefined {
  return tagged(m, WORKER_KINDS) ? (m as WorkerMessage) : undefined
}

/** A message from the primary, or undefined for anything else on the channel. */
export function asPrimaryMessage(m: unknown): PrimaryMessage | undefined {
  return tagged(m, PRIMARY_KINDS) ? (m as PrimaryMessage) : undefined
}

/** A change event as carried in a 'change' message (only changes are relayed; a reset is never announced). */
export function changeOf(m: { readonly table: TableName; readonly name: string }): ChangeEvent {
  return { kind: 'change', table: m.table, name: m.name }
}

/** One end of the channel: what the modules here send through (a worker's `process`, or the primary's `cluster.Worker`). */
export interface Port<M> {
  send(message: M): void
}
