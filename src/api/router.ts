import { constants as h2 } from 'node:http2'
import { isValidIdentity, isValidName } from '../auth/names.js'
import type { ServerState } from '../server/state.js'
import { describeError } from '../log/describe-error.js'
import { RequestAbortedError, readBody } from './body.js'
import type { BodySource } from './body.js'
import {
  ErrBodyTimeout,
  ErrBodyTooLarge,
  ErrInternal,
  ErrInvalidIdentity,
  ErrInvalidKeyName,
  ErrInvalidPath,
  ErrInvalidPattern,
  ErrInvalidPolicyName,
  ErrMethodNotAllowed,
  ErrNotAllowed,
  ErrNotFound,
  KesError,
} from './errors.js'
import { parsePath } from './paths.js'
import { checkListPattern } from './pattern.js'
import { isStream } from './reply.js'
import type { BodyReply, StreamReply } from './reply.js'
import type { SubscriberSink, Subscription } from '../log/event-hub.js'
import { routes as defaultRoutes } from './routes.js'
import type { Param, Route } from './routes.js'

/** The request side the router needs: HTTP/1.1 IncomingMessage and HTTP/2 compat requests both fit. */
export interface RouterRequest extends BodySource {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly readableEnded?: boolean
  readonly socket?: { readonly remoteAddress?: string | undefined } | null | undefined
}

/** The response side the router needs. */
export interface RouterResponse {
  readonly headersSent: boolean
  readonly writableEnded: boolean
  readonly writableLength?: number
  writeHead(status: number, headers: Record<string, string | number>): unknown
  write(chunk: string): unknown
  end(body?: string | Buffer): unknown
  flushHeaders?(): void
  once(event: 'finish' | 'close', listener: () => void): unknown
  readonly stream?: { close(code?: number): void; readonly writableLength: number; readonly endAfterHeaders: boolean } | undefined
}

/** What the router reports about every completed request (for audit and metrics). */
export interface CompletedRequest {
  readonly time: Date
  readonly method: string
  /** The decoded request path, or the raw target when it could not be parsed. */
  readonly path: string
  /** The route's path (`/v1/key/generate`), or `unknown`: a label of bounded cardinality. */
  readonly api: string
  readonly identity: string
  readonly ip: string
  readonly status: number
  readonly durationNs: bigint
  /** The client-visible error message, for failures. */
  readonly error: string | undefined
}

/** Observers of the request life cycle. */
export interface RequestHooks {
  /** A request arrived. */
  started?(req: RouterRequest): void
  /** Its status is decided and written: exactly once per request (audit, metrics). */
  completed?(event: CompletedRequest): void
  /** Its response is over (for a log stream: when the stream ends). */
  finished?(req: RouterRequest): void
}

/** Options of createRouter. */
export interface RouterOptions {
  /** The identity of the connection a request came on (computed once per TLS connection). */
  identityOf(req: RouterRequest): string | undefined
  hooks?: RequestHooks
  routes?: readonly Route[]
}

const MAX_ROUTE_DEPTH = 4
// The body limit of every API (docs/api.md, "Requests and responses").
const MAX_BODY_BYTES = 1 << 20
// An unread HTTP/1.1 body up to this size is drained by Node; a larger one closes the connection.
const DRAINABLE_BODY_BYTES = 64 * 1024
const UNKNOWN_API = 'unknown'

/**
 * Builds the request handler. It does the shared work of every API in the
 * order the contract fixes (docs/api.md, "Requests and responses"): path known (404) → method
 * (405) → path shape and names (400) → authorization (403) → the handler,
 * which reads the body (400/413), looks things up (404) and works. It is the
 * one place that turns a thrown value into a response. `getState` is read
 * once per request, so a config reload never changes a request midway.
 */
