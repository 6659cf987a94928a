import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { Policy } from './policy.js'
import { GlobSyntaxError } from './glob.js'

const gen = '/v1/key/generate/'

// The config policies of the KES v0.17.6 reference run (reference/kes-0.17.6-transcript.md,
// "Authorization / policy glob semantics").
const myApp = {
  allow: [
    '/v1/key/create/my-*',
    gen + 'my-*',
    '/v1/key/encrypt/my-*',
    '/v1/key/decrypt/my-*',
    '/v1/key/list/*',
  ],
  deny: [gen + 'my-secret*'],
}
const ops = {
  allow: [
    '/v1/policy/*',
    '/v1/identity/*',
    '/v1/key/delete/*',
    '/v1/log/audit/trace',
    '/v1/log/error/trace',
    '/v1/metrics',
    '/v1/status',
  ],
  deny: [],
}

const cases: ReadonlyArray<{ name: string; rules: { allow: string[]; deny: string[] }; path: string; want: boolean }> = [
  // Transcript: identity 'app' (policy my-app).
  { name: 'my-app', rules: myApp, path: '/v1/key/create/my-key2', want: true },
  { name: 'my-app', rules: myApp, path: gen + 'my-key2', want: true },
  { name: 'my-app', rules: myApp, path: gen + 'my-key', want: true },
  { name: 'my-app', rules: myApp, path: gen + 'my-', want: true },
  { name: 'my-app', rules: myApp, path: gen + 'my-does-not-exist', want: true },
  { name: 'my-app', rules: myApp, path: gen + 'my-secret-1', want: false },
  { name: 'my-app', rules: myApp, path: gen + 'my-secret', want: false },
  { name: 'my-app', rules: myApp, path: gen + 'other', want: false },
  { name: 'my-app', rules: myApp, path: gen + 'nonexistent-other', want: false },
  { name: 'my-app', rules: myApp, path: '/v1/key/create/other', want: false },
  { name: 'my-app', rules: myApp, path: '/v1/key/delete/my-key2', want: false },
  { name: 'my-app', rules: myApp, path: '/v1/key/list/*', want: true },
  { name: 'my-app', rules: myApp, path: '/v1/key/list/', want: true },
  { name: 'my-app', rules: myApp, path: '/v1/policy/list/*', want: false },
  { name: 'my-app', rules: myApp, path: '/v1/status', want: false },
  { name: 'my-app', rules: myApp, path: '/v1/metrics', want: false },
  // '*' never crosses '/'.
  { name: 'my-app', rules: myApp, path: gen + 'my-a/b', want: false },
  { name: 'my-app', rules: myApp, path: '/v1/key/decrypt/my-key', want: true },
  // The secret deny only covers generate: the other allow rules still apply.
  { name: 'my-app', rules: myApp, path: '/v1/key/decrypt/my-secret-1', want: true },
  // Transcript: identity 'ops': '/v1/policy/*' is a single segment.
  { name: 'ops', rules: ops, path: '/v1/policy/list/*', want: false },
  { name: 'ops', rules: ops, path: '/v1/policy/read/my-app', want: false },
  { name: 'ops', rules: ops, path: '/v1/identity/list/*', want: false },
  { name: 'ops', rules: ops, path: '/v1/key/delete/my-key2', want: true },
  { name: 'ops', rules: ops, path: '/v1/metrics', want: true },
  { name: 'ops', rules: ops, path: '/v1/status', want: true },
  { name: 'ops', rules: ops, path: '/v1/log/audit/trace', want: true },
  { name: 'ops', rules: ops, path: '/v1/log/audit/trace/x', want: false },
  // Multi-segment rules as in the KES 0.7.2 reference config.
  { name: 'admin', rules: { allow: ['/v1/policy/*/*', '/v1/identity/assign/*/*'], deny: [] }, path: '/v1/policy/read/p1', want: true },
  { name: 'admin', rules: { allow: ['/v1/policy/*/*', '/v1/identity/assign/*/*'], deny: [] }, path: '/v1/identity/assign/p/abc', want: true },
  { name: 'admin', rules: { allow: ['/v1/policy/*/*', '/v1/identity/assign/*/*'], deny: [] }, path: '/v1/identity/forget/abc', want: false },
  // No rules: everything refused; deny-only: everything refused.
  { name: 'empty', rules: { allow: [], deny: [] }, path: '/v1/status', want: false },
  { name: 'deny-only', rules: { allow: [], deny: ['/v1/key/*/secret'] }, path: '/v1/key/create/other', want: false },
  // Deny beats allow even when both are the same pattern.
  { name: 'same', rules: { allow: [gen + '*'], deny: [gen + '*'] }, path: gen + 'k', want: false },
  { name: 'style', rules: { allow: [gen + 'app-*'], deny: [gen + 'app-admin'] }, path: gen + 'app-admin', want: false },
  { name: 'style', rules: { allow: [gen + 'app-*'], deny: [gen + 'app-admin'] }, path: gen + 'app-1', want: true },
  // The whole path must match: no prefix matching.
  { name: 'exact', rules: { allow: ['/v1/status'], deny: [] }, path: '/v1/status/x', want: false },
  { name: 'exact', rules: { allow: ['/v1/key/create/a'], deny: [] }, path: '/v1/key/create/ab', want: false },
  { name: 'class', rules: { allow: [gen + '[a-c]?'], deny: [gen + '[^a]x'] }, path: gen + 'bx', want: false },
  { name: 'class', rules: { allow: [gen + '[a-c]?'], deny: [gen + '[^a]x'] }, path: gen + 'ax', want: true },
]

for (const c of cases) {
  test(`policy ${c.name}: ${c.path} → ${c.want ? 'allowed' : 'denied'}`, () => {
    assert.equal(new Policy(c.rules).allows(c.path), c.want)
  })
}

test('a policy with a malformed pattern is refused with GlobSyntaxError', () => {
  assert.throws(() => new Policy({ allow: ['/v1/key/['], deny: [] }), GlobSyntaxError)
  assert.throws(() => new Policy({ allow: [], deny: ['\\'] }), { message: "syntax error in pattern '\\'" })
})

test('a policy keeps its rules in order, copies them and is immutable', () => {
  const allow = ['/b', '/a']
  const p = new Policy({ allow, deny: ['/c'] })
  allow.push('/z')
  assert.deepEqual(p.allow, ['/b', '/a'])
  assert.deepEqual(p.deny, ['/c'])
  assert.equal(Object.isFrozen(p), true)
  assert.equal(Object.isFrozen(p.allow), true)
  assert.throws(() => (p.allow as string[]).push('/x'), TypeError)
  assert.equal(p.allows('/z'), false)
  assert.match(inspect(p), /\/b/)
})
