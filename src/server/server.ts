import { readFile } from 'node:fs/promises'
import { createSecureServer } from 'node:http2'
import type { Http2SecureServer } from 'node:http2'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { ErrKeyExists } from '../api/errors.js'
import { createRouter } from '../api/router.js'
import type { CompletedRequest, RouterRequest } from '../api/router.js'
import { identityOfCertificate } from '../auth/identity.js'
import { SecretKey } from '../crypto/secret-key.js'
import type { Config } from '../config/validate.js'
import { openFsStore } from '../keystore/fs/fs-store.js'
import type { KeyStore } from '../keystore/keystore.js'
import { ErrorLog } from '../log/error-log.js'
import type { LineSink } from '../log/error-log.js'
import { VERSION } from '../version.js'
import { AccessControl } from './access.js'
import { KeyRing, describe } from './key-ring.js'
import { parseListenAddress } from './listen-address.js'
import type { ServerState } from './state.js'

/** A running server. */
export interface RunningServer {
  /** The bound address (the port is the real one when the config said 0). */
  readonly host: string
  readonly port: number
  readonly state: ServerState
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes everything. */
  close(graceMs?: number): Promise<void>
}

/** Hooks for embedding and tests. */
export interface StartOptions {
  /** Where error-log lines go (default: stderr). */
  errorSink?: LineSink
  onComplete?: (event: CompletedRequest) => void
  /** A key store to use instead of opening the configured one (tests). */
  store?: KeyStore
}

// The identity is computed once per TLS connection and kept on the socket:
// parsing a certificate costs far more than serving a request.
const IDENTITY = Symbol('openkes.identity')
type IdentifiedSocket = TLSSocket & { [IDENTITY]?: string }

// TLS 1.3, and TLS 1.2 only with forward-secret AEAD suites (API-CONTRACT.md §1).
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

// An idle connection is closed after this long.
const IDLE_TIMEOUT_MS = 120_000

/**
 * Starts OpenKES for a validated configuration: opens the key store, creates
 * the configured keys that are missing, and serves the API over mutual TLS
 * (HTTP/2 and HTTP/1.1 on one port, by ALPN).
 */
export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const errorLog = new ErrorLog({ enabled: config.log.error, sink: opts.errorSink })
  const [key, cert, ca] = await Promise.all([
    readFile(config.tls.keyFile),
    readFile(config.tls.certFile),
    config.tls.caFile === undefined ? undefined : readFile(config.tls.caFile),
  ])
  const store = opts.store ?? (await openFsStore(config.keystore.path))
  const keys = new KeyRing(store, config.cache, errorLog)
  const access = new AccessControl({
    adminIdentity: config.adminIdentity,
    policies: config.policies,
    store,
    errorLog,
  })
  const state: ServerState = { version: VERSION, keys, access, errorLog }
  await createConfiguredKeys(config, keys)

  const server = createSecureServer({
    allowHTTP1: true,
    key,
    cert,
    passphrase: config.tls.password,
    ca,
    requestCert: true,
    // Without a CA the public key is the credential (as KES --auth=off), so the
    // chain is not verified; with one, client certificates must chain to it.
    rejectUnauthorized: ca !== undefined,
    minVersion: 'TLSv1.2',
    ciphers: CIPHERS,
    honorCipherOrder: true,
  })
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('secureConnection', (socket: IdentifiedSocket) => {
    const peer = socket.getPeerX509Certificate()
    if (peer === undefined) {
      // Node can't fail the handshake for a missing certificate without also
      // verifying the chain, so the connection is dropped before any request.
      errorLog.error(`tls: ${socket.remoteAddress ?? 'client'}: no client certificate`)
      socket.destroy()
      return
    }
    socket[IDENTITY] = identityOfCertificate(peer)
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy())
  })
  server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    errorLog.error(`tls: handshake with ${socket.remoteAddress ?? 'client'} failed: ${err.message}`)
  })
  server.on('sessionError', (err: Error) => errorLog.error(`http2: session error: ${err.message}`))

  const router = createRouter(state, {
    identityOf: (req: RouterRequest) => (req as unknown as { socket?: IdentifiedSocket }).socket?.[IDENTITY],
    onComplete: opts.onComplete,
  })
  server.on('request', router)

  const address = parseListenAddress(config.address)
  await listen(server, address.host, address.port)
  const bound = server.address()
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port

  let closing: Promise<void> | undefined
  return {
    host: address.host,
    port,
    state,
    close(graceMs = 5_000) {
      closing ??= shutdown(server, sockets, graceMs).finally(async () => {
        keys.close()
        access.close()
        if (opts.store === undefined) await store.close()
      })
      return closing
    },
  }
}

async function createConfiguredKeys(config: Config, keys: KeyRing): Promise<void> {
  for (const name of config.keys) {
    try {
      await keys.create(name, SecretKey.generate('AES256'))
    } catch (err) {
      if (err !== ErrKeyExists) throw new Error(`cannot create key '${name}': ${describe(err)}`, { cause: err })
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

async function shutdown(server: Http2SecureServer, sockets: Set<Socket>, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  // Idle keep-alive connections would hold close() open: end them now; busy
  // ones get the grace period to finish what they are doing.
  for (const socket of sockets) socket.end()
  let timer: NodeJS.Timeout | undefined
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs)
    timer.unref()
  })
  await Promise.race([closed, grace])
  clearTimeout(timer)
  for (const socket of sockets) socket.destroy()
  await closed
}
