#!/usr/bin/env node
import { runIdentityCommand } from './cli/identity.js'
import { EXIT_OK, EXIT_USAGE, processIO } from './cli/io.js'
import { runServerCommand } from './cli/server.js'
import { VERSION } from './version.js'

const USAGE = `Usage: openkes <command> [options]

OpenKES: a key management server that speaks the API of MinIO KES.

Commands:
  server      start the server (openkes server --dev, or --config FILE)
  identity    create an identity or print the identity of a certificate
              (also as 'openkes tool identity', like the kes CLI)

Options:
  -h, --help     show this help
  -v, --version  print the version

Run 'openkes <command> --help' for a command's options.
`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'server':
      return runServerCommand(rest, processIO)
    case 'identity':
      return runIdentityCommand(rest, processIO)
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

process.exitCode = await main(process.argv.slice(2))
