// What one API call is, and the errors the client raises itself (as opposed to
// the KesErrors that carry a server's answer). Every other client module builds
// on these, so this one imports nothing of the client.
import type { Buffer } from 'node:buffer'

/** One API call as the transport sees it. */
export interface Call {
  readonly method: 'GET' | 'POST' | 'DELETE'
  /** The request target, names already percent-encoded. */
  readonly path: string
  readonly body?: Buffer
  /** The Accept header to send, if any. */
  readonly accept?: string
  /**
   * Whether sending the call twice is harmless. A call that is not (create,
   * import, delete, forget) is retried only when it certainly never reached a
   * server, since a repeat could turn its success into "exists" or "not found".
   */
  readonly idempotent: boolean
}

/** A response that is not what the API promises; an answer, so it is not retried. */
export class InvalidResponseError extends Error {
  constructor(call: Call, why: string) {
    super(`kes client: invalid response to ${call.method} ${call.path}: ${why}`)
    this.name = 'InvalidResponseError'
  }
}

/** An error of the client itself: message `kes client: <message>`, with `code` set (e.g. `ETIMEDOUT`). */
export function clientError(message: string, code: string): Error {
  return Object.assign(new Error(`kes client: ${message}`), { code })
}

/** The error of a call made or pending after `close()`: `kes client: closed`, code `ERR_KES_CLIENT_CLOSED`. */
export function closedError(): Error {
  return clientError('closed', 'ERR_KES_CLIENT_CLOSED')
}

/** Whether a value is a plain JSON-like object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
