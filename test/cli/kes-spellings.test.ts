// The current `kes` CLI spellings (`key ls|rm|dek`, `policy ls|rm|create|assign`,
// `identity ls|rm`, bare `log`) do what the OpenKES spellings do, against a
// real server, run as child processes.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { run, start, startCliServer } from './client-env.js'
import type { CliServer, Result } from './client-env.js'

describe('kes spellings against a real server', () => {
  let s: CliServer
  let asRoot: (args: string[], input?: string) => Promise<Result>
  before(async () => {
    s = await startCliServer()
    asRoot = (args, input) => run([...args, '--ca', s.ca], s.envFor(s.root), input)
  })
  after(async () => {
    await s.env.dispose()
  })

  test('key ls = key list, key rm = key delete (also in --json)', async () => {
    for (const name of ['sp-a', 'sp-b']) assert.equal((await asRoot(['key', 'create', name])).code, 0)
    for (const json of [[], ['--json']]) {
      const list = await asRoot(['key', 'list', 'sp-*', ...json])
      assert.equal(list.code, 0, list.stderr)
      assert.deepEqual(await asRoot(['key', 'ls', 'sp-*', ...json]), list)
    }
    assert.deepEqual(await asRoot(['key', 'rm', 'sp-a']), { code: 0, stdout: '', stderr: '' })
    assert.deepEqual(JSON.parse((await asRoot(['key', 'ls', 'sp-*', '--json'])).stdout), ['sp-b'])
    // the same failure as key delete: the server's message, exit 1
    assert.deepEqual(await asRoot(['key', 'rm', 'sp-missing']), await asRoot(['key', 'delete', 'sp-missing']))
  })

  test('key dek = key generate: a data key that key decrypt opens', async () => {
    assert.equal((await asRoot(['key', 'create', 'sp-dek'])).code, 0)
    const dek = await asRoot(['key', 'dek', 'sp-dek', '--json'])
    assert.equal(dek.code, 0, dek.stderr)
    const { plaintext, ciphertext } = JSON.parse(dek.stdout) as { plaintext: string; ciphertext: string }
    const opened = await asRoot(['key', 'decrypt', 'sp-dek', ciphertext])
    assert.equal(opened.stdout, `${plaintext}\n`)
    assert.deepEqual(await asRoot(['key', 'dek', 'sp-nope']), await asRoot(['key', 'generate', 'sp-nope']))
  })

  test('policy create/ls/rm = policy write/list/delete', async () => {
    assert.deepEqual(await asRoot(['policy', 'create', 'sp-pol', '-'], '{"allow":["/v1/key/list/*"]}'), { code: 0, stdout: '', stderr: '' })
    assert.deepEqual(JSON.parse((await asRoot(['policy', 'read', 'sp-pol', '--json'])).stdout), { allow: ['/v1/key/list/*'], deny: [] })
    const list = await asRoot(['policy', 'list', 'sp-*'])
    assert.equal(list.stdout, 'POLICY\nsp-pol\n')
    assert.deepEqual(await asRoot(['policy', 'ls', 'sp-*']), list)
    assert.deepEqual(await asRoot(['policy', 'rm', 'sp-pol']), { code: 0, stdout: '', stderr: '' })
    assert.equal((await asRoot(['policy', 'ls', 'sp-*', '--json'])).stdout, '[]\n')
  })

  test('policy assign <policy> <identity> = identity assign <identity> <policy>; identity ls/rm = list/forget', async () => {
    assert.equal((await asRoot(['policy', 'write', 'sp-assign', '-'], '{"allow":[]}')).code, 0)
    const id = s.nopol.client.identity
    assert.deepEqual(await asRoot(['policy', 'assign', 'sp-assign', id]), { code: 0, stdout: '', stderr: '' })
    const list = await asRoot(['identity', 'list', '--json'])
    assert.equal((JSON.parse(list.stdout) as Record<string, string>)[id], 'sp-assign')
    assert.deepEqual(await asRoot(['identity', 'ls', '--json']), list)
    assert.deepEqual(await asRoot(['identity', 'rm', id]), { code: 0, stdout: '', stderr: '' })
    assert.equal((JSON.parse((await asRoot(['identity', 'ls', '--json'])).stdout) as Record<string, string>)[id], undefined)
    // the same server error either way round
    const viaPolicy = await asRoot(['policy', 'assign', 'sp-no-such-policy', id])
    assert.equal(viaPolicy.code, 1)
    assert.deepEqual(viaPolicy, await asRoot(['identity', 'assign', id, 'sp-no-such-policy']))
  })

  test('bare log follows the audit log (as kes log); SIGINT ends it with exit 0', { timeout: 30_000 }, async (t) => {
    const log = start(['log', '--json', '--ca', s.ca], s.envFor(s.root))
    t.after(() => log.stop('SIGKILL'))
    // the log request itself is the first event: once it is there, the stream is open
    await log.waitFor(/"path":"\/v1\/log\/audit[^"]*"/)
    assert.equal((await asRoot(['key', 'create', 'sp-logged'])).code, 0)
    const [line] = await log.waitFor(/^.*\/v1\/key\/create\/sp-logged.*$/m)
    assert.equal((JSON.parse(line) as { response: { code: number } }).response.code, 200)
    assert.equal(await log.stop('SIGINT'), 0)
    assert.equal(log.stderr(), '')
  })

  test('bare log --error follows the error log: its request shows in the audit log', { timeout: 30_000 }, async (t) => {
    const audit = start(['log', 'audit', '--json', '--ca', s.ca], s.envFor(s.root))
    t.after(() => audit.stop('SIGKILL'))
    await audit.waitFor(/"path":"\/v1\/log\/audit[^"]*"/)
    const errors = start(['log', '--error', '--json', '--ca', s.ca], s.envFor(s.root))
    t.after(() => errors.stop('SIGKILL'))
    await audit.waitFor(/"path":"\/v1\/log\/error[^"]*"/)
    assert.equal(await errors.stop('SIGINT'), 0)
    assert.equal(errors.stderr(), '')
  })
})
