// What the client library makes of a server's answer when the server is broken, old or hostile:
// every answer that is not what the API promises is an InvalidResponseError naming the call
// and what is wrong (never a TypeError, never a half-parsed value), and the forms older KES
// servers sent are read as they meant.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { KesError } from '../api/errors.js'
import type { Call } from './call.js'
import {
  errorFromBody,
  parseApiList,
  parseDeletedList,
  parseIdentityDescription,
  parseIdentityList,
  parseKeyDescription,
  parseKeyVersions,
  parseNameList,
  parsePolicyDescription,
  parseSelfDescription,
  parseServerStatus,
} from './responses.js'

const CALL: Call = { method: 'GET', path: '/v1/test', idempotent: true }
const body = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))

/** Asserts that `parse` refuses with exactly `why`. */
function refuses(parse: () => unknown, why: string): void {
  assert.throws(parse, (err: unknown) => {
    assert.ok(err instanceof Error)
    assert.equal(err.name, 'InvalidResponseError')
    assert.equal(err.message, `kes client: invalid response to GET /v1/test: ${why}`)
    return true
  })
}

test('broken answers are refused naming what is wrong', () => {
  const cases: Array<[string, () => unknown, string]> = [
    ['list: a number among names', () => parseNameList(CALL, body(['a', 1])), 'list entry is not a name'],
    ['list: a bare number', () => parseNameList(CALL, body('42')), 'list entry is not a name'],
    ['list: a name that is not a string', () => parseNameList(CALL, body({ name: 7 })), 'list entry is not a name'],
    ['list: not JSON', () => parseNameList(CALL, body('{"name":"a"}\n{oops')), 'body is neither JSON nor nd-json'],
    ['identities: an array', () => parseIdentityList(CALL, body([1])), 'identity list entry is not an object'],
    ['identities: a non-string policy', () => parseIdentityList(CALL, body({ ab: 1 })), 'identity list maps an identity to a non-string'],
    ['identities: a non-string identity', () => parseIdentityList(CALL, body({ identities: ['ab', 2] })), 'list entry is not a name'],
    ['status: not JSON', () => parseServerStatus(CALL, body('<html>')), 'body is not JSON'],
    ['status: an array', () => parseServerStatus(CALL, body([])), 'body is not a JSON object'],
    ['status: no version', () => parseServerStatus(CALL, body({ uptime: 1 })), "'version' is not a string"],
    ['status: a string for a number', () => parseServerStatus(CALL, body({ version: '1', uptime: '1' })), "'uptime' is not a number"],
    ['status: an infinite number', () => parseServerStatus(CALL, body('{"version":"1","num_cpu":1e999}')), "'num_cpu' is not a number"],
    ['status: a string for a boolean', () => parseServerStatus(CALL, body({ version: '1', keystore_unreachable: 'yes' })), "'keystore_unreachable' is not a boolean"],
    ['status: a number for os', () => parseServerStatus(CALL, body({ version: '1', os: 1 })), "'os' is not a string"],
    ['api: not JSON', () => parseApiList(CALL, body('nope')), 'body is not JSON'],
    ['api: an object', () => parseApiList(CALL, body({})), 'body is not a JSON array'],
    ['api: a route that is a string', () => parseApiList(CALL, body(['/v1/status'])), 'route is not an object'],
    ['api: a route without a path', () => parseApiList(CALL, body([{ method: 'GET' }])), "'path' is not a string"],
    ['key: a number for created_at', () => parseKeyDescription(CALL, body({ name: 'k', created_at: 1 })), "'created_at' is not a string"],
    ['policy: no name', () => parsePolicyDescription(CALL, body({})), "'name' is not a string"],
    ['identity: a string for admin', () => parseIdentityDescription(CALL, body({ admin: 'true' })), "'admin' is not a boolean"],
    ['self: no identity', () => parseSelfDescription(CALL, body({ admin: false })), "'identity' is not a string"],
    ['self: a number rule', () => parseSelfDescription(CALL, body({ identity: 'ab', allow: [1] })), 'allow rule is not a string'],
    ['self: rules that are a string', () => parseSelfDescription(CALL, body({ identity: 'ab', deny: '/v1/*' })), 'deny rules are not a list'],
    ['versions: not a list', () => parseKeyVersions(CALL, { id: 'x', versions: {} }), "'versions' is not a list"],
    ['versions: a version that is a string', () => parseKeyVersions(CALL, { versions: ['v1'] }), 'a version is not an object'],
    ['versions: a version without id', () => parseKeyVersions(CALL, { versions: [{}] }), "'id' is not a string"],
    ['deleted: an array line', () => parseDeletedList(CALL, body('[1]')), 'not a list of deleted keys'],
    ['deleted: no deleted_at', () => parseDeletedList(CALL, body({ name: 'k' })), "'deleted_at' is not a string"],
  ]
  for (const [what, parse, why] of cases) {
    try {
      refuses(parse, why)
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`, { cause: err })
    }
  }
})

test('the forms of older KES servers are read as they meant', () => {
  // Name lists: an array, {names, continue_at} pages, nd-json {name} / {Name} lines, empty.
  assert.deepEqual(parseNameList(CALL, body(['b', 'a'])), { names: ['b', 'a'], continueAt: '' })
  assert.deepEqual(parseNameList(CALL, body({ names: ['a'], continue_at: 'b' })), { names: ['a'], continueAt: 'b' })
  assert.deepEqual(parseNameList(CALL, body('{"name":"a"}\n\n{"Name":"b"}\n')), { names: ['a', 'b'], continueAt: '' })
  assert.deepEqual(parseNameList(CALL, body('  ')), { names: [], continueAt: '' })
  // Identity lists: nd-json {identity, policy}, {identities}, a map; sorted; __proto__ stays an entry.
  assert.deepEqual(parseIdentityList(CALL, body('{"identity":"bb","policy":"p"}\n{"identity":"aa"}\n')), { aa: '', bb: 'p' })
  assert.deepEqual(parseIdentityList(CALL, body({ identities: ['cc', 'aa'] })), { aa: '', cc: '' })
  const map = parseIdentityList(CALL, body('{"__proto__":"evil","aa":"p"}'))
  assert.deepEqual(Object.keys(map), ['__proto__', 'aa'])
  assert.equal(Object.getPrototypeOf(map), Object.prototype)
  // Status: absent numbers are 0; either unreachable flag sets both, without a latency.
  assert.deepEqual(parseServerStatus(CALL, body({ version: '1.0.0', keystore_unavailable: true })), {
    version: '1.0.0',
    os: '',
    arch: '',
    uptime: 0,
    num_cpu: 0,
    num_cpu_used: 0,
    mem_heap_used: 0,
    mem_stack_used: 0,
    keystore_unavailable: true,
    keystore_unreachable: true,
  })
  assert.deepEqual(parseApiList(CALL, body([{ method: 'GET', path: '/v1/status', max_body: null }])), [{ method: 'GET', path: '/v1/status', max_body: 0, timeout: 0 }])
  // Go's zero time and an empty creator mean "unknown": left out.
  assert.deepEqual(parseKeyDescription(CALL, body({ name: 'k', created_at: '0001-01-01T00:00:00Z', created_by: '' })), { name: 'k', id: '', algorithm: '' })
  assert.deepEqual(parseIdentityDescription(CALL, body({ policy: null })), { admin: false, policy: '' })
  // Self: `policy_name` with an inline `policy` of rule maps (pattern → rule), as some KES versions sent it.
  assert.deepEqual(parseSelfDescription(CALL, body({ identity: 'ab', policy_name: 'p', policy: { allow: { '/v1/key/*': {} }, deny: null } })), {
    identity: 'ab',
    admin: false,
    policy: 'p',
    allow: ['/v1/key/*'],
    deny: [],
  })
  assert.deepEqual(parseKeyVersions(CALL, { id: 'v0', created_at: 7 }), [{ id: 'v0', createdAt: undefined, createdBy: undefined }])
  // Deleted-key listings: trailer lines (no name) are skipped.
  assert.deepEqual(parseDeletedList(CALL, body('{"name":"k","deleted_at":"2024-01-01T00:00:00Z","deleted_by":"ab"}\n{"error":""}\n')), [
    { name: 'k', deletedAt: '2024-01-01T00:00:00Z', deletedBy: 'ab' },
  ])
})

test('a failed answer becomes a KesError with the server message, else its text, else the status text', () => {
  const cases: Array<[number, string, string]> = [
    [404, '{"message":"key does not exist"}', 'key does not exist'],
    [500, '  internal trouble \n', 'internal trouble'],
    [502, '{"message":7}', '{"message":7}'],
    [503, '', 'Service Unavailable'],
    [599, '', 'status 599'],
  ]
  for (const [status, text, message] of cases) {
    const err = errorFromBody(status, body(text))
    assert.ok(err instanceof KesError)
    assert.deepEqual([err.status, err.message], [status, message])
  }
  // A huge error page is cut to 1000 characters.
  assert.equal(errorFromBody(500, body('x'.repeat(5_000))).message.length, 1_000)
})
