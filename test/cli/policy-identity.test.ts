// `openkes policy ...` and `openkes identity assign|list|forget` against a
// real server, run as a child process.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { run, startCliServer } from './client-env.js'
import type { CliServer, Result } from './client-env.js'

describe('openkes policy and identity', () => {
  let s: CliServer
  let asRoot: (args: string[], input?: string) => Promise<Result>
  before(async () => {
    s = await startCliServer()
    asRoot = (args, input) => run([...args, '--ca', s.ca], s.envFor(s.root), input)
  })
  after(async () => {
    await s.env.dispose()
  })

  test('policy write from a file, read back as text and as JSON', async () => {
    const file = path.join(s.env.dir, 'pol.json')
    await writeFile(file, JSON.stringify({ allow: ['/v1/key/generate/cli-*', '/v1/key/decrypt/cli-*'], deny: ['/v1/key/generate/cli-secret'] }))
    assert.deepEqual(await asRoot(['policy', 'write', 'cli-pol', file]), { code: 0, stdout: '', stderr: '' })
    const text = await asRoot(['policy', 'read', 'cli-pol'])
    assert.equal(text.code, 0)
    assert.equal(text.stdout, 'allow:\n  /v1/key/generate/cli-*\n  /v1/key/decrypt/cli-*\ndeny:\n  /v1/key/generate/cli-secret\n')
    const json = await asRoot(['policy', 'show', 'cli-pol', '--json'])
    assert.deepEqual(JSON.parse(json.stdout), {
      allow: ['/v1/key/generate/cli-*', '/v1/key/decrypt/cli-*'],
      deny: ['/v1/key/generate/cli-secret'],
    })
  })

  test("policy add reads the seed form {\"paths\"} from stdin with '-'", async () => {
    const res = await asRoot(['policy', 'add', 'stdin-pol', '-'], '{"paths":["/v1/key/list/*"]}')
    assert.equal(res.code, 0, res.stderr)
    const json = await asRoot(['policy', 'read', 'stdin-pol', '--json'])
    assert.deepEqual(JSON.parse(json.stdout), { allow: ['/v1/key/list/*'], deny: [] })
    const text = await asRoot(['policy', 'read', 'stdin-pol'])
    assert.equal(text.stdout, 'allow:\n  /v1/key/list/*\ndeny:\n  (none)\n')
  })

  test('policy write with a missing or malformed file fails with exit 1 and a plain message', async () => {
    const missing = await asRoot(['policy', 'write', 'x', 'no-such-file.json'])
    assert.equal(missing.code, 1)
    assert.equal(missing.stderr, "openkes: cannot read 'no-such-file.json': no such file or directory\n")
    const bad = await asRoot(['policy', 'write', 'x', '-'], '{"allow": "not a list"}')
    assert.equal(bad.code, 1)
    assert.equal(bad.stderr, "openkes: 'stdin': allow must be a list of strings\n")
    const notJson = await asRoot(['policy', 'write', 'x', '-'], '{')
    assert.equal(notJson.stderr, "openkes: 'stdin' is not valid JSON\n")
  })

  test('policy list: a table, or a JSON array; a pattern narrows it', async () => {
    await asRoot(['policy', 'write', 'list-p1', '-'], '{"allow":[]}')
    await asRoot(['policy', 'write', 'list-p2', '-'], '{"allow":[]}')
    const text = await asRoot(['policy', 'list', 'list-*'])
    assert.equal(text.stdout, 'POLICY\nlist-p1\nlist-p2\n')
    const json = await asRoot(['policy', 'list', '--json'])
    const names = JSON.parse(json.stdout) as string[]
    assert.ok(Array.isArray(names) && names.includes('list-p1') && names.includes('app'))
  })

  test('policy delete, then reading it fails with policy does not exist', async () => {
    await asRoot(['policy', 'write', 'gone', '-'], '{"allow":[]}')
    assert.deepEqual(await asRoot(['policy', 'delete', 'gone']), { code: 0, stdout: '', stderr: '' })
    const read = await asRoot(['policy', 'read', 'gone'])
    assert.equal(read.code, 1)
    assert.equal(read.stderr, 'openkes: policy does not exist\n')
  })

  test('identity assign (identity first) gives an identity its policy; list shows it; forget takes it away', async () => {
    const id = s.nopol.client.identity
    await asRoot(['policy', 'write', 'lister', '-'], '{"allow":["/v1/key/list/*"]}')
    const refused = await run(['key', 'list', '--ca', s.ca], s.envFor(s.nopol))
    assert.equal(refused.stderr, 'openkes: prohibited by policy\n')

    assert.deepEqual(await asRoot(['identity', 'assign', id, 'lister']), { code: 0, stdout: '', stderr: '' })
    const allowed = await run(['key', 'list', '--json', '--ca', s.ca], s.envFor(s.nopol))
    assert.equal(allowed.code, 0, allowed.stderr)

    const json = await asRoot(['identity', 'list', '--json'])
    const map = JSON.parse(json.stdout) as Record<string, string>
    assert.equal(map[id], 'lister')
    assert.equal(map[s.app.client.identity], 'app')
    const text = await asRoot(['identity', 'list'])
    assert.match(text.stdout, /^IDENTITY +POLICY\n/)
    assert.match(text.stdout, new RegExp(`^${id}  lister$`, 'm'))

    assert.deepEqual(await asRoot(['identity', 'forget', id]), { code: 0, stdout: '', stderr: '' })
    const after = await run(['key', 'list', '--ca', s.ca], s.envFor(s.nopol))
    assert.equal(after.code, 1)
    assert.equal(after.stderr, 'openkes: prohibited by policy\n')
  })

  test('identity errors come from the server: unknown policy, bad identity', async () => {
    const unknown = await asRoot(['identity', 'assign', s.nopol.client.identity, 'no-such-policy'])
    assert.equal(unknown.code, 1)
    assert.equal(unknown.stderr, 'openkes: policy does not exist\n')
    const bad = await asRoot(['identity', 'forget', 'not-an-identity'])
    assert.equal(bad.code, 1)
    assert.equal(bad.stderr, 'openkes: invalid identity\n')
  })

  test('identity new and of still work beside the API subcommands', async () => {
    const res = await run(['identity', 'of', s.app.cert], s.envFor(s.root))
    assert.equal(res.code, 0)
    assert.equal(res.stdout, `${s.app.client.identity}\n`)
    const usage = await run(['identity', 'bogus'], s.envFor(s.root))
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /want one of new, of, assign, describe, self, list, forget/)
  })
})
