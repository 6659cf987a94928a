// `openkes identity assign|list|forget`: the server side of identities, the
// counterpart of `kes identity ...` (identity first, as there). `identity.ts`
// has `new` and `of`, which work on local files; commands.ts puts them all
// into the one `identity` group.
import { requiredArg } from './command-spec.js'
import type { ClientCommand, Invocation } from './command-spec.js'
import { EXIT_OK } from './io.js'
import { createdText, fields, jsonLine, table } from './output.js'

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

// `kes identity info` without an argument describes the caller, as `self` does.
async function printSelf(inv: Invocation): Promise<number> {
  const self = await inv.client().describeSelf()
  if (inv.json) {
    inv.print(jsonLine(self))
    return EXIT_OK
  }
  const rules = (list: readonly string[]): string => (list.length === 0 ? '-' : list.join('\n'))
  const rows: Array<[string, string]> = [['identity', self.identity]]
  if (self.admin) rows.push(['admin', 'yes: every API, no policy needed'])
  else rows.push(['policy', self.policy === '' ? '- (none: every call but this one is refused)' : self.policy], ['allow', rules(self.allow)], ['deny', rules(self.deny)])
  rows.push(['created', createdText(self)])
  inv.print(fields(rows, inv.out))
  return EXIT_OK
}

const self: ClientCommand = {
  name: 'self',
  summary: 'show who you are to the server: your identity, admin or not, your policy and its rules',
  args: [],
  description: `Works for every identity with a certificate, with or without a policy.
--json prints {"identity","admin","policy","allow","deny"} and the creation time and
creator where known.`,
  examples: ['openkes identity self', 'openkes identity self --json'],
  run: printSelf,
}

const describe: ClientCommand = {
  name: 'describe',
  aliases: ['info'],
  summary: "show an identity's policy, or without an identity your own (as identity self)",
  args: ['identity?'],
  description: `--json prints {"identity","admin","policy"} and the creation time and creator
of the assignment where known. An identity without a policy is 'identity does not exist'.`,
  examples: ['openkes identity describe "$(openkes identity of app.cert)"', 'openkes identity info'],
  async run(inv) {
    const identity = inv.args[0]
    if (identity === undefined) return printSelf(inv)
    const info = await inv.client().describeIdentity(identity)
    if (inv.json) {
      inv.print(jsonLine({ identity, ...info }))
      return EXIT_OK
    }
    const rows: Array<[string, string]> = [['identity', identity]]
    rows.push(info.admin ? ['admin', 'yes: every API, no policy needed'] : ['policy', info.policy])
    rows.push(['created', createdText(info)])
    inv.print(fields(rows, inv.out))
    return EXIT_OK
  },
}

/** The subcommands of `openkes identity` that talk to a server, as data. */
export const identityApiCommands: readonly ClientCommand[] = [assign, describe, self, list, forget]
