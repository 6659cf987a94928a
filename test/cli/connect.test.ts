// How client commands find and authenticate to servers (flags, both env
// spellings), what they do when no server answers, and their usage errors
// and --help, with the built CLI run as a child process.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isClientCommand, isGroup } from '../../src/cli/command-spec.js'
import type { CommandGroup } from '../../src/cli/command-spec.js'
import { OPENKES } from '../../src/cli/commands.js'
import { cleanEnv, deadPort, hasStackTrace, run, startCliServer } from './client-env.js'
import type { CliServer } from './client-env.js'

describe('client configuration', () => {
  let s: CliServer
  before(async () => {
    s = await startCliServer()
    const created = await run(['key', 'create', 'cfg-key', '--ca', s.ca], s.envFor(s.root))
    assert.equal(created.code, 0, created.stderr)
  })
  after(async () => {
    await s.env.dispose()
  })

  test('KES_CLIENT_CERT / KES_CLIENT_KEY configure the client', async () => {
    const res = await run(['key', 'list', '--json', '-k'], cleanEnv({ KES_SERVER: s.url, KES_CLIENT_CERT: s.root.cert, KES_CLIENT_KEY: s.root.key }))
    assert.equal(res.code, 0, res.stderr)
    assert.deepEqual(JSON.parse(res.stdout), ['cfg-key'])
  })

  test('the older KES_CLIENT_TLS_CERT_FILE / KES_CLIENT_TLS_KEY_FILE work too', async () => {
    const res = await run(
      ['key', 'list', '--json', '--insecure'],
      cleanEnv({ KES_SERVER: s.url, KES_CLIENT_TLS_CERT_FILE: s.root.cert, KES_CLIENT_TLS_KEY_FILE: s.root.key }),
    )
    assert.equal(res.code, 0, res.stderr)
    assert.deepEqual(JSON.parse(res.stdout), ['cfg-key'])
  })

  test('flags win over the environment', async () => {
    // the environment names the identity without a policy and a dead server
    const port = await deadPort()
    const env = cleanEnv({ KES_SERVER: `https://127.0.0.1:${port}`, KES_CLIENT_CERT: s.nopol.cert, KES_CLIENT_KEY: s.nopol.key })
    const res = await run(['key', 'list', '--json', '-s', s.url, '--cert', s.root.cert, '--key', s.root.key, '--ca', s.ca], env)
    assert.equal(res.code, 0, res.stderr)
    assert.deepEqual(JSON.parse(res.stdout), ['cfg-key'])
  })

  test('a server list fails over from a dead endpoint (comma-separated env and repeated -s)', async () => {
    const dead = `https://127.0.0.1:${await deadPort()}`
    const viaEnv = await run(['key', 'list', '--json', '--ca', s.ca], s.envFor(s.root, { KES_SERVER: `${dead},${s.url}` }))
    assert.equal(viaEnv.code, 0, viaEnv.stderr)
    assert.deepEqual(JSON.parse(viaEnv.stdout), ['cfg-key'])
    const viaFlags = await run(['key', 'list', '--json', '--ca', s.ca, '-s', dead, '-s', s.url], s.envFor(s.root))
    assert.equal(viaFlags.code, 0, viaFlags.stderr)
  })

  test('without -k or --ca the self-signed server certificate is refused, with a hint', async () => {
    const res = await run(['key', 'list'], s.envFor(s.root))
    assert.equal(res.code, 1)
    assert.match(res.stderr, /^openkes: .+/)
    assert.match(res.stderr, /--ca FILE, or -k/)
    assert.ok(!hasStackTrace(res.stderr), res.stderr)
  })

  test('no certificate or key: usage error, exit 2, naming what is missing', async () => {
    const noCert = await run(['key', 'list'], cleanEnv({ KES_SERVER: s.url, KES_CLIENT_KEY: s.root.key }))
    assert.equal(noCert.code, 2)
    assert.match(noCert.stderr, /^openkes key list: no client certificate: give --cert FILE or set KES_CLIENT_CERT\n/)
    const noKey = await run(['policy', 'list', '--cert', s.root.cert], cleanEnv({ KES_SERVER: s.url }))
    assert.equal(noKey.code, 2)
    assert.match(noKey.stderr, /no client private key: give --key FILE or set KES_CLIENT_KEY/)
  })

  test('an unreadable certificate file: exit 1 with a plain message', async () => {
    const res = await run(['key', 'list', '--cert', 'missing.cert'], s.envFor(s.root))
    assert.equal(res.code, 1)
    assert.equal(res.stderr, "openkes: cannot read client certificate 'missing.cert': no such file or directory\n")
  })

  test('a non-https server is a usage error', async () => {
    const res = await run(['key', 'list', '-s', 'http://127.0.0.1:7373'], s.envFor(s.root))
    assert.equal(res.code, 2)
    assert.match(res.stderr, /invalid server 'http:\/\/127\.0\.0\.1:7373': only https is supported/)
  })
})

