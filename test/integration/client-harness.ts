// Helpers for the client library's tests: clients for a TestEnv, ports with
// nothing behind them, a TCP server that drops every connection (and counts
// them), and a tiny local HTTPS/HTTP2 server that answers whatever a test says.
import { writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import https from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import net from 'node:net'
import path from 'node:path'
import type { Socket } from 'node:net'
import { KesClient } from '../../src/client/kes-client.js'
import type { KesClientOptions } from '../../src/client/api.js'
import { createCertificate } from '../../src/x509/certificate.js'
import type { IssuedCertificate } from '../../src/x509/certificate.js'
import type { Client, TestEnv } from './harness.js'

/** The URL of a local port. */
export function endpointOf(port: number): string {
  return `https://127.0.0.1:${port}`
}

/** A client of `env`'s server as `who`, with in-memory PEM and the server's certificate as CA. */
export function clientFor(env: TestEnv, who: Client, extra: Partial<KesClientOptions> = {}): KesClient {
  return new KesClient({
    endpoints: [endpointOf(env.port)],
    cert: who.cert.certPem,
    key: who.cert.keyPem,
    ca: env.serverCert.certPem,
    ...extra,
  })
}

/** A port on 127.0.0.1 that nothing listens on (bound once, then released). */
export async function deadPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (typeof address !== 'object' || address === null) throw new Error('no address')
  return address.port
}

/**
 * Gives `env`'s server (before it starts) a certificate of its own subject: a client's CA
 * bundle may then hold several servers' self-signed certificates, which OpenSSL tells
 * apart by subject name only.
 */
export async function useOwnServerCertificate(env: TestEnv, commonName: string): Promise<IssuedCertificate> {
  const cert = serverCertificate(commonName)
  await writeFile(path.join(env.dir, 'server.key'), cert.keyPem, { mode: 0o600 })
  await writeFile(path.join(env.dir, 'server.cert'), cert.certPem)
  return cert
}

let serverCount = 0

function serverCertificate(commonName = `canned-${++serverCount}`): IssuedCertificate {
  return createCertificate('ecdsa-p256', {
    commonName,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    extKeyUsage: ['serverAuth'],
  })
}

/** A TCP server that accepts every connection and destroys it at once, counting them. */
export class DroppingServer {
  readonly #server: net.Server
  connections = 0

  private constructor(server: net.Server) {
    this.#server = server
    server.on('connection', (socket: Socket) => {
      this.connections++
      socket.destroy()
    })
  }

  static async start(): Promise<DroppingServer> {
    const dropping = new DroppingServer(net.createServer())
    await new Promise<void>((resolve) => dropping.#server.listen(0, '127.0.0.1', resolve))
    return dropping
  }

  get port(): number {
    const address = this.#server.address()
    if (typeof address !== 'object' || address === null) throw new Error('not listening')
    return address.port
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }
}

/** The part of a response (HTTP/1.1 or HTTP/2) that canned handlers use. */
export interface CannedResponse {
  writeHead(status: number, headers?: Record<string, string | number>): unknown
  write(chunk: string | Uint8Array): unknown
  end(chunk?: string | Uint8Array): unknown
  addTrailers(trailers: Record<string, string>): void
}

/** What a canned server's handler gets and answers through. */
export type CannedHandler = (req: { readonly url: string; readonly method: string }, res: CannedResponse) => void

/** A local HTTPS server with a fresh certificate: HTTP/2 with HTTP/1.1 fallback, or HTTP/1.1 only. */
export class CannedServer {
  readonly cert: IssuedCertificate
  readonly #server: http2.Http2SecureServer | https.Server
  readonly #sockets = new Set<Socket>()
  /** `httpVersion` and `method path` of every request, in order. */
  readonly requests: { version: string; target: string }[] = []
  /** TCP connections accepted so far. */
  connections = 0

  private constructor(cert: IssuedCertificate, server: http2.Http2SecureServer | https.Server) {
    this.cert = cert
    this.#server = server
    server.on('connection', (socket: Socket) => {
      this.connections++
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
  }

  /** Starts a server on 127.0.0.1:0 that answers with `handler`. */
  static async start(handler: CannedHandler, protocol: 'h2' | 'http1' = 'h2'): Promise<CannedServer> {
    const cert = serverCertificate()
    const tlsOptions = { key: cert.keyPem, cert: cert.certPem, requestCert: true, rejectUnauthorized: false }
    const server = protocol === 'h2' ? http2.createSecureServer({ ...tlsOptions, allowHTTP1: true }) : https.createServer(tlsOptions)
    const canned = new CannedServer(cert, server)
    server.on('request', (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
      const method = req.method ?? ''
      const url = req.url ?? ''
      canned.requests.push({ version: req.httpVersion, target: `${method} ${url}` })
      handler({ method, url }, res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return canned
  }

  get port(): number {
    const address = this.#server.address()
    if (typeof address !== 'object' || address === null) throw new Error('not listening')
    return address.port
  }

  get endpoint(): string {
    return endpointOf(this.port)
  }

  /** Drops every open connection (the server keeps listening). */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy()
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.dropConnections()
    await closed
  }
}

/** Options of a KesClient for a canned server: a throwaway client certificate, the server's certificate as CA. */
export function cannedClientOptions(server: CannedServer, extra: Partial<KesClientOptions> = {}): KesClientOptions {
  const me = createCertificate('ed25519', { commonName: 'client', extKeyUsage: ['clientAuth'] })
  return { endpoints: [server.endpoint], cert: me.certPem, key: me.keyPem, ca: server.cert.certPem, ...extra }
}

/** Answers JSON. */
export function sendJson(res: CannedResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/**
 * Canned servers and clients a test suite starts, all closed by `closeAll`
 * (call it from the suite's `after`).
 */
export function trackedResources(): {
  start: (...args: Parameters<typeof CannedServer.start>) => Promise<CannedServer>
  client: (options: KesClientOptions) => KesClient
  closeAll: () => Promise<void>
} {
  const servers: CannedServer[] = []
  const clients: KesClient[] = []
  return {
    start: async (...args) => {
      const s = await CannedServer.start(...args)
      servers.push(s)
      return s
    },
    client: (options) => {
      const c = new KesClient(options)
      clients.push(c)
      return c
    },
    closeAll: async () => {
      await Promise.all(clients.map((c) => c.close()))
      await Promise.all(servers.map((s) => s.close()))
    },
  }
}
