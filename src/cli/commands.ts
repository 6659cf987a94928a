// THE command table of `openkes`: every command, subcommand and alias, in
// the order `--help` lists them. Parsing, help, usage errors, alias
// resolution and shell completion are all read from it (dispatch.ts, help.ts,
// completion.ts), so they cannot drift apart. A new command is an entry here.
import { auditCommands } from './audit.js'
import type { CommandGroup, LocalCommand, OptionSpec } from './command-spec.js'
import { completionCommand } from './completion.js'
import type { ClientContext } from './connect.js'
import { helpFor, runCommandLine } from './dispatch.js'
import { identityApiCommands } from './identity-api.js'
import { identityNewCommand, identityOfCommand } from './identity.js'
import { EXIT_OK } from './io.js'
import { keyCommands } from './key.js'
import { logCommands } from './log.js'
import { metricCommand } from './metric.js'
import { migrateCommand } from './migrate.js'
import { policyCommands } from './policy.js'
import { serverCommand } from './server.js'
import { statusCommand } from './status.js'
import { VERSION } from '../version.js'

/** The options of the bare `openkes`, for its help. */
const TOP_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  version: { type: 'boolean', short: 'v', help: 'print the version' },
}

const identityCommands: CommandGroup = {
  name: 'identity',
  summary: "create identities, print a certificate's identity, manage policy assignments",
  description: `An identity is the hex SHA-256 of a client certificate's public key. 'new' and
'of' work on local files; the other commands ask a server.`,
  commands: [identityNewCommand, identityOfCommand, ...identityApiCommands],
}

// `kes tool identity new|of`, the spelling of KES before 2023.
const toolCommands: CommandGroup = {
  name: 'tool',
  summary: "the older kes spelling of 'identity': openkes tool identity new|of",
  commands: [identityCommands],
}

const versionCommand: LocalCommand = {
  kind: 'local',
  name: 'version',
  summary: 'print the version',
  args: [],
  examples: ['openkes version', 'openkes --version'],
  async run(inv) {
    inv.print(`${VERSION}\n`)
    return EXIT_OK
  },
}

const helpCommand: LocalCommand = {
  kind: 'local',
  name: 'help',
  summary: "show the help of openkes or of a command (the same as '<command> --help')",
  args: ['command...?'],
  examples: ['openkes help', 'openkes help key create'],
  async run(inv) {
    inv.print(helpFor(OPENKES, inv.args, TOP_OPTIONS))
    return EXIT_OK
  },
}

/** Every command of `openkes`. */
export const OPENKES: CommandGroup = {
  name: 'openkes',
  summary: 'a key management server that speaks the API of MinIO KES',
  commands: [
    serverCommand,
    migrateCommand,
    auditCommands,
    keyCommands,
    policyCommands,
    identityCommands,
    logCommands,
    metricCommand,
    statusCommand,
    completionCommand(() => ({ root: OPENKES, topFlags: TOP_FLAGS })),
    toolCommands,
    versionCommand,
    helpCommand,
  ],
  examples: [
    'openkes server --dev',
    'export KES_CLIENT_CERT=openkes-dev/root.cert KES_CLIENT_KEY=openkes-dev/root.key',
    'openkes key create my-key -k',
    'openkes key generate my-key -k --json',
  ],
}

/** The flags the bare `openkes` takes (for completion). */
export const TOP_FLAGS: readonly string[] = ['-h', '--help', '-v', '--version']

/**
 * Runs `openkes <argv>`. Resolves to the exit code: 0 ok, 1 when the command
 * failed, 2 for a usage error. Never throws.
 */
export function runOpenkes(argv: readonly string[], ctx: ClientContext): Promise<number> {
  // `-v` and `--version` as the first word are the `version` command, as is usual
  const words = argv[0] === '-v' || argv[0] === '--version' ? ['version', ...argv.slice(1)] : argv
  return runCommandLine(OPENKES, words, ctx, TOP_OPTIONS)
}
