import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureServer } from 'node:http2'
import type { Http2SecureServer, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import { createSecureContext } from 'node:tls'
import type { SecureContext, TLSSocket } from 'node:tls'
import { ErrKeyExists } from '../api/errors.js'
import { createRouter } from '../api/router.js'
import type { CompletedRequest, RouterRequest } from '../api/router.js'
import { identityOfCertificate } from '../auth/identity.js'
import { SecretKey } from '../crypto/secret-key.js'
import type { Config } from '../config/validate.js'
import { openFsStore } from '../keystore/fs/fs-store.js'
import { applySeal, describeStore } from '../keystore/seal/open-seal.js'
import { openPostgresStore } from '../keystore/postgres/pg-store.js'
import type { KeyStore } from '../keystore/keystore.js'
import { AuditLog } from '../log/audit-log.js'
import type { AuditOutputs } from '../log/audit-log.js'
import { ErrorLog, RateLimitedLog } from '../log/error-log.js'
import type { LineSink } from '../log/error-log.js'
import { EventHub } from '../log/event-hub.js'
import { instrumentStore } from '../metrics/instrument-store.js'
import { ServerMetrics } from '../metrics/server-metrics.js'
import { VERSION } from '../version.js'
import { checkTlsPair, unreadable } from '../x509/tls-pair.js'
import { AccessControl, GRANT_TTL_MS } from './access.js'
import { BodyBudget } from './body-budget.js'
import { serveHttp1 } from './http1-fast-path.js'
import { isStreamGone, routeStream, SESSION_PEER } from './http2-fast-path.js'
import { RequestTurns } from './request-turns.js'
import type { CompatStreamListener, PeerSession, StreamPeer, StreamRequest } from './http2-fast-path.js'
import { Http2Sessions } from './http2-sessions.js'
import { ConnectionGate } from './connection-gate.js'
import { findUnsafeFiles } from './file-safety.js'
import { DeletedKeys } from './deleted-keys.js'
import { KeyRing } from './key-ring.js'
import { LifecycleTimers } from './lifecycle-timers.js'
import { describeError } from '../log/describe-error.js'
import { parseListenAddress } from './listen-address.js'
import type { ServerState } from './state.js'
import type { ClusterLink } from './cluster/link.js'

/** A running server. */
export interface RunningServer {
  /** The bound address (the port is the real one when the config said 0). */
  readonly host: string
  readonly port: number
  /** The current state snapshot (it changes on reload). */
  readonly state: ServerState
  /**
   * Applies a new configuration without dropping connections: policies and
   * identities of the config, the TLS certificate, key and CA, and the log
   * settings. Rejects, changing nothing, when the new config cannot be applied.
   */
  reload(config: Config): Promise<void>
  /**
   * Stops accepting connections, ends the log streams, lets requests in
   * flight finish for up to `graceMs`, then closes everything.
   */
  close(graceMs?: number): Promise<void>
}

/** Hooks for embedding and tests. */
export interface StartOptions {
  /** Where error-log lines go (default: stderr). */
  errorSink?: LineSink
  /** Called once per completed request, after audit and metrics. */
  onComplete?: (event: CompletedRequest) => void
  /** A key store to use instead of opening the configured one (tests). */
  store?: KeyStore
  /** How far a log-stream reader may fall behind before it loses events (default 256 KiB). */
  traceBufferBytes?: number
  /**
   * Refuse to start when the TLS key, the key directory or a key file is open
   * to other users (`openkes server --strict`); without it they are warned about.
   */
  strictFiles?: boolean
  /**
   * Serve generate/encrypt/decrypt and the health checks on the fast paths (./fast-routes.ts;
   * default true). False leaves every request to Node's HTTP/1.1 server and HTTP/2 compatibility layer.
   */
  fastPaths?: boolean
  /** This server is one worker of `openkes server --workers N` (src/server/cluster): how it joins the others. */
  cluster?: ClusterLink
}

// The identity is computed once per TLS connection and kept on the socket:
// parsing a certificate costs far more than serving a request.
const IDENTITY = Symbol('openkes.identity')
// HTTP/1.1 requests in flight on a socket, so shutdown can close it when idle.
const IN_FLIGHT = Symbol('openkes.inFlight')
type ServerSocket = TLSSocket & { [IDENTITY]?: string; [IN_FLIGHT]?: number }
// What an HTTP/2 fast-path request shows of its connection (./http2-fast-path.ts, SESSION_PEER).
type ServerPeer = StreamPeer & { readonly [IDENTITY]: string }

// TLS 1.3, and TLS 1.2 only with forward-secret AEAD suites (docs/api.md, "Connecting: TLS and identities").
const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')
const TLS_OPTIONS = { minVersion: 'TLSv1.2', ciphers: CIPHERS, honorCipherOrder: true } as const

// Node's ticket key block: 16 bytes name, 16 bytes HMAC secret, 16 bytes AES key.
const TICKET_KEYS_BYTES = 48
// How long a session ticket can be resumed (Node's default, stated).
const SESSION_TICKET_LIFETIME_S = 300

// Concurrent requests on one HTTP/2 connection (Node's default is unlimited).
const MAX_STREAMS_PER_SESSION = 256
// HTTP/2 fast-path requests whose work starts per turn of the event loop (./request-turns.ts):
// 1–2 ms of work, so a client's burst of 64 streams is answered in four groups, each written
// before the next is worked on.
const HTTP2_BODY_ENDS_PER_TURN = 16
const REFUSALS = {
  'per-address': 'too many connections from this address (limits.connections_per_address)',
  full: 'too many connections (limits.connections)',
  evicted: 'handshake unfinished while the server is full (limits.connections)',
} as const
// How often Node checks HTTP/1.1 requests against their headers timeout, at most.
const HEADERS_CHECK_INTERVAL_MS = 5_000
// Anyone can attempt handshakes: their failures are counted in full but logged at this rate.
const TLS_ERROR_LINES_PER_SECOND = 10
// A log-stream reader more than this far behind loses events instead of holding memory.
const TRACE_BUFFER_BYTES = 256 * 1024

/** The TLS material of a config, read and checked before it is used. */
interface TlsMaterial {
  readonly key: Buffer
  readonly cert: Buffer
  readonly ca: Buffer | undefined
  readonly passphrase: string | undefined
  readonly context: SecureContext
}

/**
 * Reads the TLS files and checks them; every error names the file and the
 * config setting (`tls.key: cannot read '/etc/kes/server.key': ENOENT`,
 * `tls.key '...' is not the private key of tls.cert '...'`).
 */
async function readTls(config: Config): Promise<TlsMaterial> {
  const read = (setting: string, file: string): Promise<Buffer> =>
    readFile(file).catch((err: unknown) => Promise.reject(unreadable(setting, file, err)))
  const [key, cert, ca] = await Promise.all([
    read('tls.key', config.tls.keyFile),
    read('tls.cert', config.tls.certFile),
    config.tls.caFile === undefined ? undefined : read('tls.ca', config.tls.caFile),
  ])
  const passphrase = config.tls.password
  checkTlsPair({ pem: cert, file: config.tls.certFile, setting: 'tls.cert' }, { pem: key, file: config.tls.keyFile, setting: 'tls.key' }, passphrase, 'tls.password')
  // Building the context proves the key, certificate and CA are usable.
  let context: SecureContext
  try {
    context = createSecureContext({ key, cert, ca, passphrase, ...TLS_OPTIONS })
  } catch (err) {
    const where = config.tls.caFile === undefined ? `tls.cert '${config.tls.certFile}'` : `tls.cert '${config.tls.certFile}' or tls.ca '${config.tls.caFile}'`
    throw new Error(`${where} cannot be used: ${(err as Error).message}`, { cause: err })
  }
  return { key, cert, ca, passphrase, context }
}

/**
 * Starts OpenKES for a validated configuration: opens the key store, creates
 * the configured keys that are missing, and serves the API over mutual TLS
 * (HTTP/2 and HTTP/1.1 on one port, by ALPN).
 */
export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const traceBufferBytes = opts.traceBufferBytes ?? TRACE_BUFFER_BYTES
  const metrics = new ServerMetrics()
  const errorHub = { maxBufferedBytes: traceBufferBytes, onDrop: () => metrics.errorDropped.inc() }
  const errorLog = new ErrorLog({
    enabled: config.log.error,
    sink: opts.errorSink,
    hub: opts.cluster?.errorHub(errorHub) ?? new EventHub(errorHub),
    onEvent: () => metrics.errorEvents.inc(),
  })
  let auditDropsReported = 0
  const auditHub = {
    maxBufferedBytes: traceBufferBytes,
    onDrop: () => {
      metrics.auditDropped.inc()
      // One error line per power of two of drops: visible, but never a flood.
      const dropped = metrics.auditDropped.get()
      if (dropped >= 2 * auditDropsReported || auditDropsReported === 0) {
        auditDropsReported = Math.max(1, dropped)
        errorLog.error(`audit: a trace reader is too slow; ${dropped} events dropped so far`)
      }
    },
  }
  const auditEvents = {
    onError: (message: string) => errorLog.error(message),
    onEvent: () => metrics.auditEvents.inc(),
    onLost: (n: number) => metrics.auditLost.inc([], n),
  }
  const auditLog = opts.cluster?.auditLog(auditHub, auditEvents) ?? new AuditLog({ hub: new EventHub(auditHub), ...auditEvents })
  metrics.setAuditFileHealth(() => auditLog.fileHealthy)
  await auditLog.configure(auditOutputs(config))

  const tls = await readTls(config)
  const rawStore = await sealConfiguredStore(opts.store ?? (await openConfiguredStore(config, errorLog)), config, opts.store === undefined)
  if (opts.store === undefined) {
    const unsafe = await findUnsafeFiles(config)
    if (unsafe.length > 0 && opts.strictFiles === true) {
      await rawStore.close()
      throw new Error(`unsafe file permissions (--strict): ${unsafe.join('; ')}`)
    }
    for (const problem of unsafe) errorLog.error(`security: ${problem}`)
  }
  const shared = opts.cluster?.shareStore(rawStore) ?? rawStore
  const store = instrumentStore(shared, (table, op, seconds) => metrics.keystoreSeconds.observe(seconds, [table, op]))
  const keys = new KeyRing(store, config.cache, errorLog)
  const deletedKeys = new DeletedKeys(store, keys, errorLog, config.deletedKeys.retentionMs)
  metrics.setCacheStats(() => keys.cacheStats())
  // Open log streams are re-authorized after every change of who may read them, and
  // every GRANT_TTL_MS for changes made by other servers on the same store.
  const streams = new StreamGuard([auditLog.hub, errorLog.hub])
  const newAccess = (c: Config): AccessControl =>
    new AccessControl({
      adminIdentity: c.adminIdentity,
      policies: c.policies,
      store,
      errorLog,
      onChange: () => streams.recheck(),
      offlineMs: config.cache.expiryOfflineMs ?? 0,
    })
  let state: ServerState = {
    version: VERSION,
    keys,
    deletedKeys,
    access: newAccess(config),
    errorLog,
    auditLog,
    metrics,
    startedAtMs: performance.now(),
    api: config.api,
    gatherMetrics: opts.cluster === undefined ? undefined : () => (opts.cluster as ClusterLink).gatherMetrics(),
  }
  opts.cluster?.serveMetrics(() => metrics.snapshot())
  let current = config
  await createConfiguredKeys(config, keys)

  const limits = config.limits
  const bodyBudget = new BodyBudget(limits)
  const server = createSecureServer({
    allowHTTP1: true,
    // A client that connects and never finishes its handshake is dropped.
    handshakeTimeout: limits.handshakeTimeoutMs,
    key: tls.key,
    cert: tls.cert,
    passphrase: tls.passphrase,
    ca: tls.ca,
    requestCert: true,
    // Without a CA the public key is the credential (as KES --auth=off), so the
    // chain is not verified; with one, client certificates must chain to it.
    rejectUnauthorized: tls.ca !== undefined,
    ...TLS_OPTIONS,
    // Bounds what one HTTP/2 connection can hold open at once.
    settings: { maxConcurrentStreams: MAX_STREAMS_PER_SESSION },
    // Session resumption by tickets (stateless: the server keeps no session cache): a client
    // that reconnects skips the full handshake. A resumed session carries the client
    // certificate it was first authenticated with, so its identity is that certificate's;
    // the ticket keys are replaced whenever the TLS material changes (reload, below).
    ticketKeys: opts.cluster?.ticketKeys() ?? randomBytes(TICKET_KEYS_BYTES),
    sessionTimeout: SESSION_TICKET_LIFETIME_S,
  })
  // An HTTP/1.1 request's headers must arrive within the idle timeout, however slowly they trickle in,
  // and an idle keep-alive connection is closed after the same idle timeout (Node's default is 5 s).
  // (Node's HTTP/1.1 fallback of an HTTP/2 server reads these, untyped, fields when it starts listening.)
  Object.assign(server, {
    headersTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: Math.min(HEADERS_CHECK_INTERVAL_MS, limits.idleTimeoutMs),
    // Node 24 answers an HTTP/1.1 request without Host with a bare 400 of its own (no JSON, no
    // audit event); Node 20 serves it. The same on every Node version: served (the TLS
    // connection, not the Host header, says who the client is).
    requireHostHeader: false,
  })
  // Node's own listener starts HTTP/2 or its HTTP/1.1 server on every connection. HTTP/1.1
  // connections start on the fast path instead (./http1-fast-path.ts), which hands them to
  // Node's listener at the first request it does not serve itself.
  const nodeConnectionListener = soleListener(server, 'secureConnection') as ((socket: TLSSocket) => void) | undefined
  if (nodeConnectionListener === undefined) throw new Error(`Node.js ${process.version} starts its HTTPS connections in a way this OpenKES does not know`)
  const fastPath = opts.fastPaths ?? true
  const keepAliveSeconds = Math.floor(limits.idleTimeoutMs / 1000)
  server.removeListener('secureConnection', nodeConnectionListener)
  const sockets = new Set<Socket>()
  const tlsSockets = new Set<ServerSocket>()
  const sessions = new Http2Sessions(limits.idleTimeoutMs)
  let closing = false

  const tlsErrors = new RateLimitedLog(errorLog, TLS_ERROR_LINES_PER_SECOND)
  const gate = new ConnectionGate(limits, (reason, address) => {
    metrics.connectionsRefused.inc()
    tlsErrors.error(`tls: ${address}: connection closed: ${REFUSALS[reason]}`)
  })
  // First, before TLS starts on the socket: the connection caps.
  server.prependListener('connection', (socket: Socket) => {
    if (!gate.admit(socket)) return
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  // First, before HTTP/2 or HTTP/1.1 starts on the connection: a client
  // without a certificate must never get a request parsed, routed or counted.
  server.prependListener('secureConnection', (socket: ServerSocket) => {
    const peer = socket.getPeerX509Certificate()
    if (peer === undefined) {
      // Node can't fail the handshake for a missing certificate without also
      // verifying the chain, so the connection is dropped before any request.
      metrics.tlsHandshakeFailures.inc()
      tlsErrors.error(`tls: ${socket.remoteAddress ?? 'client'}: no client certificate`)
      socket.destroy()
      return
    }
    socket[IDENTITY] = identityOfCertificate(peer)
    gate.established(socket)
  })
  server.on('secureConnection', (socket: ServerSocket) => {
    if (socket[IDENTITY] === undefined) return
    if (socket.alpnProtocol === 'h2' || !fastPath) nodeConnectionListener.call(server, socket)
    else serveHttp1(socket, { serve: (req, res) => serveIdentified(req, res), handOver: (s) => nodeConnectionListener.call(server, s), keepAliveSeconds })
    tlsSockets.add(socket)
    socket.once('close', () => tlsSockets.delete(socket))
    if (closing && socket.alpnProtocol !== 'h2') socket.end()
    // Idle HTTP/1.1 connections close; HTTP/2 sessions time out by themselves
    // (below). A connection serving a request, such as a quiet log stream, is
    // not idle.
    if (socket.alpnProtocol !== 'h2') {
      socket.setTimeout(limits.idleTimeoutMs, () => {
        if ((socket[IN_FLIGHT] ?? 0) === 0) socket.destroy()
      })
    }
  })
  server.on('session', (session: PeerSession) => {
    const socket = session.socket as ServerSocket | undefined
    const identity = socket?.[IDENTITY]
    if (socket === undefined || identity === undefined) {
      session.destroy()
      return
    }
    // Read once here, through Node's socket proxy; the fast path's requests read this instead.
    const peer: ServerPeer = { remoteAddress: socket.remoteAddress, [IDENTITY]: identity }
    session[SESSION_PEER] = peer
    // Tracked until it closes; closed when idle (./http2-sessions.ts).
    sessions.add(session)
    if (closing) session.close()
  })
  server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    const address = socket.remoteAddress ?? 'client'
    // Node leaves the connection open after some handshake errors (a handshake
    // timeout among them): a connection that failed its handshake has nothing more to say.
    socket.destroy()
    if (gate.closedByGate(socket)) return
    metrics.tlsHandshakeFailures.inc()
    tlsErrors.error(`tls: handshake with ${address} failed: ${err.message}`)
  })
  // An HTTP/1.1 request Node's parser refuses (bad method, header too large, headers
  // too slow) gets its error as the API's {"message"} JSON, not Node's bare status line.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage != null) {
      socket.destroy()
      return
    }
    const [status, reason, message] = parserRefusal(err.code)
    const body = JSON.stringify({ message })
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  })
  server.on('sessionError', (err: NodeJS.ErrnoException) => {
    // A client that hangs up is not an operational error.
    if (err.code !== 'ECONNRESET') errorLog.error(`http2: session error: ${err.message}`)
  })

  const router = createRouter(() => state, {
    identityOf: (req: RouterRequest) => (req.socket as ServerSocket | null | undefined)?.[IDENTITY],
    bodyAccount: (req: RouterRequest) => bodyBudget.account(connectionOf(req)),
    hooks: {
      started(req) {
        const socket = http1Socket(req)
        if (socket !== undefined) socket[IN_FLIGHT] = (socket[IN_FLIGHT] ?? 0) + 1
        metrics.active.inc()
      },
      completed(event) {
        auditLog.record(event)
        metrics.observeRequest({ api: event.api, status: event.status, seconds: Number(event.durationNs) / 1e9 })
        opts.onComplete?.(event)
      },
      finished(req) {
        metrics.active.dec()
        const socket = http1Socket(req)
        if (socket === undefined) return
        socket[IN_FLIGHT] = (socket[IN_FLIGHT] ?? 1) - 1
        if (closing && socket[IN_FLIGHT] === 0) socket.end()
      },
    },
  })
  // Every way in (Node's HTTP/1.1 server and HTTP/2 compatibility layer, both fast paths) goes
  // through here. Defence in depth: a connection without an identity never reaches the router.
  const serveIdentified = (req: RouterRequest & { stream?: ServerHttp2Stream }, res: Parameters<typeof router>[1]): void => {
    if ((req.socket as ServerSocket | null | undefined)?.[IDENTITY] === undefined) {
      if (req.stream !== undefined) req.stream.session?.destroy()
      else res.destroy()
      return
    }
    router(req, res)
  }
  server.on('request', serveIdentified)
  // The compatibility layer's own 'stream' listener, installed with the 'request' listener above:
  // fast-route streams are served on the core stream API instead (./http2-fast-path.ts).
  const compatStream = soleListener(server, 'stream') as CompatStreamListener | undefined
  if (fastPath && compatStream !== undefined) {
    server.removeListener('stream', compatStream)
    // A burst of requests is worked through a group at a time, so its first answers go out while the rest is worked on.
    const bodyEndTurns = new RequestTurns<StreamRequest>(HTTP2_BODY_ENDS_PER_TURN, (req) => req.endBody(), isStreamGone)
    server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) =>
      routeStream(serveIdentified, bodyEndTurns, compatStream, server, stream, headers, flags, rawHeaders),
    )
  }

  const address = parseListenAddress(config.address)
  await listen(server, address.host, address.port)
  // Started once serving, so a server that fails to start leaves no background work behind.
  const lifecycle = new LifecycleTimers({ keys, deletedKeys, rotation: config.rotation, rotatedBy: config.adminIdentity, errorLog })
  const bound = server.address()
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port

  let closed: Promise<void> | undefined
  let tlsNow = tls
  return {
    host: address.host,
    port,
    get state() {
      return state
    },
    async reload(next: Config) {
      const nextTls = await readTls(next)
      const access = newAccess(next)
      await auditLog.configure(auditOutputs(next))
      // Nothing below can fail: the new config is applied whole or not at all.
      server.setSecureContext({ key: nextTls.key, cert: nextTls.cert, ca: nextTls.ca, passphrase: nextTls.passphrase, ...TLS_OPTIONS })
      ;(server as unknown as { rejectUnauthorized: boolean }).rejectUnauthorized = nextTls.ca !== undefined
      // setSecureContext keeps the old ticket keys: a session authenticated under the old CA
      // (or certificate) must not be resumed under the new one, so its tickets stop opening.
      if (tlsMaterialChanged(tlsNow, nextTls)) server.setTicketKeys(opts.cluster?.ticketKeys() ?? randomBytes(TICKET_KEYS_BYTES))
      tlsNow = nextTls
      errorLog.setEnabled(next.log.error)
      const old = state.access
      state = { ...state, access, api: next.api }
      old.close()
      streams.recheck()
      for (const [field, changed] of restartOnlyChanges(current, next)) {
        if (changed) errorLog.error(`config: ${field} changes take effect after a restart`)
      }
      current = next
    },
    close(graceMs = 10_000) {
      closed ??= (async () => {
        closing = true
        streams.close()
        lifecycle.close()
        sessions.stop()
        await shutdown(server, sockets, tlsSockets, sessions, auditLog, errorLog, graceMs)
        keys.close()
        state.access.close()
        if (opts.store === undefined) await rawStore.close()
      })()
      return closed
    },
  }
}

