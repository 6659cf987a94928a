/**
 * The main code of one worker process of `openkes server --workers N` (loaded only there):
 * waits for the primary's 'init', starts the server with a WorkerLink, reports that it serves
 * (or why it can't), and then does what the primary says. Signals are the primary's business:
 * SIGINT (a Ctrl-C reaches the whole process group) and SIGHUP are ignored here; a SIGTERM sent
 * to a worker alone stops it gracefully (the primary then starts a new one).
 */
import type { Config } from '../../config/validate.js'
import { startServer } from '../server.js'
import type { RunningServer } from '../server.js'
import { asPrimaryMessage } from './messages.js'
import type { WorkerMessage } from './messages.js'
import { WorkerLink } from './worker-link.js'
import type { WorkerInit } from './worker-link.js'

/** How long a new worker waits for the primary's 'init' before giving up. */
const INIT_WAIT_MS = 30_000

/** Runs this worker until the primary stops it; never returns (the process exits). */
export async function runWorker(loadConfig: () => Promise<Config>, strictFiles: boolean): Promise<never> {
  const ignore = (): void => {}
  process.on('SIGINT', ignore)
  process.on('SIGHUP', ignore)
  // One listener from the start: messages that follow 'init' at once are kept for the link.
  let link: WorkerLink | undefined
  const early: unknown[] = []
  let gotInit!: (init: WorkerInit) => void
  const initMessage = new Promise<WorkerInit>((resolve) => (gotInit = resolve))
  process.on('message', (raw: unknown) => {
    if (link !== undefined) return link.handle(raw)
    const m = asPrimaryMessage(raw)
    if (m?.k === 'init') gotInit({ ticketKeys: Buffer.from(m.ticketKeys, 'base64'), auditHealthy: m.auditHealthy })
    else early.push(raw)
  })
  process.send?.({ openkes: 1, k: 'ready' } satisfies WorkerMessage)
  const init = await waitForInit(initMessage)
  link = new WorkerLink({ send: (m) => process.send?.(m) }, init)
  for (const raw of early.splice(0)) link.handle(raw)

  let server: RunningServer
  try {
    server = await startServer(await loadConfig(), { strictFiles, cluster: link })
  } catch (err) {
    await sendLast({ openkes: 1, k: 'failed', message: (err as Error).message })
    process.exit(1)
  }
  let reloading = Promise.resolve()
  let stopping: Promise<never> | undefined
  const shutdown = (): void => {
    stopping ??= (async () => {
      await reloading.catch(() => {})
      await server.close()
      link.flush()
      await sendLast({ openkes: 1, k: 'closing' })
      process.exit(0)
    })()
  }
  link.control({
    reload: () => {
      const next = reloading.then(async () => {
        try {
          await server.reload(await loadConfig())
        } catch (err) {
          server.state.errorLog.error(`config: reload refused, the previous configuration stays in force: ${(err as Error).message}`)
          throw err
        }
      })
      reloading = next.catch(() => {})
      return next
    },
    shutdown,
    error: (message) => server.state.errorLog.error(message),
  })
  process.on('SIGTERM', shutdown)
  process.send?.({ openkes: 1, k: 'listening', host: server.host, port: server.port } satisfies WorkerMessage)
  return new Promise<never>(() => {})
}

async function waitForInit(init: Promise<WorkerInit>): Promise<WorkerInit> {
  const timer = setTimeout(() => {
    process.stderr.write(`openkes server: worker ${process.pid}: no word from the primary within ${INIT_WAIT_MS} ms\n`)
    process.exit(1)
  }, INIT_WAIT_MS)
  try {
    return await init
  } finally {
    clearTimeout(timer)
  }
}

/** Sends a message and resolves once it is handed to the channel (so exiting next can't lose it). */
function sendLast(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) return resolve()
    process.send(m, undefined, {}, () => resolve())
  })
}
