// `openkes completion bash|zsh`, run as a child process; the bash script is
// checked by bash itself, syntax and behaviour.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, test } from 'node:test'
import { cleanEnv, run } from './client-env.js'

function bash(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--norc', '--noprofile', '-c', script])
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

// Runs the completion function for a command line whose last word is being completed.
async function complete(script: string, words: string[]): Promise<string[]> {
  const quoted = words.map((w) => `'${w}'`).join(' ')
  const res = await bash(`${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _openkes; printf '%s\\n' "\${COMPREPLY[@]}"`)
  assert.equal(res.code, 0, res.stderr)
  return res.stdout.split('\n').filter((l) => l !== '')
}

describe('openkes completion', () => {
  const env = cleanEnv()

  test('bash: bash -n accepts it; it mentions every command', async () => {
    const res = await run(['completion', 'bash'], env)
    assert.equal(res.code, 0)
    assert.ok(res.stdout.length > 500)
    for (const word of ['key', 'policy', 'identity', 'log', 'metric', 'status', 'server', 'completion', 'generate', 'trace', 'assign', '--server']) {
      assert.match(res.stdout, new RegExp(`(^|[^\\w-])${word}([^\\w-]|$)`, 'm'), word)
    }
    const syntax = await bash(`bash -n <<'__OPENKES__'\n${res.stdout}\n__OPENKES__`)
    assert.equal(syntax.code, 0, syntax.stderr)
  })

  test('bash: completes commands, subcommands, flags and flag values', async () => {
    const script = (await run(['completion', 'bash'], env)).stdout
    assert.deepEqual(await complete(script, ['openkes', 'po']), ['policy'])
    assert.deepEqual(await complete(script, ['openkes', 'key', 'de']), ['describe', 'delete', 'derive', 'dek', 'decrypt', 'deleted'])
    assert.deepEqual(await complete(script, ['openkes', 'identity', '']), ['new', 'of', 'assign', 'describe', 'info', 'self', 'list', 'ls', 'forget', 'rm'])
    assert.deepEqual(await complete(script, ['openkes', 'tool', 'identity', 'n']), ['new'])
    assert.deepEqual(await complete(script, ['openkes', 'log', 'trace', '--type', 'e']), ['error'])
    assert.deepEqual(await complete(script, ['openkes', 'key', 'import', 'k', '--ci']), ['--cipher'])
    assert.deepEqual(await complete(script, ['openkes', 'log', 'trace', '--type', '']), ['audit', 'error'])
    assert.deepEqual(await complete(script, ['openkes', 'metric', '--cou']), ['--count'])
    assert.deepEqual(await complete(script, ['openkes', 'completion', '']), ['bash', 'zsh'])
  })

  test('zsh: a compdef script that mentions every command and subcommand', async () => {
    const res = await run(['completion', 'zsh'], env)
    assert.equal(res.code, 0)
    assert.match(res.stdout, /^#compdef openkes\n/)
    assert.match(res.stdout, /compdef _openkes openkes/)
    for (const word of ['key', 'policy', 'identity', 'log', 'metric', 'status', 'import', 'forget', 'trace', '--json']) {
      assert.match(res.stdout, new RegExp(`(^|[^\\w-])${word}([^\\w-]|$)`, 'm'), word)
    }
    // bash shares enough syntax with zsh to catch unbalanced quotes and braces
    const balanced = await bash(`bash -n <<'__OPENKES__'\n${res.stdout}\n__OPENKES__`)
    assert.equal(balanced.code, 0, balanced.stderr)
  })

  test('a missing or unknown shell is a usage error; --help explains', async () => {
    assert.equal((await run(['completion'], env)).code, 2)
    const fish = await run(['completion', 'fish'], env)
    assert.equal(fish.code, 2)
    assert.match(fish.stderr, /unknown shell 'fish': want bash or zsh/)
    const help = await run(['completion', '--help'], env)
    assert.equal(help.code, 0)
    assert.match(help.stdout, /source <\(openkes completion bash\)/)
  })
})
