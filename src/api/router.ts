import { constants as h2 } from 'node:http2'
import { isValidIdentity, isValidName } from '../auth/names.js'
import type { ServerState } from '../server/state.js'
import { describeError } from '../log/describe-error.js'
import { RequestAbortedError, discardBody, readBody } from './body.js'
import type { BodyCharge, BodySource } from './body.js'
import {
  ErrBodyBudget,
  ErrBodyTimeout,
  ErrBodyTooLarge,
  ErrRequestTimeout,
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
import { Deadlines } from './deadlines.js'
import type { Deadline } from './deadlines.js'
import { parsePath } from './paths.js'
import { checkListPattern } from './pattern.js'
import { isBodyParts, isStream } from './reply.js'
import { isOpen, timeoutOf } from './route-settings.js'
import type { BodyReply, Reply, StreamReply } from './reply.js'
import type { SubscriberSink, Subscription } from '../log/event-hub.js'
import { routes as defaultRoutes } from './routes.js'
import type { ApiRequest, Param, Route } from './routes.js'

/** The request side the router needs: HTTP/1.1 IncomingMessage and HTTP/2 compat requests both fit. */
export interface RouterRequest extends BodySource {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly readableEnded?: boolean
  /** 1 for HTTP/1.x (and then the minor version), 2 for HTTP/2. */
  readonly httpVersionMajor?: number
  readonly httpVersionMinor?: number
  readonly socket?: { readonly remoteAddress?: string | undefined } | null | undefined
}

/** The response side the router needs. */
export interface RouterResponse {
  readonly headersSent: boolean
  readonly writableEnded: boolean
  readonly writableLength?: number
  writeHead(status: number, headers: Record<string, string | number>): unknown
  /** False when the chunk was buffered beyond the high-water mark ('drain' follows). */
  write(chunk: string | Buffer): boolean
  end(body?: string | Buffer): unknown
  addTrailers(trailers: Record<string, string>): void
  destroy(): unknown
  flushHeaders?(): void
  once(event: 'finish' | 'close' | 'drain', listener: () => void): unknown
  /** HTTP/1.1: true once the response emitted 'close'. */
  readonly closed?: boolean
  readonly stream?:
    | {
        close(code?: number): void
        readonly writableLength: number
        readonly endAfterHeaders: boolean
        readonly closed?: boolean
        readonly destroyed?: boolean
      }
    | undefined
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

/** The body bytes one request holds in memory, counted against the connection's and the server's caps. */
export interface BodyAccount {
  readonly charge: BodyCharge
  /** Gives every charged byte back (the request is answered); later charges are refused. */
  release(): void
}

/** Options of createRouter. */
export interface RouterOptions {
  /** The identity of the connection a request came on (computed once per TLS connection). */
  identityOf(req: RouterRequest): string | undefined
  /** Opens the body account of a request (default: bodies are bounded only by their route's limit). */
  bodyAccount?(req: RouterRequest): BodyAccount
  hooks?: RequestHooks
  routes?: readonly Route[]
}

const MAX_ROUTE_DEPTH = 4
// The body limit of every API (docs/api.md, "Requests and responses").
const MAX_BODY_BYTES = 1 << 20
// How long a log stream's request may take to send a body it should not have.
const BODY_TIMEOUT_MS = 30_000
// An unread HTTP/1.1 body up to this size is drained by Node; a larger one closes the connection.
const DRAINABLE_BODY_BYTES = 64 * 1024
const UNKNOWN_API = 'unknown'
// Served even while log.audit_fail_closed refuses everything else: they show state, never keys.
const AUDIT_EXEMPT = new Set(['/version', '/v1/ready', '/v1/status', '/v1/metrics'])
const ErrAuditUnavailable = new KesError(503, 'audit log cannot be written')
// The charge of a body read after its request was answered (it finishes unobserved): nothing fits.
const REFUSE_BODY_BYTES: BodyCharge = () => false

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
  const table: readonly Route[] = opts.routes ?? defaultRoutes
  const byPath = new Map<string, Route>()
  for (const r of table) byPath.set(r.path, r)
  const allowHeader = new Map<Route, string>()
  for (const r of byPath.values()) allowHeader.set(r, r.methods.join(', '))
  const tree = routeTree(byPath)
  const hooks = opts.hooks ?? {}
  // Every request's deadline, on one timer.
  const deadlines = new Deadlines()

  // Request targets already looked up (see lookUp).
  const targets = new Map<string, Target>()

  /**
   * What a request target names. Clients call the same few targets over and over (one per
   * key), so a target whose route and arguments are valid is remembered and costs one Map
   * lookup next time; every other target is looked up again (its error is thrown later, by
   * the same checks, in the order the contract fixes).
   */
  function lookUp(url: string): Target {
    const known = targets.get(url)
    if (known !== undefined) return known
    const target = targetOf(url, byPath, tree)
    if (target.args !== undefined && url.length <= MAX_REMEMBERED_TARGET) {
      // A client sending ever new targets only keeps this map changing, never growing.
      if (targets.size >= MAX_REMEMBERED_TARGETS) targets.clear()
      targets.set(url, target)
    }
    return target
  }

  /**
   * One request from its arrival to its answer: what the audit event and the metrics record
   * (time, path, API, status, error), its deadline and how it is answered. The handler's
   * promise settles it through `replied` or `failed`, and the deadline through `expire`,
   * whichever comes first; no promise wraps another on the way (each cost a turn per request).
   */
  class Exchange {
    readonly req: RouterRequest
    readonly res: RouterResponse
    readonly identity: string
    /** Read once per request, so a config reload never changes a request midway. */
    readonly state: ServerState
    readonly time = new Date()
    readonly start = process.hrtime.bigint()
    path: string
    api = UNKNOWN_API
    status = 500
    error: string | undefined
    call: HandlerCall | undefined
    deadline: Deadline | undefined
    /** Answered (or answering): a later outcome of the handler is dropped. */
    settled = false

    constructor(req: RouterRequest, res: RouterResponse, identity: string) {
      this.req = req
      this.res = res
      this.identity = identity
      this.state = getState()
      this.path = req.url ?? ''
    }

    /** The checks before the handler, in the contract's order; then the handler's work. Throws the first check that fails. */
    begin(): Promise<Reply> {
      const target = lookUp(this.path)
      this.path = target.path
      const route = target.route
      if (route === undefined) throw ErrNotFound
      this.api = route.path
      if (!route.methods.includes(this.req.method ?? '')) {
        throw new MethodNotAllowed(allowHeader.get(route) ?? '')
      }
      if (target.malformed) throw ErrInvalidPath
      // Remembered targets carry their checked arguments; for the others this throws their 400.
      const args = target.args ?? parseArgs(route.params, target.rest)
      const state = this.state
      const timeoutMs = timeoutOf(route, state.api)
      const call = new HandlerCall(this.req, this.res, this.identity, route, args, target.authPath, timeoutMs, state, getState, table, opts.bodyAccount)
      this.call = call
      const work = call.run()
      // A request still working at its deadline is answered then (408 while its body is
      // still arriving, else 503); what it was doing finishes unobserved.
      if (timeoutMs > 0) this.deadline = deadlines.add(timeoutMs, () => this.expire())
      return work
    }

    expire(): void {
      this.deadline = undefined
      if (this.call !== undefined) this.failed(this.call.timeoutError())
    }

    replied(reply: Reply): void {
      if (this.settled) {
        // Late: a stream reply nobody will attach gives back its reader's place.
        if (isStream(reply)) reply.release?.()
        return
      }
      this.#settle()
      this.status = reply.status
      try {
        if (isStream(reply)) {
          let stream: Subscription
          try {
            stream = openStream(this.res, reply)
          } catch (err) {
            reply.release?.()
            throw err
          }
          this.#completed()
          // A log stream's request is over when its stream ends.
          const over = (): void => this.#finished()
          stream.closed.then(over, over)
          return
        }
        if (reply.statusTrailers === true || isBodyParts(reply.body)) {
          void this.#sendInParts(reply)
          return
        }
        send(this.req, this.res, reply, reply.body ?? '')
      } catch (err) {
        this.#answerError(err)
      }
      this.#end()
    }

    failed(err: unknown): void {
      if (this.settled) return
      this.#settle()
      this.#answerError(err)
      this.#end()
    }

    async #sendInParts(reply: BodyReply): Promise<void> {
      try {
        const failure = await sendInParts(this.req, this.res, reply, this.state)
        if (failure !== undefined) {
          this.status = failure.status
          this.error = failure.message
        }
      } catch (err) {
        this.#answerError(err)
      }
      this.#end()
    }

    #settle(): void {
      this.settled = true
      this.deadline?.cancel()
      this.deadline = undefined
    }

    #answerError(err: unknown): void {
      const e = toKesError(err, this.state)
      this.status = e.status
      this.error = e.message
      sendError(this.req, this.res, e, err)
    }

    /** The status is decided and written: audit and metrics, exactly once. */
    #completed(): void {
      this.call?.releaseBody()
      try {
        hooks.completed?.({
          time: this.time,
          method: this.req.method ?? '',
          path: this.path,
          api: this.api,
          identity: this.identity,
          ip: this.req.socket?.remoteAddress ?? '',
          status: this.status,
          durationNs: process.hrtime.bigint() - this.start,
          error: this.error,
        })
      } catch (err) {
        this.#finished()
        throw err
      }
    }

    #finished(): void {
      hooks.finished?.(this.req)
    }

    /** Answered with nothing left to send: completed, then finished. */
    #end(): void {
      this.#completed()
      this.#finished()
    }
  }

  function serve(req: RouterRequest, res: RouterResponse, identity: string): void {
    const exchange = new Exchange(req, res, identity)
    let work: Promise<Reply>
    try {
      work = exchange.begin()
    } catch (err) {
      // Refused before the handler ran (404, 405, 400): answered at once.
      exchange.failed(err)
      return
    }
    work.then(
      (reply) => exchange.replied(reply),
      (err: unknown) => exchange.failed(err),
    )
  }

  return (req, res) => {
    hooks.started?.(req)
    serve(req, res, opts.identityOf(req) ?? '')
  }
}

