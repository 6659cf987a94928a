// The command table drives help, usage errors, aliases and completion: these
// tests walk every entry of it, so a new command is checked without a new test.
// Help and usage run in-process through the same runner as `openkes`; the
// completion script runs in bash.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, test } from 'node:test'
import { isClientCommand, isGroup, spellings } from '../../src/cli/command-spec.js'
import type { CommandGroup, CommandNode } from '../../src/cli/command-spec.js'
import { OPENKES, runOpenkes, TOP_FLAGS } from '../../src/cli/commands.js'
import { bashCompletion } from '../../src/cli/completion.js'
import type { ClientContext } from '../../src/cli/connect.js'
import { CLIENT_FLAGS } from '../../src/cli/connect.js'
import { optionsOf } from '../../src/cli/help.js'

interface Output {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

// A context without credentials or a server: nothing here may get as far as connecting.
async function openkes(argv: readonly string[]): Promise<Output> {
  let stdout = ''
  let stderr = ''
  const ctx: ClientContext = {
    io: { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) },
    env: {},
    stdoutIsTTY: false,
    readStdin: async () => Buffer.alloc(0),
    onInterrupt: () => () => undefined,
    newClient: () => {
      throw new Error('test: no client may be made here')
    },
  }
  const code = await runOpenkes(argv, ctx)
  return { code, stdout, stderr }
}

/** One entry of the table with its canonical words and every way to spell them. */
interface Entry {
  readonly words: readonly string[]
  readonly spelled: ReadonlyArray<readonly string[]>
  readonly node: CommandNode
}

function entries(group: CommandGroup, words: readonly string[] = [], spelled: ReadonlyArray<readonly string[]> = [[]]): Entry[] {
  return group.commands.flatMap((node) => {
    const w = [...words, node.name]
    const s = spelled.flatMap((prefix) => spellings(node).map((word) => [...prefix, word]))
    const self: Entry = { words: w, spelled: s, node }
    return isGroup(node) ? [self, ...entries(node, w, s)] : [self]
  })
}

const ALL = entries(OPENKES)
const COMMANDS = ALL.filter((e) => !isGroup(e.node))
const GROUPS = ALL.filter((e) => isGroup(e.node))
const ALIASED = ALL.filter((e) => e.spelled.length > 1)

// `Usage: openkes key create <name> [<base64 key>] [options]`: words, required options
// (`--from SOURCE`), then <arg>, [<arg>], <arg>... only.
const USAGE_LINE = /^Usage: openkes( [a-z]+)+( --[a-z-]+ [A-Z]+)*( (<[a-z0-9 ]+>(\.\.\.)?|\[<[a-z0-9 ]+>(\.\.\.)?\]))*( <command>| \[<command>\])? \[options\]\n/

const stderrOf = (words: readonly string[], message: string): string =>
  `openkes${words.map((w) => ` ${w}`).join('')}: ${message}\nRun 'openkes${words.map((w) => ` ${w}`).join('')} --help' for usage.\n`

