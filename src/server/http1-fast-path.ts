// The HTTP/1.1 fast path: the few calls a storage server makes for every object
// (generate, encrypt, decrypt) and the health checks it polls, served straight
// off the TLS socket — one parse of the request, one write of the response —
// instead of through Node's HTTP/1.1 server and its streams, which cost more per
// request than the crypto does.
//
// It is deliberately narrow. A request takes the fast path only when it arrived
// whole in what the socket has delivered, is unambiguous HTTP/1.1 (one
// Content-Length or none, no Transfer-Encoding, no Expect, no Upgrade, no
// repeated or malformed header, no pipelined bytes after it) and names one of
// the FAST_ROUTES. Anything else — and everything after it on that connection —
// is handed to Node's HTTP/1.1 server, with the bytes read so far put back, so
// every edge of the protocol (chunked bodies, slow or oversized headers, bad
// syntax and their error answers, pipelining, HEAD, trailers, log streams) is
// still Node's, unchanged. The fast path never answers a request Node would have
// parsed differently: it only recognises a strict subset of what Node accepts.
import { STATUS_CODES } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { RouterRequest, RouterResponse } from '../api/router.js'
import { isFastTarget } from './fast-routes.js'

/** Serves one request (the router). */
export type ServeRequest = (req: FastRequest, res: FastResponse) => void

/** How a connection is served on the fast path. */
export interface FastPathOptions {
  readonly serve: ServeRequest
  /**
   * Gives the connection to Node's HTTP/1.1 server. Called at most once per connection,
   * never while a fast-path request is in flight; the bytes not yet parsed were put back
   * into the socket first, so Node reads them as if it had been serving all along.
   */
  readonly handOver: (socket: TLSSocket) => void
  /** The `Keep-Alive: timeout=<s>` the responses announce (the server's idle timeout). */
  readonly keepAliveSeconds: number
}

/**
 * The largest request head (request line and headers) and body the fast path takes; bigger ones go
 * to Node. (A request must also arrive in one read, and TLS delivers at most one 16 KiB record per
 * read: in practice larger requests are Node's anyway. Key API bodies are a few hundred bytes.)
 */
const MAX_HEAD_BYTES = 8 * 1024
const MAX_BODY_BYTES = 64 * 1024
const MAX_HEADERS = 64
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1')
// A header field's name is a token; its value (between optional spaces and tabs) may hold
// visible ASCII, obs-text, spaces and tabs.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Checked once over the whole head: no control character but the CR LF that end its lines and
// the tabs a value may hold (so no bare CR or LF, no NUL, anywhere).
const INVALID_HEAD = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/
const SP = 0x20
const HT = 0x09
const DIGITS = /^[0-9]{1,9}$/
const UNSAFE_HEADER_TEXT = /[\r\n\0]/
// Headers whose presence means the request is not one the fast path understands whole.
const NODE_ONLY_HEADERS: ReadonlySet<string> = new Set(['transfer-encoding', 'expect', 'upgrade', 'te', 'trailer', 'http2-settings'])

/** A request parsed off the socket: what the router reads of a request. */
export class FastRequest implements RouterRequest {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string>
  readonly httpVersionMajor = 1
  readonly httpVersionMinor = 1
  readonly socket: TLSSocket
  /** The whole body, already received: readBody takes it without listening for it. */
  readonly completeBody: Buffer
  /** True once the body was handed to a reader. */
  readableEnded = false
  #listeners: Map<string, Array<(arg?: unknown) => void>> | undefined
  #delivering = false

  constructor(method: string, url: string, headers: Record<string, string>, socket: TLSSocket, body: Buffer) {
    this.method = method
    this.url = url
    this.headers = headers
    this.socket = socket
    this.completeBody = body
  }

  /** Marks the body as read (readBody took `completeBody`). */
  bodyTaken(): void {
    this.readableEnded = true
  }