export function createRouter(
  getState: () => ServerState,
  opts: RouterOptions,
): (req: RouterRequest, res: RouterResponse) => void {
  const table = new Map<string, Route>()
  for (const r of opts.routes ?? defaultRoutes) table.set(r.path, r)
  const allowHeader = new Map<Route, string>()
  for (const r of table.values()) allowHeader.set(r, r.methods.join(', '))
  const hooks = opts.hooks ?? {}

  async function serve(req: RouterRequest, res: RouterResponse, identity: string, gone: ClientGone): Promise<void> {
    const time = new Date()
    const start = process.hrtime.bigint()
    const state = getState()
    let path = req.url ?? ''
    let api = UNKNOWN_API
    let status = 500
    let error: string | undefined
    let stream: Subscription | undefined
    try {
      const { segments, malformed } = parsePath(path)
      if (!malformed) path = '/' + segments.join('/')
      const found = findRoute(table, segments)
      if (found === undefined) throw ErrNotFound
      const { route, rest } = found
      api = route.path
      if (!route.methods.includes(req.method ?? '')) {
        throw new MethodNotAllowed(allowHeader.get(route) ?? '')
      }
      if (malformed) throw ErrInvalidPath
      const args = parseArgs(route.params, rest)
      // A route called without its parameter is checked as if it ended in '/',
      // so the usual `/v1/key/list/*` permits `/v1/key/list` (docs/api.md, "Policy pattern rules").
      const authPath = rest.length === 0 && route.params.length > 0 ? path + '/' : path
      if (route.auth === 'policy' && !state.access.isAdmin(identity)) {
        if (!(await state.access.allows(identity, authPath))) throw ErrNotAllowed
      }
      // APIs without a body ignore one, but read it (within the 1 MiB limit that
      // holds for every request): an HTTP/2 client still sending when the
      // answer comes may take the stream's end for an error.
      if (route.maxBodyBytes === 0 && mayHaveBody(req, res)) await readBody(req, MAX_BODY_BYTES)
      const reply = await route.handler(
        { identity, args, readBody: () => readBody(req, route.maxBodyBytes) },
        state,
      )
      status = reply.status
      if (isStream(reply)) stream = openStream(res, reply, gone)
      else send(req, res, reply)
    } catch (err) {
      const e = toKesError(err, state)
      status = e.status
      error = e.message
      sendError(req, res, e, err)
    }
    hooks.completed?.({
      time,
      method: req.method ?? '',
      path,
      api,
      identity,
      ip: req.socket?.remoteAddress ?? '',
      status,
      durationNs: process.hrtime.bigint() - start,
      error,
    })
    if (stream !== undefined) await stream.closed
  }

  return (req, res) => {
    hooks.started?.(req)
    // Watch for the client going away from the start: a log stream whose
    // client left while it was being authorized must not stay subscribed.
    const gone = new ClientGone(res)
    const identity = opts.identityOf(req) ?? ''
    void serve(req, res, identity, gone).finally(() => hooks.finished?.(req))
  }
}

/**
 * Sends the headers of a log stream at once (clients wait for them before
 * they read) and subscribes the response to its source.
 */
