#!/usr/bin/env node
import { runCompletionCommand } from './cli/completion.js'
import { processContext } from './cli/connect.js'
import { runIdentityCommand } from './cli/identity.js'
import { EXIT_OK, EXIT_USAGE, processIO } from './cli/io.js'
import { runKeyCommand } from './cli/key.js'
import { runLogCommand } from './cli/log.js'
import { runMetricCommand } from './cli/metric.js'
import { runMigrateCommand } from './cli/migrate.js'
import { runPolicyCommand } from './cli/policy.js'
import { runServerCommand } from './cli/server.js'
import { runStatusCommand } from './cli/status.js'
import { VERSION } from './version.js'

const USAGE = `Usage: openkes <command> [options]

OpenKES: a key management server that speaks the API of MinIO KES.

Server:
  server      start the server (openkes server --dev, or --config FILE)
  identity    create an identity or print the identity of a certificate
              (also as 'openkes tool identity', like the kes CLI)
  migrate     copy keys, policies and assignments between key stores
              (from KES: see docs/migrating.md)

Client (talk to a server, like the kes CLI):
  key         create, import, delete and list keys; generate data keys;
              encrypt and decrypt
  policy      write, read, list and delete policies
  identity    assign a policy to an identity, list and forget assignments
  log         follow the audit or error log (log trace)
  metric      live request rates and response times
  status      which servers are reachable, their version and latency
  completion  print a bash or zsh completion script

Client options (every client command):
  -s, --server URL  server endpoint; repeatable or comma-separated
                    (env KES_SERVER, default https://127.0.0.1:7373)
  --cert FILE       client certificate (env KES_CLIENT_CERT)
  --key FILE        client private key (env KES_CLIENT_KEY)
  --ca FILE         CA certificate(s) for the server
  -k, --insecure    don't verify the server certificate
  --json            JSON output for scripts

Options:
  -h, --help     show this help
  -v, --version  print the version

Examples:
  openkes server --dev
  export KES_CLIENT_CERT=openkes-dev/root.cert KES_CLIENT_KEY=openkes-dev/root.key
  openkes key create my-key -k
  openkes key generate my-key -k --json

Run 'openkes <command> --help' for a command's options.
`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'server':
      return runServerCommand(rest, processIO)
    case 'identity':
      return runIdentityCommand(rest, processIO)
    case 'key':
      return runKeyCommand(rest, processContext())
    case 'policy':
      return runPolicyCommand(rest, processContext())
    case 'log':
      return runLogCommand(rest, processContext())
    case 'metric':
    case 'metrics':
      return runMetricCommand(rest, processContext())
    case 'status':
      return runStatusCommand(rest, processContext())
    case 'completion':
      return runCompletionCommand(rest, processIO)
    case 'migrate':
      return runMigrateCommand(rest, processIO, { stderrIsTTY: process.stderr.isTTY === true, env: process.env })
    case 'tool':
      if (rest[0] === 'identity') return runIdentityCommand(rest.slice(1), processIO)
      processIO.stderr(`openkes tool: unknown command '${rest[0] ?? ''}'\n\n${USAGE}`)
      return EXIT_USAGE
    case '-v':
    case '--version':
    case 'version':
      processIO.stdout(`${VERSION}\n`)
      return EXIT_OK
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      processIO.stdout(USAGE)
      return command === undefined ? EXIT_USAGE : EXIT_OK
    default:
      processIO.stderr(`openkes: unknown command '${command}'\n\n${USAGE}`)
      return EXIT_USAGE
  }
}

// A reader that goes away (`openkes log trace | head`) is a normal way to stop,
// not a crash.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK)
  throw err
})

process.exitCode = await main(process.argv.slice(2))
