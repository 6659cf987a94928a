import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'

/** Why a connection was closed at once. */
export type RefusalReason = 'per-address' | 'full' | 'evicted'

/**
 * Decides, before TLS starts, whether a new TCP connection may stay: at most
 * `connectionsPerAddress` from one address (so one client can't take all the
 * places), and at most `connections` in all. When the server is full, the
 * oldest connection still in its TLS handshake gives its place to the new one:
 * a connection that has not finished its handshake has proven nothing, and a
 * flood of such connections must not lock out clients that do finish theirs.
 * Only when every connection is established is the new one refused.
 */
export class ConnectionGate {
  readonly #max: number
  readonly #maxPerAddress: number
  readonly #onRefuse: (reason: RefusalReason, address: string) => void
  readonly #open = new Map<Socket, string>()
  // In arrival order, so the first is the oldest.
  readonly #handshaking = new Set<Socket>()
  readonly #perAddress = new Map<string, number>()
  readonly #refused = new WeakSet<Socket>()

  constructor(
    limits: { readonly connections: number; readonly connectionsPerAddress: number },
    onRefuse: (reason: RefusalReason, address: string) => void,
  ) {
    this.#max = limits.connections
    this.#maxPerAddress = limits.connectionsPerAddress
    this.#onRefuse = onRefuse
  }

  /** Open connections. */
  get size(): number {
    return this.#open.size
  }

  /** Admits a new connection, or destroys it and returns false. */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? ''
    if ((this.#perAddress.get(address) ?? 0) >= this.#maxPerAddress) return this.#refuse(socket, 'per-address', address)
    if (this.#open.size >= this.#max) {
      const oldest = this.#handshaking.values().next().value
      if (oldest === undefined) return this.#refuse(socket, 'full', address)
      const oldestAddress = this.#open.get(oldest) ?? ''
      this.#forget(oldest)
      this.#refuse(oldest, 'evicted', oldestAddress)
    }
    this.#open.set(socket, address)
    this.#handshaking.add(socket)
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1)
    socket.once('close', () => this.#forget(socket))
    return true
  }

  /** The TLS handshake on `tlsSocket` is done: its connection is no longer the first to give way. */
  established(tlsSocket: TLSSocket): void {
    const raw = rawSocketOf(tlsSocket)
    if (raw !== undefined) this.#handshaking.delete(raw)
  }

  /** Whether the TLS socket's connection was closed by the gate (its handshake error is no news). */
  closedByGate(tlsSocket: TLSSocket): boolean {
    const raw = rawSocketOf(tlsSocket)
    return raw !== undefined && this.#refused.has(raw)
  }

  #refuse(socket: Socket, reason: RefusalReason, address: string): false {
    this.#refused.add(socket)
    socket.destroy()
    this.#onRefuse(reason, address)
    return false
  }

  #forget(socket: Socket): void {
    const address = this.#open.get(socket)
    if (address === undefined) return
    this.#open.delete(socket)
    this.#handshaking.delete(socket)
    const left = (this.#perAddress.get(address) ?? 1) - 1
    if (left > 0) this.#perAddress.set(address, left)
    else this.#perAddress.delete(address)
  }
}

// A server-side TLSSocket wraps the TCP socket it was accepted on; Node keeps
// that in `_parent` (not in its typings). Without it (a future Node), the gate
// still caps connections, it just can't tell established ones apart.
function rawSocketOf(tlsSocket: TLSSocket): Socket | undefined {
  const parent = (tlsSocket as unknown as { _parent?: unknown })._parent
  return typeof parent === 'object' && parent !== null ? (parent as Socket) : undefined
}
