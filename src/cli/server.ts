import path from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/validate.js'
import { startServer } from '../server/server.js'
import type { RunningServer } from '../server/server.js'
import { VERSION } from '../version.js'
import { devConfig, prepareDevEnvironment } from './dev.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './io.js'
import type { CommandIO } from './io.js'

const USAGE = `Usage: openkes server (--config FILE | --dev) [--addr HOST:PORT]

Start the OpenKES server.

Options:
  --config FILE    KES-style YAML configuration (see README: "Configuration")
  --dev            development mode: creates (once) a server certificate, a root
                   client certificate and a key store in --data, then serves on
                   127.0.0.1:7373
  --data DIR       the development data directory (default ./openkes-dev)
  --addr HOST:PORT listen here instead of the configured address
  -h, --help       show this help

Examples:
  openkes server --dev
  openkes server --config ./config.yml
`

/**
 * `openkes server`: runs until SIGINT or SIGTERM. Returns the exit code:
 * 0 after a clean shutdown, 1 when the server cannot start, 2 on a usage error.
 */
export async function runServerCommand(args: string[], io: CommandIO): Promise<number> {
  let values
  try {
    ;({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        dev: { type: 'boolean' },
        data: { type: 'string' },
        addr: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }))
  } catch (err) {
    io.stderr(`openkes server: ${(err as Error).message}\n\n${USAGE}`)
    return EXIT_USAGE
  }
  if (values.help) {
    io.stdout(USAGE)
    return EXIT_OK
  }
  if ((values.config === undefined) === (values.dev !== true)) {
    io.stderr(`openkes server: give either --config FILE or --dev\n\n${USAGE}`)
    return EXIT_USAGE
  }

  let config: Config
  let banner: string
  try {
    if (values.dev === true) {
      const env = await prepareDevEnvironment(values.data ?? 'openkes-dev')
      config = devConfig(env, values.addr ?? '127.0.0.1:7373')
      banner = devBanner(env.rootIdentity, env.rootCert, env.rootKey, env.dir, env.created)
    } else {
      config = await loadConfigFile(values.config as string, process.env)
      if (values.addr !== undefined) config = Object.freeze({ ...config, address: values.addr })
      banner = ''
    }
  } catch (err) {
    io.stderr(`openkes server: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`)
    return EXIT_FAILURE
  }

  let server: RunningServer
  try {
    server = await startServer(config)
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

  // The banner comes after the signal handlers: whoever reads the PID from it
  // may signal at once, and must get a clean shutdown.
  const where = `https://${hostForUrl(server.host)}:${server.port}`
  io.stdout(`OpenKES ${VERSION} listening on ${where}\n`)
  // Our own PID: `npx openkes server` runs us as a child of npx, and killing
  // npx's PID leaves this process serving.
  io.stdout(`PID ${process.pid}: stop with Ctrl-C or 'kill ${process.pid}'\n`)
  if (config.adminIdentity !== undefined) io.stdout(`admin identity: ${config.adminIdentity}\n`)
  if (banner !== '') io.stdout(banner.replaceAll('https://127.0.0.1:7373', where))

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
