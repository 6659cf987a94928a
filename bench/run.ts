// `npm run bench`: OpenKES under load, against a baseline server in the same run.
//
// Both servers run in their own processes, started the same way; the load comes
// from separate load-generator processes (bench/load-worker.ts), never from a
// server's event loop. Every scenario runs on both servers in interleaved rounds
// (the order alternates per round), and the headline figures are OpenKES ÷
// baseline, the median over the rounds: on a shared machine absolute numbers do
// not compare between runs, ratios from the same run do.
//
// Server CPU per request is the server process's own CPU time (user + system,
// all threads, from /proc/<pid>/stat) over the measured window ÷ requests.
//
// Flags: --short (1 round, ~1 s per scenario, a small store: checks that everything
// works and that no request fails; CI runs it), --seconds N, --warmup N, --rounds N,
// --keys N (store size of the store-size scenario), --out FILE (JSON report),
// --only a,b (scenario names), --load-procs N, --cpu-prof DIR (profile the OpenKES server).
import { fork, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatKeyFile } from '../src/crypto/key-version.js'
import { SecretKey } from '../src/crypto/secret-key.js'
import { createCertificate } from '../src/x509/certificate.js'
import type { Job, Op, Transport, WorkerMessage, WorkerResult } from './protocol.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const OPENKES_MAIN = path.join(HERE, '..', 'src', 'main.js')
const BASELINE_MAIN = path.join(HERE, 'baseline-server.js')
const WORKER_MAIN = path.join(HERE, 'load-worker.js')
const CLOCK_TICKS_PER_SECOND = 100 // USER_HZ: 100 on every Linux architecture Node.js supports

interface Options {
  readonly short: boolean
  readonly seconds: number
  readonly warmup: number
  readonly rounds: number
  readonly storeKeys: number
  readonly out: string
  readonly only: readonly string[] | undefined
  readonly loadProcs: number
  readonly cpuProf: string | undefined
}

function parseOptions(argv: readonly string[]): Options {
  const flags = new Map<string, string>()
  let short = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--short') short = true
    else if (a.startsWith('--')) flags.set(a.slice(2), argv[++i] ?? '')
    else throw new Error(`bench: unexpected argument '${a}'`)
  }
  const num = (name: string, dflt: number): number => {
    const v = flags.get(name)
    if (v === undefined) return dflt
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`bench: --${name} must be a positive number`)
    return n
  }
  return {
    short,
    seconds: num('seconds', short ? 1 : 3),
    warmup: num('warmup', short ? 0.3 : 1),
    rounds: Math.round(num('rounds', short ? 1 : 3)),
    storeKeys: Math.round(num('keys', short ? 1_000 : 100_000)),
    out: flags.get('out') ?? 'bench-report.json',
    only: flags.get('only')?.split(','),
    // The machine's cores minus the one the server takes, at least one.
    loadProcs: Math.round(num('load-procs', Math.max(1, os.availableParallelism() - 1))),
    cpuProf: flags.get('cpu-prof'),
  }
}

/** One row of the report: an op over a transport at a concurrency. */
interface Scenario {
  readonly name: string
  readonly op: Op
  readonly transport: Transport
  readonly concurrency: number
  /** Scenarios that only OpenKES can run (the store-size ones). */
  readonly openkesOnly?: boolean
  /** The key names to use, on OpenKES; the baseline has one key. */
  readonly keyNames?: readonly string[]
}

const TRANSPORTS: ReadonlyArray<{ label: string; transport: Transport; concurrency: number }> = [
  { label: 'h1 c=1', transport: 'h1', concurrency: 1 },
  { label: 'h1 c=16', transport: 'h1', concurrency: 16 },
  { label: 'h1 c=64', transport: 'h1', concurrency: 64 },
  { label: 'h2 64 streams/1 conn', transport: 'h2', concurrency: 64 },
  { label: 'new conn/request c=16', transport: 'newconn', concurrency: 16 },
  { label: 'resumed conn/request c=16', transport: 'newconn-resume', concurrency: 16 },
]

