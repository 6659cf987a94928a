import cluster from 'node:cluster'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/validate.js'
import { startServer } from '../server/server.js'
import type { RunningServer } from '../server/server.js'
import { VERSION } from '../version.js'
import { devConfig, prepareDevEnvironment } from './dev.js'
import { UsageError } from './command-spec.js'
import type { LocalCommand, OptionValues } from './command-spec.js'
import { EXIT_FAILURE, EXIT_OK } from './io.js'
import type { CommandIO } from './io.js'

/** `openkes server`: runs the server until SIGINT or SIGTERM. */
export const serverCommand: LocalCommand = {
  kind: 'local',
  name: 'server',
  summary: 'start the server (--dev to try it out, or --config FILE)',
  args: [],
  options: {
    config: { type: 'string', value: 'FILE', help: 'KES-style YAML configuration (every setting: docs/configuration.md)', complete: 'files' },
    dev: {
      type: 'boolean',
      help: 'development mode: creates (once) a server certificate, a root client\ncertificate and a key store in --data, then serves on 127.0.0.1:7373',
    },
    data: { type: 'string', value: 'DIR', help: 'the development data directory (default ./openkes-dev)', complete: 'files' },
    addr: { type: 'string', value: 'HOST:PORT', help: 'listen here instead of the configured address' },
    strict: {
      type: 'boolean',
      help: 'refuse to start when the TLS key, the key directory or a key\nfile is open to other users (without it: a warning)',
    },
    workers: {
      type: 'string',
      value: 'N',
      help: `serve with N processes on one port (default: the number of CPUs,\n${defaultWorkers()} here); 1 runs a single process`,
    },
  },
  description:
    'Give either --config FILE or --dev. SIGHUP reloads the configuration.\n' +
    'With --workers N the printed PID is the primary process: signal it, it\nsignals the workers (docs/operations.md, "Several worker processes").',
  examples: [
    'openkes server --dev',
    'openkes server --config ./config.yml',
    'openkes server --config ./config.yml --addr 0.0.0.0:7373',
    'openkes server --config ./config.yml --workers 1',
  ],
  validate(_args, options) {
    if ((options['config'] === undefined) === (options['dev'] !== true)) throw new UsageError('give either --config FILE or --dev')
    parseWorkers(options['workers'])
  },
  run: (inv) => runServer(inv.options, inv.io),
}

/** The number of CPUs this process may use: the default of --workers. */
function defaultWorkers(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length
}

// More processes than this is a typo, not a deployment.
const MAX_WORKERS = 1024

/** The --workers value: an integer from 1 (default: the number of CPUs); anything else is a usage error. */
export function parseWorkers(value: OptionValues[string]): number {
  if (value === undefined) return Math.max(1, defaultWorkers())
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > MAX_WORKERS) {
    throw new UsageError(`--workers needs a whole number from 1 to ${MAX_WORKERS}, not '${String(value)}'`)
  }
  return Number(value)
}

/** The server command's settings. */
interface ServerValues {
  readonly config: string | undefined
  readonly dev: boolean
  readonly data: string | undefined
  readonly addr: string | undefined
  readonly strict: boolean
}

/** Loads the configuration the settings name (and, with --dev, prepares the development environment). */
async function loadServerConfig(values: ServerValues): Promise<{ config: Config; banner: string }> {
  if (values.dev) {
    const env = await prepareDevEnvironment(values.data ?? 'openkes-dev')
    return { config: devConfig(env, values.addr ?? '127.0.0.1:7373'), banner: devBanner(env.rootIdentity, env.rootCert, env.rootKey, env.dir, env.created) }
  }
  const config = await loadConfigFile(values.config ?? '', process.env)
  return { config: values.addr === undefined ? config : Object.freeze({ ...config, address: values.addr }), banner: '' }
}

/** The arguments of `openkes server` that make a worker load the same configuration. */
function workerArgs(values: ServerValues): string[] {
  const args = ['server']
  if (values.config !== undefined) args.push('--config', values.config)
  if (values.dev) args.push('--dev')
  if (values.data !== undefined) args.push('--data', values.data)
  if (values.addr !== undefined) args.push('--addr', values.addr)
  if (values.strict) args.push('--strict')
  return args
}

/**
 * Starts the server and runs until SIGINT or SIGTERM. Returns the exit code:
 * 0 after a clean shutdown, 1 when the server cannot start.
 */