/**
 * Re-authorizes the readers of log streams: at once after a change made
 * through this server (recheck), and every GRANT_TTL_MS while any stream is
 * open, which catches changes made by another server on the same store (the
 * grant cache keeps each check cheap). Checks never overlap: a recheck asked
 * for during one runs once it is done.
 */
class StreamGuard {
  readonly #hubs: readonly EventHub[]
  readonly #timer: NodeJS.Timeout
  #running = false
  #again = false

  constructor(hubs: readonly EventHub[]) {
    this.#hubs = hubs
    this.#timer = setInterval(() => {
      if (this.#hubs.some((h) => h.size > 0)) this.recheck()
    }, GRANT_TTL_MS)
    this.#timer.unref()
  }

  recheck(): void {
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = true
    void (async () => {
      do {
        this.#again = false
        await Promise.all(this.#hubs.map((h) => h.reauthorize()))
      } while (this.#again)
      this.#running = false
    })()
  }

  close(): void {
    clearInterval(this.#timer)
  }
}

/** Opens the store of the config; its errors name the setting. */
async function openConfiguredStore(config: Config, errorLog: ErrorLog): Promise<KeyStore> {
  const keystore = config.keystore
  switch (keystore.kind) {
    case 'fs':
      try {
        return await openFsStore(keystore.path)
      } catch (err) {
        throw new Error(`keystore.fs.path: ${(err as Error).message}`, { cause: err })
      }
    case 'postgres':
      try {
        return await openPostgresStore(keystore, { log: (line) => errorLog.error(line) })
      } catch (err) {
        throw new Error(`keystore.postgres: ${(err as Error).message}`, { cause: err })
      }
  }
}

/** Applies the config's seal (or refuses a sealed store without one); closes a store it opened when that fails. */
async function sealConfiguredStore(store: KeyStore, config: Config, opened: boolean): Promise<KeyStore> {
  try {
    return await applySeal(store, config.seal, describeStore(config.keystore))
  } catch (err) {
    if (opened) await store.close()
    throw err
  }
}

/** The store settings as compared on reload (no password). */
function storeIdentity(keystore: Config['keystore']): string {
  return JSON.stringify(keystore)
}

/** The audit outputs a config asks for (also the primary's under `--workers N`). */
export function auditOutputs(c: Config): AuditOutputs {
  return { stdout: c.log.audit, file: c.log.auditFile, failClosed: c.log.auditFailClosed === true, chainKeyFile: c.log.auditChainKeyFile }
}

/** The status, reason phrase and message for an HTTP/1.1 request Node's parser refused. */
function parserRefusal(code: string | undefined): [number, string, string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'Request Header Fields Too Large', 'request headers too large']
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'Request Timeout', 'request headers not received in time']
    default:
      return [400, 'Bad Request', 'malformed HTTP request']
  }
}

