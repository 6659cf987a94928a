import { asWorkerMessage } from './messages.js'
import type { Port, PrimaryMessage, StreamName, WorkerMessage } from './messages.js'
import { mergeSnapshots } from './metrics-api.js'
import type { MetricsSnapshot } from './metrics-api.js'

/** How long a scrape waits for each worker's snapshot; a worker that doesn't answer is left out (and logged). */
export const SNAPSHOT_WAIT_MS = 2_000
/** How long a reload waits for every worker's answer. */
export const RELOAD_WAIT_MS = 30_000

/** What the relay needs from the primary process. */
export interface RelayHost {
  /** Writes one audit line (every worker's events go through here once) to the audit file and stdout. */
  auditLine(line: string): void
  /** An operational problem, to the primary's error log. */
  error(message: string): void
  /** The primary's own metrics (audit file health and losses, its CPU and memory): first in every merge. */
  snapshot(): MetricsSnapshot
}

/** The outcome of a reload in every worker. */
export interface ReloadOutcome {
  /** Each refusal, as "worker N: message" (a refusing worker keeps its configuration). */
  readonly errors: readonly string[]
  /** True when some worker changed its TLS material (and so took the new ticket keys). */
  readonly tlsChanged: boolean
}

interface Member {
  readonly port: Port<PrimaryMessage>
  readonly describe: string
  readonly readers: Record<StreamName, number>
  readonly forwarding: Record<StreamName, boolean>
}

interface Gathering {
  readonly from: number
  readonly requestId: number
  /** The workers not answered yet, with their descriptions. */
  readonly waiting: Map<number, string>
  readonly answers: Map<number, MetricsSnapshot>
  timer?: NodeJS.Timeout
}

interface Reloading {
  /** The workers not answered yet, with their descriptions. */
  readonly waiting: Map<number, string>
  readonly errors: string[]
  tlsChanged: boolean
  timer?: NodeJS.Timeout
  readonly done: (o: ReloadOutcome) => void
}

const STREAMS: readonly StreamName[] = ['audit', 'error']

/**
 * The primary's message handling: relays store changes to every other worker, writes every
 * worker's audit lines once, passes log lines to the workers that have live readers (and tells
 * each worker whether anyone elsewhere reads, so lines cross processes only then), gathers
 * metrics scrapes, runs reloads and spreads the audit file's health. The process management
 * (fork, signals, restarts) is elsewhere; this is tested in one process with fake ports.
 */
export class PrimaryRelay {
  readonly #host: RelayHost
  readonly #members = new Map<number, Member>()
  readonly #gatherings = new Map<number, Gathering>()
  readonly #reloads = new Map<number, Reloading>()
  readonly #snapshotWaitMs: number
  readonly #reloadWaitMs: number
  #nextId = 1
  #auditHealthy = true

  constructor(host: RelayHost, opts: { snapshotWaitMs?: number; reloadWaitMs?: number } = {}) {
    this.#host = host
    this.#snapshotWaitMs = opts.snapshotWaitMs ?? SNAPSHOT_WAIT_MS
    this.#reloadWaitMs = opts.reloadWaitMs ?? RELOAD_WAIT_MS
  }

  /** The workers currently known. */
  get size(): number {
    return this.#members.size
  }

  /** The audit file's health as last spread. */
  get auditHealthy(): boolean {
    return this.#auditHealthy
  }

  /** A worker joins (before it starts serving): it learns whether others have live readers. */
  add(id: number, port: Port<PrimaryMessage>, describe: string): void {
    this.#members.set(id, { port, describe, readers: { audit: 0, error: 0 }, forwarding: { audit: false, error: false } })
    for (const stream of STREAMS) this.#spreadForwarding(stream)
  }

