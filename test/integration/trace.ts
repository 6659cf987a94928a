// A reader of the live log streams, for tests.
import http2 from 'node:http2'
import https from 'node:https'
import type { Client, TestEnv } from './harness.js'

/** A connected trace stream and the lines it received so far. */
export class TraceReader {
  readonly lines: string[] = []
  readonly headers: Record<string, string | string[] | undefined>
  readonly status: number
  readonly #close: () => void
  #waiters: Array<() => void> = []
  #partial = ''

  private constructor(status: number, headers: Record<string, string | string[] | undefined>, close: () => void) {
    this.status = status
    this.headers = headers
    this.#close = close
  }

  /** Opens `path` (a trace endpoint) as `client` over HTTP/1.1 on a connection of its own; resolves once the headers arrived. */
  static open(env: TestEnv, client: Client, path: string): Promise<TraceReader> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: env.port,
          path,
          agent: false,
          cert: client.cert.certPem,
          key: client.cert.keyPem,
          ca: env.serverCert.certPem,
          servername: 'localhost',
        },
        (res) => {
          const reader = new TraceReader(res.statusCode ?? 0, res.headers, () => req.destroy())
          res.on('data', (c: Buffer) => reader.#push(c.toString()))
          res.on('error', () => {})
          resolve(reader)
        },
      )
      req.on('error', reject)
      req.end()
    })
  }

  /** Opens a trace over HTTP/2 and never reads from it: a stuck reader. */
  static stuck(env: TestEnv, client: Client, path: string): Promise<() => void> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`https://localhost:${env.port}`, {
        cert: client.cert.certPem,
        key: client.cert.keyPem,
        ca: env.serverCert.certPem,
        host: '127.0.0.1',
        // A small window, so the server's side of the stream backs up quickly.
        settings: { initialWindowSize: 1024 },
      })
      session.on('error', () => {})
      const stream = session.request({ ':path': path })
      stream.on('error', () => {})
      stream.on('response', () => {
        stream.pause()
        resolve(() => session.destroy())
      })
      stream.on('close', () => reject(new Error('stream closed')))
    })
  }

  #push(text: string): void {
    this.#partial += text
    const parts = this.#partial.split('\n')
    this.#partial = parts.pop() ?? ''
    this.lines.push(...parts)
    for (const w of this.#waiters.splice(0)) w()
  }

  /** Resolves once at least `n` lines arrived; rejects after `timeoutMs` so a missing line fails the test instead of hanging it. */
  waitForLines(n: number, timeoutMs = 20_000): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} trace lines; got ${this.lines.length}: ${this.lines.join('\n')}`)), timeoutMs)
      const check = (): void => {
        if (this.lines.length >= n) {
          clearTimeout(timer)
          resolve(this.lines.slice(0, n))
        } else this.#waiters.push(check)
      }
      check()
    })
  }

  /** The lines parsed as JSON. */
  events<T>(): T[] {
    return this.lines.map((l) => JSON.parse(l) as T)
  }

  close(): void {
    this.#close()
  }
}
