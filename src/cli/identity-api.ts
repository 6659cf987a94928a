// `openkes identity assign|list|forget`: the server side of identities, the
// counterpart of `kes identity ...` (identity first, as there). `identity.ts`
// has `new` and `of`, which work on local files; commands.ts puts them all
// into the one `identity` group.
import { requiredArg } from './command-spec.js'
import type { ClientCommand } from './command-spec.js'
import { EXIT_OK } from './io.js'
import { jsonLine, table } from './output.js'

const assign: ClientCommand = {
  name: 'assign',
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

const list: ClientCommand = {
  name: 'list',
  aliases: ['ls'],
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

const forget: ClientCommand = {
  name: 'forget',
  aliases: ['rm'],
  summary: "remove an identity's policy assignment",
  args: ['identity'],
  examples: ['openkes identity forget "$(openkes identity of app.cert)"'],
  async run(inv) {
    await inv.client().forgetIdentity(requiredArg(inv, 0))
    return EXIT_OK
  },
}

/** The subcommands of `openkes identity` that talk to a server, as data. */
export const identityApiCommands: readonly ClientCommand[] = [assign, list, forget]
