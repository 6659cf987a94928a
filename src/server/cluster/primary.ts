/**
 * The primary process of `openkes server --workers N` (loaded only there): forks the workers,
 * announces the server once every worker serves, writes the audit file and stdout for all of
 * them, relays between them (relay.ts), turns SIGHUP into a reload of every worker and
 * SIGTERM/SIGINT into a graceful stop of every worker, and replaces workers that die (with a
 * back-off, and giving up on a crash loop: restart-policy.ts).
 */
import cluster from 'node:cluster'
import type { Worker } from 'node:cluster'
import { randomBytes } from 'node:crypto'
import type { CommandIO } from '../../cli/io.js'
import type { Config } from '../../config/validate.js'
import { AuditLog } from '../../log/audit-log.js'
import { ErrorLog } from '../../log/error-log.js'
import { EventHub } from '../../log/event-hub.js'
import { ServerMetrics } from '../../metrics/server-metrics.js'
import { auditOutputs } from '../server.js'
import type { PrimaryMessage } from './messages.js'
import { PrimaryRelay } from './relay.js'
import { RestartPolicy } from './restart-policy.js'

// Node's ticket key block: 16 bytes name, 16 bytes HMAC secret, 16 bytes AES key.
const TICKET_KEYS_BYTES = 48
// How long a stop waits for the workers (each has its own 10 s grace for requests in flight).
const STOP_WAIT_MS = 20_000

/** What the CLI gives the primary. */
export interface PrimaryOptions {
  readonly workers: number
  /** The configuration as loaded and checked by the CLI (audit outputs, error log setting). */
  readonly config: Config
  /** Loads the configuration again (SIGHUP). */
  readonly loadConfig: () => Promise<Config>
  /** The program and arguments a worker runs (the same `openkes server` command). */
  readonly exec: string
  readonly args: readonly string[]
  readonly io: CommandIO
  /** Prints what a started server prints (the "listening" line, the PID, the banner). */
  readonly announce: (host: string, port: number) => void
}

interface Slot {
  readonly n: number
  readonly policy: RestartPolicy
  worker: Worker | undefined
  describe: string
  servingSince: number | undefined
  restartTimer: NodeJS.Timeout | undefined
}

/** A hub that hands every line to a function (the primary has no readers of its own). */
class HandOffHub extends EventHub {
  readonly #to: (line: string) => void
  constructor(to: (line: string) => void) {
    super({ maxBufferedBytes: 0 })
    this.#to = to
  }
  override publish(line: string): void {
    this.#to(line)
  }
}

