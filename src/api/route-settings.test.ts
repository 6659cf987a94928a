import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ApiSetting } from '../config/validate.js'
import { isOpen, timeoutOf } from './route-settings.js'
import { SKIP_AUTH_PATHS, routes } from './routes.js'
import type { Route } from './routes.js'

function route(path: string): Route {
  const r = routes.find((x) => x.path === path)
  assert.ok(r !== undefined, path)
  return r
}

const none: ReadonlyMap<string, ApiSetting> = new Map()
const configured: ReadonlyMap<string, ApiSetting> = new Map([
  ['/v1/ready', { skipAuth: true, timeoutMs: undefined }],
  ['/v1/key/generate', { skipAuth: false, timeoutMs: 30_000 }],
])

test('timeoutOf: the route default unless the config sets one', () => {
  assert.equal(timeoutOf(route('/v1/key/generate'), none), 15_000)
  assert.equal(timeoutOf(route('/v1/key/generate'), configured), 30_000)
  assert.equal(timeoutOf(route('/v1/ready'), configured), 15_000)
  assert.equal(timeoutOf(route('/v1/log/audit'), configured), 0)
})

test('isOpen: open by design, or by skip_auth', () => {
  const cases: ReadonlyArray<[string, ReadonlyMap<string, ApiSetting>, boolean]> = [
    ['/version', none, true],
    ['/v1/identity/self/describe', none, true],
    ['/v1/ready', none, false],
    ['/v1/ready', configured, true],
    ['/v1/status', configured, false],
    ['/v1/key/generate', configured, false],
  ]
  for (const [path, api, want] of cases) assert.equal(isOpen(route(path), api), want, path)
})

test('only probe and introspection routes may skip authorization, and they exist', () => {
  assert.deepEqual([...SKIP_AUTH_PATHS].sort(), ['/v1/api', '/v1/metrics', '/v1/ready', '/v1/status', '/version'])
  for (const p of SKIP_AUTH_PATHS) {
    const r = route(p)
    assert.deepEqual(r.params, [], p)
    assert.deepEqual(r.methods, ['GET'], p)
  }
})

test('every route has the KES timeout of 15 s, except the log streams, which have none', () => {
  for (const r of routes) {
    const stream = r.path.startsWith('/v1/log/')
    assert.equal(r.timeoutMs, stream ? 0 : 15_000, r.path)
  }
  assert.equal(new Set(routes.map((r) => r.path)).size, routes.length, 'paths are unique')
})