function openStream(res: RouterResponse, reply: StreamReply, gone: ClientGone): Subscription {
  res.writeHead(200, { 'content-type': reply.contentType, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' })
  res.flushHeaders?.()
  const sink: SubscriberSink = {
    write: (chunk) => res.write(chunk),
    end: () => res.end(),
    get writableLength() {
      return res.stream?.writableLength ?? res.writableLength ?? 0
    },
  }
  const sub = reply.attach(sink)
  gone.then(() => sub.cancel())
  return sub
}

/** Tells when a response was closed (sent, or the client went away), even if that already happened. */
class ClientGone {
  #closed = false
  readonly #listeners: Array<() => void> = []
  constructor(res: RouterResponse) {
    res.once('close', () => {
      this.#closed = true
      for (const l of this.#listeners.splice(0)) l()
    })
  }
  /** Runs `listener` once the response is closed (at once if it is). */
  then(listener: () => void): void {
    if (this.#closed) listener()
    else this.#listeners.push(listener)
  }
}

class MethodNotAllowed extends KesError {
  readonly allow: string
  constructor(allow: string) {
    super(ErrMethodNotAllowed.status, ErrMethodNotAllowed.message)
    this.allow = allow
  }
}

function findRoute(table: ReadonlyMap<string, Route>, segments: readonly string[]): { route: Route; rest: readonly string[] } | undefined {
  // Longest base first: `/v1/log/audit/trace` before a shorter `/v1/log/audit`.
  for (let depth = Math.min(segments.length, MAX_ROUTE_DEPTH); depth >= 1; depth--) {
    const route = table.get('/' + segments.slice(0, depth).join('/'))
    if (route === undefined) continue
    const rest = segments.slice(depth)
    if (route.params.length === 0 && rest.length > 0) return undefined
    return { route, rest }
  }
  return undefined
}

/**
 * Validates the path parameters. The last parameter takes the whole rest of
 * the path, so `/v1/key/create/a/b` is the invalid key name 'a/b' (400), not
 * an unknown path.
 */
function parseArgs(params: readonly Param[], rest: readonly string[]): string[] {
  const args: string[] = []
  const last = params.length - 1
  for (let i = 0; i <= last; i++) {
    const value = i === last ? rest.slice(i).join('/') : (rest[i] ?? '')
    checkParam(params[i] as Param, value)
    args.push(value)
  }
  return args
}

function checkParam(kind: Param, value: string): void {
  switch (kind) {
    case 'key':
      if (!isValidName(value)) throw ErrInvalidKeyName
      return
    case 'policy':
      if (!isValidName(value)) throw ErrInvalidPolicyName
      return
    case 'identity':
      if (!isValidIdentity(value)) throw ErrInvalidIdentity
      return
    case 'pattern':
      if (value.includes('/')) throw ErrInvalidPattern
      checkListPattern(value)
      return
  }
}

function toKesError(err: unknown, state: ServerState): KesError {
  if (err instanceof KesError) return err
  if (err instanceof RequestAbortedError) return new KesError(400, 'request aborted')
  state.errorLog.error(`http: unexpected error: ${describeError(err)}`)
  return ErrInternal
}

const NOSNIFF = 'nosniff'

/** False when the request certainly has no body (so reading it would only cost a turn of the event loop). */
function mayHaveBody(req: RouterRequest, res: RouterResponse): boolean {
  if (res.stream !== undefined) return !res.stream.endAfterHeaders
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

/**
 * A body the handler did not read (an API without one, or an early error)
 * must neither be parsed as the next HTTP/1.1 request nor keep an HTTP/2
 * stream half open: drain a small one, close after a large one, and end the
 * HTTP/2 stream with NO_ERROR once the answer is out (RFC 9113 §8.1).
 */
function settleUnreadBody(req: RouterRequest, res: RouterResponse, headers: Record<string, string | number>, force: boolean): void {
  if (req.readableEnded === true) return
  const stream = res.stream
  if (stream !== undefined) {
    if (stream.endAfterHeaders && !force) return
    res.once('finish', () => stream.close(h2.NGHTTP2_NO_ERROR))
    return
  }
  const chunked = req.headers['transfer-encoding'] !== undefined
  if (force || chunked || Number(req.headers['content-length'] ?? 0) > DRAINABLE_BODY_BYTES) headers['connection'] = 'close'
}

function send(req: RouterRequest, res: RouterResponse, reply: BodyReply): void {
  const headers: Record<string, string | number> = { 'x-content-type-options': NOSNIFF }
  if (reply.contentType !== undefined) headers['content-type'] = reply.contentType
  const body = reply.body ?? ''
  headers['content-length'] = Buffer.byteLength(body)
  settleUnreadBody(req, res, headers, false)
  res.writeHead(reply.status, headers)
  res.end(body)
}

function sendError(req: RouterRequest, res: RouterResponse, e: KesError, cause: unknown): void {
  if (res.headersSent) {
    res.end()
    return
  }
  const body = JSON.stringify({ message: e.message })
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'x-content-type-options': NOSNIFF,
    'content-length': Buffer.byteLength(body),
  }
  if (e instanceof MethodNotAllowed) headers['allow'] = e.allow
  // After a refused or stalled body the rest of it is never read.
  settleUnreadBody(req, res, headers, cause === ErrBodyTooLarge || cause === ErrBodyTimeout)
  res.writeHead(e.status, headers)
  res.end(body)
}
