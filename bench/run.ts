// `npm run bench`: OpenKES under load, against a baseline server in the same run.
//
// Every server runs in its own processes, all started the same way; the load comes
// from separate load-generator processes (bench/load-worker.ts), never from a
// server's event loop. Every scenario runs on each of its servers in interleaved
// rounds (the order rotates per round), and the headline figures are ratios
// between servers measured in the same round, the median over the rounds: on a
// shared machine absolute numbers do not compare between runs, ratios from the
// same run do.
//
// The scenario sets (bench/scenarios.ts): `main` OpenKES (one process, started with
// --workers 1) against the baseline; `store` OpenKES with 10 and with many keys in
// its store; `workers` `--workers 2` under both cluster distributions
// (NODE_CLUSTER_SCHED_POLICY rr and none) against one process; `ladder` baseline
// TLS+HTTP only, baseline with crypto, OpenKES: what each layer costs per request.
//
// Server CPU per request is the CPU time (user + system, all threads, from
// /proc/<pid>/stat) of every process of the server — a cluster's primary and all
// its workers — over the measured window ÷ requests. The server's processes are
// listed when it starts; if they differ at any measurement (a worker restarted),
// the bench stops with an error.
//
// Flags: --short (1 round, ~1 s per scenario, a small store: checks that everything
// works and that no request fails; CI runs it), --seconds N, --warmup N, --rounds N,
// --keys N (store size of the store-size scenario), --out FILE (JSON report),
// --only a,b (set names, or parts of scenario names), --load-procs N,
// --cpu-prof DIR (every one-process server writes a CPU profile into DIR/<server id>).
import { fork } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatKeyFile } from '../src/crypto/key-version.js'
import { SecretKey } from '../src/crypto/secret-key.js'
import { createCertificate } from '../src/x509/certificate.js'
import { cpuMicros, isRunning, memoryMb, processTree, startProcess, StartError, stopProcess } from './processes.js'
import type { ServerProcess } from './processes.js'
import type { Job, WorkerMessage, WorkerResult } from './protocol.js'
import {
  distributionRows,
  formatDistribution,
  formatLadder,
  formatTable,
  formatTargets,
  ladderRows,
  mainRows,
  targets,
  workersRows,
} from './report.js'
import type { Measurement } from './report.js'
import { scenarios, selected, SERVERS, storeScenarios } from './scenarios.js'
import type { Scenario, ServerId, ServerSpec } from './scenarios.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const OPENKES_MAIN = path.join(HERE, '..', 'src', 'main.js')
const BASELINE_MAIN = path.join(HERE, 'baseline-server.js')
const WORKER_MAIN = path.join(HERE, 'load-worker.js')

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

// ---- servers ----

/** A started server: its spec, its process and every process of it (the top one first). */
interface RunningServer {
  readonly spec: ServerSpec
  readonly proc: ServerProcess
  readonly pids: readonly number[]
}

/** What the servers of a run are started with. */
interface StartContext {
  readonly dir: string
  /** --cpu-prof: each one-process server writes its profile into <cpuProfDir>/<server id>. */
  readonly cpuProfDir: string | undefined
  /** Cleared when this OpenKES turns out not to know --workers (then it runs without it). */
  workersFlag: boolean
}

const OPENKES_LISTENING = /listening on https:\/\/127\.0\.0\.1:(\d+)/
const UNKNOWN_WORKERS_FLAG = /unknown option '--workers'/

/** The server's processes as they are now, checked against what it should be. */
async function listProcesses(spec: ServerSpec, pid: number): Promise<number[]> {
  const expected = spec.workers > 1 ? 1 + spec.workers : 1
  // The primary prints its listening line once every worker listens; allow the tree a moment anyway.
  const deadline = Date.now() + 5_000
  for (;;) {
    const tree = await processTree(pid)
    if (tree.length === expected) return tree
    if (Date.now() > deadline) throw new Error(`${spec.label}: ${tree.length} process(es) (pids ${tree.join(', ')}), want ${expected}`)
    await sleep(100)
  }
}

/** Node's flags that make a one-process server write a CPU profile when it stops (--cpu-prof). */
function profileArgs(spec: ServerSpec, ctx: StartContext): string[] {
  if (ctx.cpuProfDir === undefined || spec.workers > 1) return []
  return ['--cpu-prof', '--cpu-prof-dir', path.join(ctx.cpuProfDir, spec.id)]
}

/**
 * Starts a server, or returns undefined when it is an OpenKES with workers and this
 * OpenKES has no --workers (so the bench still runs against a server from before it).
 */
