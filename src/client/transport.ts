// The client's transport: endpoints and their connections (an HTTP/2 session,
// else an HTTP/1.1 agent), opening one request on an endpoint, reading a
// bounded body, and the per-attempt deadline. Which endpoint to ask, and
// whether to ask again, is the caller's business (kes-client.ts).
import { Buffer } from 'node:buffer'
import http2 from 'node:http2'
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2'
import https from 'node:https'
import { isIP } from 'node:net'
import type { Readable } from 'node:stream'
import tls from 'node:tls'
import { clientError, closedError, isRecord } from './call.js'
import type { Call } from './call.js'
import { tlsOptions } from './tls-material.js'
import type { TlsMaterial } from './tls-material.js'

// Idle connections are closed after this long: before servers close them (OpenKES after 120 s),
// so that a request seldom meets a connection the server has just closed.
const IDLE_CONNECTION_MS = 30_000
// A bound on buffered response bodies, so a broken server cannot exhaust memory.
const MAX_RESPONSE_BYTES = 64 << 20

/** Response headers or trailers. */
export type Headers = Readonly<Record<string, string | string[] | undefined>>

/** A response whose body may still be arriving. */
export interface Opened {
  readonly status: number
  readonly headers: Headers
  readonly body: Readable
  /** The trailers; complete once the body has ended. */
  trailers(): Headers
  /** Abandons the response (and, for HTTP/1.1, its connection). */
  cancel(): void
}

/** How far an attempt got, to tell a safe retry from a possibly repeated request. */
export interface Progress {
  /** The request may have reached the server. */
  sent: boolean
  /** The attempt used a connection that had been idle in the pool (it may have gone stale). */
  reused: boolean
}

/** An HTTP/2 session and the number of streams that keep it referenced. */
export interface H2Connection {
  readonly session: ClientHttp2Session
  active: number
}

/** One server and the connections to it. */
export interface Endpoint {
  /** The origin, `https://host:port`. */
  readonly origin: string
  readonly host: string
  readonly port: number
  /** The TLS server name; undefined for IP addresses, which SNI cannot carry. */
  readonly servername: string | undefined
  /** What ALPN said: unknown until the first connection. */
  protocol: 'unknown' | 'h2' | 'http1'
  unhealthyUntil: number
  h2: H2Connection | undefined
  h2Connecting: Promise<H2Connection | undefined> | undefined
  agent: https.Agent | undefined
}

/** How a client's connections behave: the same for every call. */
export interface TransportSettings {
  /** Use HTTP/1.1 only. */
  readonly http1: boolean
  /** The bound on connecting, shared by the calls that wait for one connection attempt. */
  readonly timeoutMs: number
  /** Aborts when the client closes; it ends connection attempts in flight. */
  readonly closing: AbortSignal
}

/**
 * A not-yet-connected endpoint for a server URL. Throws TypeError unless the URL is
 * `https://host[:port]` with nothing after it.
 */
export function parseEndpoint(endpoint: string): Endpoint {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new TypeError(`kes client: endpoint '${endpoint}' is not a URL`)
  }
  if (url.protocol !== 'https:') throw new TypeError(`kes client: endpoint '${endpoint}' is not https`)
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`kes client: endpoint '${endpoint}' must be https://host[:port]`)
  }
  // URL keeps the brackets of an IPv6 literal; sockets want the bare address.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return {
    origin: url.origin,
    host,
    port: url.port === '' ? 443 : Number(url.port),
    servername: isIP(host) === 0 ? host : undefined,
    protocol: 'unknown',
    unhealthyUntil: 0,
    h2: undefined,
    h2Connecting: undefined,
    agent: undefined,
  }
}

/**
 * Opens a call on an endpoint: over its HTTP/2 session (connecting if needed) unless the
 * client or the server speaks only HTTP/1.1. `fresh` replaces a pooled HTTP/2 session first.
 * Resolves once response headers arrived; `progress` tells how far the request got.
 * Rejects with a network error, or `signal`'s reason when it aborts.
 */
export async function openRequest(
  ep: Endpoint,
  call: Call,
  material: TlsMaterial,
  settings: TransportSettings,
  signal: AbortSignal,
  progress: Progress,
  fresh = false,
): Promise<Opened> {
  if (!settings.http1 && ep.protocol !== 'http1') {
    if (fresh && ep.h2 !== undefined) {
      ep.h2.session.close()
      ep.h2 = undefined
    }
    const connection = await h2Connection(ep, material, settings, signal, progress)
    if (connection !== undefined) return openH2(connection, call, signal, progress)
  }
  return openH1(agentFor(ep, material), ep, call, signal, progress)
}

