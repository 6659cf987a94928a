// `openkes completion bash|zsh`: shell completion scripts, generated from the
// same command tables that drive parsing and --help, so they cannot drift.
import { CLIENT_FLAGS } from './connect.js'
import type { CommandGroup, CommandSpec, OptionSpec } from './connect.js'
import { identityApiCommands } from './identity-api.js'
import { EXIT_OK, EXIT_USAGE } from './io.js'
import type { CommandIO } from './io.js'
import { keyCommands } from './key.js'
import { logCommands } from './log.js'
import { metricCommand } from './metric.js'
import { policyCommands } from './policy.js'
import { statusCommand } from './status.js'

/** One completable command: its top word, subcommands and the flags after each. */
export interface CompletionCommand {
  readonly name: string
  readonly summary: string
  /** Subcommand word → summary (empty for commands without subcommands). */
  readonly subcommands: ReadonlyArray<{ readonly name: string; readonly summary: string; readonly flags: readonly string[] }>
  /** Flags when the command has no subcommands. */
  readonly flags: readonly string[]
}

const HELP_FLAGS = ['-h', '--help']

function flagsOf(options: Readonly<Record<string, OptionSpec>> | undefined): string[] {
  const all = { ...options, ...CLIENT_FLAGS }
  return Object.entries(all).flatMap(([name, o]) => (o.short !== undefined ? [`-${o.short}`, `--${name}`] : [`--${name}`]))
}

function lastWord(name: string): string {
  return name.split(' ').at(-1) ?? name
}

function subcommandsOf(specs: readonly CommandSpec[]): CompletionCommand['subcommands'] {
  return specs.flatMap((spec) =>
    [lastWord(spec.name), ...(spec.aliases ?? [])].map((name) => ({ name, summary: spec.summary, flags: flagsOf(spec.options) })),
  )
}

function group(g: CommandGroup, extra: CompletionCommand['subcommands'] = []): CompletionCommand {
  return { name: g.name, summary: g.summary, subcommands: [...extra, ...subcommandsOf(g.commands)], flags: HELP_FLAGS }
}

function single(spec: CommandSpec): CompletionCommand[] {
  return [spec.name, ...(spec.aliases ?? [])].map((name) => ({ name, summary: spec.summary, subcommands: [], flags: flagsOf(spec.options) }))
}

/** Every command of `openkes`, as completion sees it. */
export const COMPLETION_COMMANDS: readonly CompletionCommand[] = [
  group(keyCommands),
  group(policyCommands),
  group(identityApiCommands, [
    { name: 'new', summary: 'create a private key and certificate for a client', flags: ['--key', '--cert', '--ip', '--dns', '--force', ...HELP_FLAGS] },
    { name: 'of', summary: 'print the identity of a certificate', flags: HELP_FLAGS },
  ]),
  group(logCommands),
  ...single(metricCommand),
  ...single(statusCommand),
  { name: 'server', summary: 'start the server', subcommands: [], flags: ['--config', '--dev', '--data', '--addr', ...HELP_FLAGS] },
  { name: 'migrate', summary: 'copy keys, policies and assignments between key stores', subcommands: [], flags: ['--from', '--to', '--dry-run', '--merge', '--pattern', ...HELP_FLAGS] },
  { name: 'completion', summary: 'print a shell completion script (bash or zsh)', subcommands: [], flags: HELP_FLAGS },
  { name: 'version', summary: 'print the version', subcommands: [], flags: [] },
  { name: 'help', summary: 'show help', subcommands: [], flags: [] },
]

// Flags whose value is a file or directory, and flags with a fixed set of values.
const FILE_FLAGS = ['--cert', '--key', '--ca', '--config', '--data']
const CHOICE_FLAGS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['--type', ['audit', 'error']],
  ['--cipher', ['AES256', 'ChaCha20']],
]
// Positional arguments that are files.
const FILE_ARGS = ['policy write', 'policy add', 'identity of']
const SHELLS = ['bash', 'zsh'] as const

/** Quotes a string for a POSIX shell (also valid in zsh). */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`
}

/** The bash completion script (`source <(openkes completion bash)`). */
export function bashCompletion(commands: readonly CompletionCommand[] = COMPLETION_COMMANDS): string {
  const subcommandCases = commands
    .filter((c) => c.subcommands.length > 0)
    .map((c) => `      ${c.name}) words=${shellQuote(c.subcommands.map((s) => s.name).join(' '))} ;;`)
  const flagCases = commands.flatMap((c) =>
    c.subcommands.length > 0
      ? c.subcommands.map((s) => `    ${shellQuote(`${c.name} ${s.name}`)}) flags=${shellQuote(s.flags.join(' '))} ;;`)
      : [`    ${shellQuote(c.name)}*) flags=${shellQuote(c.flags.join(' '))} ;;`],
  )
  const choiceCases = CHOICE_FLAGS.map(([flag, values]) => `    ${flag}) COMPREPLY=($(compgen -W ${shellQuote(values.join(' '))} -- "$cur")); return ;;`)
  return `# bash completion for openkes
