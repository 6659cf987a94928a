// `openkes key rotate|rewrap|versions|deleted|restore|purge` against a real server, run as a
// child process: what they print (plain and --json), the server's failures (exit 1 with its
// message), and usage errors (exit 2).
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { hasStackTrace, run, startCliServer } from './client-env.js'
import type { CliServer, Result } from './client-env.js'

const ID = /^[0-9a-f]{32}$/

/** The key id a JSON-format ciphertext (base64) carries. */
function idOf(ciphertextB64: string): string | undefined {
  return (JSON.parse(Buffer.from(ciphertextB64, 'base64').toString('utf8')) as { id?: string }).id
}

function assertFailed(res: Result, code: number, stderr: string | RegExp): void {
  assert.equal(res.code, code, `exit ${res.code}: ${res.stderr}`)
  assert.equal(res.stdout, '')
  if (typeof stderr === 'string') assert.equal(res.stderr, stderr)
  else assert.match(res.stderr, stderr)
  assert.ok(!hasStackTrace(res.stderr), res.stderr)
}

describe('openkes key lifecycle commands', () => {
  let s: CliServer
  let key: (args: string[]) => Promise<Result>
  let ok: (args: string[]) => Promise<string>
  before(async () => {
    s = await startCliServer()
    key = (args) => run(['key', ...args, '--ca', s.ca], s.envFor(s.root))
    ok = async (args) => {
      const res = await key(args)
      assert.equal(res.code, 0, `openkes key ${args.join(' ')}: ${res.stderr}`)
      assert.equal(res.stderr, '')
      return res.stdout
    }
  })
  after(async () => {
    await s.env.dispose()
  })

  test('rotate prints the new version id (--json: {"id"}); versions lists them oldest first, as a table and as JSON', async () => {
    await ok(['create', 'lc-rot'])
    const first = await ok(['versions', 'lc-rot', '--json'])
    const [only] = JSON.parse(first) as Array<{ id: string; created_at?: string; created_by?: string }>
    assert.ok(only !== undefined)
    assert.match(only.id, ID)
    const plain = await ok(['rotate', 'lc-rot'])
    assert.match(plain, /^[0-9a-f]{32}\n$/)
    const viaJson = JSON.parse(await ok(['rotate', 'lc-rot', '--json'])) as Record<string, unknown>
    assert.deepEqual(Object.keys(viaJson), ['id'])
    assert.match(String(viaJson['id']), ID)

    const listed = JSON.parse(await ok(['versions', 'lc-rot', '--json'])) as Array<{ id: string; created_at?: string; created_by?: string }>
    assert.deepEqual(listed.map((v) => v.id), [only.id, plain.trim(), viaJson['id']])
    for (const v of listed) {
      assert.deepEqual(Object.keys(v), ['id', 'created_at', 'created_by'])
      assert.equal(v.created_by, s.root.client.identity)
      assert.ok(!Number.isNaN(Date.parse(v.created_at ?? '')))
    }
    const table = (await ok(['versions', 'lc-rot'])).split('\n')
    assert.match(table[0] ?? '', /^ID {32}CREATED {2,}BY$/)
    assert.equal(table.length, 5, 'header, three versions, and the final newline')
    listed.forEach((v, i) => assert.equal(table[i + 1], `${v.id}  ${v.created_at}  ${v.created_by}`))
    assert.equal(table[4], '')
  })

  test('rewrap prints a ciphertext of the newest version (--json: {"ciphertext"}); decrypt opens it, with the same context', async () => {
    await ok(['create', 'lc-wrap'])
    const context = Buffer.from('bucket/object').toString('base64')
    const { plaintext, ciphertext } = JSON.parse(await ok(['generate', 'lc-wrap', context, '--json'])) as { plaintext: string; ciphertext: string }
    const newest = (await ok(['rotate', 'lc-wrap'])).trim()
    assert.notEqual(idOf(ciphertext), newest)
    const rewrapped = (await ok(['rewrap', 'lc-wrap', ciphertext, context])).trim()
    assert.equal(idOf(rewrapped), newest)
    assert.equal(await ok(['decrypt', 'lc-wrap', rewrapped, context]), `${plaintext}\n`)
    const viaJson = JSON.parse(await ok(['rewrap', 'lc-wrap', ciphertext, context, '--json'])) as Record<string, unknown>
    assert.deepEqual(Object.keys(viaJson), ['ciphertext'])
    assert.equal(idOf(String(viaJson['ciphertext'])), newest)
    // The plaintext is never printed by rewrap.
    assert.ok(!rewrapped.includes(plaintext))
    // The server's refusals: another context, a missing key.
    assertFailed(await key(['rewrap', 'lc-wrap', ciphertext]), 1, 'openkes: decryption failed: ciphertext is not authentic\n')
    assertFailed(await key(['rewrap', 'lc-missing', ciphertext, context]), 1, 'openkes: key does not exist\n')
  })

  test('delete → deleted (table and --json) → restore brings every version back; restoring again exits 1 with the server message', async () => {
    await ok(['create', 'lc-undo'])
    await ok(['rotate', 'lc-undo'])
    const versions = await ok(['versions', 'lc-undo', '--json'])
    const sealed = (await ok(['encrypt', 'lc-undo', Buffer.from('kept').toString('base64')])).trim()
    await ok(['delete', 'lc-undo'])
    assertFailed(await key(['versions', 'lc-undo']), 1, 'openkes: key does not exist\n')

    const listed = JSON.parse(await ok(['deleted', 'lc-undo', '--json'])) as Array<Record<string, string>>
    assert.equal(listed.length, 1)
    assert.deepEqual(Object.keys(listed[0] ?? {}), ['name', 'deleted_at', 'deleted_by'])
    assert.equal(listed[0]?.['name'], 'lc-undo')
    assert.equal(listed[0]?.['deleted_by'], s.root.client.identity)
    assert.ok(!Number.isNaN(Date.parse(listed[0]?.['deleted_at'] ?? '')))
    assert.equal(
      await ok(['deleted', 'lc-undo']),
      `KEY      DELETED${' '.repeat((listed[0]?.['deleted_at'] ?? '').length - 7)}  BY\nlc-undo  ${listed[0]?.['deleted_at']}  ${s.root.client.identity}\n`,
    )
    // Nothing matching: an empty table prints nothing; --json an empty array.
    assert.equal(await ok(['deleted', 'lc-nothing-*']), '')
    assert.deepEqual(JSON.parse(await ok(['deleted', 'lc-nothing-*', '--json'])), [])

    assert.equal(await ok(['restore', 'lc-undo']), '')
    assert.equal(await ok(['versions', 'lc-undo', '--json']), versions)
    assert.equal(await ok(['decrypt', 'lc-undo', sealed]), `${Buffer.from('kept').toString('base64')}\n`)
    assert.deepEqual(JSON.parse(await ok(['deleted', 'lc-undo', '--json'])), [])
    assertFailed(await key(['restore', 'lc-undo']), 1, 'openkes: deleted key does not exist\n')
  })

  test('restore of a name taken again exits 1 with the 409 message; purge destroys the kept deletion; purging again exits 1', async () => {
    await ok(['create', 'lc-taken'])
    await ok(['delete', 'lc-taken'])
    await ok(['create', 'lc-taken'])
    assertFailed(await key(['restore', 'lc-taken']), 1, /^openkes: cannot restore key 'lc-taken': a key with this name exists again .*\n$/)
    assert.equal(await ok(['purge', 'lc-taken']), '')
    assert.deepEqual(JSON.parse(await ok(['deleted', 'lc-taken', '--json'])), [])
    assertFailed(await key(['purge', 'lc-taken']), 1, 'openkes: deleted key does not exist\n')
    assertFailed(await key(['restore', 'lc-taken']), 1, 'openkes: deleted key does not exist\n')
    assertFailed(await key(['purge', 'lc-never-deleted']), 1, 'openkes: deleted key does not exist\n')
    // The key under the name now is untouched.
    assert.equal((JSON.parse(await ok(['versions', 'lc-taken', '--json'])) as unknown[]).length, 1)
  })

  test('rotate of a missing key and calls the policy denies exit 1 with the server message', async () => {
    assertFailed(await key(['rotate', 'lc-missing']), 1, 'openkes: key does not exist\n')
    await ok(['create', 'lc-app'])
    const asApp = (args: string[]): Promise<Result> => run(['key', ...args, '--ca', s.ca], s.envFor(s.app))
    for (const args of [['rotate', 'lc-app'], ['versions', 'lc-app'], ['deleted'], ['restore', 'lc-app'], ['purge', 'lc-app'], ['rewrap', 'lc-app', 'AAAA']]) {
      assertFailed(await asApp(args), 1, 'openkes: prohibited by policy\n')
    }
  })

  test('usage errors exit 2 without contacting the server or echoing base64 values', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['rotate'], /missing name/],
      [['rotate', 'a', 'b'], /unexpected argument 'b'/],
      [['versions'], /missing name/],
      [['restore'], /missing name/],
      [['restore', 'a', 'b'], /unexpected argument 'b'/],
      [['purge'], /missing name/],
      [['deleted', 'a', 'b'], /unexpected argument 'b'/],
      [['rewrap', 'a'], /missing base64 ciphertext/],
      [['rewrap', 'a', 'c2VjcmV0LWNpcGhlcnRleHQ'], /ciphertext/],
      [['rewrap', 'a', 'AAAA', 'not base64!'], /context/],
    ]
    for (const [args, reason] of cases) {
      // A dead server address: a usage error must be found before any connection.
      const res = await run(['key', ...args, '--ca', s.ca], s.envFor(s.root, { KES_SERVER: 'https://127.0.0.1:1' }))
      assertFailed(res, 2, reason)
      assert.match(res.stderr, /^openkes key \w+: .+\nRun 'openkes key \w+ --help' for usage\.\n$/, args.join(' '))
      assert.doesNotMatch(res.stderr, /c2VjcmV0|not base64!/)
    }
  })
})