function scenarios(): Scenario[] {
  const out: Scenario[] = []
  for (const op of ['generate', 'decrypt'] as const) {
    for (const t of TRANSPORTS) out.push({ name: `${op} ${t.label}`, op, transport: t.transport, concurrency: t.concurrency })
  }
  for (const op of ['encrypt', 'mixed', 'version'] as const) {
    out.push({ name: `${op} h1 c=16`, op, transport: 'h1', concurrency: 16 })
    out.push({ name: `${op} h2 64 streams/1 conn`, op, transport: 'h2', concurrency: 64 })
  }
  return out
}

// ---- processes ----

/** A server process of the run. */
interface ServerProcess {
  readonly name: 'openkes' | 'baseline'
  readonly child: ChildProcess
  readonly port: number
}

function startProcess(name: ServerProcess['name'], args: readonly string[], listening: RegExp): Promise<ServerProcess> {
  // Both servers are started exactly the same way (same session and process group
  // as the bench, no setsid): the scheduler must not treat them differently.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)))
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s: ${stderr}`)), 30_000)
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const m = listening.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve({ name, child, port: Number(m[1]) })
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited with ${code}: ${stderr}`))
    })
  })
}

async function stopProcess(p: ServerProcess): Promise<void> {
  if (p.child.exitCode !== null) return
  const exited = new Promise<void>((resolve) => p.child.once('exit', () => resolve()))
  p.child.kill('SIGTERM')
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

/** The process's CPU time so far (user + system, every thread), in µs. */
async function cpuMicros(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15)
  return (ticks * 1e6) / CLOCK_TICKS_PER_SECOND
}

/** Resident memory now and at its peak, in MB, from /proc/<pid>/status. */
async function memoryMb(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN)
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---- one measurement ----

/** What one scenario measured on one server. */
interface Measurement {
  readonly server: ServerProcess['name']
  readonly scenario: string
  readonly round: number
  readonly requests: number
  readonly errors: number
  readonly errorKinds: Record<string, number>
  readonly resumed: number
  readonly rps: number
  readonly p50Us: number
  readonly p90Us: number
  readonly p99Us: number
  readonly maxUs: number
  readonly cpuUsPerRequest: number
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number
}

async function measure(
  server: ServerProcess,
  s: Scenario,
  round: number,
  opts: Options,
  tlsMaterial: Job['tls'],
): Promise<Measurement> {
  // Split the connections over the load processes; one HTTP/2 connection stays in one process.
  const procs = s.transport === 'h2' ? 1 : Math.min(opts.loadProcs, s.concurrency)
  const keyNames = server.name === 'openkes' && s.keyNames !== undefined ? s.keyNames : ['bench-key']
  const workers = Array.from({ length: procs }, (_, i) => {
    const share = Math.floor(s.concurrency / procs) + (i < s.concurrency % procs ? 1 : 0)
    const child = fork(WORKER_MAIN, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const job: Job = { port: server.port, tls: tlsMaterial, op: s.op, transport: s.transport, concurrency: share, keyNames }
    const messages: WorkerMessage[] = []
    let wake: (() => void) | undefined
    child.on('message', (m: WorkerMessage) => {
      messages.push(m)
      wake?.()
    })
    child.once('exit', () => wake?.())
    const next = async (): Promise<WorkerMessage> => {
      const deadline = Date.now() + 60_000
      while (messages.length === 0) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`load process ended without answering (${s.name})`)
        await new Promise<void>((r) => {
          wake = r
          setTimeout(r, 1000)
        })
      }
      return messages.shift() as WorkerMessage
    }
    child.send(job)
    return { child, next }
  })
  try {
    for (const w of workers) {
      const m = await w.next()
      if (m.kind === 'failed') throw new Error(`${server.name}: ${s.name}: ${m.message}`)
    }
    await sleep(opts.warmup * 1000)
    const cpu0 = await cpuMicros(server.child.pid as number)
    for (const w of workers) w.child.send('measure')
    await sleep(opts.seconds * 1000)
    for (const w of workers) w.child.send('stop')
    const cpu1 = await cpuMicros(server.child.pid as number)
    const results: WorkerResult[] = []
    for (const w of workers) {
      const m = await w.next()
      if (m.kind !== 'result') throw new Error(`${server.name}: ${s.name}: ${m.kind === 'failed' ? m.message : 'no result'}`)
      results.push(m)
    }
    const requests = results.reduce((n, r) => n + r.requests, 0)
    const seconds = Math.max(...results.map((r) => r.seconds))
    const all = new Float64Array(requests)
    let at = 0
    for (const r of results) {
      all.set(r.latenciesUs, at)
      at += r.latenciesUs.length
    }
    all.sort()
    const errorKinds: Record<string, number> = {}
    for (const r of results) for (const [k, v] of Object.entries(r.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + v
    return {
      server: server.name,
      scenario: s.name,
      round,
      requests,
      errors: results.reduce((n, r) => n + r.errors, 0),
      errorKinds,
      resumed: results.reduce((n, r) => n + r.resumed, 0),
      rps: requests / seconds,
      p50Us: percentile(all, 50),
      p90Us: percentile(all, 90),
      p99Us: percentile(all, 99),
      maxUs: all.length === 0 ? NaN : (all[all.length - 1] as number),
      cpuUsPerRequest: requests === 0 ? NaN : (cpu1 - cpu0) / requests,
    }
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill()
  }
}

// ---- the store ----

async function writeKeys(dir: string, names: readonly string[]): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < names.length) {
        const name = names[next++] as string
        const file = formatKeyFile(SecretKey.generate('AES256'))
        await writeFile(path.join(dir, name), file, { mode: 0o600 })
        file.fill(0)
      }
    }),
  )
}