/** The endpoint's HTTP/2 session, connecting if needed; undefined when the server has no h2. */
async function h2Connection(ep: Endpoint, material: TlsMaterial, settings: TransportSettings, signal: AbortSignal, progress: Progress): Promise<H2Connection | undefined> {
  const current = ep.h2
  if (current !== undefined && !current.session.closed && !current.session.destroyed) {
    progress.reused = current.active === 0
    return current
  }
  ep.h2 = undefined
  // Concurrent calls share one connection attempt; each waits only as long as its own deadline.
  ep.h2Connecting ??= connectH2(ep, material, settings.timeoutMs, settings.closing).finally(() => {
    ep.h2Connecting = undefined
  })
  return raceSignal(ep.h2Connecting, signal)
}

function agentFor(ep: Endpoint, material: TlsMaterial): https.Agent {
  ep.agent ??= new https.Agent({
    keepAlive: true,
    // For sockets in the pool only; Node's agent never times out a socket in use.
    timeout: IDLE_CONNECTION_MS,
    ...tlsOptions(material),
    servername: ep.servername,
    ALPNProtocols: ['http/1.1'],
  })
  return ep.agent
}

/** Closes the endpoint's HTTP/2 session and HTTP/1.1 sockets; resolves once the session is gone. Never rejects. */
export function closeEndpoint(ep: Endpoint): Promise<void> {
  const closed = ep.h2 !== undefined ? destroySession(ep.h2.session) : Promise.resolve()
  ep.h2 = undefined
  ep.agent?.destroy()
  ep.agent = undefined
  return closed
}

/**
 * Connects over TLS offering h2 and http/1.1. With h2 it returns a session on
 * that socket; without (a KES that has no HTTP/2) it marks the endpoint HTTP/1.1
 * and returns undefined. Every failure here happens before a request exists.
 */
function connectH2(ep: Endpoint, material: TlsMaterial, timeoutMs: number, closing: AbortSignal): Promise<H2Connection | undefined> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      ...tlsOptions(material),
      host: ep.host,
      port: ep.port,
      servername: ep.servername,
      ALPNProtocols: ['h2', 'http/1.1'],
    })
    const fail = (err: unknown): void => {
      cleanup()
      socket.destroy()
      reject(err)
    }
    const onAbort = (): void => fail(closing.reason)
    const timer = setTimeout(() => fail(clientError(`connecting to '${ep.origin}' timed out after ${timeoutMs} ms`, 'ETIMEDOUT')), timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      closing.removeEventListener('abort', onAbort)
      socket.off('error', fail)
      socket.off('secureConnect', onSecure)
    }
    const onSecure = (): void => {
      cleanup()
      if (socket.alpnProtocol !== 'h2') {
        socket.destroy()
        ep.protocol = 'http1'
        resolve(undefined)
        return
      }
      ep.protocol = 'h2'
      const session = http2.connect(ep.origin, { createConnection: () => socket })
      const connection: H2Connection = { session, active: 0 }
      const forget = (): void => {
        if (ep.h2 === connection) ep.h2 = undefined
      }
      // A broken session fails its streams, which report it; the session is just dropped.
      session.on('error', forget)
      session.once('close', forget)
      session.once('goaway', forget)
      session.setTimeout(IDLE_CONNECTION_MS, () => session.close())
      // An idle session must not keep the process alive; open streams ref it.
      session.unref()
      ep.h2 = connection
      resolve(connection)
    }
    if (closing.aborted) {
      fail(closing.reason)
      return
    }
    closing.addEventListener('abort', onAbort, { once: true })
    socket.once('secureConnect', onSecure)
    socket.once('error', fail)
  })
}

const H2_NOT_PROCESSED = new Set(['ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_INVALID_SESSION'])

function openH2(connection: H2Connection, call: Call, signal: AbortSignal, progress: Progress): Promise<Opened> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const { session } = connection
    const headers: http2.OutgoingHttpHeaders = { ':method': call.method, ':path': call.path }
    if (call.accept !== undefined) headers['accept'] = call.accept
    if (call.body !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = call.body.length
    }
    let stream: ClientHttp2Stream
    try {
      stream = session.request(headers, { endStream: call.body === undefined })
    } catch (err) {
      // The session went away under us; nothing was sent.
      reject(err)
      return
    }
    progress.sent = true
    connection.active++
    session.ref()
    let trailers: Headers = {}
    stream.on('trailers', (t) => {
      trailers = t
    })
    stream.once('close', () => {
      connection.active--
      if (connection.active === 0 && !session.destroyed) session.unref()
    })
    const onAbort = (): void => {
      stream.close(http2.constants.NGHTTP2_CANCEL)
      fail(signal.reason)
    }
    const fail = (err: unknown): void => {
      cleanup()
      // A refused stream, or one beyond the server's GOAWAY, was never processed.
      if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || H2_NOT_PROCESSED.has(errorCode(err))) progress.sent = false
      reject(err)
    }
    const onClose = (): void => fail(clientError(`stream closed before a response (code ${stream.rstCode ?? 'unknown'})`, 'ECONNRESET'))
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort)
      stream.off('error', fail)
      stream.off('close', onClose)
      stream.off('response', onResponse)
    }
    const onResponse = (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void => {
      cleanup()
      // Whoever reads the body sees a later error through `destroyed`/`errored`; until then it must not crash us.
      stream.on('error', () => {})
      resolve({
        status: Number(h[':status']),
        headers: h,
        body: stream,
        trailers: () => trailers,
        cancel: () => {
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL)
        },
      })
    }
    signal.addEventListener('abort', onAbort, { once: true })
    stream.once('response', onResponse)
    stream.once('error', fail)
    stream.once('close', onClose)
    if (call.body !== undefined) stream.end(call.body)
  })
}

