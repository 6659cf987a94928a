import type { SubscriberSink, Subscription } from '../log/event-hub.js'

/** A complete answer; the router writes it. */
export interface BodyReply {
  readonly status: number
  readonly contentType?: string
  readonly body?: string | Buffer
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

/** An nd-json reply: one compact JSON value per line; current KES clients switch on this content type. */
export function ndjson(values: Iterable<unknown>): BodyReply {
  let body = ''
  for (const v of values) body += JSON.stringify(v) + '\n'
  return { status: 200, contentType: 'application/x-ndjson', body }
}

/** True for a stream reply. */
export function isStream(reply: Reply): reply is StreamReply {
  return 'attach' in reply
}
