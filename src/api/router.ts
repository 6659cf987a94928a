import { constants as h2 } from 'node:http2'
import { isValidIdentity, isValidName } from '../auth/names.js'
import type { ServerState } from '../server/state.js'
import { describe } from '../server/key-ring.js'
import { RequestAbortedError, readBody } from './body.js'
import type { BodySource } from './body.js'
import {
  ErrBodyTooLarge,
  ErrInternal,
  ErrInvalidIdentity,
  ErrInvalidKeyName,
  ErrInvalidPattern,
  ErrInvalidPolicyName,
  ErrMethodNotAllowed,
  ErrNotAllowed,
  ErrNotFound,
  KesError,
} from './errors.js'
import { parsePath } from './paths.js'
import { checkListPattern } from './pattern.js'
import type { Reply } from './reply.js'
import { routes as defaultRoutes } from './routes.js'
import type { Param, Route } from './routes.js'

/** The request side the router needs: HTTP/1.1 IncomingMessage and HTTP/2 compat requests both fit. */
export interface RouterRequest extends BodySource {
  readonly method?: string | undefined
  readonly url?: string | undefined
}

/** The response side the router needs. */
export interface RouterResponse {
  readonly headersSent: boolean
  writeHead(status: number, headers: Record<string, string | number>): unknown
  end(body?: string | Buffer): unknown
  once(event: 'finish', listener: () => void): unknown
  readonly stream?: { close(code?: number): void } | undefined
}

/** What the router reports about every completed request (for audit and metrics). */
export interface CompletedRequest {
  readonly method: string
  /** The decoded request path, or the raw target when it could not be parsed. */
  readonly path: string
  readonly identity: string
  readonly status: number
  readonly durationNs: bigint
  /** The client-visible error message, for failures. */
  readonly error: string | undefined
}

/** Options of createRouter. */
export interface RouterOptions {
  /** The identity of the connection a request came on (computed once per TLS connection). */
  identityOf(req: RouterRequest): string | undefined
  /** Called once for every request, after the response has been written. */
  onComplete?: (event: CompletedRequest) => void
  routes?: readonly Route[]
}

const MAX_ROUTE_DEPTH = 4

/**
 * Builds the request handler. It does the shared work of every API in the
 * order the contract fixes (API-CONTRACT.md §2): path known (404) → method
 * (405) → path shape and names (400) → authorization (403) → the handler,
 * which reads the body (400/413), looks things up (404) and works. It is the
 * one place that turns a thrown value into a response.
 */
export function createRouter(state: ServerState, opts: RouterOptions): (req: RouterRequest, res: RouterResponse) => void {
  const table = new Map<string, Route>()
  for (const r of opts.routes ?? defaultRoutes) table.set(r.path, r)
  const allowHeader = new Map<Route, string>()
  for (const r of table.values()) allowHeader.set(r, r.methods.join(', '))

  async function serve(req: RouterRequest, res: RouterResponse, identity: string, start: bigint): Promise<void> {
    let path = req.url ?? ''
    let status = 500
    let error: string | undefined
    try {
      const { segments } = parsePath(path)
      path = '/' + segments.join('/')
      const found = findRoute(table, segments)
      if (found === undefined) throw ErrNotFound
      const { route, rest } = found
      if (!route.methods.includes(req.method ?? '')) {
        throw new MethodNotAllowed(allowHeader.get(route) ?? '')
      }
      const args = parseArgs(route.params, rest)
      // A route called without its parameter is checked as if it ended in '/',
      // so the usual `/v1/key/list/*` permits `/v1/key/list` (API-CONTRACT.md §6).
      const authPath = rest.length === 0 && route.params.length > 0 ? path + '/' : path
      if (route.auth === 'policy' && !state.access.isAdmin(identity)) {
        if (!(await state.access.allows(identity, authPath))) throw ErrNotAllowed
      }
      const reply = await route.handler(
        { identity, args, readBody: () => readBody(req, route.maxBodyBytes) },
        state,
      )
      status = reply.status
      send(res, reply)
    } catch (err) {
      const e = toKesError(err, state)
      status = e.status
      error = e.message
      sendError(res, e, err)
    } finally {
      opts.onComplete?.({
        method: req.method ?? '',
        path,
        identity,
        status,
        durationNs: process.hrtime.bigint() - start,
        error,
      })
    }
  }

  return (req, res) => {
    const start = process.hrtime.bigint()
    const identity = opts.identityOf(req) ?? ''
    void serve(req, res, identity, start)
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
  state.errorLog.error(`http: unexpected error: ${describe(err)}`)
  return ErrInternal
}

const NOSNIFF = 'nosniff'

function send(res: RouterResponse, reply: Reply): void {
  const headers: Record<string, string | number> = { 'x-content-type-options': NOSNIFF }
  if (reply.contentType !== undefined) headers['content-type'] = reply.contentType
  const body = reply.body ?? ''
  headers['content-length'] = Buffer.byteLength(body)
  res.writeHead(reply.status, headers)
  res.end(body)
}

function sendError(res: RouterResponse, e: KesError, cause: unknown): void {
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
  if (cause === ErrBodyTooLarge) {
    if (res.stream === undefined) {
      // HTTP/1.1: the unread rest of the body is still on the wire; closing is the only safe way on.
      headers['connection'] = 'close'
    } else {
      // HTTP/2: ask the client to stop sending this stream once the answer is out (RFC 9113 §8.1).
      const stream = res.stream
      res.once('finish', () => stream.close(h2.NGHTTP2_NO_ERROR))
    }
  }
  res.writeHead(e.status, headers)
  res.end(body)
}
