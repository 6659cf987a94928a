// Raw HTTP/1.1 over a real mTLS connection, byte for byte: the tests of the HTTP/1.1 fast path
// write requests exactly as given (several in one write, one split over two) and read the
// responses off the wire, so nothing between the test and the server tidies either up.
import tls from 'node:tls'
import type { Client, TestEnv } from './harness.js'

/** One response as it came off the wire. */
export interface RawResponse {
  readonly status: number
  readonly reason: string
  /** Header lines in order, names lowercased. */
  readonly headerList: ReadonlyArray<readonly [string, string]>
  readonly body: Buffer
}

/** The values of header `name` (lowercase) of a response. */
export function headerValues(res: RawResponse, name: string): string[] {
  return res.headerList.filter(([n]) => n === name).map(([, v]) => v)
}

/** The one value of header `name`, undefined when absent; throws when it is repeated. */
export function header(res: RawResponse, name: string): string | undefined {
  const values = headerValues(res, name)
  if (values.length > 1) throw new Error(`header ${name} repeated: ${JSON.stringify(values)}`)
  return values[0]
}

/** The body parsed as JSON, or the text when it is not JSON. */
export function bodyOf(res: RawResponse): unknown {
  const text = res.body.toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const WAIT_MS = 15_000

/**
 * A raw HTTP/1.1 connection as `client` (no certificate when undefined). Responses are read in
 * order with next(); closed() resolves when the server has ended the connection.
 */
export class RawConnection {
  readonly socket: tls.TLSSocket
  #buffer = Buffer.alloc(0)
  #ended = false
  #wake: (() => void) | undefined
  readonly #closed: Promise<void>

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket
    socket.on('data', (c: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, c])
      this.#wake?.()
    })
    socket.on('error', () => {})
    this.#closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#ended = true
        this.#wake?.()
        resolve()
      }),
    )
  }

  static open(env: TestEnv, client: Client | undefined): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect(
        {
          host: '127.0.0.1',
          port: env.port,
          servername: 'localhost',
          ca: env.serverCert.certPem,
          ALPNProtocols: ['http/1.1'],
          ...(client === undefined ? {} : { cert: client.cert.certPem, key: client.cert.keyPem }),
        },
        () => resolve(new RawConnection(socket)),
      )
      socket.once('error', reject)
    })
  }

  /** Writes `bytes` in one write. */
  write(bytes: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err == null ? resolve() : reject(err))))
  }

  /** Reads the next response (skipping 1xx interim ones); `head`: it answers a HEAD (no body). */
  async next(head = false): Promise<RawResponse> {
    const until = Date.now() + WAIT_MS
    for (;;) {
      const parsed = parseResponse(this.#buffer, head)
      if (parsed !== undefined) {
        this.#buffer = this.#buffer.subarray(parsed.used)
        if (parsed.response.status >= 100 && parsed.response.status < 200) continue
        return parsed.response
      }
      if (this.#ended) throw new Error(`connection closed before a whole response; got ${JSON.stringify(this.#buffer.toString('latin1'))}`)
      if (Date.now() > until) throw new Error(`no whole response within ${WAIT_MS} ms; got ${JSON.stringify(this.#buffer.toString('latin1'))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, until - Date.now()))
        this.#wake = () => {
          clearTimeout(timer)
          this.#wake = undefined
          resolve()
        }
      })
    }
  }

  /** Resolves once the server has closed the connection (rejects after `ms`); returns what was left unread. */
  async closed(ms = WAIT_MS): Promise<Buffer> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the server did not close the connection within ${ms} ms`)), ms)
    })
    try {
      await Promise.race([this.#closed, timeout])
    } finally {
      clearTimeout(timer)
    }
    return this.#buffer
  }

  get isClosed(): boolean {
    return this.#ended
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** Sends `bytes` in one write on a connection of its own and reads one response. */
export async function exchange(env: TestEnv, client: Client, bytes: string | Buffer, head = false): Promise<RawResponse> {
  const conn = await RawConnection.open(env, client)
  try {
    await conn.write(bytes)
    return await conn.next(head)
  } finally {
    conn.destroy()
  }
}

/** Parses one whole response at the start of `buf` (Content-Length, chunked, or none), or undefined. */
function parseResponse(buf: Buffer, head: boolean): { response: RawResponse; used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const lines = buf.toString('latin1', 0, end).split('\r\n')
  const m = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(lines[0] ?? '')
  if (m === null) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0])}`)
  const status = Number(m[1])
  const headerList = lines.slice(1).map((l): [string, string] => {
    const colon = l.indexOf(':')
    return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()]
  })
  const start = end + 4
  const get = (n: string): string | undefined => headerList.find(([k]) => k === n)?.[1]
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { response: { status, reason: m[2] ?? '', headerList, body: Buffer.alloc(0) }, used: start }
  }
  if (get('transfer-encoding')?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = []
    let at = start
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at)
      if (lineEnd < 0) return undefined
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16)
      if (size === 0) {
        // Trailer lines (maybe none), then the empty line.
        const after = lineEnd + 2
        if (buf.length < after + 2) return undefined
        const trailersEnd = buf.indexOf('\r\n\r\n', lineEnd)
        const done = buf.toString('latin1', after, after + 2) === '\r\n' ? after + 2 : trailersEnd < 0 ? -1 : trailersEnd + 4
        if (done < 0) return undefined
        return { response: { status, reason: m[2] ?? '', headerList, body: Buffer.concat(parts) }, used: done }
      }
      if (buf.length < lineEnd + 2 + size + 2) return undefined
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
    }
  }
  const length = Number(get('content-length') ?? 0)
  if (buf.length < start + length) return undefined
  return { response: { status, reason: m[2] ?? '', headerList, body: buf.subarray(start, start + length) }, used: start + length }
}

/** A request as bytes: the request line, `Host: localhost` first, the header lines, the body. */
export function request(requestLine: string, headerLines: readonly string[] = [], body: string | Buffer = ''): Buffer {
  const head = [requestLine, 'Host: localhost', ...headerLines].join('\r\n') + '\r\n\r\n'
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)])
}

/** A POST of `body` (a JSON value, or raw text) with its exact Content-Length. */
export function post(target: string, body: unknown, headerLines: readonly string[] = []): Buffer {
  const bytes = typeof body === 'string' || Buffer.isBuffer(body) ? Buffer.from(body) : Buffer.from(JSON.stringify(body))
  return request(`POST ${target} HTTP/1.1`, [`Content-Length: ${bytes.length}`, ...headerLines], bytes)
}
