// Helpers for the tests of the server's edge: raw connections, HTTP/2
// sessions with streams the test drives by hand, and bounded waits.
import { mkdtemp, readFile, readdir, stat } from 'node:fs/promises'
import http2 from 'node:http2'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseWorkers } from '../../src/cli/server.js'
import { PROBE_DIR_ENV } from '../support/memory-probe.js'
import type { ProbeSample } from '../support/memory-probe.js'
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
  /**
   * With `memoryProbe`: what its processes (the primary and every worker) hold together, from
   * their latest probe (test/support/memory-probe.ts: live memory after a GC, and RSS).
   */
  held(): Promise<ProbeSample>
}

/** How to start a child server. */
export interface ChildServerOptions {
  /**
   * Load test/support/memory-probe.ts into every process of the server, so
   * held() reports what it holds after a GC. Also pins V8's young generation to 16 MiB
   * semi-spaces (--max-semi-space-size=16), the size Node 20 picks on a machine with more than
   * 2 GiB: Node 22 and later size it from the machine's memory (up to 64 MiB here), which moves
   * the resident size by up to 96 MiB per process without the server holding a byte more, so
   * an RSS bound would mean something else on every Node.js version and machine.
   */
  readonly memoryProbe?: boolean
}

const PROBE = fileURLToPath(new URL('../support/memory-probe.js', import.meta.url))

/** Starts `openkes server` for `yamlBody` (as TestEnv.start writes it) and points `env`'s clients at it. */
export async function startChildServer(env: TestEnv, yamlBody: string, opts: ChildServerOptions = {}): Promise<ChildServer> {
  const { startCli } = await import('../cli/run.js')
  const file = await env.writeConfig(yamlBody)
  const probeDir = opts.memoryProbe === true ? await mkdtemp(path.join(env.dir, 'memory-probe-')) : undefined
  const childEnv =
    probeDir === undefined
      ? process.env
      : {
          ...process.env,
          [PROBE_DIR_ENV]: probeDir,
          NODE_OPTIONS: [process.env['NODE_OPTIONS'] ?? '', '--max-semi-space-size=16', `--import=${PROBE}`].join(' ').trim(),
        }
  const server = startCli(['server', '--config', file], { env: childEnv })
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
  // The primary and each worker (--workers defaults to the number of CPUs; one is no primary).
  const workers = parseWorkers(undefined)
  const processes = workers > 1 ? workers + 1 : 1
  const probeFiles = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f))
  const held = async (): Promise<ProbeSample> => {
    if (probeDir === undefined) throw new Error('held(): start the server with memoryProbe')
    // Samples taken after this call: every process probes again within its PROBE_MS (500 ms).
    const asked = Date.now()
    await waitFor('a fresh memory probe of every server process', async () => {
      const files = await probeFiles(probeDir)
      const times = await Promise.all(files.map(async (f) => (await stat(f)).mtimeMs))
      return times.length === processes && times.every((t) => t > asked)
    })
    const files = await probeFiles(probeDir)
    let heldBytes = 0
    let rssBytes = 0
    for (const f of files) {
      const sample: unknown = JSON.parse(await readFile(f, 'utf8'))
      if (typeof sample !== 'object' || sample === null || !('heldBytes' in sample) || !('rssBytes' in sample)) throw new Error(`bad probe ${f}`)
      heldBytes += Number(sample.heldBytes)
      rssBytes += Number(sample.rssBytes)
    }
    if (files.length !== processes) throw new Error(`${files.length} of the server's ${processes} processes reported to the memory probe`)
    return { heldBytes, rssBytes }
  }
  if (probeDir !== undefined) {
    try {
      await waitFor('every server process to report to the memory probe', async () => (await probeFiles(probeDir)).length === processes, 30_000)
    } catch (err) {
      await server.stop('SIGKILL')
      throw err
    }
  }
  return {
    port,
    held,
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