  // A readable stream's 'data' and 'end', for readers that listen rather than take
  // `completeBody`: the body is delivered once, on the next tick after a listener arrives.
  on(event: string, listener: (...args: never[]) => void): this {
    this.#listeners ??= new Map()
    const list = this.#listeners.get(event)
    if (list === undefined) this.#listeners.set(event, [listener as (arg?: unknown) => void])
    else list.push(listener as (arg?: unknown) => void)
    if ((event === 'data' || event === 'end') && !this.#delivering && !this.readableEnded) {
      this.#delivering = true
      process.nextTick(() => this.#deliver())
    }
    return this
  }

  off(event: string, listener: (...args: never[]) => void): this {
    const list = this.#listeners?.get(event)
    const at = list?.indexOf(listener as (arg?: unknown) => void) ?? -1
    if (list !== undefined && at >= 0) list.splice(at, 1)
    return this
  }

  resume(): this {
    return this
  }

  #emit(event: string, arg?: unknown): void {
    for (const l of [...(this.#listeners?.get(event) ?? [])]) l(arg)
  }

  #deliver(): void {
    if (this.readableEnded) return
    this.readableEnded = true
    if (this.completeBody.length > 0) this.#emit('data', this.completeBody)
    this.#emit('end')
  }
}

/** The response side: the status and headers are kept until `end`, then written with the body in one write. */
export class FastResponse implements RouterResponse {
  headersSent = false
  writableEnded = false
  closed = false
  readonly writableLength = 0
  readonly stream = undefined
  readonly #connection: FastConnection
  #status = 200
  #headers: Record<string, string | number> | undefined
  #parts: Array<string | Buffer> | undefined
  #listeners: Array<[string, () => void]> | undefined

  constructor(connection: FastConnection) {
    this.#connection = connection
  }

  writeHead(status: number, headers: Record<string, string | number>): this {
    if (this.headersSent) throw new Error('fast path: headers already sent')
    // As Node's writeHead: a header that would break the response apart is refused before anything is sent.
    for (const name in headers) {
      if (UNSAFE_HEADER_TEXT.test(name) || UNSAFE_HEADER_TEXT.test(String(headers[name]))) throw new TypeError(`invalid response header ${JSON.stringify(name)}`)
    }
    this.#status = status
    this.#headers = headers
    this.headersSent = true
    return this
  }

  /** Bodies here are whole answers: parts are kept and sent with `end`, with their total length. */
  write(chunk: string | Buffer): boolean {
    ;(this.#parts ??= []).push(chunk)
    return true
  }

  end(body?: string | Buffer): this {
    if (this.writableEnded) return this
    this.writableEnded = true
    if (this.#parts !== undefined) {
      if (body !== undefined) this.#parts.push(body)
      body = Buffer.concat(this.#parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))
      this.#parts = undefined
    }
    this.#connection.respond(this.#status, this.#headers, body ?? '')
    this.closed = true
    this.#emit('finish')
    this.#emit('close')
    return this
  }

  addTrailers(): void {
    // Only a chunked response carries trailers; fast-path answers never are (no listing is served here).
  }

  destroy(): this {
    if (!this.closed) {
      this.closed = true
      this.writableEnded = true
      this.#connection.abort()
      this.#emit('close')
    }
    return this
  }

  once(event: 'finish' | 'close' | 'drain', listener: () => void): this {
    ;(this.#listeners ??= []).push([event, listener])
    return this
  }

  #emit(event: string): void {
    const listeners = this.#listeners
    if (listeners === undefined) return
    this.#listeners = listeners.filter(([e]) => e !== event)
    for (const [e, l] of listeners) if (e === event) l()
  }
}

/**
 * The lowercase name of a header, or undefined when `raw` is not a token. The names clients
 * send on every request are matched as they are usually written, without a regex or a copy.
 */
function headerName(raw: string): string | undefined {
  switch (raw) {
    case 'Host':
    case 'host':
      return 'host'
    case 'Content-Length':
    case 'content-length':
      return 'content-length'
    case 'Content-Type':
    case 'content-type':
      return 'content-type'
    case 'User-Agent':
    case 'user-agent':
      return 'user-agent'
    case 'Accept-Encoding':
    case 'accept-encoding':
      return 'accept-encoding'
    case 'Accept':
    case 'accept':
      return 'accept'
  }
  return TOKEN.test(raw) ? raw.toLowerCase() : undefined
}

/** A header line's lowercase name and trimmed value, or undefined when it is malformed. */
function headerField(line: string): readonly [string, string] | undefined {
  const colon = line.indexOf(':')
  if (colon <= 0) return undefined
  const name = headerName(line.slice(0, colon))
  if (name === undefined) return undefined
  let start = colon + 1
  let end = line.length
  while (start < end && (line.charCodeAt(start) === SP || line.charCodeAt(start) === HT)) start++
  while (end > start && (line.charCodeAt(end - 1) === SP || line.charCodeAt(end - 1) === HT)) end--
  return [name, line.slice(start, end)]
}

/**
 * Parses `bytes` as exactly one complete HTTP/1.1 request for a FAST_ROUTES target, or returns
 * undefined when the request is anything else (then Node's parser gets it).
 */
export function parseFastRequest(bytes: Buffer, socket: TLSSocket): FastRequest | undefined {
  const headEnd = bytes.indexOf(HEAD_END)
  if (headEnd < 0 || headEnd > MAX_HEAD_BYTES) return undefined
  const head = bytes.toString('latin1', 0, headEnd)
  if (INVALID_HEAD.test(head)) return undefined
  const lineEnd = head.indexOf('\r\n')
  const requestLine = lineEnd < 0 ? head : head.slice(0, lineEnd)
  const sp1 = requestLine.indexOf(' ')
  const sp2 = requestLine.indexOf(' ', sp1 + 1)
  if (sp1 <= 0 || sp2 < 0 || requestLine.slice(sp2 + 1) !== 'HTTP/1.1') return undefined
  const method = requestLine.slice(0, sp1)
  const url = requestLine.slice(sp1 + 1, sp2)
  if (!isFastTarget(method, url)) return undefined
  // A plain object, as Node's request headers: a name it already has — a repeat, or one of
  // Object.prototype's such as __proto__ — sends the request to Node's parser.
  const headers: Record<string, string> = {}
  let count = 0
  let at = lineEnd
  while (at >= 0 && at < head.length) {
    const next = head.indexOf('\r\n', at + 2)
    const field = headerField(head.slice(at + 2, next < 0 ? head.length : next))
    at = next
    if (field === undefined || ++count > MAX_HEADERS) return undefined
    const [name, value] = field
    if (headers[name] !== undefined || NODE_ONLY_HEADERS.has(name)) return undefined
    headers[name] = value
  }
  if (headers['host'] === undefined) return undefined
  const connection = headers['connection']
  if (connection !== undefined && connection.toLowerCase() !== 'keep-alive') return undefined
  const declared = headers['content-length']
  let length = 0
  if (declared !== undefined) {
    if (!DIGITS.test(declared)) return undefined
    length = Number(declared)
  }
  const bodyStart = headEnd + HEAD_END.length
  // Exactly one request: a body still on its way, or a pipelined request after it, is Node's.
  if (length > MAX_BODY_BYTES || bytes.length !== bodyStart + length) return undefined
  return new FastRequest(method, url, headers, socket, bytes.subarray(bodyStart))
}

// Node's own response headers: a Date (recomputed once a second) and the keep-alive announcement.
let dateSecond = -1
let dateHeader = ''
function currentDate(): string {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateHeader = new Date(second * 1000).toUTCString()
  }
  return dateHeader
}

// What a connection may send ahead while a request of it is served: one more request of the
// largest size the fast path takes. Beyond it the socket is paused (as Node's server pauses a
// pipelining client), so a client can't make the server hold more than that.
const MAX_PENDING_BYTES = MAX_HEAD_BYTES + MAX_BODY_BYTES

/** One HTTP/1.1 connection on the fast path, until it is handed to Node or closed. */
export class FastConnection {
  readonly #socket: TLSSocket
  readonly #opts: FastPathOptions
  readonly #keepAlive: string
  /** A request is being served, or its answer waits for the client to read: arriving bytes wait in #pending. */
  #busy = false
  #pending: Buffer[] = []
  #pendingBytes = 0
  #done = false

  constructor(socket: TLSSocket, opts: FastPathOptions) {
    this.#socket = socket
    this.#opts = opts
    this.#keepAlive = `Connection: keep-alive\r\nKeep-Alive: timeout=${opts.keepAliveSeconds}\r\n\r\n`
    socket.on('data', this.#onData)
    socket.on('error', this.#onError)
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#done) return
    if (this.#busy) {
      this.#pending.push(chunk)
      this.#pendingBytes += chunk.length
      if (this.#pendingBytes > MAX_PENDING_BYTES) this.#socket.pause()
      return
    }
    this.#dispatch(chunk)
  }

  // An error on the socket (a reset) ends the connection; Node's HTTP server does the same.
  readonly #onError = (): void => {
    this.#socket.destroy()
  }

  // The client read the answer the socket could not take at once: serve what it sent meanwhile.
  readonly #onDrain = (): void => {
    this.#busy = false
    this.#next()
  }

  #dispatch(bytes: Buffer): void {
    const req = parseFastRequest(bytes, this.#socket)
    if (req === undefined) {
      this.#handOver(bytes)
      return
    }
    this.#busy = true
    this.#opts.serve(req, new FastResponse(this))
  }

  /** Serves the bytes that arrived while busy, and reads again. */
  #next(): void {
    if (this.#done) return
    const pending = this.#pending
    if (this.#socket.isPaused()) this.#socket.resume()
    if (pending.length === 0) return
    this.#pending = []
    this.#pendingBytes = 0
    this.#dispatch(pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending))
  }

  /** Writes a response in one write, then serves what arrived meanwhile. */
  respond(status: number, headers: Record<string, string | number> | undefined, body: string | Buffer): void {
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`
    let close = false
    let hasLength = false
    if (headers !== undefined) {
      for (const name in headers) {
        const value = String(headers[name])
        const lower = name.toLowerCase()
        // The Connection header is written once, below, with the keep-alive announcement or without.
        if (lower === 'connection') {
          close = value.toLowerCase() === 'close'
          continue
        }
        if (lower === 'content-length') hasLength = true
        head += name + ': ' + value + '\r\n'
      }
    }
    if (!hasLength) head += 'Content-Length: ' + Buffer.byteLength(body) + '\r\n'
    head += 'Date: ' + currentDate() + '\r\n'
    head += close ? 'Connection: close\r\n\r\n' : this.#keepAlive
    const socket = this.#socket
    let flushed = true
    if (!socket.destroyed && socket.writable) {
      flushed = typeof body === 'string' ? socket.write(head + body) : socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]))
    }
    if (close) {
      this.#busy = false
      this.#done = true
      socket.end()
      return
    }
    // A client that sends requests without reading the answers is not served further until it reads.
    if (!flushed && !socket.destroyed) {
      socket.once('drain', this.#onDrain)
      return
    }
    this.#busy = false
    this.#next()
  }

  /** The response was abandoned (destroyed): so is the connection, as Node's server does. */
  abort(): void {
    this.#busy = false
    this.#done = true
    this.#socket.destroy()
  }

  #handOver(bytes: Buffer): void {
    if (this.#done) return
    this.#done = true
    const socket = this.#socket
    socket.pause()
    socket.off('data', this.#onData)
    socket.off('error', this.#onError)
    socket.unshift(bytes)
    this.#opts.handOver(socket)
    socket.resume()
  }
}

/** Serves an HTTP/1.1 connection on the fast path (see the top of this file). */
export function serveHttp1(socket: TLSSocket, opts: FastPathOptions): FastConnection {
  return new FastConnection(socket, opts)
}