async function runServer(options: OptionValues, io: CommandIO): Promise<number> {
  const values: ServerValues = {
    config: typeof options['config'] === 'string' ? options['config'] : undefined,
    dev: options['dev'] === true,
    data: typeof options['data'] === 'string' ? options['data'] : undefined,
    addr: typeof options['addr'] === 'string' ? options['addr'] : undefined,
    strict: options['strict'] === true,
  }
  // A worker of `--workers N`: the primary started it with this same command.
  if (cluster.isWorker) {
    const { runWorker } = await import('../server/cluster/worker.js')
    // --dev's configuration is made once; a file is read again on every reload.
    let dev: Config | undefined
    return runWorker(async () => dev ?? (await loadServerConfig(values).then(({ config }) => (values.dev ? (dev = config) : config))), values.strict)
  }
  const workers = parseWorkers(options['workers'])
  let config: Config
  let banner: string
  try {
    ;({ config, banner } = await loadServerConfig(values))
  } catch (err) {
    io.stderr(`openkes server: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`)
    return EXIT_FAILURE
  }
  const announce = (host: string, port: number): void => {
    // The banner comes after the signal handlers: whoever reads the PID from it
    // may signal at once, and must get a clean shutdown.
    const where = `https://${hostForUrl(host)}:${port}`
    io.stdout(`OpenKES ${VERSION} listening on ${where}\n`)
    // Our own PID: `npx openkes server` runs us as a child of npx, and killing
    // npx's PID leaves this process serving.
    io.stdout(`PID ${process.pid}: stop with Ctrl-C or 'kill ${process.pid}'\n`)
    if (config.adminIdentity !== undefined) io.stdout(`admin identity: ${config.adminIdentity}\n`)
    if (banner !== '') io.stdout(banner.replaceAll('https://127.0.0.1:7373', where))
  }
  if (workers > 1) {
    const { runPrimary } = await import('../server/cluster/primary.js')
    return runPrimary({
      workers,
      config,
      loadConfig: async () => (values.config === undefined ? config : (await loadServerConfig(values)).config),
      exec: fileURLToPath(new URL('../main.js', import.meta.url)),
      args: workerArgs(values),
      io,
      announce,
    })
  }

  let server: RunningServer
  try {
    server = await startServer(config, { strictFiles: values.strict })
  } catch (err) {
    io.stderr(`openkes server: cannot start: ${(err as Error).message}\n`)
    return EXIT_FAILURE
  }
  // SIGHUP reloads the configuration (and so reopens the audit file); one
  // reload at a time, and a config that fails leaves the old one in force.
  let reloading = Promise.resolve()
  const reload = (): void => {
    reloading = reloading.then(async () => {
      try {
        const next = values.config === undefined ? config : await loadConfigFile(values.config, process.env)
        const applied = values.addr === undefined ? next : Object.freeze({ ...next, address: values.addr })
        await server.reload(applied)
        config = applied
        io.stdout('configuration reloaded\n')
      } catch (err) {
        server.state.errorLog.error(`config: reload refused, the previous configuration stays in force: ${(err as Error).message}`)
      }
    })
  }
  process.on('SIGHUP', reload)

  const stopRequested = new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })

  announce(server.host, server.port)

  await stopRequested
  process.off('SIGHUP', reload)
  io.stdout('shutting down\n')
  await reloading
  await server.close()
  return EXIT_OK
}

function devBanner(identity: string, certFile: string, keyFile: string, dir: string, created: boolean): string {
  const rel = (f: string): string => {
    const r = path.relative(process.cwd(), f)
    return r.startsWith('..') ? f : r
  }
  return [
    '',
    created ? `Development environment created in ${dir}` : `Development environment reused from ${dir}`,
    'This is for trying OpenKES out: anyone holding root.key can do everything.',
    '',
    `  root identity:      ${identity}`,
    `  client certificate: ${rel(certFile)}`,
    `  client key:         ${rel(keyFile)}`,
    '',
    'Try it:',
    `  curl -k --cert ${rel(certFile)} --key ${rel(keyFile)} https://127.0.0.1:7373/version`,
    '',
  ].join('\n')
}

function hostForUrl(host: string): string {
  if (host === '') return '0.0.0.0'
  return host.includes(':') ? `[${host}]` : host
}