/** The one listener Node's server has for `event`, or undefined when it has none or several. */
function soleListener(server: Http2SecureServer, event: string): ((...args: never[]) => unknown) | undefined {
  const listeners = server.listeners(event)
  return listeners.length === 1 ? (listeners[0] as (...args: never[]) => unknown) : undefined
}

/** What stands for a request's connection: its HTTP/2 session, or its HTTP/1.1 socket. */
function connectionOf(req: RouterRequest): object {
  const r = req as { stream?: ServerHttp2Stream; socket?: unknown }
  const session = r.stream?.session
  if (session !== undefined) return session
  return typeof r.socket === 'object' && r.socket !== null ? r.socket : req
}

/** The HTTP/1.1 socket of a request; undefined for HTTP/2 streams (their sessions close gracefully by themselves). */
function http1Socket(req: RouterRequest): ServerSocket | undefined {
  const r = req as { httpVersionMajor?: number; socket?: unknown }
  return r.httpVersionMajor === 1 ? (r.socket as ServerSocket) : undefined
}

/** Whether a reload changes what authenticates a TLS session: the client CA (or its absence), the server key or certificate. */
function tlsMaterialChanged(a: TlsMaterial, b: TlsMaterial): boolean {
  const same = (x: Buffer | undefined, y: Buffer | undefined): boolean => (x === undefined ? y === undefined : y !== undefined && x.equals(y))
  return !same(a.ca, b.ca) || !same(a.cert, b.cert) || !same(a.key, b.key)
}

