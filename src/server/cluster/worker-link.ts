import { announceWrites, LocalChangeFeed } from '../../keystore/change-feed.js'
import type { KeyStore } from '../../keystore/keystore.js'
import type { AuditLog, AuditLogEvents } from '../../log/audit-log.js'
import type { EventHub, EventHubOptions } from '../../log/event-hub.js'
import type { ClusterLink } from './link.js'
import { asPrimaryMessage, changeOf } from './messages.js'
import type { Port, PrimaryMessage, StreamName, WorkerMessage } from './messages.js'
import type { MetricsSnapshot } from './metrics-api.js'
import { ForwardingHub } from './forwarding-hub.js'
import { WorkerAuditLog } from './worker-audit-log.js'

/** How long a scrape waits for the primary's merged answer before serving this worker's own metrics. */
export const SCRAPE_WAIT_MS = 4_000

/** What the worker's main code does on the primary's orders. */
export interface WorkerControl {
  /** Reload the configuration (rejects when it was refused; the old one stays). */
  reload(): Promise<void>
  /** Stop serving gracefully and exit. */
  shutdown(): void
  /** An operational problem (to the error log). */
  error(message: string): void
}

/** The 'init' message's contents. */
export interface WorkerInit {
  readonly ticketKeys: Buffer
  readonly auditHealthy: boolean
}

/**
 * A worker's end of the cluster: implements ClusterLink for startServer and handles what the
 * primary sends (`handle`). Everything it does is driven by messages, so it is tested in one
 * process with a fake port.
 */
export class WorkerLink implements ClusterLink {
  readonly #port: Port<WorkerMessage>
  readonly #incoming = new LocalChangeFeed()
  readonly #hubs = new Map<StreamName, ForwardingHub>()
  readonly #pendingScrapes = new Map<number, (s: MetricsSnapshot | undefined) => void>()
  #ticketKeys: Buffer
  #ticketKeysUsed = false
  #auditHealthy: boolean
  #auditLog: WorkerAuditLog | undefined
  #snapshot: (() => MetricsSnapshot) | undefined
  #control: WorkerControl | undefined
  #nextScrape = 1
  // Remembered until the hub exists: the primary may say so before startServer built it.
  readonly #remoteReaders = new Map<StreamName, boolean>()
  readonly #scrapeWaitMs: number

  constructor(port: Port<WorkerMessage>, init: WorkerInit, opts: { scrapeWaitMs?: number } = {}) {
    this.#port = port
    this.#scrapeWaitMs = opts.scrapeWaitMs ?? SCRAPE_WAIT_MS
    this.#ticketKeys = init.ticketKeys
    this.#auditHealthy = init.auditHealthy
  }

  /** Who carries out reloads and the shutdown (set once the server runs). */
  control(control: WorkerControl): void {
    this.#control = control
  }

  ticketKeys(): Buffer {
    this.#ticketKeysUsed = true
    return this.#ticketKeys
  }

  errorHub(opts: EventHubOptions): EventHub {
    return this.#hub('error', opts)
  }

  auditLog(hub: EventHubOptions, events: { onError: (message: string) => void } & AuditLogEvents): AuditLog {
    this.#auditLog = new WorkerAuditLog({ ...events, hub: this.#hub('audit', hub), healthy: this.#auditHealthy })
    return this.#auditLog
  }

  shareStore(store: KeyStore): KeyStore {
    // PostgreSQL announces every write to every connection itself (NOTIFY); relaying would only repeat it.
    if (store.kind === 'postgres') return store
    return announceWrites(
      store,
      (event) => {
        if (event.kind === 'change') this.#send({ openkes: 1, k: 'change', table: event.table, name: event.name })
      },
      this.#incoming,
    )
  }

  serveMetrics(snapshot: () => MetricsSnapshot): void {
    this.#snapshot = snapshot
  }

  gatherMetrics(): Promise<MetricsSnapshot> {
    const id = this.#nextScrape++
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), this.#scrapeWaitMs)
      const settle = (merged: MetricsSnapshot | undefined): void => {
        clearTimeout(timer)
        this.#pendingScrapes.delete(id)
        if (merged !== undefined) return resolve(merged)
        this.#control?.error(`metrics: no answer from the primary within ${this.#scrapeWaitMs} ms; this scrape counts this worker (pid ${process.pid}) only`)
        resolve(this.#localSnapshot())
      }
      this.#pendingScrapes.set(id, settle)
      this.#send({ openkes: 1, k: 'scrape', id })
    })
  }

  /** Sends every batched log line now (before the worker exits). */
  flush(): void {
    for (const hub of this.#hubs.values()) hub.flush()
  }

  /** Handles one message from the primary (anything else is ignored). */
  handle(raw: unknown): void {
    const m = asPrimaryMessage(raw)
    if (m === undefined) return
    this.#dispatch(m)
  }

  #dispatch(m: PrimaryMessage): void {
    switch (m.k) {
      case 'change':
        this.#incoming.publish(changeOf(m))
        return
      case 'lines':
        this.#hubs.get(m.stream)?.publishRemote(m.lines)
        return
      case 'forward':
        this.#remoteReaders.set(m.stream, m.on)
        this.#hubs.get(m.stream)?.setRemoteReaders(m.on)
        return
      case 'audit-health':
        this.#auditHealthy = m.healthy
        this.#auditLog?.setFileHealthy(m.healthy)
        return
      case 'snapshot':
        // Not serving yet: no answer, the primary leaves this worker out of the scrape.
        if (this.#snapshot !== undefined) this.#send({ openkes: 1, k: 'snapshot', id: m.id, snapshot: this.#snapshot() })
        return
      case 'metrics':
        this.#pendingScrapes.get(m.id)?.(m.snapshot)
        return
      case 'reload':
        void this.#reload(m.id, Buffer.from(m.ticketKeys, 'base64'))
        return
      case 'shutdown':
        this.#control?.shutdown()
        return
      case 'init':
        return
    }
  }

  async #reload(id: number, ticketKeys: Buffer): Promise<void> {
    const before = this.#ticketKeys
    // startServer's reload takes these (ticketKeys()) only when the TLS material changed.
    this.#ticketKeys = ticketKeys
    this.#ticketKeysUsed = false
    let error: string | undefined
    try {
      if (this.#control === undefined) throw new Error('the worker is still starting')
      await this.#control.reload()
    } catch (err) {
      error = (err as Error).message
    }
    const tlsChanged = this.#ticketKeysUsed
    if (!tlsChanged) this.#ticketKeys = before
    this.#send(error === undefined ? { openkes: 1, k: 'reloaded', id, tlsChanged } : { openkes: 1, k: 'reloaded', id, tlsChanged, error })
  }

  #localSnapshot(): MetricsSnapshot {
    // gatherMetrics is called by the metrics handler, so the server (and serveMetrics) exists.
    return (this.#snapshot as () => MetricsSnapshot)()
  }

  #hub(stream: StreamName, opts: EventHubOptions): ForwardingHub {
    const hub = new ForwardingHub(opts, {
      readers: (count) => this.#send({ openkes: 1, k: 'readers', stream, count }),
      lines: (lines) => this.#send({ openkes: 1, k: 'lines', stream, lines }),
    })
    hub.setRemoteReaders(this.#remoteReaders.get(stream) === true)
    this.#hubs.set(stream, hub)
    return hub
  }

  #send(m: WorkerMessage): void {
    try {
      this.#port.send(m)
    } catch {
      // The primary is gone: the worker is about to be ended (IPC disconnect ends a worker).
    }
  }
}
