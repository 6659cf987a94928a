// The HTTP/2 fast path: the calls of ./fast-routes.ts served on Node's core stream API
// instead of through its compatibility layer (Http2ServerRequest/Http2ServerResponse),
// whose request and response objects, header proxies and stream wrapping cost a good
// part of what an HTTP/2 request costs. The router sees the same request and response
// shape either way (RouterRequest, RouterResponse); every other stream goes to Node's
// compatibility layer as before.
import { constants as h2 } from 'node:http2'
import type { IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2'
import type { RouterRequest, RouterResponse } from '../api/router.js'
import { isFastTarget } from './fast-routes.js'
import type { RequestTurns } from './request-turns.js'

/** Node's compatibility layer's handler of a new stream (a 'stream' listener of the server). */
export type CompatStreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void

type Listener = (...args: never[]) => void

/**
 * What the requests of a session read of its connection (its address; the server adds the
 * identity), noted on the session once, when it starts. Node's `session.socket` is a proxy that
 * costs a trap on every read, and throws ERR_HTTP2_SOCKET_UNBOUND once the session let its socket
 * go (a client that reset the connection mid-request): requests never read through it.
 */
export const SESSION_PEER = Symbol('openkes.sessionPeer')

/** The connection as a request on the HTTP/2 fast path shows it to the router. */
export type StreamPeer = NonNullable<RouterRequest['socket']>

/** A session with its peer noted (server.ts notes it when the session starts). */
export type PeerSession = ServerHttp2Session & { [SESSION_PEER]?: StreamPeer }

/**
 * The turns in which requests whose bodies have arrived are told so (./request-turns.ts): a
 * burst of them is worked through a group at a time, each group answered before the next starts.
 */
export type BodyEndTurns = RequestTurns<StreamRequest>

/** An HTTP/2 request as the router reads it: its body is the stream's data. */
export class StreamRequest implements RouterRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly httpVersionMajor = 2
  readonly httpVersionMinor = 0
  readonly stream: ServerHttp2Stream
  /** The session's peer (see SESSION_PEER), still there when the session is gone: a request that outlives it is audited with its address. */
  readonly socket: StreamPeer | undefined
  readonly #turns: BodyEndTurns | undefined
  /** The body readers' 'end' listeners, told in the body end's turn (with #turns). */
  #endListeners: Listener[] | undefined

  /** Without `turns`, a body's end is told as soon as the stream ends. */
  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, method: string, url: string, turns?: BodyEndTurns) {
    this.stream = stream
    this.headers = headers
    this.method = method
    this.url = url
    this.socket = (stream.session as PeerSession | undefined)?.[SESSION_PEER]
    this.#turns = turns
  }

  /** True once the client's side of the stream has ended (its body was read, or there was none). */
  get readableEnded(): boolean {
    return this.stream.readableEnded
  }

  // As with the compatibility layer's request, a stream error (the client reset the stream)
  // reaches a body reader as the stream's 'close' before its 'end': the request was aborted.
  // A body's end is told in its turn: the reader's work (the handler) starts then.
  on(event: string, listener: Listener): this {
    if (event === 'error') return this
    const turns = this.#turns
    if (event === 'end' && turns !== undefined) {
      if (this.#endListeners !== undefined) {
        this.#endListeners.push(listener)
      } else {
        this.#endListeners = [listener]
        this.stream.on('end', () => turns.admit(this))
      }
      return this
    }
    this.stream.on(event, listener as (...args: unknown[]) => void)
    return this
  }

  off(event: string, listener: Listener): this {
    if (event === 'error') return this
    if (event === 'end' && this.#turns !== undefined) {
      const at = this.#endListeners?.indexOf(listener) ?? -1
      if (at >= 0) this.#endListeners?.splice(at, 1)
      return this
    }
    this.stream.off(event, listener as (...args: unknown[]) => void)
    return this
  }

  /** The body's end reached its turn: its readers are told, once. */
  endBody(): void {
    const listeners = this.#endListeners
    this.#endListeners = undefined
    if (listeners === undefined) return
    for (const listener of listeners) (listener as () => void)()
  }

  resume(): this {
    this.stream.resume()
    return this
  }
}

