// One TLS connection to a test server that asks who it is and reads the answer to the
// connection's end, offering a session ticket to resume: the resumption tests (one server
// and --workers) share it.
import tls from 'node:tls'
import type { IssuedCertificate } from '../../src/x509/certificate.js'
import { within } from '../support/within.js'
import type { TestEnv } from './harness.js'

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3'

/** What one connection saw: whether it resumed, who the server says we are, and the ticket it got. */
export interface Visit {
  readonly reused: boolean
  readonly status: number
  readonly identity: string | undefined
  readonly session: Buffer | undefined
}

/** Connects as `cert` (offering `session`, if any), asks who we are, and reads the answer to the connection's end. */
export function visit(env: TestEnv, cert: IssuedCertificate, version: TlsVersion, session?: Buffer): Promise<Visit> {
  const done = new Promise<Visit>((resolve, reject) => {
    let ticket: Buffer | undefined
    let data = ''
    let reused = false
    const socket = tls.connect({
      host: '127.0.0.1',
      port: env.port,
      servername: 'localhost',
      ca: env.serverCert.certPem,
      cert: cert.certPem,
      key: cert.keyPem,
      ALPNProtocols: ['http/1.1'],
      minVersion: version,
      maxVersion: version,
      session,
    })
    socket.on('session', (s: Buffer) => (ticket = s))
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused()
      socket.write('GET /v1/identity/self/describe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
    socket.setEncoding('utf8')
    socket.on('data', (c: string) => (data += c))
    socket.on('error', reject)
    socket.on('close', () => {
      const status = Number(data.slice(9, 12)) || 0
      const body = data.slice(data.indexOf('\r\n\r\n') + 4)
      let identity: string | undefined
      try {
        identity = (JSON.parse(body) as { identity?: string }).identity
      } catch {
        identity = undefined
      }
      resolve({ reused, status, identity, session: ticket })
    })
  })
  return within(done, 10_000, 'a TLS connection to end')
}
