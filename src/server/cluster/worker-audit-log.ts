import { AuditLog, formatAuditEvent } from '../../log/audit-log.js'
import type { AuditLogEvents, AuditOutputs, AuditRecord } from '../../log/audit-log.js'
import type { ForwardingHub } from './forwarding-hub.js'

/**
 * A worker's audit log. The primary is the one writer of the audit file and of stdout
 * (`log.audit: on`): a worker formats each event once, gives it to its own live readers and,
 * through its hub's batches, to the primary (which writes it and passes it to the readers of
 * the other workers). The file's health is the primary's, told to every worker, so
 * `log.audit_fail_closed` refuses requests in every worker while the file can't be written.
 */
export class WorkerAuditLog extends AuditLog {
  override readonly hub: ForwardingHub
  readonly #countEvent: () => void
  #failClosed = false
  #healthy: boolean

  constructor(opts: { hub: ForwardingHub; onError: (message: string) => void; healthy: boolean } & AuditLogEvents) {
    // The base counts nothing here: this class records (and counts) itself.
    super({ hub: opts.hub, onError: opts.onError })
    this.hub = opts.hub
    this.#countEvent = opts.onEvent ?? (() => {})
    this.#healthy = opts.healthy
  }

  /** Takes the settings; opens nothing (the primary writes the file and stdout). */
  override async configure(outputs: AuditOutputs): Promise<void> {
    this.#failClosed = outputs.failClosed === true
    this.hub.setAlwaysForward(outputs.stdout || outputs.file !== undefined)
  }

  /** The primary reopens the file; nothing to do here. */
  override async reopen(): Promise<void> {}

  /** The audit file's health, as the primary last told it. */
  override get fileHealthy(): boolean {
    return this.#healthy
  }

  override get refusing(): boolean {
    return this.#failClosed && !this.#healthy
  }

  /** The primary says the audit file became healthy or unhealthy. */
  setFileHealthy(healthy: boolean): void {
    this.#healthy = healthy
  }

  override record(r: AuditRecord): void {
    this.#countEvent()
    // Every request passes here: don't build a line nobody will read.
    if (!this.hub.wanted) return
    this.hub.publish(formatAuditEvent(r))
  }

  /** Sends what is still batched, then ends the local readers. */
  override async close(): Promise<void> {
    this.hub.flush()
    await super.close()
  }
}