  /** A worker is gone: its readers no longer count, and nothing waits for its answers. */
  remove(id: number): void {
    if (!this.#members.delete(id)) return
    for (const stream of STREAMS) this.#spreadForwarding(stream)
    for (const [gid, g] of this.#gatherings) {
      if (g.waiting.delete(id) && g.waiting.size === 0) this.#finishGathering(gid, g)
    }
    for (const [rid, r] of this.#reloads) {
      if (r.waiting.delete(id) && r.waiting.size === 0) this.#finishReload(rid, r)
    }
  }

  /**
   * Handles one message of worker `id`. Returns it when it is not the relay's to handle
   * ('ready', 'listening', 'failed', 'closing': the process management's), else undefined.
   */
  handle(id: number, raw: unknown): WorkerMessage | undefined {
    const m = asWorkerMessage(raw)
    if (m === undefined) return undefined
    switch (m.k) {
      case 'change':
        this.#toOthers(id, { openkes: 1, k: 'change', table: m.table, name: m.name })
        return undefined
      case 'lines':
        if (m.stream === 'audit') for (const line of m.lines) this.#host.auditLine(line)
        this.#toReaders(m.stream, m.lines, id)
        return undefined
      case 'readers': {
        const member = this.#members.get(id)
        if (member !== undefined) member.readers[m.stream] = m.count
        this.#spreadForwarding(m.stream)
        return undefined
      }
      case 'scrape':
        this.#gather(id, m.id)
        return undefined
      case 'snapshot': {
        const g = this.#gatherings.get(m.id)
        if (g === undefined || !g.waiting.delete(id)) return undefined
        g.answers.set(id, m.snapshot)
        if (g.waiting.size === 0) this.#finishGathering(m.id, g)
        return undefined
      }
      case 'reloaded': {
        const r = this.#reloads.get(m.id)
        if (r === undefined) return undefined
        const describe = r.waiting.get(id)
        if (describe === undefined) return undefined
        r.waiting.delete(id)
        if (m.error !== undefined) r.errors.push(`${describe}: ${m.error}`)
        if (m.tlsChanged) r.tlsChanged = true
        if (r.waiting.size === 0) this.#finishReload(m.id, r)
        return undefined
      }
      case 'ready':
      case 'listening':
      case 'failed':
      case 'closing':
        return m
    }
  }

  /** The primary's own error lines go to every worker that has live error readers. */
  primaryLine(stream: StreamName, line: string): void {
    this.#toReaders(stream, [line], undefined)
  }

  /** The audit file became healthy or unhealthy: every worker learns it (fail-closed refusals follow it). */
  setAuditHealthy(healthy: boolean): void {
    if (healthy === this.#auditHealthy) return
    this.#auditHealthy = healthy
    this.#broadcast({ openkes: 1, k: 'audit-health', healthy })
  }

  /** Sends a message to every worker (the shutdown). */
  broadcast(m: PrimaryMessage): void {
    this.#broadcast(m)
  }

  /**
   * Asks every worker to reload its configuration, with ticket keys to take if its TLS material
   * changed; resolves once every worker answered, left, or RELOAD_WAIT_MS passed.
   */
  reload(ticketKeys: Buffer): Promise<ReloadOutcome> {
    const id = this.#nextId++
    return new Promise((done) => {
      const r: Reloading = { waiting: this.#describeAll(), errors: [], tlsChanged: false, done }
      this.#reloads.set(id, r)
      if (r.waiting.size === 0) return this.#finishReload(id, r)
      r.timer = setTimeout(() => {
        for (const describe of r.waiting.values()) r.errors.push(`${describe}: no answer within ${this.#reloadWaitMs} ms`)
        this.#finishReload(id, r)
      }, this.#reloadWaitMs)
      this.#broadcast({ openkes: 1, k: 'reload', id, ticketKeys: ticketKeys.toString('base64') })
    })
  }

  #finishReload(id: number, r: Reloading): void {
    this.#reloads.delete(id)
    clearTimeout(r.timer)
    r.done({ errors: r.errors, tlsChanged: r.tlsChanged })
  }

  #gather(from: number, requestId: number): void {
    const id = this.#nextId++
    const g: Gathering = { from, requestId, waiting: this.#describeAll(), answers: new Map() }
    this.#gatherings.set(id, g)
    g.timer = setTimeout(() => {
      for (const describe of g.waiting.values()) {
        this.#host.error(`metrics: ${describe} did not answer within ${this.#snapshotWaitMs} ms; left out of this scrape`)
      }
      this.#finishGathering(id, g)
    }, this.#snapshotWaitMs)
    for (const w of g.waiting.keys()) this.#send(w, { openkes: 1, k: 'snapshot', id })
  }

  /** Every current worker with its description (whom a scrape or reload waits for). */
  #describeAll(): Map<number, string> {
    return new Map([...this.#members].map(([id, m]) => [id, m.describe]))
  }

  #finishGathering(id: number, g: Gathering): void {
    this.#gatherings.delete(id)
    clearTimeout(g.timer)
    // The primary's snapshot first: gauges that are one value for the whole server (the audit
    // file's health) are taken from the process that writes the file.
    const ordered = [...g.answers.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s)
    const merged = mergeSnapshots([this.#host.snapshot(), ...ordered])
    this.#send(g.from, { openkes: 1, k: 'metrics', id: g.requestId, snapshot: merged })
  }

  /** Tells each worker whether some other worker has live readers of `stream` (only when that changed). */
  #spreadForwarding(stream: StreamName): void {
    let total = 0
    for (const m of this.#members.values()) total += m.readers[stream]
    for (const [id, m] of this.#members) {
      const on = total - m.readers[stream] > 0
      if (on === m.forwarding[stream]) continue
      m.forwarding[stream] = on
      this.#send(id, { openkes: 1, k: 'forward', stream, on })
    }
  }

  #toReaders(stream: StreamName, lines: readonly string[], except: number | undefined): void {
    for (const [id, m] of this.#members) {
      if (id !== except && m.readers[stream] > 0) this.#send(id, { openkes: 1, k: 'lines', stream, lines })
    }
  }

  #toOthers(except: number, m: PrimaryMessage): void {
    for (const id of this.#members.keys()) if (id !== except) this.#send(id, m)
  }

  #broadcast(m: PrimaryMessage): void {
    for (const id of this.#members.keys()) this.#send(id, m)
  }

  #send(id: number, m: PrimaryMessage): void {
    try {
      this.#members.get(id)?.port.send(m)
    } catch {
      // A worker that is exiting: its 'exit' removes it.
    }
  }
}
