// `openkes completion bash|zsh`: shell completion scripts, written from the
// command table that also drives parsing and --help, so they cannot drift.
import { isGroup, spellings, UsageError } from './command-spec.js'
import type { CommandGroup, CommandSpec, LocalCommand, OptionSpec } from './command-spec.js'
import { optionsOf } from './help.js'
import { EXIT_OK } from './io.js'

/** One place a completing shell can be in: after the command words `path`. */
export interface CompletionPoint {
  /** The words typed so far, as typed (aliases included): `key rm`. */
  readonly path: string
  /** The words that may come next, with one-line summaries (empty after a command). */
  readonly children: ReadonlyArray<{ readonly word: string; readonly summary: string }>
  /** The flags accepted here (`-h`, `--help`, ...). */
  readonly flags: readonly string[]
  /** What positional arguments complete to: file names, a fixed set of words, or nothing. */
  readonly args: 'files' | readonly string[]
}

/** The flags of an option table: `-s`, `--server`, ... */
function flagsOf(options: Readonly<Record<string, OptionSpec>>): string[] {
  return Object.entries(options).flatMap(([name, o]) => (o.short !== undefined ? [`-${o.short}`, `--${name}`] : [`--${name}`]))
}

function commandPoint(path: string, spec: CommandSpec, children: CompletionPoint['children'] = []): CompletionPoint {
  return { path, children, flags: flagsOf(optionsOf(spec)), args: spec.completeArgs ?? [] }
}

/**
 * Every completion point of the table `root`, for each spelling of each
 * command (`key delete` and `key rm` alike). `topFlags` are the flags of the
 * bare `openkes`.
 */
export function completionPoints(root: CommandGroup, topFlags: readonly string[]): CompletionPoint[] {
  const points: CompletionPoint[] = []
  const visit = (path: string, group: CommandGroup, flags: readonly string[]): void => {
    const children = group.commands.flatMap((c) => spellings(c).map((word) => ({ word, summary: c.summary })))
    points.push(group.default !== undefined ? commandPoint(path, group.default, children) : { path, children, flags, args: [] })
    for (const child of group.commands) {
      for (const word of spellings(child)) {
        const childPath = path === '' ? word : `${path} ${word}`
        if (isGroup(child)) visit(childPath, child, ['-h', '--help'])
        else points.push(commandPoint(childPath, child))
      }
    }
  }
  visit('', root, topFlags)
  return points
}

/**
 * What each flag's value completes to, over the whole table. Throws when two
 * commands give the same flag different completions (the scripts key on the
 * flag alone).
 */
export function flagValueCompletions(root: CommandGroup): Map<string, 'files' | readonly string[]> {
  const found = new Map<string, 'files' | readonly string[]>()
  const visit = (group: CommandGroup): void => {
    const specs = [...group.commands, ...(group.default !== undefined ? [group.default] : [])]
    for (const node of specs) {
      if (isGroup(node)) {
        visit(node)
        continue
      }
      for (const [name, o] of Object.entries(optionsOf(node))) {
        if (o.complete === undefined) continue
        for (const flag of o.short !== undefined ? [`-${o.short}`, `--${name}`] : [`--${name}`]) {
          const before = found.get(flag)
          if (before !== undefined && JSON.stringify(before) !== JSON.stringify(o.complete)) {
            throw new Error(`completion: ${flag} completes differently in two commands`)
          }
          found.set(flag, o.complete)
        }
      }
    }
  }
  visit(root)
  return found
}

/** Quotes a string for a POSIX shell (also valid in zsh). */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`
}

// The marker for "complete file names" in the generated scripts' args variable.
const FILES = '<files>'

function argsWord(args: CompletionPoint['args']): string {
  return args === 'files' ? FILES : args.join(' ')
}

/** The bash completion script (`source <(openkes completion bash)`). */
export function bashCompletion(root: CommandGroup, topFlags: readonly string[]): string {
  const points = completionPoints(root, topFlags)
  const values = [...flagValueCompletions(root)]
  const fileFlags = values.filter(([, c]) => c === 'files').map(([flag]) => flag)
  const choiceCases = values
    .filter((v): v is [string, readonly string[]] => v[1] !== 'files')
    .map(([flag, words]) => `    ${flag}) COMPREPLY=($(compgen -W ${shellQuote(words.join(' '))} -- "$cur")); return ;;`)
  const childCases = points
    .filter((p) => p.children.length > 0)
    .map((p) => `    ${shellQuote(p.path)}) _openkes_words=${shellQuote(p.children.map((c) => c.word).join(' '))} ;;`)
  const pointCases = points.map((p) => `    ${shellQuote(p.path)}) flags=${shellQuote(p.flags.join(' '))}; args=${shellQuote(argsWord(p.args))} ;;`)
  return `# bash completion for openkes
# Load it with: source <(openkes completion bash)
# or save it as /etc/bash_completion.d/openkes.

# The words that may follow the command words in $1.
_openkes_children() {
  case "$1" in
${childCases.join('\n')}
    *) _openkes_words='' ;;
  esac
}