async function startServer(spec: ServerSpec, ctx: StartContext): Promise<RunningServer | undefined> {
  let proc: ServerProcess
  if (spec.kind === 'baseline') {
    proc = await startProcess(spec.id, [...profileArgs(spec, ctx), BASELINE_MAIN, path.join(ctx.dir, 'server.key'), path.join(ctx.dir, 'server.cert'), spec.level ?? 'crypto'], /listening (\d+)/)
  } else {
    if (spec.workers > 1 && !ctx.workersFlag) return undefined
    const args = [...profileArgs(spec, ctx), OPENKES_MAIN, 'server', '--config', path.join(ctx.dir, 'config.yml')]
    // The connection distribution of a cluster is Node's: set it explicitly for the
    // worker variants, and keep the bench's own setting from leaking into the others.
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env['NODE_CLUSTER_SCHED_POLICY']
    if (spec.schedPolicy !== undefined) env['NODE_CLUSTER_SCHED_POLICY'] = spec.schedPolicy
    try {
      proc = await startProcess(spec.id, ctx.workersFlag ? [...args, '--workers', String(spec.workers)] : args, OPENKES_LISTENING, env)
    } catch (err) {
      if (!(err instanceof StartError) || !ctx.workersFlag || !UNKNOWN_WORKERS_FLAG.test(err.stderr)) throw err
      ctx.workersFlag = false
      console.log('  NOTE: this OpenKES has no --workers: one process without the flag, and no workers scenarios')
      if (spec.workers > 1) return undefined
      proc = await startProcess(spec.id, args, OPENKES_LISTENING, env)
    }
  }
  try {
    return { spec, proc, pids: await listProcesses(spec, proc.child.pid as number) }
  } catch (err) {
    await stopProcess(proc)
    throw err
  }
}

/** Throws unless the server is still exactly the processes it started as (no worker ended or restarted). */
async function checkProcesses(server: RunningServer, when: string): Promise<void> {
  const now = await processTree(server.proc.child.pid as number)
  if (now.join(',') !== server.pids.join(',')) {
    throw new Error(`${server.spec.label}: its processes changed ${when} (pids ${server.pids.join(', ')} → ${now.join(', ')}): a worker ended or restarted`)
  }
}

/**
 * Stops the server (SIGTERM to its top process, which stops its workers) and makes
 * sure none of its worker processes outlives it: the bench must not leave load behind.
 */