// Targets longer than this are looked up every time (key names are short; this bounds memory).
const MAX_REMEMBERED_TARGET = 256
const MAX_REMEMBERED_TARGETS = 1024

/** What a request target names: its decoded path, its route (if any) and its arguments. */
interface Target {
  /** The decoded path, or the raw target when it is malformed. */
  readonly path: string
  readonly route: Route | undefined
  /** An encoded slash, `//`, `.` or `..`, or bad percent-encoding: 400 once the method is known. */
  readonly malformed: boolean
  /** The path segments after the route's own. */
  readonly rest: readonly string[]
  /** The checked arguments; undefined when there is no route, the path is malformed or an argument is invalid. */
  readonly args: readonly string[] | undefined
  /** The path policies are checked against. */
  readonly authPath: string
}

function targetOf(url: string, byPath: ReadonlyMap<string, Route>, tree: RouteNode): Target {
  const { segments, malformed } = parsePath(url)
  const path = malformed ? url : '/' + segments.join('/')
  // A malformed path (an encoded slash in a segment) is looked up by its joined text, as
  // it always was, so it gets the same 404/405/400 decisions.
  const found = malformed ? findRouteByText(byPath, segments) : findRoute(tree, segments)
  if (found === undefined) return { path, route: undefined, malformed, rest: NO_SEGMENTS, args: undefined, authPath: path }
  const { route, rest } = found
  let args: readonly string[] | undefined
  if (!malformed) {
    try {
      args = Object.freeze(parseArgs(route.params, rest))
    } catch (err) {
      if (!(err instanceof KesError)) throw err
    }
  }
  // A route called without its parameter is checked as if it ended in '/',
  // so the usual `/v1/key/list/*` permits `/v1/key/list` (docs/api.md, "Policy pattern rules").
  const authPath = rest.length === 0 && route.params.length > 0 ? path + '/' : path
  return { path, route, malformed, rest, args, authPath }
}

