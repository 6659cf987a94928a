import path from 'node:path'
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
  },
  description: 'Give either --config FILE or --dev. SIGHUP reloads the configuration.',
  examples: ['openkes server --dev', 'openkes server --config ./config.yml', 'openkes server --config ./config.yml --addr 0.0.0.0:7373'],
  validate(_args, options) {
    if ((options['config'] === undefined) === (options['dev'] !== true)) throw new UsageError('give either --config FILE or --dev')
  },
  run: (inv) => runServer(inv.options, inv.io),
}

/**
 * Starts the server and runs until SIGINT or SIGTERM. Returns the exit code:
 * 0 after a clean shutdown, 1 when the server cannot start.
 */
async function runServer(options: OptionValues, io: CommandIO): Promise<number> {
  const values = {
    config: typeof options['config'] === 'string' ? options['config'] : undefined,
    dev: options['dev'] === true,
    data: typeof options['data'] === 'string' ? options['data'] : undefined,
    addr: typeof options['addr'] === 'string' ? options['addr'] : undefined,
    strict: options['strict'] === true,
  }
  let config: Config
  let banner: string
  try {
    if (values.dev) {
      const env = await prepareDevEnvironment(values.data ?? 'openkes-dev')
      config = devConfig(env, values.addr ?? '127.0.0.1:7373')
      banner = devBanner(env.rootIdentity, env.rootCert, env.rootKey, env.dir, env.created)
    } else {
      config = await loadConfigFile(values.config ?? '', process.env)
      if (values.addr !== undefined) config = Object.freeze({ ...config, address: values.addr })
      banner = ''
    }
  } catch (err) {
    io.stderr(`openkes server: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`)
    return EXIT_FAILURE
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
