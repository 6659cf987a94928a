import type { SubscriberSink, Subscription } from '../log/event-hub.js'

/** A body produced while it is sent, part by part. */
export type BodyParts = AsyncIterable<string>

/** A complete answer; the router writes it. */
export interface BodyReply {
  readonly status: number
  readonly contentType?: string
  /**
   * The body: whole, or parts produced after the headers went out (sent
   * chunked). A failure while producing parts is reported in the status
   * trailers when the reply has them, else the response is aborted, so a
   * cut-off body never looks complete.
   */
  readonly body?: string | Buffer | BodyParts
  /**
   * A listing (key list, identity list): the response is sent chunked (no
   * Content-Length), declares `Trailer: Status, Error` and ends with the
   * trailers `Status: 200` and an empty `Error` — or, when the body fails
   * after the headers went out, the failing status and `{"message":...}`.
   * The KES 0.17 client reads them at the end of every listing and fails
   * without them; other clients ignore them.
   */
  readonly statusTrailers?: boolean
}

/**
 * A live stream (the log traces): the router sends 200 and the headers at
 * once, then hands the response to `attach`, and the request counts as
 * completed (for audit) from that moment; the stream lasts until the client
 * goes away or the server shuts down.
 */
export interface StreamReply {
  readonly status: 200
  readonly contentType: string
  attach(sink: SubscriberSink): Subscription
  /** Gives back what the reply holds (a reader's place) when it is never attached. */
  release?(): void
}

/** What a handler answers. */
export type Reply = BodyReply | StreamReply

const OK_EMPTY: BodyReply = Object.freeze({ status: 200 })

/** 200 with an empty body: create, import, delete, write, assign, forget. */
export function ok(): BodyReply {
  return OK_EMPTY
}

/** A JSON reply. */
export function json(status: number, value: unknown): BodyReply {
  return { status, contentType: 'application/json', body: JSON.stringify(value) }
}

/**
 * A JSON reply whose text the caller built, for the hot path: cheaper than `json` of a fresh
 * object. Only for text assembled from values that JSON never escapes (base64, fixed names).
 */
export function jsonText(status: number, text: string): BodyReply {
  return { status, contentType: 'application/json', body: text }
}

/** An nd-json reply: one compact JSON value per line; current KES clients switch on this content type. */
export function ndjson(values: Iterable<unknown>): BodyReply {
  let body = ''
  for (const v of values) body += JSON.stringify(v) + '\n'
  return { status: 200, contentType: 'application/x-ndjson', body }
}

/** The same reply as a listing: sent with the `Status` and `Error` trailers (see BodyReply). */
export function listing(reply: BodyReply): BodyReply {
  return { ...reply, statusTrailers: true }
}

/** True when a body is produced part by part. */
export function isBodyParts(body: BodyReply['body']): body is BodyParts {
  return typeof body === 'object' && !Buffer.isBuffer(body)
}

/** True for a stream reply. */
export function isStream(reply: Reply): reply is StreamReply {
  return 'attach' in reply
}