// ---- report ----

function median(xs: readonly number[]): number {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

interface Row {
  readonly scenario: string
  readonly openkes: Summary
  readonly baseline: Summary | undefined
  /** Medians over the rounds of OpenKES ÷ baseline (per round). */
  readonly ratio: { rps: number; p99: number; cpuPerRequest: number } | undefined
}

interface Summary {
  readonly rps: number
  readonly p50Us: number
  readonly p90Us: number
  readonly p99Us: number
  readonly maxUs: number
  readonly cpuUsPerRequest: number
  readonly requests: number
  readonly errors: number
  readonly resumed: number
}

function summarize(ms: readonly Measurement[]): Summary {
  return {
    rps: median(ms.map((m) => m.rps)),
    p50Us: median(ms.map((m) => m.p50Us)),
    p90Us: median(ms.map((m) => m.p90Us)),
    p99Us: median(ms.map((m) => m.p99Us)),
    maxUs: Math.max(...ms.map((m) => m.maxUs)),
    cpuUsPerRequest: median(ms.map((m) => m.cpuUsPerRequest)),
    requests: ms.reduce((n, m) => n + m.requests, 0),
    errors: ms.reduce((n, m) => n + m.errors, 0),
    resumed: ms.reduce((n, m) => n + m.resumed, 0),
  }
}

function buildRows(all: readonly Measurement[], list: readonly Scenario[]): Row[] {
  return list.map((s) => {
    const mine = all.filter((m) => m.scenario === s.name && m.server === 'openkes')
    const theirs = all.filter((m) => m.scenario === s.name && m.server === 'baseline')
    const perRound = (f: (m: Measurement) => number): number =>
      median(mine.map((m) => f(m) / f(theirs.find((t) => t.round === m.round) as Measurement)))
    return {
      scenario: s.name,
      openkes: summarize(mine),
      baseline: theirs.length === 0 ? undefined : summarize(theirs),
      ratio: theirs.length === 0 ? undefined : { rps: perRound((m) => m.rps), p99: perRound((m) => m.p99Us), cpuPerRequest: perRound((m) => m.cpuUsPerRequest) },
    }
  })
}

function formatTable(rows: readonly Row[]): string {
  const f0 = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(0))
  const f2 = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(2))
  const header = ['scenario', 'req/s', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs', 'CPU µs/req', 'errors', 'base req/s', 'base CPU µs/req', '÷base req/s', '÷base CPU/req', '÷base p99']
  const lines = rows.map((r) => [
    r.scenario,
    f0(r.openkes.rps),
    f0(r.openkes.p50Us),
    f0(r.openkes.p90Us),
    f0(r.openkes.p99Us),
    f0(r.openkes.maxUs),
    f2(r.openkes.cpuUsPerRequest),
    String(r.openkes.errors + (r.baseline?.errors ?? 0)),
    f0(r.baseline?.rps),
    f2(r.baseline?.cpuUsPerRequest),
    f2(r.ratio?.rps),
    f2(r.ratio?.cpuPerRequest),
    f2(r.ratio?.p99),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)))
  const fmt = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')
  return [fmt(header), ...lines.map(fmt)].join('\n')
}