describe('command table: help', () => {
  test('the table has the kes spellings beside the OpenKES ones', () => {
    const spelled = new Set(ALL.flatMap((e) => e.spelled.map((s) => s.join(' '))))
    for (const s of ['key ls', 'key rm', 'key dek', 'key list', 'key delete', 'key generate', 'key derive', 'policy ls', 'policy rm', 'policy assign', 'policy add', 'policy show', 'policy create', 'identity ls', 'identity rm', 'identity new', 'identity of', 'tool identity new', 'log trace', 'log audit', 'log error', 'metrics', 'key info', 'key describe', 'key hmac', 'policy info', 'identity info', 'identity self']) {
      assert.ok(spelled.has(s), s)
    }
    const log = GROUPS.find((e) => e.words.join(' ') === 'log')
    assert.ok(log !== undefined && isGroup(log.node) && log.node.default !== undefined, 'bare log runs a command')
  })

  for (const e of COMMANDS) {
    test(`${e.words.join(' ')} --help: Usage with <arg> placeholders, options, examples, exit 0`, async () => {
      const res = await openkes([...e.words, '--help'])
      assert.equal(res.code, 0)
      assert.equal(res.stderr, '')
      assert.match(res.stdout, USAGE_LINE)
      assert.ok(res.stdout.startsWith(`Usage: openkes ${e.words.join(' ')} `), res.stdout.split('\n')[0])
      assert.match(res.stdout, /\nOptions:\n(.*\n)*  -h, --help +show this help\n/)
      assert.match(res.stdout, /\nExamples:\n {2}.*openkes /)
      if (!isGroup(e.node) && isClientCommand(e.node)) assert.match(res.stdout, /--server URL/)
      // -h is the same
      assert.equal((await openkes([...e.words, '-h'])).stdout, res.stdout)
    })
  }

  for (const e of GROUPS) {
    test(`${e.words.join(' ')} --help lists every subcommand with its aliases, exit 0`, async () => {
      const res = await openkes([...e.words, '--help'])
      assert.equal(res.code, 0)
      assert.equal(res.stderr, '')
      assert.match(res.stdout, USAGE_LINE)
      assert.ok(isGroup(e.node))
      for (const child of e.node.commands) {
        const also = child.aliases !== undefined && child.aliases.length > 0 ? ` (also: ${child.aliases.join(', ')})` : ''
        assert.match(res.stdout, new RegExp(`\\n  ${child.name} +${escape(child.summary + also)}\\n`), child.name)
      }
      assert.equal((await openkes([...e.words, 'help'])).stdout, res.stdout)
    })
  }

  test('openkes --help, -h, help: every top-level command, exit 0; bare openkes is a usage error', async () => {
    const res = await openkes(['--help'])
    assert.equal(res.code, 0)
    assert.match(res.stdout, /^Usage: openkes <command> \[options\]\n/)
    for (const node of OPENKES.commands) assert.match(res.stdout, new RegExp(`\\n  ${node.name} +\\S`), node.name)
    assert.equal((await openkes(['-h'])).stdout, res.stdout)
    assert.equal((await openkes(['help'])).stdout, res.stdout)
    const bare = await openkes([])
    assert.equal(bare.code, 2)
    assert.equal(bare.stdout, '')
    assert.equal(bare.stderr, stderrOf([], `missing command: want one of ${OPENKES.commands.map((c) => c.name).join(', ')}`))
  })

  test('openkes help <command> prints that command\'s help', async () => {
    for (const e of [...COMMANDS, ...GROUPS]) {
      const direct = await openkes([...e.words, '--help'])
      assert.equal((await openkes(['help', ...e.words])).stdout, direct.stdout, e.words.join(' '))
    }
  })
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

describe('command table: usage errors in one style, exit 2', () => {
  for (const e of GROUPS) {
    test(`${e.words.join(' ')} bogus: unknown command`, async () => {
      assert.ok(isGroup(e.node))
      const names = e.node.commands.map((c) => c.name).join(', ')
      const res = await openkes([...e.words, 'bogus'])
      assert.deepEqual(res, { code: 2, stdout: '', stderr: stderrOf(e.words, `unknown command 'bogus': want one of ${names}`) })
    })
  }

  for (const e of COMMANDS) {
    test(`${e.words.join(' ')} --bogus: unknown option`, async () => {
      const res = await openkes([...e.words, '--bogus'])
      assert.deepEqual(res, { code: 2, stdout: '', stderr: stderrOf(e.words, "unknown option '--bogus'") })
    })
  }

  test('openkes bogus: unknown command, in the same style', async () => {
    const res = await openkes(['bogus'])
    assert.deepEqual(res, { code: 2, stdout: '', stderr: stderrOf([], `unknown command 'bogus': want one of ${OPENKES.commands.map((c) => c.name).join(', ')}`) })
  })

  test('missing and extra arguments name the argument, in the same style', async () => {
    const cases: Array<[string[], string[], string]> = [
      [['key', 'create'], ['key', 'create'], 'missing name'],
      [['key', 'rm'], ['key', 'delete'], 'missing name'],
      [['policy', 'assign', 'p'], ['policy', 'assign'], 'missing identity'],
      [['identity', 'forget', 'a', 'b'], ['identity', 'forget'], "unexpected argument 'b'"],
      [['status', 'x'], ['status'], "unexpected argument 'x'"],
      [['server'], ['server'], 'give either --config FILE or --dev'],
      [['migrate', '--from', 'x'], ['migrate'], '--to DEST is required'],
      [['completion'], ['completion'], 'missing shell'],
      [['log', '--audit', '--error'], ['log'], 'give --audit or --error, not both'],
      [['help', 'key', 'bogus'], ['help'], "unknown command 'key bogus'"],
    ]
    for (const [argv, words, message] of cases) {
      assert.deepEqual(await openkes(argv), { code: 2, stdout: '', stderr: stderrOf(words, message) }, argv.join(' '))
    }
  })
})

describe('command table: aliases', () => {
  for (const e of ALIASED) {
    test(`${e.spelled.map((s) => s.join(' ')).join(' = ')}: same help, same usage errors`, async () => {
      const help = await openkes([...e.words, '--help'])
      const error = await openkes([...e.words, ...(isGroup(e.node) ? ['bogus'] : ['--bogus'])])
      for (const spelling of e.spelled) {
        assert.deepEqual(await openkes([...spelling, '--help']), help, spelling.join(' '))
        assert.deepEqual(await openkes([...spelling, ...(isGroup(e.node) ? ['bogus'] : ['--bogus'])]), error, spelling.join(' '))
      }
    })
  }

  test('-v, --version and version print the same', async () => {
    const v = await openkes(['version'])
    assert.equal(v.code, 0)
    assert.match(v.stdout, /^\d+\.\d+\.\d+/)
    assert.deepEqual(await openkes(['-v']), v)
    assert.deepEqual(await openkes(['--version']), v)
  })
})

function bash(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--norc', '--noprofile', '-s'])
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill(), 30_000)
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(script)
  })
}