# Load it with: source <(openkes completion bash)
# or save it as /etc/bash_completion.d/openkes.
_openkes() {
  local cur prev cmd sub words flags
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev=""
  if [ "$COMP_CWORD" -gt 0 ]; then prev="\${COMP_WORDS[COMP_CWORD-1]}"; fi
  cmd="\${COMP_WORDS[1]}"
  sub="\${COMP_WORDS[2]}"
  COMPREPLY=()

  case "$prev" in
    ${FILE_FLAGS.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
${choiceCases.join('\n')}
  esac

  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W ${shellQuote(commands.map((c) => c.name).join(' '))} -- "$cur"))
    return
  fi

  if [ "$COMP_CWORD" -eq 2 ]; then
    words=""
    case "$cmd" in
${subcommandCases.join('\n')}
      completion) words=${shellQuote(SHELLS.join(' '))} ;;
    esac
    if [ -n "$words" ] && [[ "$cur" != -* ]]; then
      COMPREPLY=($(compgen -W "$words" -- "$cur"))
      return
    fi
  fi

  flags=""
  case "$cmd $sub" in
${flagCases.join('\n')}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  case "$cmd $sub" in
    ${FILE_ARGS.map(shellQuote).join('|')}) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -o default -F _openkes openkes
`
}

// zsh's _describe splits "word:description" at the first colon.
function describeItem(name: string, summary: string): string {
  return shellQuote(`${name}:${summary.replaceAll(':', ' -')}`)
}

/** The zsh completion script (`source <(openkes completion zsh)`, or `_openkes` in $fpath). */
export function zshCompletion(commands: readonly CompletionCommand[] = COMPLETION_COMMANDS): string {
  const subcommandCases = commands
    .filter((c) => c.subcommands.length > 0)
    .map((c) => `      ${c.name}) subcommands=(${c.subcommands.map((s) => describeItem(s.name, s.summary)).join(' ')}) ;;`)
  const flagCases = commands.flatMap((c) =>
    c.subcommands.length > 0
      ? c.subcommands.map((s) => `    ${shellQuote(`${c.name} ${s.name}`)}) flags=(${s.flags.join(' ')}) ;;`)
      : [`    ${shellQuote(c.name)}*) flags=(${c.flags.join(' ')}) ;;`],
  )
  const choiceCases = CHOICE_FLAGS.map(([flag, values]) => `    ${flag}) compadd -- ${values.join(' ')}; return ;;`)
  return `#compdef openkes
# zsh completion for openkes
# Load it with: source <(openkes completion zsh)   (after compinit)
# or save it as _openkes in a directory of your $fpath.
_openkes() {
  local cmd=\${words[2]} sub=\${words[3]}
  local -a commands subcommands flags

  case \${words[CURRENT-1]} in
    ${FILE_FLAGS.join('|')}) _files; return ;;
${choiceCases.join('\n')}
  esac

  if (( CURRENT == 2 )); then
    commands=(${commands.map((c) => describeItem(c.name, c.summary)).join(' ')})
    _describe 'command' commands
    return
  fi

  if (( CURRENT == 3 )) && [[ $PREFIX != -* ]]; then
    case $cmd in
${subcommandCases.join('\n')}
      completion) subcommands=(${SHELLS.map((s) => describeItem(s, `${s} completion script`)).join(' ')}) ;;
    esac
    if (( \${#subcommands} > 0 )); then
      _describe 'subcommand' subcommands
      return
    fi
  fi

  case "$cmd $sub" in
${flagCases.join('\n')}
  esac
  if [[ $PREFIX == -* ]]; then
    compadd -- $flags
    return
  fi
  case "$cmd $sub" in
    ${FILE_ARGS.map(shellQuote).join('|')}) _files ;;
  esac
}

if [[ $funcstack[1] == _openkes ]]; then
  _openkes "$@"
else
  compdef _openkes openkes
fi
`
}

const USAGE = `Usage: openkes completion bash|zsh

Print a shell completion script for openkes: its commands, subcommands and flags.

Examples:
  source <(openkes completion bash)          # in ~/.bashrc
  source <(openkes completion zsh)           # in ~/.zshrc, after compinit
  openkes completion zsh > ~/.zsh/completions/_openkes
`

/**
 * Runs `openkes completion <shell>`: prints the script. Resolves to 0, or 2
 * for a missing or unknown shell. Never throws.
 */
export function runCompletionCommand(args: readonly string[], io: CommandIO): number {
  const [shell, ...extra] = args
  if (shell === '-h' || shell === '--help') {
    io.stdout(USAGE)
    return EXIT_OK
  }
  if (shell === undefined || extra.length > 0 || (shell !== 'bash' && shell !== 'zsh')) {
    const problem = shell === undefined ? 'missing shell' : extra.length > 0 ? `unexpected argument '${extra[0] ?? ''}'` : `unknown shell '${shell}'`
    io.stderr(`openkes completion: ${problem}: want bash or zsh\n\n${USAGE}`)
    return EXIT_USAGE
  }
  io.stdout(shell === 'bash' ? bashCompletion() : zshCompletion())
  return EXIT_OK
}