function openH1(agent: https.Agent, ep: Endpoint, call: Call, signal: AbortSignal, progress: Progress): Promise<Opened> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const headers: Record<string, string> = {}
    if (call.accept !== undefined) headers['accept'] = call.accept
    if (call.body !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(call.body.length)
    } else if (call.method !== 'GET') {
      headers['content-length'] = '0'
    }
    const req = https.request({ agent, host: ep.host, port: ep.port, servername: ep.servername, method: call.method, path: call.path, headers })
    req.once('socket', (socket) => {
      if (req.reusedSocket) {
        progress.sent = true
        progress.reused = true
      } else {
        // Until the handshake is done the request cannot have left.
        socket.once('secureConnect', () => {
          progress.sent = true
        })
      }
    })
    const onAbort = (): void => {
      req.destroy(signal.reason instanceof Error ? signal.reason : closedError())
    }
    const onError = (err: unknown): void => {
      signal.removeEventListener('abort', onAbort)
      reject(err)
    }
    req.once('error', onError)
    req.once('response', (res) => {
      signal.removeEventListener('abort', onAbort)
      req.off('error', onError)
      // A later error on the request surfaces on the response body instead.
      req.on('error', (err) => res.destroy(err))
      // Whoever reads the body sees a later error through `destroyed`/`errored`; until then it must not crash us.
      res.on('error', () => {})
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: res,
        trailers: () => res.trailers,
        cancel: () => {
          req.destroy()
        },
      })
    })
    signal.addEventListener('abort', onAbort, { once: true })
    req.end(call.body)
  })
}

/** Reads a whole body, at most MAX_RESPONSE_BYTES, failing when `signal` aborts or the connection breaks. */
export function readBody(opened: Opened, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const body = opened.body
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort)
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      body.off('close', onClose)
    }
    const onError = (err: unknown): void => {
      cleanup()
      opened.cancel()
      reject(err)
    }
    const onAbort = (): void => onError(signal.reason)
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > MAX_RESPONSE_BYTES) onError(clientError(`response larger than ${MAX_RESPONSE_BYTES} bytes`, 'ERR_KES_RESPONSE_TOO_LARGE'))
      else chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(Buffer.concat(chunks))
    }
    const onClose = (): void => onError(clientError('connection closed before the response ended', 'ECONNRESET'))
    if (signal.aborted) {
      onAbort()
      return
    }
    // The body may have failed between the response and now.
    if (body.destroyed) {
      onError(body.errored ?? clientError('connection closed before the response ended', 'ECONNRESET'))
      return
    }
    signal.addEventListener('abort', onAbort, { once: true })
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onError)
    body.once('close', onClose)
  })
}

/**
 * A per-attempt timer whose signal also aborts when the client closes. On timeout the
 * signal's reason is a `kes client: <call> timed out` error (code `ETIMEDOUT`); `clear()` it when done.
 */
export class Deadline {
  readonly #controller = new AbortController()
  readonly #timer: NodeJS.Timeout
  readonly #parent: AbortSignal
  readonly #onParentAbort: () => void

  constructor(timeoutMs: number, parent: AbortSignal, call: Call) {
    this.#parent = parent
    this.#timer = setTimeout(() => {
      this.#controller.abort(clientError(`${call.method} ${call.path} timed out after ${timeoutMs} ms`, 'ETIMEDOUT'))
    }, timeoutMs)
    this.#onParentAbort = () => this.#controller.abort(parent.reason)
    parent.addEventListener('abort', this.#onParentAbort, { once: true })
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  clear(): void {
    clearTimeout(this.#timer)
    this.#parent.removeEventListener('abort', this.#onParentAbort)
  }
}

function errorCode(err: unknown): string {
  return isRecord(err) && typeof err['code'] === 'string' ? err['code'] : ''
}

function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

function destroySession(session: ClientHttp2Session): Promise<void> {
  if (session.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    session.once('close', () => resolve())
    session.destroy()
  })
}
