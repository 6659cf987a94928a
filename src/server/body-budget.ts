import type { BodyAccount } from '../api/router.js'

/**
 * Caps the request body bytes held in memory: per connection (so one client's
 * 256 HTTP/2 streams can't each buffer a full body) and for the whole server
 * (so many connections can't either). A request over a cap is refused with a
 * 503, never queued: queuing would hold the bytes anyway.
 */
export class BodyBudget {
  readonly #perConnection: number
  readonly #total: number
  readonly #byConnection = new WeakMap<object, number>()
  #inFlight = 0

  constructor(limits: { readonly bodyBytesPerConnection: number; readonly bodyBytesTotal: number }) {
    this.#perConnection = limits.bodyBytesPerConnection
    this.#total = limits.bodyBytesTotal
  }

  /** Body bytes held by all requests now. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** The account of one request on `connection` (any object that stands for the connection). */
  account(connection: object): BodyAccount {
    let held = 0
    let released = false
    return {
      charge: (bytes) => {
        const onConnection = this.#byConnection.get(connection) ?? 0
        if (released || onConnection + bytes > this.#perConnection || this.#inFlight + bytes > this.#total) return false
        this.#byConnection.set(connection, onConnection + bytes)
        this.#inFlight += bytes
        held += bytes
        return true
      },
      release: () => {
        released = true
        if (held === 0) return
        this.#byConnection.set(connection, (this.#byConnection.get(connection) ?? held) - held)
        this.#inFlight -= held
        held = 0
      },
    }
  }
}