/** A promise and the function that resolves it. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** Runs the primary until SIGTERM/SIGINT (exit code 0) or a failure (1). */
export async function runPrimary(o: PrimaryOptions): Promise<number> {
  const { io } = o
  const metrics = new ServerMetrics()
  const relay: PrimaryRelay = new PrimaryRelay({
    auditLine: (line) => auditLog.recordLine(line),
    error: (message) => errorLog.error(message),
    snapshot: () => metrics.snapshot(),
  })
  const errorLog = new ErrorLog({
    enabled: o.config.log.error,
    hub: new HandOffHub((line) => relay.primaryLine('error', line)),
    onEvent: () => metrics.errorEvents.inc(),
  })
  const auditLog: AuditLog = new AuditLog({
    hub: new EventHub({ maxBufferedBytes: 0 }),
    onError: (message) => {
      errorLog.error(message)
      // The file's health changes are reported here: every worker follows them (fail-closed).
      relay.setAuditHealthy(auditLog.fileHealthy)
    },
    onLost: (n) => metrics.auditLost.inc([], n),
  })
  metrics.setAuditFileHealth(() => auditLog.fileHealthy)
  try {
    await auditLog.configure(auditOutputs(o.config))
  } catch (err) {
    io.stderr(`openkes server: cannot start: ${(err as Error).message}\n`)
    return 1
  }

  let ticketKeys = randomBytes(TICKET_KEYS_BYTES)
  let phase: 'starting' | 'serving' | 'stopping' = 'starting'
  // The kernel spreads connections (every worker accepts on the shared socket) unless
  // NODE_CLUSTER_SCHED_POLICY says otherwise: measured with `npm run bench` (workers set) on
  // 2 cores, it served more requests per second at less CPU per request than round-robin in the
  // primary, which also costs the primary ~200 µs of CPU per new connection it hands over.
  if (process.env['NODE_CLUSTER_SCHED_POLICY'] === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE
  cluster.setupPrimary({ exec: o.exec, args: [...o.args] })
  const slots: Slot[] = Array.from({ length: o.workers }, (_, i) => ({
    n: i + 1,
    policy: new RestartPolicy(),
    worker: undefined,
    describe: `worker ${i + 1}`,
    servingSince: undefined,
    restartTimer: undefined,
  }))

  const startup = deferred<{ host: string; port: number } | { failure: string }>()
  const startupDone = startup.resolve
  let bound: { host: string; port: number } | undefined
  const exitedAll = deferred<void>()
  const stopped = deferred<number>()
  const stopRequested = stopped.resolve

  const fork = (slot: Slot): void => {
    slot.restartTimer = undefined
    const w = cluster.fork()
    slot.worker = w
    slot.servingSince = undefined
    slot.describe = `worker ${slot.n} (pid ${w.process.pid ?? '?'})`
    const send = (m: PrimaryMessage): void => {
      if (w.isConnected()) w.send(m)
    }
    // A channel error (a worker gone mid-send) shows up as its exit.
    w.on('error', () => {})
    w.on('message', (raw: unknown) => {
      const m = relay.handle(w.id, raw)
      if (m?.k === 'ready') {
        // 'init' first (the worker starts its server with it), then the relay's messages.
        send({ openkes: 1, k: 'init', ticketKeys: ticketKeys.toString('base64'), auditHealthy: relay.auditHealthy })
        relay.add(w.id, { send }, slot.describe)
      } else if (m?.k === 'listening') listening(slot, m.host, m.port)
      else if (m?.k === 'failed') failed(slot, m.message)
    })
    w.on('exit', (code: number | null, signal: string | null) => exited(slot, w, code, signal))
  }

  const listening = (slot: Slot, host: string, port: number): void => {
    slot.servingSince = Date.now()
    errorLog.error(`cluster: ${slot.describe} serving`)
    if (phase !== 'starting') return
    // The first worker starts alone: it does what a first start does to a store (creates its
    // directories, the seal's marker, the configured keys) before others race it there.
    if (slot.n === 1) for (const s of slots.slice(1)) fork(s)
    if (bound === undefined) bound = { host, port }
    else if (bound.port !== port) return startupDone({ failure: `workers listen on different ports (${bound.port}, ${port})` })
    if (slots.every((s) => s.servingSince !== undefined)) startupDone(bound)
  }

  const failed = (slot: Slot, message: string): void => {
    if (phase === 'starting') startupDone({ failure: message })
    else errorLog.error(`cluster: ${slot.describe} cannot start: ${message}`)
  }

  const exited = (slot: Slot, w: Worker, code: number | null, signal: string | null): void => {
    relay.remove(w.id)
    if (slot.worker === w) slot.worker = undefined
    const how = signal !== null ? `signal ${signal}` : `exit code ${code ?? '?'}`
    if (phase === 'stopping') {
      if (slots.every((s) => s.worker === undefined)) exitedAll.resolve()
      return
    }
    if (phase === 'starting') return startupDone({ failure: `${slot.describe} exited (${how}) before serving` })
    const served = slot.servingSince === undefined ? undefined : Date.now() - slot.servingSince
    const decision = slot.policy.exited(served)
    if (!decision.restart) {
      const message = `${slot.describe} died (${how}); worker ${slot.n} failed ${decision.quickExits} times in a row right after starting, giving up`
      errorLog.error(`cluster: ${message}`)
      io.stderr(`openkes server: ${message}\n`)
      phase = 'stopping'
      stopRequested(1)
      return
    }
    errorLog.error(`cluster: ${slot.describe} died (${how}); starting a new worker${decision.delayMs > 0 ? ` in ${decision.delayMs} ms` : ''}`)
    slot.restartTimer = setTimeout(() => fork(slot), decision.delayMs)
  }

  /** Stops every worker (gracefully; killed after STOP_WAIT_MS) and closes the audit log. */
  const stopAll = async (): Promise<void> => {
    phase = 'stopping'
    for (const s of slots) clearTimeout(s.restartTimer)
    if (slots.every((s) => s.worker === undefined)) exitedAll.resolve()
    relay.broadcast({ openkes: 1, k: 'shutdown' })
    // A worker still starting can't take the message yet: a signal stops it.
    for (const s of slots) if (s.worker !== undefined && s.servingSince === undefined) s.worker.process.kill('SIGTERM')
    const timer = setTimeout(() => {
      for (const s of slots) s.worker?.process.kill('SIGKILL')
    }, STOP_WAIT_MS)
    await exitedAll.promise
    clearTimeout(timer)
    await auditLog.close()
  }

  fork(slots[0] as Slot)
  const outcome = await startup.promise
  if ('failure' in outcome) {
    await stopAll()
    io.stderr(`openkes server: cannot start: ${outcome.failure}\n`)
    return 1
  }
  phase = 'serving'

  let reloading = Promise.resolve()
  const reload = (): void => {
    reloading = reloading.then(async () => {
      let next: Config
      try {
        next = await o.loadConfig()
        await auditLog.configure(auditOutputs(next))
      } catch (err) {
        errorLog.error(`config: reload refused, the previous configuration stays in force: ${(err as Error).message}`)
        return
      }
      errorLog.setEnabled(next.log.error)
      relay.setAuditHealthy(auditLog.fileHealthy)
      // Taken by the workers whose TLS material changed: all of them switch to the same keys.
      const keys = randomBytes(TICKET_KEYS_BYTES)
      const result = await relay.reload(keys)
      if (result.tlsChanged) ticketKeys = keys
      if (result.errors.length === 0) io.stdout('configuration reloaded\n')
      else errorLog.error(`cluster: the reload was not applied everywhere: ${result.errors.join('; ')}`)
    })
  }
  process.on('SIGHUP', reload)
  const stop = (): void => {
    // At once: with systemd's default KillMode the workers get the same SIGTERM and exit by
    // themselves; they must not be restarted.
    phase = 'stopping'
    stopRequested(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  o.announce(outcome.host, outcome.port)

  const stopCode = await stopped.promise
  process.off('SIGHUP', reload)
  process.off('SIGINT', stop)
  process.off('SIGTERM', stop)
  if (stopCode === 0) io.stdout('shutting down\n')
  await reloading
  await stopAll()
  return stopCode
}
