// What `npm run bench` measures: the servers it starts and the scenarios it runs on them.
import type { Op, Transport } from './protocol.js'

/**
 * The servers of a run. `openkes` is one process (`--workers 1`); the `openkes-w2-*`
 * ones are `--workers 2` with the cluster's connection distribution set through
 * NODE_CLUSTER_SCHED_POLICY (`rr`: the primary accepts and hands connections round
 * robin; `none`: the workers accept from the shared socket, the kernel picks).
 * `baseline` is bench/baseline-server.ts at its `crypto` level, `baseline-tls-http`
 * the same server answering fixed JSON (TLS + HTTP only).
 */
export type ServerId = 'openkes' | 'openkes-w2-rr' | 'openkes-w2-none' | 'baseline' | 'baseline-tls-http'

export interface ServerSpec {
  readonly id: ServerId
  /** How the report names it. */
  readonly label: string
  readonly kind: 'openkes' | 'baseline'
  /** OpenKES: the --workers value. */
  readonly workers: number
  /** OpenKES with workers: NODE_CLUSTER_SCHED_POLICY. */
  readonly schedPolicy?: 'rr' | 'none'
  /** Baseline: its level. */
  readonly level?: 'crypto' | 'tls+http'
}

export const SERVERS: Readonly<Record<ServerId, ServerSpec>> = {
  openkes: { id: 'openkes', label: 'openkes, 1 process', kind: 'openkes', workers: 1 },
  'openkes-w2-rr': { id: 'openkes-w2-rr', label: 'openkes --workers 2, rr', kind: 'openkes', workers: 2, schedPolicy: 'rr' },
  'openkes-w2-none': { id: 'openkes-w2-none', label: 'openkes --workers 2, none', kind: 'openkes', workers: 2, schedPolicy: 'none' },
  baseline: { id: 'baseline', label: 'baseline (tls+http+crypto)', kind: 'baseline', workers: 1, level: 'crypto' },
  'baseline-tls-http': { id: 'baseline-tls-http', label: 'baseline tls+http', kind: 'baseline', workers: 1, level: 'tls+http' },
}

/**
 * The scenario sets (each selectable with --only NAME): `main` OpenKES (1 process)
 * against the baseline; `store` OpenKES with a small and a big key store;
 * `workers` --workers 2 (both distributions) against one process; `ladder` the
 * decomposition: baseline tls+http, baseline with crypto, OpenKES.
 */
export type ScenarioSet = 'main' | 'store' | 'workers' | 'ladder'

/** An op over a transport at a concurrency, run on every one of `servers` in the same rounds. */
export interface Scenario {
  readonly name: string
  readonly set: ScenarioSet
  readonly op: Op
  readonly transport: Transport
  readonly concurrency: number
  /** The servers measured, in the same interleaved rounds (the order rotates per round). */
  readonly servers: readonly ServerId[]
  /** The key names to use, on OpenKES; the baseline has one key. */
  readonly keyNames?: readonly string[]
}

const TRANSPORTS: ReadonlyArray<{ label: string; transport: Transport; concurrency: number }> = [
  { label: 'h1 c=1', transport: 'h1', concurrency: 1 },
  { label: 'h1 c=16', transport: 'h1', concurrency: 16 },
  { label: 'h1 c=64', transport: 'h1', concurrency: 64 },
  { label: 'h2 64 streams/1 conn', transport: 'h2', concurrency: 64 },
  { label: 'new conn/request c=16', transport: 'newconn', concurrency: 16 },
  { label: 'resumed conn/request c=16', transport: 'newconn-resume', concurrency: 16 },
]

export const WORKERS_PREFIX = 'workers: '
export const LADDER_PREFIX = 'ladder: '

/** Every scenario but the store ones (which need the store written between them). */
export function scenarios(): Scenario[] {
  const out: Scenario[] = []
  const main = ['openkes', 'baseline'] as const
  for (const op of ['generate', 'decrypt'] as const) {
    for (const t of TRANSPORTS) out.push({ name: `${op} ${t.label}`, set: 'main', op, transport: t.transport, concurrency: t.concurrency, servers: main })
  }
  for (const op of ['encrypt', 'mixed', 'version'] as const) {
    out.push({ name: `${op} h1 c=16`, set: 'main', op, transport: 'h1', concurrency: 16, servers: main })
    out.push({ name: `${op} h2 64 streams/1 conn`, set: 'main', op, transport: 'h2', concurrency: 64, servers: main })
  }
  const workers = ['openkes', 'openkes-w2-rr', 'openkes-w2-none'] as const
  for (const op of ['generate', 'decrypt'] as const) {
    out.push({ name: `${WORKERS_PREFIX}${op} h1 c=64`, set: 'workers', op, transport: 'h1', concurrency: 64, servers: workers })
    out.push({ name: `${WORKERS_PREFIX}${op} new conn/request c=16`, set: 'workers', op, transport: 'newconn', concurrency: 16, servers: workers })
  }
  const ladder = ['baseline-tls-http', 'baseline', 'openkes'] as const
  for (const op of ['generate', 'decrypt'] as const) {
    out.push({ name: `${LADDER_PREFIX}${op} h1 c=16`, set: 'ladder', op, transport: 'h1', concurrency: 16, servers: ladder })
  }
  return out
}

/** The two store scenarios: generate with 10 keys in the store, then with `storeKeys`. */
export function storeScenarios(storeKeys: number, smallStore: readonly string[], bigPick: readonly string[]): [Scenario, Scenario] {
  const base = { set: 'store', op: 'generate', transport: 'h1', concurrency: 16, servers: ['openkes'] } as const
  return [
    { ...base, name: 'generate h1 c=16, 10 keys in the store', keyNames: smallStore },
    { ...base, name: `generate h1 c=16, ${storeKeys} keys in the store`, keyNames: bigPick },
  ]
}

/** Whether --only selects the scenario: a set's name, or a part of the scenario's name. */
export function selected(s: Scenario, only: readonly string[] | undefined): boolean {
  return only === undefined || only.some((o) => o === s.set || s.name.includes(o))
}
