// `openkes key ...` against a real server, run as a child process.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { hasStackTrace, run, startCliServer } from './client-env.js'
import type { CliServer, Result } from './client-env.js'

const KEY_32 = Buffer.alloc(32, 7).toString('base64')

describe('openkes key', () => {
  let s: CliServer
  let key: (args: string[], input?: string) => Promise<Result>
  before(async () => {
    s = await startCliServer()
    key = (args) => run(['key', ...args, '--ca', s.ca], s.envFor(s.root))
  })
  after(async () => {
    await s.env.dispose()
  })

  test('create prints nothing; creating it again fails with the server message', async () => {
    const created = await key(['create', 'k-create'])
    assert.deepEqual(created, { code: 0, stdout: '', stderr: '' })
    const again = await key(['create', 'k-create'])
    assert.equal(again.code, 1)
    assert.equal(again.stdout, '')
    assert.equal(again.stderr, 'openkes: key does already exist\n')
  })

  test('create with a key imports it: encrypting under two names with the same key decrypts across', async () => {
    assert.equal((await key(['create', 'k-imp-a', KEY_32])).code, 0)
    assert.equal((await key(['import', 'k-imp-b', KEY_32])).code, 0)
    const plaintext = Buffer.from('hello').toString('base64')
    const enc = await key(['encrypt', 'k-imp-a', plaintext])
    assert.equal(enc.code, 0, enc.stderr)
    const dec = await key(['decrypt', 'k-imp-b', enc.stdout.trim()])
    assert.equal(dec.code, 0, dec.stderr)
    assert.equal(dec.stdout, `${plaintext}\n`)
  })

  test('import with --cipher ChaCha20 round-trips; a short key is refused by the server', async () => {
    assert.equal((await key(['import', 'k-chacha', KEY_32, '--cipher', 'ChaCha20'])).code, 0)
    const enc = await key(['encrypt', 'k-chacha', 'AAEC', '--json'])
    const { ciphertext } = JSON.parse(enc.stdout) as { ciphertext: string }
    const dec = await key(['decrypt', 'k-chacha', ciphertext, '--json'])
    assert.deepEqual(JSON.parse(dec.stdout), { plaintext: 'AAEC' })
    const short = await key(['import', 'k-short', 'AAAA'])
    assert.equal(short.code, 1)
    assert.equal(short.stderr, 'openkes: invalid key\n')
  })

  test('generate prints labelled plaintext and ciphertext; decrypt gives the plaintext back', async () => {
    assert.equal((await key(['create', 'k-gen'])).code, 0)
    const gen = await key(['generate', 'k-gen'])
    assert.equal(gen.code, 0, gen.stderr)
    const m = /^plaintext: +(\S+)\nciphertext: +(\S+)\n$/.exec(gen.stdout)
    assert.ok(m, gen.stdout)
    assert.equal(Buffer.from(m[1] ?? '', 'base64').length, 32)
    const dec = await key(['decrypt', 'k-gen', m[2] ?? ''])
    assert.equal(dec.stdout, `${m[1]}\n`)
  })

  test('generate --json (and its alias derive) with a context: the wrong context fails to decrypt', async () => {
    assert.equal((await key(['create', 'k-ctx'])).code, 0)
    const context = Buffer.from('bucket/object').toString('base64')
    for (const verb of ['generate', 'derive']) {
      const gen = await key([verb, 'k-ctx', context, '--json'])
      assert.equal(gen.code, 0, gen.stderr)
      const dataKey = JSON.parse(gen.stdout) as { plaintext: string; ciphertext: string }
      assert.deepEqual(Object.keys(dataKey), ['plaintext', 'ciphertext'])
      const ok = await key(['decrypt', 'k-ctx', dataKey.ciphertext, context, '--json'])
      assert.deepEqual(JSON.parse(ok.stdout), { plaintext: dataKey.plaintext })
      const wrong = await key(['decrypt', 'k-ctx', dataKey.ciphertext, Buffer.from('other').toString('base64')])
      assert.equal(wrong.code, 1)
      assert.equal(wrong.stderr, 'openkes: decryption failed: ciphertext is not authentic\n')
      assert.equal(wrong.stdout, '')
    }
  })

  test('list shows a table; --json is an array of names; a pattern narrows it', async () => {
    for (const name of ['list-a', 'list-b', 'other-c']) assert.equal((await key(['create', name])).code, 0)
    const human = await key(['list', 'list-'])
    assert.equal(human.code, 0)
    assert.equal(human.stdout, 'KEY\nlist-a\nlist-b\n')
    const json = await key(['list', 'list-*', '--json'])
    assert.deepEqual(JSON.parse(json.stdout), ['list-a', 'list-b'])
    const all = JSON.parse((await key(['list', '--json'])).stdout) as string[]
    assert.ok(all.includes('other-c') && all.includes('list-a'))
    const none = await key(['list', 'nothing-*', '--json'])
    assert.deepEqual(JSON.parse(none.stdout), [])
  })

  test('delete removes the key; using it afterwards fails with key does not exist; deleting again succeeds', async () => {
    assert.equal((await key(['create', 'k-del'])).code, 0)
    assert.deepEqual(await key(['delete', 'k-del']), { code: 0, stdout: '', stderr: '' })
    const gen = await key(['generate', 'k-del'])
    assert.equal(gen.code, 1)
    assert.equal(gen.stderr, 'openkes: key does not exist\n')
    assert.deepEqual(await key(['delete', 'k-del']), { code: 0, stdout: '', stderr: '' })
  })

  test('decrypt with a missing key: exit 1, key does not exist, no stack trace', async () => {
    const res = await key(['decrypt', 'no-such-key', Buffer.alloc(64, 1).toString('base64')])
    assert.equal(res.code, 1)
    assert.equal(res.stderr, 'openkes: key does not exist\n')
    assert.ok(!hasStackTrace(res.stderr))
  })

  test('a policy-bound identity is refused outside its policy: prohibited by policy', async () => {
    const asApp = (args: string[]): Promise<Result> => run(['key', ...args, '--ca', s.ca], s.envFor(s.app))
    assert.equal((await key(['create', 'app-1'])).code, 0)
    assert.equal((await asApp(['generate', 'app-1'])).code, 0)
    for (const args of [['create', 'app-2'], ['generate', 'k-gen'], ['list']]) {
      const res = await asApp(args)
      assert.equal(res.code, 1, args.join(' '))
      assert.equal(res.stderr, 'openkes: prohibited by policy\n')
    }
    const nopol = await run(['key', 'list', '--ca', s.ca], s.envFor(s.nopol))
    assert.equal(nopol.code, 1)
    assert.equal(nopol.stderr, 'openkes: prohibited by policy\n')
  })

  test('bad base64 arguments and ciphers are usage errors that do not echo the value', async () => {
    const cases = [
      ['create', 'k-x', 'not base64!'],
      ['encrypt', 'k-gen', 'c2VjcmV0LXBsYWludGV4dA'],
      ['decrypt', 'k-gen', '%%%'],
      ['generate', 'k-gen', 'bad-context'],
      ['import', 'k-x', KEY_32, '--cipher', 'DES'],
    ]
    for (const args of cases) {
      const res = await key(args)
      assert.equal(res.code, 2, args.join(' '))
      assert.match(res.stderr, /^openkes key \w+: .+\nRun 'openkes key \w+ --help' for usage\.\n$/)
      assert.doesNotMatch(res.stderr, /c2VjcmV0|not base64!|bad-context|%%%/)
    }
  })

  test('argument counts are checked: missing and extra arguments exit 2', async () => {
    const missing = await key(['create'])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /missing name/)
    const extra = await key(['delete', 'a', 'b'])
    assert.equal(extra.code, 2)
    assert.match(extra.stderr, /unexpected argument 'b'/)
    const encrypt = await key(['encrypt', 'k'])
    assert.match(encrypt.stderr, /missing base64 plaintext/)
  })
})
