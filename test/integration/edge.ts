// Helpers for the tests of the server's edge: raw connections, HTTP/2
// sessions with streams the test drives by hand, and bounded waits.
import http2 from 'node:http2'
import net from 'node:net'
import type { Client, TestEnv } from './harness.js'

/** Resolves once `check()` holds; rejects after `ms` (so a failure can't hang the run). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Resolves when `emitter` emits `event`; rejects after `ms`. */
export function eventWithin(emitter: NodeJS.EventEmitter, event: string, ms: number, what = event): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for: ${what}`)), ms)
    emitter.once(event, () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Parses one series value out of a Prometheus text exposition (0 when absent). */
export function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return 0
}

/** Scrapes /v1/metrics as `admin` (all families). */
export async function scrape(env: TestEnv, admin: Client): Promise<string> {
  const res = await env.request(admin, '/v1/metrics', { headers: { accept: 'text/plain;version=0.0.4' } })
  if (res.status !== 200) throw new Error(`metrics: ${res.status} ${res.text}`)
  return res.text
}

/** Opens `n` plain TCP connections from `localAddress` (a loopback address) that never say a word. */
export async function idleSockets(port: number, localAddress: string, n: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = []
  await Promise.all(
    Array.from({ length: n }, () => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress })
      s.on('error', () => {})
      s.resume() // so the server's close is seen
      sockets.push(s)
      return new Promise<void>((resolve) => {
        s.once('connect', () => resolve())
        s.once('close', () => resolve())
      })
    }),
  )
  return sockets
}

/** An HTTP/2 session of `client` (no certificate when `client` is undefined), connected or failed. */
export function h2Session(env: TestEnv, client: Client | undefined, opts: http2.SecureClientSessionOptions = {}): http2.ClientHttp2Session {
  const session = http2.connect(`https://localhost:${env.port}`, {
    ...(client === undefined ? {} : { cert: client.cert.certPem, key: client.cert.keyPem }),
    ca: env.serverCert.certPem,
    host: '127.0.0.1',
    servername: 'localhost',
    ...opts,
  })
  session.on('error', () => {})
  return session
}

/** The outcome of one HTTP/2 request: status and body, or how it failed (never rejects). */
export interface H2Outcome {
  readonly status: number
  readonly text: string
  readonly failed?: string
}

/** Collects the answer of an HTTP/2 stream; resolves with `failed` if the stream dies first or `ms` pass. */
export function h2Answer(stream: http2.ClientHttp2Stream, ms = 15_000): Promise<H2Outcome> {
  return new Promise((resolve) => {
    let status = 0
    const chunks: Buffer[] = []
    const timer = setTimeout(() => finish('timeout'), ms)
    const finish = (failed?: string): void => {
      clearTimeout(timer)
      resolve({ status, text: Buffer.concat(chunks).toString(), ...(failed === undefined ? {} : { failed }) })
    }
    stream.on('response', (h) => (status = Number(h[':status'])))
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => finish())
    stream.on('error', (e: Error) => finish(e.message))
    stream.on('close', () => finish('closed'))
  })
}

/** An `openkes server` child process serving `env`'s config (so its memory is its own). */
export interface ChildServer {
  readonly port: number
  stderr(): string
  /** Stops it (SIGTERM) and resolves with its exit code. */
  stop(): Promise<number | null>
  /** True while it runs. */
  alive(): boolean
}

/** Starts `openkes server` for `yamlBody` (as TestEnv.start writes it) and points `env`'s clients at it. */
export async function startChildServer(env: TestEnv, yamlBody: string): Promise<ChildServer> {
  const { startCli } = await import('../cli/run.js')
  const file = await env.writeConfig(yamlBody)
  const server = startCli(['server', '--config', file])
  let port: number
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`server did not start: ${server.stderr()}`)), 30_000).unref())
    const [, p] = await Promise.race([server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/), timeout])
    port = Number(p)
  } catch (err) {
    await server.stop('SIGKILL')
    throw err
  }
  env.useExternalPort(port)
  env.resetConnections()
  return {
    port,
    stderr: () => server.stderr(),
    alive: () => server.child.exitCode === null && server.child.signalCode === null,
    async stop() {
      const killer = setTimeout(() => server.child.kill('SIGKILL'), 15_000)
      try {
        return await server.stop()
      } finally {
        clearTimeout(killer)
      }
    },
  }
}

/** The child server's resident memory, from its own metrics. */
export async function serverRss(env: TestEnv, admin: Client): Promise<number> {
  return sample(await scrape(env, admin), 'process_resident_memory_bytes')
}