describe('server down', () => {
  test('every client command fails with exit 1 and a network message, no stack trace', async () => {
    const s = await startCliServer()
    const env = cleanEnv({ KES_SERVER: `https://127.0.0.1:${await deadPort()}`, KES_CLIENT_CERT: s.root.cert, KES_CLIENT_KEY: s.root.key })
    try {
      for (const args of [['key', 'create', 'x'], ['policy', 'list'], ['identity', 'list'], ['log', 'trace'], ['metric', '--count', '1']]) {
        const res = await run([...args, '-k'], env)
        assert.equal(res.code, 1, `${args.join(' ')}: ${res.stderr}`)
        assert.match(res.stderr, /^openkes: .*(refused|reach|connect)/i, args.join(' '))
        assert.ok(!hasStackTrace(res.stderr), res.stderr)
        assert.equal(res.stdout.trim() === '' || args[0] === 'metric', true)
      }
    } finally {
      await s.env.dispose()
    }
  })
})

describe('usage and help', () => {
  const env = cleanEnv()

  test('--help on every client command and subcommand: exit 0, usage and an example', async () => {
    // every client command of the table, by its words
    const commands: string[] = []
    const walk = (path: string[], group: CommandGroup): void => {
      for (const node of group.commands) {
        if (isGroup(node)) walk([...path, node.name], node)
        else if (isClientCommand(node) && path[0] !== 'tool') commands.push([...path, node.name].join(' '))
      }
    }
    walk([], OPENKES)
    assert.ok(commands.includes('key create') && commands.includes('status'))
    for (const name of commands) {
      const res = await run([...name.split(' '), '--help'], env)
      assert.equal(res.code, 0, name)
      assert.match(res.stdout, new RegExp(`^Usage: openkes ${name}`), name)
      assert.match(res.stdout, /\nExamples:\n {2}openkes /, name)
      assert.match(res.stdout, /--server URL/, name)
    }
    for (const group of ['key', 'policy', 'identity']) {
      const res = await run([group, '--help'], env)
      assert.equal(res.code, 0)
      assert.match(res.stdout, new RegExp(`^Usage: openkes ${group} <command>`))
    }
    const top = await run(['--help'], env)
    assert.equal(top.code, 0)
    for (const word of ['key', 'policy', 'log', 'metric', 'status', 'completion']) assert.match(top.stdout, new RegExp(`\n  ${word} `))
  })

  test('usage errors exit 2 and say what is wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['key'], /^openkes key: missing command: want one of create, import/],
      [['key', 'bogus'], /^openkes key: unknown command 'bogus'/],
      [['policy', 'write', 'only-name'], /^openkes policy write: missing file/],
      [['key', 'list', '--bogus'], /^openkes key list: unknown option '--bogus'/],
      [['log', 'trace', '--type', 'metric'], /invalid log type 'metric': want audit or error/],
      [['metric', '--interval', 'soon'], /invalid --interval 'soon'/],
      [['metric', '--count', '0'], /invalid --count '0'/],
      [['completion', 'fish'], /unknown shell 'fish'/],
    ]
    for (const [args, message] of cases) {
      const res = await run(args, cleanEnv({ KES_CLIENT_CERT: 'c', KES_CLIENT_KEY: 'k' }))
      assert.equal(res.code, 2, args.join(' '))
      assert.match(res.stderr, message, args.join(' '))
      assert.equal(res.stdout, '')
    }
  })
})
