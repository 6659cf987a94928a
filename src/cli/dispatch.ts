// The one runner of the command table: it resolves the words of a command
// line (aliases included) to a table entry, parses and checks its options and
// arguments, prints its help, and reports every usage error in one style:
//
//   openkes key create: missing name
//   Run 'openkes key create --help' for usage.
//
// with exit code 2. Errors of a command's action are one line
// (`openkes: key does not exist`) with exit code 1.
import { parseArgs } from 'node:util'
import { childNamed, isClientCommand, isGroup, UsageError } from './command-spec.js'
import type { CommandGroup, CommandNode, CommandSpec, OptionSpec, OptionValues } from './command-spec.js'
import { connect, describeError, resolveConnection } from './connect.js'
import type { ClientContext } from './connect.js'
import { argSpec, commandHelp, groupHelp, optionsOf, requiredOptions } from './help.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './io.js'
import type { KesApi, KesClientOptions } from '../client/api.js'
import { painter, shouldColor } from './output.js'

/** Where a command line leads: a group (its help) or a command, with the resolved words. */
export interface Resolved {
  readonly path: readonly string[]
  readonly node: CommandNode
}

/**
 * Follows `words` (names or aliases) from `root`. Throws UsageError naming
 * the first word that is no command there.
 */
export function resolveWords(root: CommandGroup, words: readonly string[]): Resolved {
  const path: string[] = []
  let node: CommandNode = root
  for (const word of words) {
    if (!isGroup(node)) throw new UsageError(`unexpected argument '${word}'`)
    const child = childNamed(node, word)
    if (child === undefined) throw new UsageError(`unknown command '${[...path, word].join(' ')}'`)
    path.push(child.name)
    node = child
  }
  return { path, node }
}

/** The help text of the table entry reached by `words` (a group's or a command's). Throws UsageError. */
export function helpFor(root: CommandGroup, words: readonly string[], topOptions?: Readonly<Record<string, OptionSpec>>): string {
  const { path, node } = resolveWords(root, words)
  return isGroup(node) ? groupHelp(path, node, topOptions) : commandHelp(path, node)
}

/**
 * Runs `openkes <argv>` against the table `root`. Resolves to the exit code:
 * 0 ok, 1 when the command failed, 2 for a usage error. Never throws.
 */
export async function runCommandLine(
  root: CommandGroup,
  argv: readonly string[],
  ctx: ClientContext,
  topOptions?: Readonly<Record<string, OptionSpec>>,
): Promise<number> {
  const path: string[] = []
  let group = root
  for (let i = 0; ; i++) {
    const word = argv[i]
    const names = group.commands.map((c) => c.name).join(', ')
    // `help` after a group word is its help too (`openkes key help`), unless the group has a `help` command
    if (word === '-h' || word === '--help' || (word === 'help' && childNamed(group, word) === undefined)) {
      ctx.io.stdout(groupHelp(path, group, topOptions))
      return EXIT_OK
    }
    if (word === undefined || word.startsWith('-')) {
      if (group.default !== undefined) return runSpec(path, group.default, argv.slice(i), ctx)
      const problem = word === undefined ? `missing command: want one of ${names}` : `unknown option '${word}'`
      return usageError(ctx, path, problem)
    }
    const child = childNamed(group, word)
    if (child === undefined) return usageError(ctx, path, `unknown command '${word}': want one of ${names}`)
    path.push(child.name)
    if (!isGroup(child)) return runSpec(path, child, argv.slice(i + 1), ctx)
    group = child
  }
}

function usageError(ctx: ClientContext, path: readonly string[], message: string): number {
  const words = ['openkes', ...path].join(' ')
  ctx.io.stderr(`${words}: ${message}\nRun '${words} --help' for usage.\n`)
  return EXIT_USAGE
}

/**
 * Runs one command with `args` (after its words): parses its options, checks
 * the argument count, validates, then runs it; a client command gets its
 * connection and has its clients closed when it ends. Never throws.
 */
async function runSpec(path: readonly string[], spec: CommandSpec, args: readonly string[], ctx: ClientContext): Promise<number> {
  const clients: KesApi[] = []
  try {
    const { values, positionals } = parseCommandLine(args, optionsOf(spec))
    if (values['help'] === true) {
      ctx.io.stdout(commandHelp(path, spec))
      return EXIT_OK
    }
    checkArgCount(spec.args, positionals)
    for (const [name, o] of requiredOptions(spec)) {
      const value = values[name]
      if (value === undefined || value === '') throw new UsageError(`--${name}${o.value !== undefined ? ` ${o.value}` : ''} is required`)
    }
    spec.validate?.(positionals, values)
    const print = (text: string): void => ctx.io.stdout(text)
    if (!isClientCommand(spec)) return await spec.run({ path, args: positionals, options: values, ctx, io: ctx.io, print })

    const options = await resolveConnection(values, ctx)
    let main: KesApi | undefined
    const newClient = (o: KesClientOptions): KesApi => {
      const c = connect(o, ctx)
      clients.push(c)
      return c
    }
    return await spec.run({
      path,
      args: positionals,
      options: values,
      json: values['json'] === true,
      out: painter(shouldColor(ctx.stdoutIsTTY, ctx.env)),
      ctx,
      clientOptions: options,
      client: () => (main ??= newClient(options)),
      newClient,
      print,
    })
  } catch (err) {
    if (err instanceof UsageError) return usageError(ctx, path, err.message)
    ctx.io.stderr(`openkes: ${describeError(err)}\n`)
    return EXIT_FAILURE
  } finally {
    // a failing close must not turn a finished command into an error
    await Promise.allSettled(clients.map((c) => c.close()))
  }
}

/** Checks positionals against the table's argument list. Throws UsageError for too few or too many. */
function checkArgCount(specArgs: readonly string[], positionals: readonly string[]): void {
  const args = specArgs.map(argSpec)
  const variadic = args.at(-1)?.variadic === true
  const required = args.filter((a) => !a.optional).length
  if (positionals.length < required) throw new UsageError(`missing ${args[positionals.length]?.name ?? 'argument'}`)
  if (!variadic && positionals.length > args.length) throw new UsageError(`unexpected argument '${positionals[args.length] ?? ''}'`)
}

function parseCommandLine(args: readonly string[], options: Readonly<Record<string, OptionSpec>>): { values: OptionValues; positionals: string[] } {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}
  for (const [name, o] of Object.entries(options)) {
    config[name] = { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.multiple === true ? { multiple: true } : {}) }
  }
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: config, strict: true, allowPositionals: true })
    return { values, positionals }
  } catch (err) {
    // parseArgs explains at length; its first sentence names the bad option
    const message = err instanceof Error ? (err.message.split('. ')[0] ?? err.message) : String(err)
    throw new UsageError(message.charAt(0).toLowerCase() + message.slice(1))
  }
}