_openkes() {
  local cur prev cmdpath i w flags args _openkes_words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev=""
  if [ "$COMP_CWORD" -gt 0 ]; then prev="\${COMP_WORDS[COMP_CWORD-1]}"; fi
  COMPREPLY=()

  case "$prev" in
    ${fileFlags.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
${choiceCases.join('\n')}
  esac

  # follow the command words typed so far
  cmdpath=""
  i=1
  while [ "$i" -lt "$COMP_CWORD" ]; do
    _openkes_children "$cmdpath"
    w="\${COMP_WORDS[i]}"
    case " $_openkes_words " in
      *" $w "*) cmdpath="\${cmdpath:+$cmdpath }$w" ;;
      *) break ;;
    esac
    i=$((i + 1))
  done

  if [ "$i" -eq "$COMP_CWORD" ] && [[ "$cur" != -* ]]; then
    _openkes_children "$cmdpath"
    if [ -n "$_openkes_words" ]; then
      COMPREPLY=($(compgen -W "$_openkes_words" -- "$cur"))
      return
    fi
  fi

  flags=""
  args=""
  case "$cmdpath" in
${pointCases.join('\n')}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [ "$args" = '${FILES}' ]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  elif [ -n "$args" ]; then
    COMPREPLY=($(compgen -W "$args" -- "$cur"))
  fi
}
complete -o default -F _openkes openkes
`
}

// zsh's _describe splits "word:description" at the first colon.
function describeItem(name: string, summary: string): string {
  return shellQuote(`${name}:${summary.replaceAll(':', ' -')}`)
}

/** The zsh completion script (`source <(openkes completion zsh)`, or `_openkes` in $fpath). */
export function zshCompletion(root: CommandGroup, topFlags: readonly string[]): string {
  const points = completionPoints(root, topFlags)
  const values = [...flagValueCompletions(root)]
  const fileFlags = values.filter(([, c]) => c === 'files').map(([flag]) => flag)
  const choiceCases = values
    .filter((v): v is [string, readonly string[]] => v[1] !== 'files')
    .map(([flag, words]) => `    ${flag}) compadd -- ${words.map(shellQuote).join(' ')}; return ;;`)
  const childCases = points
    .filter((p) => p.children.length > 0)
    .map((p) => `    ${shellQuote(p.path)}) reply=(${p.children.map((c) => describeItem(c.word, c.summary)).join(' ')}) ;;`)
  const pointCases = points.map((p) => `    ${shellQuote(p.path)}) flags=(${p.flags.map(shellQuote).join(' ')}); args=${shellQuote(argsWord(p.args))} ;;`)
  return `#compdef openkes
# zsh completion for openkes
# Load it with: source <(openkes completion zsh)   (after compinit)
# or save it as _openkes in a directory of your $fpath.

# The words (word:summary) that may follow the command words in $1, in $reply.
_openkes_children() {
  case $1 in
${childCases.join('\n')}
    *) reply=() ;;
  esac
}

_openkes() {
  local cmdpath='' w args=''
  local -a reply names flags
  local -i i=2

  case \${words[CURRENT-1]} in
    ${fileFlags.join('|')}) _files; return ;;
${choiceCases.join('\n')}
  esac

  # follow the command words typed so far
  while (( i < CURRENT )); do
    _openkes_children "$cmdpath"
    names=(\${reply%%:*})
    w=\${words[i]}
    if (( \${names[(Ie)$w]} )); then cmdpath=\${cmdpath:+$cmdpath }$w; else break; fi
    (( i++ ))
  done

  if (( i == CURRENT )) && [[ $PREFIX != -* ]]; then
    _openkes_children "$cmdpath"
    if (( \${#reply} > 0 )); then
      _describe 'command' reply
      return
    fi
  fi

  case $cmdpath in
${pointCases.join('\n')}
  esac
  if [[ $PREFIX == -* ]]; then
    compadd -- $flags
  elif [[ $args == '${FILES}' ]]; then
    _files
  elif [[ -n $args ]]; then
    compadd -- \${=args}
  fi
}

if [[ $funcstack[1] == _openkes ]]; then
  _openkes "$@"
else
  compdef _openkes openkes
fi
`
}

/**
 * The `completion` command for the table `root` (which contains it, so it
 * is made from a function that reads the table when it runs).
 */
export function completionCommand(table: () => { root: CommandGroup; topFlags: readonly string[] }): LocalCommand {
  return {
    kind: 'local',
    name: 'completion',
    summary: 'print a bash or zsh completion script',
    args: ['shell'],
    completeArgs: ['bash', 'zsh'],
    description: 'The script completes the commands, subcommands and options of openkes.',
    examples: [
      'source <(openkes completion bash)          # in ~/.bashrc',
      'source <(openkes completion zsh)           # in ~/.zshrc, after compinit',
      'openkes completion zsh > ~/.zsh/completions/_openkes',
    ],
    validate(args) {
      const shell = args[0]
      if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`unknown shell '${shell ?? ''}': want bash or zsh`)
    },
    async run(inv) {
      const { root, topFlags } = table()
      inv.print(inv.args[0] === 'bash' ? bashCompletion(root, topFlags) : zshCompletion(root, topFlags))
      return EXIT_OK
    },
  }
}