/** An HTTP/2 response written with the stream's own respond() and end(). */
export class StreamResponse implements RouterResponse {
  readonly stream: ServerHttp2Stream
  writableEnded = false

  constructor(stream: ServerHttp2Stream) {
    this.stream = stream
  }

  get headersSent(): boolean {
    return this.stream.headersSent
  }

  get writableLength(): number {
    return this.stream.writableLength
  }

  writeHead(status: number, headers: Record<string, string | number>): this {
    const stream = this.stream
    // A stream the client reset is gone: there is no one to answer (the compatibility layer does the same).
    if (isClosed(stream)) return this
    // The router builds a fresh headers object for every response: it is completed in place.
    headers[h2.HTTP2_HEADER_STATUS] = status
    stream.respond(headers)
    return this
  }

  write(chunk: string | Buffer): boolean {
    if (isClosed(this.stream)) return false
    return this.stream.write(chunk)
  }

  end(body?: string | Buffer): this {
    if (this.writableEnded) return this
    this.writableEnded = true
    const stream = this.stream
    if (isClosed(stream)) return this
    if (!stream.headersSent) stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200 })
    if (body === undefined || body.length === 0) stream.end()
    // Ended once the body is written, not with it: see endOnceWritten.
    else stream.write(body, endOnceWritten(stream))
    return this
  }

  addTrailers(): void {
    // Fast-path answers carry no trailers (no listing is served here).
  }

  destroy(): this {
    this.stream.destroy()
    return this
  }

  once(event: 'finish' | 'close' | 'drain', listener: () => void): this {
    this.stream.once(event, listener)
    return this
  }
}

/**
 * The callback of a response body's write, which ends the stream. Ended together with its
 * last write (`stream.end(body)`), a stream is closed and destroyed before that write's
 * completion runs, and Node then builds an ERR_STREAM_DESTROYED error, stack trace and all,
 * for every response. Node's compatibility layer avoids that by ending every stream with
 * (empty) trailers, which cost a 'wantTrailers' call from C++, a trailers submission and a
 * setImmediate per response. Ending the stream once its body is written avoids both: the
 * client sees the same frames (the body, then an empty DATA frame that ends the stream). A
 * write that failed (the client reset the stream) leaves nothing to end.
 */
function endOnceWritten(stream: ServerHttp2Stream): (err?: Error | null) => void {
  return (err) => {
    if (err == null && !stream.destroyed) stream.end()
  }
}

// Errors of a stream (a reset by the client, a session torn down) end it; the request sees 'close'.
function ignoreStreamError(): void {}

/**
 * Serves a new stream: a fast-route request goes to `serve` with StreamRequest/StreamResponse
 * (its body's end told in `turns`), every other one to Node's compatibility layer (`compat`).
 */
export function routeStream(
  serve: (req: StreamRequest, res: StreamResponse) => void,
  turns: BodyEndTurns | undefined,
  compat: CompatStreamListener,
  thisArg: unknown,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
): void {
  const method = headers[h2.HTTP2_HEADER_METHOD]
  const path = headers[h2.HTTP2_HEADER_PATH]
  if (typeof method !== 'string' || typeof path !== 'string' || headers['expect'] !== undefined || !isFastTarget(method, path)) {
    compat.call(thisArg, stream, headers, flags, rawHeaders)
    return
  }
  stream.on('error', ignoreStreamError)
  serve(new StreamRequest(stream, headers, method, path, turns), new StreamResponse(stream))
}

/** Whether a stream is closed (reset by the client, its session gone): there is no one to answer. */
function isClosed(stream: ServerHttp2Stream): boolean {
  return stream.destroyed || stream.closed
}

/**
 * Whether a request's stream is closed: a body end still waiting for its turn is then not
 * told. The reader has its 'close' instead (aborted).
 */
export function isStreamGone(req: StreamRequest): boolean {
  return isClosed(req.stream)
}