async function stopServer(server: RunningServer): Promise<void> {
  await stopProcess(server.proc)
  const deadline = Date.now() + 5_000
  for (const pid of server.pids.slice(1)) {
    while (isRunning(pid) && Date.now() < deadline) await sleep(100)
    if (isRunning(pid)) {
      console.error(`bench: ${server.spec.label}: process ${pid} outlived its primary; killing it`)
      process.kill(pid, 'SIGKILL')
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---- one measurement ----

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number
}

async function measure(server: RunningServer, s: Scenario, round: number, opts: Options, tlsMaterial: Job['tls']): Promise<Measurement> {
  // Split the connections over the load processes; one HTTP/2 connection stays in one process.
  const procs = s.transport === 'h2' ? 1 : Math.min(opts.loadProcs, s.concurrency)
  const keyNames = server.spec.kind === 'openkes' && s.keyNames !== undefined ? s.keyNames : ['bench-key']
  const workers = Array.from({ length: procs }, (_, i) => {
    const share = Math.floor(s.concurrency / procs) + (i < s.concurrency % procs ? 1 : 0)
    const child = fork(WORKER_MAIN, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const job: Job = { port: server.proc.port, tls: tlsMaterial, op: s.op, transport: s.transport, concurrency: share, keyNames }
    const messages: WorkerMessage[] = []
    let wake: (() => void) | undefined
    child.on('message', (m: WorkerMessage) => {
      messages.push(m)
      wake?.()
    })
    // 'close', not 'exit': a process's last messages can still be delivered after its 'exit'.
    let closed = false
    child.once('close', () => {
      closed = true
      wake?.()
    })
    const next = async (): Promise<WorkerMessage> => {
      const deadline = Date.now() + 60_000
      while (messages.length === 0) {
        if (closed || Date.now() > deadline) throw new Error(`load process ended without answering (${s.name}; exit ${child.exitCode ?? child.signalCode ?? "none"}, ${closed ? "closed" : "timed out"})`)
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
  const label = server.spec.label
  try {
    for (const w of workers) {
      const m = await w.next()
      if (m.kind === 'failed') throw new Error(`${label}: ${s.name}: ${m.message}`)
    }
    await sleep(opts.warmup * 1000)
    // Reading all of /proc takes a while: before the window, not in it.
    await checkProcesses(server, `before ${s.name}`)
    const cpu0 = await cpuMicros(server.pids)
    for (const w of workers) w.child.send('measure')
    await sleep(opts.seconds * 1000)
    for (const w of workers) w.child.send('stop')
    const cpu1 = await cpuMicros(server.pids)
    await checkProcesses(server, `during ${s.name}`)
    const results: WorkerResult[] = []
    for (const w of workers) {
      const m = await w.next()
      if (m.kind !== 'result') throw new Error(`${label}: ${s.name}: ${m.kind === 'failed' ? m.message : 'no result'}`)
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
      server: server.spec.id,
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
      cpuUsPerRequest: requests === 0 ? NaN : cpu1.reduce((n, c, i) => n + c - (cpu0[i] as number), 0) / requests,
      primaryCpuUsPerRequest: requests === 0 || server.pids.length === 1 ? NaN : ((cpu1[0] as number) - (cpu0[0] as number)) / requests,
      processes: server.pids.length,
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

// ---- memory ----

/** A server's resident memory: per process (the top one first) when idle, and after the load. */
interface ServerMemory {
  readonly processes: number
  readonly idleRssMb: readonly number[]
  afterLoad?: {
    readonly rssMb: readonly number[]
    readonly sumRssMb: number
    readonly maxRssMb: number
    /** The highest VmHWM (peak RSS) of any one process. */
    readonly maxPeakRssMb: number
  }
}

async function rssOf(pids: readonly number[]): Promise<Array<{ rss: number; peak: number }>> {
  return Promise.all(pids.map((pid) => memoryMb(pid)))
}

function formatMemory(id: ServerId, m: ServerMemory): string {
  const mb = (xs: readonly number[]): string => xs.map((x) => x.toFixed(0)).join('/')
  const after = m.afterLoad
  return (
    `  ${SERVERS[id].label.padEnd(28)} ${String(m.processes).padStart(2)} process(es)  idle RSS ${mb(m.idleRssMb)}` +
    (after === undefined ? '' : `  after load ${mb(after.rssMb)} (sum ${after.sumRssMb.toFixed(0)}, max per process ${after.maxRssMb.toFixed(0)}, peak ${after.maxPeakRssMb.toFixed(0)})`)
  )
}

// ---- main ----

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2))
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-bench-'))
  const storeDir = path.join(dir, 'keys')
  await mkdir(storeDir, { mode: 0o700 })
  const smallStore = Array.from({ length: 10 }, (_, i) => `store-${i}`)
  const bigStore = Array.from({ length: opts.storeKeys - smallStore.length }, (_, i) => `store-${i + smallStore.length}`)
  // Ten keys picked from the whole big store, so the big store's keys are read from disk once.
  const bigPick = Array.from({ length: 10 }, (_, i) => bigStore[Math.floor(((i + 0.5) * bigStore.length) / 10)] as string)
  const [small, big] = storeScenarios(opts.storeKeys, smallStore, bigPick)
  let list = scenarios().filter((s) => selected(s, opts.only))
  const runStore = selected(small, opts.only) || selected(big, opts.only)

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

  const ctx: StartContext = { dir, cpuProfDir: opts.cpuProf === undefined ? undefined : path.resolve(opts.cpuProf), workersFlag: true }
  // Only the servers the selected scenarios need, in a fixed order.
  const needed = (Object.keys(SERVERS) as ServerId[]).filter((id) => list.some((s) => s.servers.includes(id)) || (id === 'openkes' && runStore))
  const servers = new Map<ServerId, RunningServer>()
  const measurements: Measurement[] = []
  const memory: Partial<Record<ServerId, ServerMemory>> = {}
  const skipped: string[] = []
  try {
    for (const id of needed) {
      const s = await startServer(SERVERS[id], ctx)
      if (s !== undefined) servers.set(id, s)
    }
    const missing = list.filter((s) => s.servers.some((id) => !servers.has(id)))
    skipped.push(...missing.map((s) => s.name))
    list = list.filter((s) => !missing.includes(s))
    await sleep(500)
    for (const [id, s] of servers) memory[id] = { processes: s.pids.length, idleRssMb: (await rssOf(s.pids)).map((m) => m.rss) }
    console.log(
      `OpenKES bench: node ${process.version}, ${os.availableParallelism()} CPUs (servers and load generator share them), ${opts.rounds} round(s), ` +
        `${opts.seconds} s per run after ${opts.warmup} s warm-up, ${opts.loadProcs} load process(es)${opts.short ? ' (short mode: checks only that it works)' : ''}`,
    )
    if (skipped.length > 0) console.log(`  SKIPPED (no --workers in this OpenKES): ${skipped.join('; ')}`)
    for (let round = 1; round <= opts.rounds; round++) {
      for (const s of list) {
        // Interleaved: the order of the servers rotates per round.
        const shift = (round - 1) % s.servers.length
        const order = [...s.servers.slice(shift), ...s.servers.slice(0, shift)]
        for (const id of order) {
          const m = await measure(servers.get(id) as RunningServer, s, round, opts, tlsMaterial)
          measurements.push(m)
          logMeasurement(m)
        }
      }
    }
    if (runStore) {
      const openkes = servers.get('openkes') as RunningServer
      for (let round = 1; round <= opts.rounds; round++) logMeasurement(pushed(measurements, await measure(openkes, small, round, opts, tlsMaterial)))
      const t0 = performance.now()
      await writeKeys(storeDir, bigStore)
      console.log(`  (wrote ${bigStore.length} more key files in ${((performance.now() - t0) / 1000).toFixed(1)} s)`)
      for (let round = 1; round <= opts.rounds; round++) logMeasurement(pushed(measurements, await measure(openkes, big, round, opts, tlsMaterial)))
      list = [...list, small, big]
    }
    for (const [id, s] of servers) {
      await checkProcesses(s, 'by the end of the run')
      const mem = await rssOf(s.pids)
      const entry = memory[id]
      if (entry !== undefined) {
        entry.afterLoad = {
          rssMb: mem.map((m) => m.rss),
          sumRssMb: mem.reduce((n, m) => n + m.rss, 0),
          maxRssMb: Math.max(...mem.map((m) => m.rss)),
          maxPeakRssMb: Math.max(...mem.map((m) => m.peak)),
        }
      }
    }
  } finally {
    for (const s of servers.values()) await stopServer(s)
    await rm(dir, { recursive: true, force: true })
  }

  const main = mainRows(measurements, list)
  const workers = workersRows(measurements, list)
  const ladder = ladderRows(measurements, list)
  const distribution = distributionRows(measurements, list)
  const idleRss = Object.fromEntries(Object.entries(memory).map(([id, m]) => [id, Math.max(...m.idleRssMb)]))
  const goals = targets(main, workers, idleRss)
  const errors = measurements.reduce((n, m) => n + m.errors, 0)
  console.log(`\nMedians over ${opts.rounds} round(s). A ÷ column is a ratio of two servers measured in the same round, per round, then the median.`)
  if (main.length > 0) console.log(`\nOpenKES, 1 process (÷base: ÷ the baseline)\n${formatTable(main, 'base', false)}`)
  if (workers.length > 0) {
    console.log(`\nOpenKES --workers 2 against 1 process (÷1 proc); CPU is the primary's and its workers' together\n${formatTable(workers, '1 proc', true)}`)
    console.log(`\nConnection distribution (NODE_CLUSTER_SCHED_POLICY), --workers 2:\n${formatDistribution(distribution)}`)
  }
  if (ladder.length > 0) {
    console.log(
      '\nDecomposition ladder: server CPU µs per request on the baseline answering fixed JSON (tls+http), the full baseline (+crypto) and OpenKES, 1 process;\n' +
        `Δ = the steps between them in CPU µs per request (per-round differences, then the median)\n${formatLadder(ladder)}`,
    )
  }
  console.log('\nMemory (MB; per process, the top one first):')
  for (const [id, m] of Object.entries(memory) as Array<[ServerId, ServerMemory]>) console.log(formatMemory(id, m))
  console.log(`\nTargets (ratios of this run${opts.short ? '; short mode: not meaningful' : ''}):\n${formatTargets(goals)}`)
  const report = {
    node: process.version,
    cpus: os.availableParallelism(),
    options: opts,
    servers: Object.fromEntries([...servers.values()].map((s) => [s.spec.id, { label: s.spec.label, workers: s.spec.workers, schedPolicy: s.spec.schedPolicy, level: s.spec.level, processes: s.pids.length }])),
    rows: main,
    workers,
    distribution,
    ladder,
    memory,
    targets: goals,
    skipped,
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

function pushed(all: Measurement[], m: Measurement): Measurement {
  all.push(m)
  return m
}

function logMeasurement(m: Measurement): void {
  const errs = m.errors === 0 ? '' : `  ERRORS ${m.errors} ${JSON.stringify(m.errorKinds)}`
  console.log(
    `  round ${m.round}  ${SERVERS[m.server].label.padEnd(28)}  ${m.scenario.padEnd(42)} ${m.rps.toFixed(0).padStart(7)} req/s  p99 ${m.p99Us.toFixed(0).padStart(6)} µs  ${m.cpuUsPerRequest.toFixed(1).padStart(6)} CPU µs/req${errs}`,
  )
}

try {
  await main()
} catch (err) {
  // A bench error (a server that would not start, a worker that restarted, a load
  // process that failed) ends the run, after every server has been stopped.
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
}