// ---- main ----

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2))
  let list = scenarios()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-bench-'))
  const storeDir = path.join(dir, 'keys')
  await mkdir(storeDir, { mode: 0o700 })
  const smallStore = Array.from({ length: 10 }, (_, i) => `store-${i}`)
  const bigStore = Array.from({ length: opts.storeKeys - smallStore.length }, (_, i) => `store-${i + smallStore.length}`)
  // Ten keys picked from the whole big store, so the big store's keys are read from disk once.
  const bigPick = Array.from({ length: 10 }, (_, i) => bigStore[Math.floor(((i + 0.5) * bigStore.length) / 10)] as string)
  const storeScenarios: Scenario[] = [
    { name: 'generate h1 c=16, 10 keys in the store', op: 'generate', transport: 'h1', concurrency: 16, openkesOnly: true, keyNames: smallStore },
    { name: `generate h1 c=16, ${opts.storeKeys} keys in the store`, op: 'generate', transport: 'h1', concurrency: 16, openkesOnly: true, keyNames: bigPick },
  ]
  if (opts.only !== undefined) list = list.filter((s) => opts.only?.some((o) => s.name.includes(o)))
  const runStore = opts.only === undefined || opts.only.some((o) => 'store'.includes(o) || o === 'store')

  const serverCert = createCertificate('ecdsa-p256', { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], extKeyUsage: ['serverAuth'] })
  const client = createCertificate('ed25519', { commonName: 'bench', extKeyUsage: ['clientAuth'] })
  await writeFile(path.join(dir, 'server.key'), serverCert.keyPem, { mode: 0o600 })
  await writeFile(path.join(dir, 'server.cert'), serverCert.certPem)
  await writeFile(
    path.join(dir, 'config.yml'),
    `address: 127.0.0.1:0\nadmin:\n  identity: ${client.identity}\ntls:\n  key: ./server.key\n  cert: ./server.cert\n` +
      `keystore:\n  fs:\n    path: ./keys\nkeys:\n- name: bench-key\n`,
  )
  await writeKeys(storeDir, smallStore)
  const tlsMaterial = { key: client.keyPem, cert: client.certPem, ca: serverCert.certPem }

  const nodeArgs = opts.cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.resolve(opts.cpuProf)]
  const servers: ServerProcess[] = []
  const measurements: Measurement[] = []
  const memory: Record<string, { idleRssMb: number; rssAfterMb: number; peakRssMb: number }> = {}
  try {
    servers.push(await startProcess('openkes', [...nodeArgs, OPENKES_MAIN, 'server', '--config', path.join(dir, 'config.yml')], /listening on https:\/\/127\.0\.0\.1:(\d+)/))
    servers.push(await startProcess('baseline', [BASELINE_MAIN, path.join(dir, 'server.key'), path.join(dir, 'server.cert')], /listening (\d+)/))
    await sleep(500)
    for (const s of servers) memory[s.name] = { idleRssMb: (await memoryMb(s.child.pid as number)).rss, rssAfterMb: NaN, peakRssMb: NaN }
    const [openkes, baseline] = servers as [ServerProcess, ServerProcess]
    console.log(
      `OpenKES bench: node ${process.version}, ${os.availableParallelism()} CPUs, ${opts.rounds} round(s), ${opts.seconds} s per run after ${opts.warmup} s warm-up, ` +
        `${opts.loadProcs} load process(es)${opts.short ? ' (short mode: checks only that it works)' : ''}`,
    )
    for (let round = 1; round <= opts.rounds; round++) {
      for (const s of list) {
        // Interleaved: the order of the two servers alternates per round.
        const order = round % 2 === 1 ? [openkes, baseline] : [baseline, openkes]
        for (const server of order) {
          const m = await measure(server, s, round, opts, tlsMaterial)
          measurements.push(m)
          const errs = m.errors === 0 ? '' : `  ERRORS ${m.errors} ${JSON.stringify(m.errorKinds)}`
          console.log(`  round ${round}  ${server.name.padEnd(8)}  ${s.name.padEnd(38)} ${m.rps.toFixed(0).padStart(7)} req/s  p99 ${m.p99Us.toFixed(0).padStart(6)} µs  ${m.cpuUsPerRequest.toFixed(1).padStart(6)} CPU µs/req${errs}`)
        }
      }
    }
    if (runStore) {
      const [small, big] = storeScenarios as [Scenario, Scenario]
      for (let round = 1; round <= opts.rounds; round++) {
        const m = await measure(openkes, small, round, opts, tlsMaterial)
        measurements.push(m)
        console.log(`  round ${round}  openkes   ${small.name.padEnd(38)} ${m.rps.toFixed(0).padStart(7)} req/s  p99 ${m.p99Us.toFixed(0).padStart(6)} µs`)
      }
      const t0 = performance.now()
      await writeKeys(storeDir, bigStore)
      console.log(`  (wrote ${bigStore.length} more key files in ${((performance.now() - t0) / 1000).toFixed(1)} s)`)
      for (let round = 1; round <= opts.rounds; round++) {
        const m = await measure(openkes, big, round, opts, tlsMaterial)
        measurements.push(m)
        console.log(`  round ${round}  openkes   ${big.name.padEnd(38)} ${m.rps.toFixed(0).padStart(7)} req/s  p99 ${m.p99Us.toFixed(0).padStart(6)} µs`)
      }
      list = [...list, ...storeScenarios]
    }
    for (const s of servers) {
      const mem = await memoryMb(s.child.pid as number)
      const entry = memory[s.name]
      if (entry !== undefined) Object.assign(entry, { rssAfterMb: mem.rss, peakRssMb: mem.peak })
    }
  } finally {
    for (const s of servers) await stopProcess(s)
    await rm(dir, { recursive: true, force: true })
  }

  const rows = buildRows(measurements, list)
  const errors = measurements.reduce((n, m) => n + m.errors, 0)
  console.log(`\nMedians over ${opts.rounds} round(s); ÷base = OpenKES ÷ baseline, per round, then the median (the headline figures).\n`)
  console.log(formatTable(rows))
  console.log('\nMemory (MB): ' + Object.entries(memory).map(([n, m]) => `${n} idle RSS ${m.idleRssMb.toFixed(0)}, after load ${m.rssAfterMb.toFixed(0)}, peak ${m.peakRssMb.toFixed(0)}`).join('; '))
  const report = {
    node: process.version,
    cpus: os.availableParallelism(),
    options: opts,
    rows,
    memory,
    measurements: measurements.map((m) => ({ ...m })),
    errors,
  }
  await writeFile(opts.out, JSON.stringify(report, null, 2) + '\n')
  console.log(`\nJSON report: ${opts.out}`)
  if (errors > 0) {
    console.error(`bench: ${errors} requests failed`)
    process.exitCode = 1
  }
  const empty = measurements.filter((m) => m.requests === 0)
  if (empty.length > 0) {
    console.error(`bench: no request completed in: ${empty.map((m) => `${m.server} ${m.scenario}`).join(', ')}`)
    process.exitCode = 1
  }
}

await main()
