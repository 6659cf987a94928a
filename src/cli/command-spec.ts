// The shape of the command table: every `openkes` command is one entry of
// data (its words, aliases, arguments, options, help and action), and one
// runner (dispatch.ts), one help writer (help.ts) and one completion writer
// (completion.ts) read it. A new command is a table entry, not a new parser.
import type { KesApi, KesClientOptions } from '../client/api.js'
import type { ClientContext } from './connect.js'
import type { CommandIO } from './io.js'
import type { Painter } from './output.js'

/** A bad command line or missing configuration: reported with a hint to `--help`, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** One option of a command (the shape `parseArgs` takes, plus help and completion). */
export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  readonly multiple?: boolean
  /** The placeholder of a string option's value in the help (`SECONDS`). */
  readonly value?: string
  readonly help: string
  /** Must be given (shown in the synopsis: `--from SOURCE`); else a usage error `--from SOURCE is required`. */
  readonly required?: boolean
  /** What completion offers for the value: file names, or a fixed set of words. */
  readonly complete?: 'files' | readonly string[]
}

/** Option values after parsing. */
export type OptionValues = Readonly<Record<string, string | boolean | Array<string | boolean> | undefined>>

/** What every command's action gets: its words, arguments and options. */
interface BaseInvocation {
  /** The command's words as resolved (`['key', 'create']`), aliases replaced by the names. */
  readonly path: readonly string[]
  /** The positional arguments, their count already checked. */
  readonly args: readonly string[]
  /** Every parsed option, the command's own and the shared ones. */
  readonly options: OptionValues
  readonly ctx: ClientContext
  /** Writes to stdout. */
  print(text: string): void
}

/** One run of a command that works without a server (`server`, `identity new`). */
export interface LocalInvocation extends BaseInvocation {
  readonly io: CommandIO
}

/** One run of a client command: its arguments, output settings and client. */
export interface Invocation extends BaseInvocation {
  readonly json: boolean
  readonly out: Painter
  /** The resolved connection options (every endpoint). */
  readonly clientOptions: KesClientOptions
  /** The client for every endpoint: made on first use, closed when the command ends. */
  client(): KesApi
  /** A further client (e.g. for one endpoint), also closed when the command ends. */
  newClient(options: KesClientOptions): KesApi
}

/** What every command entry has. */
interface BaseCommand {
  /** Its word (`create`); the table's nesting gives the words before it. */
  readonly name: string
  /** Other spellings of the word (`ls` for `list`), e.g. those of the `kes` CLI. */
  readonly aliases?: readonly string[]
  /** One line, lowercase, no final period. */
  readonly summary: string
  /**
   * Positional arguments in order: `name`; optional ones end with `?`
   * (`base64 key?`), a last one taking one or more values with `...`.
   */
  readonly args: readonly string[]
  /** What completion offers for positional arguments: file names, or a fixed set of words. */
  readonly completeArgs?: 'files' | readonly string[]
  readonly description?: string
  readonly options?: Readonly<Record<string, OptionSpec>>
  readonly examples: readonly string[]
  /**
   * Checks arguments and options before anything connects or is written, so
   * that a usage error is reported as one whatever the credentials. Throws UsageError.
   */
  validate?(args: readonly string[], options: OptionValues): void
}

/** A command that talks to servers: it takes the shared connection flags. */
export interface ClientCommand extends BaseCommand {
  readonly kind?: 'client'
  /** Runs the command and resolves to its exit code; throws UsageError, KesError or a network error. */
  run(inv: Invocation): Promise<number>
}

/** A command that needs no server (`server`, `identity new`, `completion`). */
export interface LocalCommand extends BaseCommand {
  readonly kind: 'local'
  /** Runs the command and resolves to its exit code; throws UsageError or an Error to report. */
  run(inv: LocalInvocation): Promise<number>
}

/** A command that runs. */
export type CommandSpec = ClientCommand | LocalCommand

/** A word with subcommands (`openkes key ...`). */
export interface CommandGroup {
  readonly name: string
  readonly aliases?: readonly string[]
  readonly summary: string
  readonly description?: string
  readonly commands: readonly CommandNode[]
  /**
   * What the bare group word runs (`openkes log` follows the audit log, as
   * `kes log` does): given no subcommand, or options only, the group runs this.
   */
  readonly default?: CommandSpec
  readonly examples?: readonly string[]
}

/** One entry of the table. */
export type CommandNode = CommandSpec | CommandGroup

/** Whether a table entry has subcommands. */
export function isGroup(node: CommandNode): node is CommandGroup {
  return 'commands' in node
}

/** Whether a command talks to servers (and so takes the connection flags). */
export function isClientCommand(spec: CommandSpec): spec is ClientCommand {
  return spec.kind !== 'local'
}

/** The words that select `node` in its group: its name, then its aliases. */
export function spellings(node: CommandNode): readonly string[] {
  return [node.name, ...(node.aliases ?? [])]
}

/** The child of `group` spelled `word` (name or alias), if any. */
export function childNamed(group: CommandGroup, word: string): CommandNode | undefined {
  return group.commands.find((c) => spellings(c).includes(word))
}

/** The positional argument at `index`, which the runner has checked is there. Throws UsageError otherwise. */
export function requiredArg(inv: BaseInvocation, index: number): string {
  const value = inv.args[index]
  if (value === undefined) throw new UsageError('missing argument')
  return value
}
