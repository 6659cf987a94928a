// `openkes policy ...`: the counterpart of `kes policy ...` (same argument order).
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { PolicyRules } from '../client/api.js'
import { requiredArg, runGroup } from './connect.js'
import { describeFsError } from './fs-errors.js'
import type { ClientContext, CommandGroup, CommandSpec, Invocation } from './connect.js'
import { EXIT_OK } from './io.js'
import { jsonLine, table } from './output.js'
import type { Painter } from './output.js'

/**
 * Parses a policy file: `{"allow":[...],"deny":[...]}`, or the seed form
 * `{"paths":[...]}` (the same as allow); `null` lists count as empty, other
 * fields are ignored. Throws an Error naming `shownName` for anything else.
 */
export function parsePolicyFile(text: string, shownName: string): PolicyRules {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new Error(`'${shownName}' is not valid JSON`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`'${shownName}': want a JSON object like {"allow":[...],"deny":[...]}`)
  }
  const fields = raw as Record<string, unknown>
  const list = (field: string): string[] | undefined => {
    const value = fields[field]
    if (value === undefined || value === null) return undefined
    if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) {
      throw new Error(`'${shownName}': ${field} must be a list of strings`)
    }
    return [...value]
  }
  // `paths` is the seed's name for allow; a file with both uses allow.
  const allow = list('allow') ?? list('paths') ?? []
  const deny = list('deny') ?? []
  return { allow, deny }
}

async function readPolicySource(inv: Invocation, file: string): Promise<PolicyRules> {
  if (file === '-') return parsePolicyFile((await inv.ctx.readStdin()).toString('utf8'), 'stdin')
  let text: string
  try {
    text = await readFile(path.resolve(inv.ctx.io.cwd ?? process.cwd(), file), 'utf8')
  } catch (err) {
    throw new Error(`cannot read '${file}': ${describeFsError(err)}`)
  }
  return parsePolicyFile(text, file)
}

/** A policy as people read it: its allow and deny rules, one per line. */
export function formatPolicy(rules: PolicyRules, p: Painter): string {
  const section = (title: string, rules: readonly string[]): string[] => [
    p.paint('bold', `${title}:`),
    ...(rules.length === 0 ? [`  ${p.paint('dim', '(none)')}`] : rules.map((r) => `  ${r}`)),
  ]
  return [...section('allow', rules.allow), ...section('deny', rules.deny)].join('\n') + '\n'
}

const write: CommandSpec = {
  name: 'policy write',
  aliases: ['add'],
  summary: 'create or replace a policy from a JSON file',
  args: ['name', 'file'],
  description: `The file holds {"allow":[...],"deny":[...]} or the older {"paths":[...]}
(the same as allow): API path patterns such as /v1/key/generate/my-*.
Deny rules win over allow rules. A file name of '-' reads standard input.`,
  examples: [
    'openkes policy write my-app ./my-app.json',
    `echo '{"allow":["/v1/key/generate/my-*","/v1/key/decrypt/my-*"]}' | openkes policy write my-app -`,
  ],
  async run(inv) {
    const name = requiredArg(inv, 0)
    const rules = await readPolicySource(inv, requiredArg(inv, 1))
    await inv.client().writePolicy(name, rules)
    return EXIT_OK
  },
}

const read: CommandSpec = {
  name: 'policy read',
  aliases: ['show'],
  summary: "print a policy's rules",
  args: ['name'],
  description: '--json prints {"allow":[...],"deny":[...]}, which policy write accepts.',
  examples: ['openkes policy read my-app', 'openkes policy read my-app --json > my-app.json'],
  async run(inv) {
    const rules = await inv.client().readPolicy(requiredArg(inv, 0))
    inv.print(inv.json ? jsonLine({ allow: rules.allow, deny: rules.deny }) : formatPolicy(rules, inv.out))
    return EXIT_OK
  },
}

const list: CommandSpec = {
  name: 'policy list',
  summary: 'list policy names',
  args: ['pattern?'],
  description: '--json prints a JSON array of names.',
  examples: ['openkes policy list', "openkes policy list 'my-*' --json"],
  async run(inv) {
    const names = await inv.client().listPolicies(inv.args[0])
    inv.print(inv.json ? jsonLine(names) : table(['POLICY'], names.map((n) => [n]), inv.out))
    return EXIT_OK
  },
}

const deleteCommand: CommandSpec = {
  name: 'policy delete',
  summary: 'delete a policy (identities assigned to it lose it)',
  args: ['name'],
  examples: ['openkes policy delete my-app'],
  async run(inv) {
    await inv.client().deletePolicy(requiredArg(inv, 0))
    return EXIT_OK
  },
}

/** `openkes policy`: its subcommands, as data. */
export const policyCommands: CommandGroup = {
  name: 'policy',
  summary: 'manage policies: write, read, list, delete',
  commands: [write, read, list, deleteCommand],
}

/**
 * Runs `openkes policy <args>` (`args` start after the word `policy`).
 * Resolves to the exit code: 0 ok, 1 API, network or file error, 2 usage
 * error. Never throws.
 */
export function runPolicyCommand(args: readonly string[], ctx: ClientContext): Promise<number> {
  return runGroup(policyCommands, args, ctx)
}