/**
 * One call of a route's handler: the request as the handler sees it (ApiRequest), and
 * the work done before the handler runs: authorization, the audit fail-closed check and
 * an unwanted body. Its methods replace per-request closures on the hot path.
 */
class HandlerCall implements ApiRequest {
  readonly req: RouterRequest
  readonly res: RouterResponse
  readonly identity: string
  readonly route: Route
  readonly args: readonly string[]
  /** The path policies are checked against. */
  readonly authPath: string
  /** The route's deadline in ms (0: none). */
  readonly timeoutMs: number
  /** The state in force when the request came (a reload never changes a request midway). */
  readonly state: ServerState
  readonly getState: () => ServerState
  readonly routes: readonly Route[]
  /** Opens a request's body account; undefined: bodies are bounded only by their route's limit. */
  readonly #openAccount: ((req: RouterRequest) => BodyAccount) | undefined
  /** Opened at the first body read: most requests on the hot path have nothing to account for. */
  #account: BodyAccount | undefined
  /** The request is answered: its account is given back, and a late read is refused (503). */
  #released = false
  /** True while the body is being read: a deadline then answers 408, not 503. */
  #readingBody = false

  constructor(
    req: RouterRequest,
    res: RouterResponse,
    identity: string,
    route: Route,
    args: readonly string[],
    authPath: string,
    timeoutMs: number,
    state: ServerState,
    getState: () => ServerState,
    routes: readonly Route[],
    openAccount: ((req: RouterRequest) => BodyAccount) | undefined,
  ) {
    this.req = req
    this.res = res
    this.identity = identity
    this.route = route
    this.args = args
    this.authPath = authPath
    this.timeoutMs = timeoutMs
    this.state = state
    this.getState = getState
    this.routes = routes
    this.#openAccount = openAccount
  }

