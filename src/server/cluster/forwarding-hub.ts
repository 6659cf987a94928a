import { EventHub } from '../../log/event-hub.js'
import type { EventHubOptions, StillAllowed, SubscriberSink, Subscription } from '../../log/event-hub.js'

/** What a ForwardingHub tells the primary. */
export interface HubUplink {
  /** The hub's number of live readers changed. */
  readers(count: number): void
  /** Lines published here since the last batch, for the other processes (one call per event-loop turn at most). */
  lines(lines: readonly string[]): void
}

/**
 * A worker's log hub (audit or error): its own live readers, plus the other processes'.
 *
 * - Readers joining and leaving are reported (the primary counts them per worker and tells each
 *   worker whether someone elsewhere reads).
 * - A line published here goes to the local readers and, while someone elsewhere needs it
 *   (a reader in another worker; for audit also the primary's file or stdout), into a batch
 *   sent once per event-loop turn: never one message per event.
 * - Lines of other processes arrive through `publishRemote` and go to the local readers only.
 */
export class ForwardingHub extends EventHub {
  readonly #uplink: HubUplink
  #readers = 0
  #remoteReaders = false
  #alwaysForward = false
  #batch: string[] = []
  #scheduled: NodeJS.Immediate | undefined

  constructor(opts: EventHubOptions, uplink: HubUplink) {
    super(opts)
    this.#uplink = uplink
  }

  /** Whether a line published now is read by anyone (here or elsewhere): else it need not be built. */
  get wanted(): boolean {
    return this.size > 0 || this.forwarding
  }

  /** Whether published lines are sent to the primary. */
  get forwarding(): boolean {
    return this.#remoteReaders || this.#alwaysForward
  }

  /** Some other process has (or no longer has) a live reader of this stream. */
  setRemoteReaders(on: boolean): void {
    this.#remoteReaders = on
  }

  /** Every line goes to the primary regardless of readers (the audit file or stdout is written there). */
  setAlwaysForward(on: boolean): void {
    this.#alwaysForward = on
  }

  override subscribe(sink: SubscriberSink, stillAllowed?: StillAllowed): Subscription {
    const sub = super.subscribe(sink, stillAllowed)
    this.#readers++
    this.#uplink.readers(this.#readers)
    // Every way a subscription ends (cancel, closeAll, reauthorize) resolves `closed`, once.
    void sub.closed.then(() => {
      this.#readers--
      this.#uplink.readers(this.#readers)
    })
    return sub
  }

  override publish(line: string): void {
    super.publish(line)
    if (!this.forwarding) return
    this.#batch.push(line)
    this.#scheduled ??= setImmediate(() => this.flush())
  }

  /** Lines of other processes: to the local readers only. */
  publishRemote(lines: readonly string[]): void {
    for (const line of lines) super.publish(line)
  }

  /** Sends the pending batch now (also at shutdown, so no recorded line is left behind). */
  flush(): void {
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled)
    this.#scheduled = undefined
    if (this.#batch.length === 0) return
    const lines = this.#batch
    this.#batch = []
    this.#uplink.lines(lines)
  }
}