function restartOnlyChanges(a: Config, b: Config): Array<[string, boolean]> {
  return [
    ['address', a.address !== b.address],
    ['keystore', storeIdentity(a.keystore) !== storeIdentity(b.keystore)],
    [
      'cache',
      a.cache.expiryAnyMs !== b.cache.expiryAnyMs ||
        a.cache.expiryUnusedMs !== b.cache.expiryUnusedMs ||
        a.cache.expiryOfflineMs !== b.cache.expiryOfflineMs,
    ],
    ['keys', a.keys.join() !== b.keys.join()],
    ['seal', JSON.stringify(a.seal) !== JSON.stringify(b.seal)],
    ['limits', JSON.stringify(a.limits) !== JSON.stringify(b.limits)],
    ['rotation', JSON.stringify(a.rotation) !== JSON.stringify(b.rotation)],
    ['deleted_keys', a.deletedKeys.retentionMs !== b.deletedKeys.retentionMs],
  ]
}

async function createConfiguredKeys(config: Config, keys: KeyRing): Promise<void> {
  for (const name of config.keys) {
    try {
      await keys.create(name, SecretKey.generate('AES256', { createdAt: new Date().toISOString(), createdBy: config.adminIdentity }))
    } catch (err) {
      if (err !== ErrKeyExists) throw new Error(`cannot create key '${name}': ${describeError(err)}`, { cause: err })
    }
  }
}

function listen(server: Http2SecureServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host === '' ? undefined : host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

async function shutdown(
  server: Http2SecureServer,
  sockets: Set<Socket>,
  tlsSockets: Set<ServerSocket>,
  sessions: Http2Sessions,
  auditLog: AuditLog,
  errorLog: ErrorLog,
  graceMs: number,
): Promise<void> {
  const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()))
  // Log streams never end by themselves: end them first. The audit file
  // stays open until the requests in flight are done, so they are audited.
  errorLog.hub.closeAll()
  auditLog.hub.closeAll()
  // HTTP/2: GOAWAY, then the session closes once its open streams are done.
  sessions.closeAll()
  // HTTP/1.1: idle connections close now, busy ones after their response.
  for (const socket of tlsSockets) {
    if (socket.alpnProtocol !== 'h2' && (socket[IN_FLIGHT] ?? 0) === 0) socket.end()
  }
  let timer: NodeJS.Timeout | undefined
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs)
    timer.unref()
  })
  await Promise.race([listenerClosed, grace])
  clearTimeout(timer)
  for (const socket of sockets) socket.destroy()
  await listenerClosed
  await auditLog.close()
}
