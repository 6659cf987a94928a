// The `--help` texts, all written from the command table, so that every
// command's help has the same shape: `Usage:` with `<arg>` placeholders, the
// summary, the description, other spellings, options and examples.
import { isClientCommand } from './command-spec.js'
import type { CommandGroup, CommandSpec, OptionSpec } from './command-spec.js'
import { CLIENT_FLAGS, DEFAULT_SERVER, HELP_FLAG } from './connect.js'

/** A positional argument as written in the table, taken apart. */
export interface ArgSpec {
  readonly name: string
  readonly optional: boolean
  /** Takes every remaining value (one or more; none when optional). */
  readonly variadic: boolean
}

/** Parses an argument of the table: `name`, `name?` (optional), `name...` (one or more), `name...?`. */
export function argSpec(arg: string): ArgSpec {
  const optional = arg.endsWith('?')
  const rest = optional ? arg.slice(0, -1) : arg
  const variadic = rest.endsWith('...')
  return { name: variadic ? rest.slice(0, -3) : rest, optional, variadic }
}

function argSyntax(arg: string): string {
  const a = argSpec(arg)
  const word = `<${a.name}>${a.variadic ? '...' : ''}`
  return a.optional ? `[${word}]` : word
}

/** The options a command accepts: its own, then the connection flags (client commands) or `--help`. */
export function optionsOf(spec: CommandSpec): Readonly<Record<string, OptionSpec>> {
  return isClientCommand(spec) ? { ...spec.options, ...CLIENT_FLAGS } : { ...spec.options, ...HELP_FLAG }
}

/** The synopsis line of a command: `openkes key create <name> [<base64 key>] [options]`. */
export function synopsis(path: readonly string[], spec: CommandSpec): string {
  return ['openkes', ...path, ...requiredOptions(spec).map(([name, o]) => `--${name} ${o.value ?? ''}`.trimEnd()), ...spec.args.map(argSyntax), '[options]'].join(' ')
}

/** The options a command cannot run without (`--from SOURCE`), in table order. */
export function requiredOptions(spec: CommandSpec): Array<[string, OptionSpec]> {
  return Object.entries(spec.options ?? {}).filter(([, o]) => o.required === true)
}

function sentence(summary: string): string {
  return summary.charAt(0).toUpperCase() + summary.slice(1) + '.'
}

const ENVIRONMENT_HELP = [
  `  KES_SERVER       server URLs, comma-separated (default ${DEFAULT_SERVER})`,
  '  KES_CLIENT_CERT  client certificate file (older name: KES_CLIENT_TLS_CERT_FILE)',
  '  KES_CLIENT_KEY   client private key file (older name: KES_CLIENT_TLS_KEY_FILE)',
  '  NO_COLOR         set to turn colours off',
]

/** The `--help` text of the command at `path` (its resolved words). */
export function commandHelp(path: readonly string[], spec: CommandSpec): string {
  const lines = [`Usage: ${synopsis(path, spec)}`, '', sentence(spec.summary)]
  if (spec.description !== undefined) lines.push('', spec.description.trimEnd())
  if (spec.aliases !== undefined && spec.aliases.length > 0) {
    const parent = path.slice(0, -1)
    lines.push('', `Also: ${spec.aliases.map((a) => ['openkes', ...parent, a].join(' ')).join(', ')}`)
  }
  lines.push('', 'Options:', ...optionLines(optionsOf(spec)))
  if (isClientCommand(spec)) lines.push('', 'Environment:', ...ENVIRONMENT_HELP)
  lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`), '')
  return lines.join('\n')
}

/**
 * The `--help` text of a group at `path`: its subcommands with their other
 * spellings; for the top level (`path` empty) also the shared client options.
 */
export function groupHelp(path: readonly string[], group: CommandGroup, topOptions: Readonly<Record<string, OptionSpec>> = HELP_FLAG): string {
  const words = ['openkes', ...path].join(' ')
  const rows = group.commands.map((c) => {
    const also = c.aliases !== undefined && c.aliases.length > 0 ? ` (also: ${c.aliases.join(', ')})` : ''
    return [c.name, `${c.summary}${also}`] as const
  })
  const width = Math.max(...rows.map(([name]) => name.length))
  const usage = group.default !== undefined ? `Usage: ${words} [<command>] [options]` : `Usage: ${words} <command> [options]`
  const lines = [usage, '', sentence(group.summary)]
  if (group.description !== undefined) lines.push('', group.description.trimEnd())
  lines.push('', 'Commands:', ...rows.map(([name, text]) => `  ${name.padEnd(width)}  ${text}`))
  if (group.default !== undefined) {
    lines.push('', `Without a command: ${group.default.summary}.`, '', 'Options (without a command):', ...optionLines(optionsOf(group.default)))
  } else if (path.length === 0) {
    const clientFlags = Object.entries(CLIENT_FLAGS).filter(([name]) => name !== 'help')
    lines.push('', 'Client options (every command that talks to a server):', ...optionLines(Object.fromEntries(clientFlags)))
    lines.push('', 'Options:', ...optionLines(topOptions))
  } else {
    lines.push('', 'Options:', ...optionLines(HELP_FLAG))
  }
  if (group.examples !== undefined && group.examples.length > 0) lines.push('', 'Examples:', ...group.examples.map((e) => `  ${e}`))
  lines.push('', `Run '${words} <command> --help' for a command's arguments, options and examples.`, '')
  return lines.join('\n')
}

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const entries = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short !== undefined ? `-${o.short}, ` : '    '}--${name}${o.value !== undefined ? ` ${o.value}` : ''}`
    return [flag, o.help] as const
  })
  const width = Math.max(...entries.map(([flag]) => flag.length))
  // a help text of several lines continues under its first line
  return entries.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help.replaceAll('\n', `\n${' '.repeat(width + 4)}`)}`)
}