  get accept(): string | undefined {
    return headerText(this.req.headers['accept'])
  }

  /** The error a deadline answers with. */
  timeoutError(): KesError {
    return this.#readingBody ? ErrBodyTimeout : ErrRequestTimeout
  }

  /** With a deadline, that deadline also ends a body still arriving (408): no timer of the body's own. */
  #bodyMs(): number {
    return this.timeoutMs > 0 ? 0 : BODY_TIMEOUT_MS
  }

  readBody(): Promise<Buffer> {
    this.#readingBody = true
    return readBody(this.req, this.route.maxBodyBytes, this.#bodyMs(), this.#charge(), this)
  }

  /** The charge of this request's body bytes against the server's caps (undefined: no caps). */
  #charge(): BodyCharge | undefined {
    if (this.#openAccount === undefined) return undefined
    if (this.#released) return REFUSE_BODY_BYTES
    this.#account ??= this.#openAccount(this.req)
    return this.#account.charge
  }

  /** The request is answered: every body byte it holds is given back. */
  releaseBody(): void {
    this.#released = true
    this.#account?.release()
  }

  /** The body read is over (read, refused or failed). */
  bodyDone(): void {
    this.#readingBody = false
  }

  /**
   * Asked later (log streams): by the state in force then, not this request's. Handed out as a
   * function (the log streams pass it on), made when asked for, not for every request.
   */
  get stillAllowed(): () => Promise<boolean> {
    return async () => {
      const s = this.getState()
      return isOpen(this.route, s.api) || s.access.isAdmin(this.identity) || (await s.access.allows(this.identity, this.authPath))
    }
  }

  /** Authorizes the call, then runs the handler; settles as the handler does. */
  run(): Promise<Reply> {
    const { state, route, identity, authPath, req } = this
    // Open routes, the admin and cached grants are decided without waiting a turn.
    const known = isOpen(route, state.api) || state.access.isAdmin(identity) || state.access.allowsCached(identity, authPath)
    // The usual call (allowed at once, the audit log writable, no body to throw away) hands
    // back the handler's own promise: no async wrapper, so no extra turns per request.
    if (known === true && !state.auditLog.refusing && !(route.maxBodyBytes === 0 && mayHaveBody(req, this.res))) {
      try {
        return route.handler(this, state)
      } catch (err) {
        return Promise.reject(err)
      }
    }
    return this.#authorizeAndRun(known)
  }

  async #authorizeAndRun(known: boolean | undefined): Promise<Reply> {
    const { state, route, identity, authPath, req } = this
    if (known === false || (known === undefined && !(await state.access.allows(identity, authPath)))) throw ErrNotAllowed
    // log.audit_fail_closed: nothing is done that can't be audited; the
    // health probes still answer, so operators can see why.
    if (state.auditLog.refusing && !AUDIT_EXEMPT.has(route.path)) throw ErrAuditUnavailable
    // APIs without a body ignore one, but read it to its end (within the 1 MiB
    // limit that holds for every request) without keeping it: an HTTP/2
    // client still sending when the answer comes may take the stream's end
    // for an error, and kept bytes would be memory anyone could fill.
    if (route.maxBodyBytes === 0 && mayHaveBody(req, this.res)) {
      this.#readingBody = true
      try {
        await discardBody(req, MAX_BODY_BYTES, this.#bodyMs())
      } finally {
        this.#readingBody = false
      }
    }
    return route.handler(this, state)
  }
}

/**
 * Sends the headers of a log stream at once (clients wait for them before
 * they read) and subscribes the response to its source.
 */
function openStream(res: RouterResponse, reply: StreamReply): Subscription {
  // Before the headers go out: a client that left while the request was authorized is seen as gone.
  const gone = new ClientGone(res)
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

/**
 * Tells when a response was closed (sent, or the client went away), even if that already
 * happened. Made only for replies that outlive their first write (log streams, bodies sent in
 * parts), not for every request: whether the response closed before is read from its state
 * (HTTP/1.1 `closed`, the HTTP/2 stream's `closed`/`destroyed`), which is set when its 'close'
 * is emitted or earlier.
 */
class ClientGone {
  #closed: boolean
  /** Whether the response is closed already. */
  get closed(): boolean {
    return this.#closed
  }
  readonly #listeners: Array<() => void> = []
  constructor(res: RouterResponse) {
    this.#closed = isClosed(res)
    if (!this.#closed) {
      res.once('close', () => {
        this.#closed = true
        for (const l of this.#listeners.splice(0)) l()
      })
    }
  }
  /** Runs `listener` once the response is closed (at once if it is). */
  then(listener: () => void): void {
    if (this.#closed) listener()
    else this.#listeners.push(listener)
  }
}

function isClosed(res: RouterResponse): boolean {
  const stream = res.stream
  if (stream !== undefined) return stream.closed === true || stream.destroyed === true
  return res.closed === true
}

class MethodNotAllowed extends KesError {
  readonly allow: string
  constructor(allow: string) {
    super(ErrMethodNotAllowed.status, ErrMethodNotAllowed.message)
    this.allow = allow
  }
}

/** The route paths as a tree of segments, built once: a lookup is one Map.get per segment. */
interface RouteNode {
  route: Route | undefined
  readonly children: Map<string, RouteNode>
}

function routeTree(byPath: ReadonlyMap<string, Route>): RouteNode {
  const root: RouteNode = { route: undefined, children: new Map() }
  for (const [p, route] of byPath) {
    const segments = p.slice(1).split('/')
    if (segments.length > MAX_ROUTE_DEPTH) throw new RangeError(`route ${p} is deeper than ${MAX_ROUTE_DEPTH} segments`)
    let node = root
    for (const seg of segments) {
      let child = node.children.get(seg)
      if (child === undefined) {
        child = { route: undefined, children: new Map() }
        node.children.set(seg, child)
      }
      node = child
    }
    node.route = route
  }
  return root
}

function findRoute(tree: RouteNode, segments: readonly string[]): { route: Route; rest: readonly string[] } | undefined {
  // Longest base wins: `/v1/log/audit/trace` before a shorter `/v1/log/audit`.
  let node = tree
  let route: Route | undefined
  let depth = 0
  const max = Math.min(segments.length, MAX_ROUTE_DEPTH)
  for (let i = 0; i < max; i++) {
    const child = node.children.get(segments[i] as string)
    if (child === undefined) break
    node = child
    if (child.route !== undefined) {
      route = child.route
      depth = i + 1
    }
  }
  if (route === undefined) return undefined
  const rest = depth === segments.length ? NO_SEGMENTS : segments.slice(depth)
  if (route.params.length === 0 && rest.length > 0) return undefined
  return { route, rest }
}

const NO_SEGMENTS: readonly string[] = []

/** The lookup by joined path text: for malformed paths, whose segments may hold '/'. */
function findRouteByText(table: ReadonlyMap<string, Route>, segments: readonly string[]): { route: Route; rest: readonly string[] } | undefined {
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

/** A request header as one string (repeated ones joined, as HTTP allows for lists). */
function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

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

function send(req: RouterRequest, res: RouterResponse, reply: BodyReply, body: string | Buffer): void {
  const length = Buffer.byteLength(body)
  // Built whole, in the order they are sent: an object of one shape is cheaper than one grown field by field.
  const headers: Record<string, string | number> =
    reply.contentType === undefined
      ? { 'x-content-type-options': NOSNIFF, 'content-length': length }
      : { 'x-content-type-options': NOSNIFF, 'content-type': reply.contentType, 'content-length': length }
  settleUnreadBody(req, res, headers, false)
  res.writeHead(reply.status, headers)
  res.end(body)
}

/**
 * Sends a reply chunked: a listing with its status trailers, or a body
 * produced part by part. Parts are written as the client takes them. A
 * failure while producing the body, after the headers went out, goes into
 * the trailers (`Status: <status>`, `Error: {"message":...}`); without
 * trailers the response is aborted instead. Resolves to that failure.
 */
async function sendInParts(
  req: RouterRequest,
  res: RouterResponse,
  reply: BodyReply,
  state: ServerState,
): Promise<KesError | undefined> {
  const gone = new ClientGone(res)
  const headers: Record<string, string | number> = { 'x-content-type-options': NOSNIFF }
  if (reply.contentType !== undefined) headers['content-type'] = reply.contentType
  const trailers = reply.statusTrailers === true && canSendTrailers(req)
  if (trailers) headers['trailer'] = 'Status, Error'
  settleUnreadBody(req, res, headers, false)
  res.writeHead(reply.status, headers)
  let failure: KesError | undefined
  try {
    const body = reply.body
    if (isBodyParts(body)) {
      for await (const part of body) {
        if (gone.closed) break
        if (!res.write(part)) await drained(res, gone)
      }
    } else if (body !== undefined && body.length > 0) {
      res.write(body)
    }
  } catch (err) {
    failure = toKesError(err, state)
  }
  if (trailers) {
    res.addTrailers(statusTrailers(reply.status, failure))
  } else if (failure !== undefined) {
    res.destroy()
    return failure
  }
  res.end()
  return failure
}

/**
 * Whether the response can carry trailers: HTTP/2, or HTTP/1.1 with chunked
 * encoding. HTTP/1.0 has neither (and Node refuses to declare trailers there).
 */
function canSendTrailers(req: RouterRequest): boolean {
  const major = req.httpVersionMajor ?? 1
  return major >= 2 || (major === 1 && (req.httpVersionMinor ?? 1) >= 1)
}

/** The listing trailers: `Status: 200` and an empty `Error`, or the failure's status and `{"message":...}`. */
function statusTrailers(status: number, failure: KesError | undefined): Record<string, string> {
  if (failure === undefined) return { Status: String(status), Error: '' }
  // Header values must be printable ASCII; JSON escapes keep the message intact.
  const message = JSON.stringify({ message: failure.message }).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
  return { Status: String(failure.status), Error: message }
}

/** Resolves once a response takes more data, or is closed. */
function drained(res: RouterResponse, gone: ClientGone): Promise<void> {
  return new Promise((resolve) => {
    res.once('drain', resolve)
    gone.then(resolve)
  })
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
  settleUnreadBody(req, res, headers, cause === ErrBodyTooLarge || cause === ErrBodyTimeout || cause === ErrBodyBudget)
  res.writeHead(e.status, headers)
  res.end(body)
}