describe('command table: bash completion lists exactly the table', () => {
  test('after each spelling of each group: its subcommands; after each command: its flags', async () => {
    const script = bashCompletion(OPENKES, TOP_FLAGS)
    // one bash run asks every question: a line per case, "<case>\t<sorted answers>"
    const cases: Array<[string, string[]]> = [['', OPENKES.commands.flatMap((c) => [...spellings(c)])]]
    for (const e of GROUPS) {
      assert.ok(isGroup(e.node))
      const children = e.node.commands.flatMap((c) => [...spellings(c)])
      for (const s of e.spelled) cases.push([s.join(' '), children])
    }
    const flagCases: Array<[string, string[]]> = []
    for (const e of COMMANDS) {
      if (isGroup(e.node)) continue
      const flags = Object.entries(optionsOf(e.node)).flatMap(([name, o]) => (o.short !== undefined ? [`-${o.short}`, `--${name}`] : [`--${name}`]))
      for (const s of e.spelled) flagCases.push([s.join(' '), flags])
    }
    const ask = (words: string, last: string): string => {
      const all = ['openkes', ...(words === '' ? [] : words.split(' ')), last].map((w) => `'${w}'`).join(' ')
      return `COMP_WORDS=(${all}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _openkes; printf '%s\\t%s\\n' '${words}|${last}' "$(printf '%s\\n' "\${COMPREPLY[@]}" | LC_ALL=C sort | tr '\\n' ' ')"`
    }
    const lines = [...cases.map(([w]) => ask(w, '')), ...flagCases.map(([w]) => ask(w, '-')), ask('', '-'), ask('log', '-')]
    const res = await bash(`${script}\n${lines.join('\n')}\n`)
    assert.equal(res.code, 0, res.stderr)
    const answers = new Map(res.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t') as [string, string]))
    const sorted = (words: readonly string[]): string => [...words].sort().map((w) => `${w} `).join('')
    for (const [words, want] of cases) assert.equal(answers.get(`${words}|`), sorted(want), `openkes ${words} <TAB>`)
    for (const [words, want] of flagCases) assert.equal(answers.get(`${words}|-`), sorted(want), `openkes ${words} -<TAB>`)
    // the bare `log` takes the flags of the command it runs
    assert.match(answers.get('log|-') ?? '', /--error /)
    assert.match(answers.get('|-') ?? '', /^--help --version -h -v $/)
    assert.ok(Object.keys(CLIENT_FLAGS).every((f) => (answers.get('key create|-') ?? '').includes(`--${f} `)))
  })
})
