// `openkes identity assign|list|forget`: the server side of identities, the
// counterpart of `kes identity ...` (identity first, as there). `identity.ts`
// keeps `new` and `of`, which work on local files, and routes these here.
import { processContext, requiredArg, runGroup } from './connect.js'
import type { ClientContext, CommandGroup, CommandSpec } from './connect.js'
import { EXIT_OK } from './io.js'
import type { CommandIO } from './io.js'
import { jsonLine, table } from './output.js'

const assign: CommandSpec = {
  name: 'identity assign',
  summary: 'assign a policy to an identity (replacing its previous one)',
  args: ['identity', 'policy'],
  description: `The identity is the hex SHA-256 of a client certificate's public key, as
printed by 'openkes identity of CERT'. An identity has at most one policy.`,
  examples: ['openkes identity assign "$(openkes identity of app.cert)" my-app'],
  async run(inv) {
    await inv.client().assignIdentity(requiredArg(inv, 1), requiredArg(inv, 0))
    return EXIT_OK
  },
}

const list: CommandSpec = {
  name: 'identity list',
  summary: 'list identities and their policies',
  args: ['pattern?'],
  description: '--json prints one object mapping each identity to its policy.',
  examples: ['openkes identity list', 'openkes identity list --json'],
  async run(inv) {
    const identities = await inv.client().listIdentities(inv.args[0])
    const rows = Object.entries(identities).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    inv.print(inv.json ? jsonLine(Object.fromEntries(rows)) : table(['IDENTITY', 'POLICY'], rows, inv.out))
    return EXIT_OK
  },
}

const forget: CommandSpec = {
  name: 'identity forget',
  summary: "remove an identity's policy assignment",
  args: ['identity'],
  examples: ['openkes identity forget "$(openkes identity of app.cert)"'],
  async run(inv) {
    await inv.client().forgetIdentity(requiredArg(inv, 0))
    return EXIT_OK
  },
}

/** The API subcommands of `openkes identity`, as data. */
export const identityApiCommands: CommandGroup = {
  name: 'identity',
  summary: 'manage policy assignments of identities: assign, list, forget',
  commands: [assign, list, forget],
}

/** The subcommand words this module handles. */
export const IDENTITY_API_COMMANDS: readonly string[] = ['assign', 'list', 'forget']

/**
 * Runs `openkes identity assign|list|forget ...` (`args` start with the
 * subcommand word). Resolves to the exit code: 0 ok, 1 API or network error,
 * 2 usage error. Never throws.
 */
export function runIdentityApiCommand(args: readonly string[], io: CommandIO, ctx: ClientContext = processContext(io)): Promise<number> {
  return runGroup(identityApiCommands, args, ctx)
}
