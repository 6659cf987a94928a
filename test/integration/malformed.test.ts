// Malformed input never crashes the server or yields a 5xx: random paths,
// methods and bodies against every route, as root (so every check runs).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { routes } from '../../src/api/routes.js'
import { TestEnv, makeClient } from './harness.js'

const root = makeClient('root')

// A deterministic generator, so a failure can be replayed.
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SEGMENTS = ['', '.', '..', '%2F', '%', '%zz', '%00', 'a%20b', '*', '[', '\\', 'my-key', '%FF', '%C3%A9', 'x'.repeat(300), '?', '%3F', '0'.repeat(64), 'f'.repeat(64)]
const BODIES = [
  '', '{', '}', 'null', '[]', '"x"', '1e999', '{"a":', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}',
  '{"context":5}', '{"context":"!!"}', '{"plaintext":null}', '{"plaintext":[1,2]}', '{"ciphertext":{}}',
  '{"ciphertext":"e30="}', '{"ciphertext":"' + 'A'.repeat(64) + '"}', '{"bytes":"' + 'A'.repeat(44) + '"}',
  '{"key":"AAAA","cipher":7}', '{"allow":"x"}', '{"allow":[1]}', '{"deny":["/["]}', '{"paths":[null]}',
  '\u0000\u0001', '{"a":"\ud800"}',
]
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']

describe('malformed input', () => {
  let env: TestEnv
  before(async () => {
    env = await TestEnv.create()
    await env.start(`admin:\n  identity: ${root.identity}\n`)
    await env.request(root, '/v1/key/create/my-key', { method: 'POST' })
  })
  after(async () => {
    await env.dispose()
  })

  for (const http2 of [false, true]) {
    test(`400 random requests over ${http2 ? 'HTTP/2' : 'HTTP/1.1'} never yield a 5xx`, async () => {
      const rand = prng(http2 ? 2 : 1)
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
      // The log traces are streams that stay open; they have their own tests.
      const finite = routes.filter((r) => !r.path.startsWith('/v1/log/'))
      for (let i = 0; i < 400; i++) {
        const route = pick(finite)
        const extra = Array.from({ length: Math.floor(rand() * 3) }, () => pick(SEGMENTS))
        const target = [route.path, ...extra].join('/') + (rand() < 0.1 ? '?x=%' : '')
        const method = pick(METHODS)
        const body = rand() < 0.2 ? randomBytes(Math.floor(rand() * 64)) : pick(BODIES)
        if (process.env.FUZZ_DEBUG) console.error(method, target, JSON.stringify(body))
        const res = await env.request(root, target, { method, body: method === 'GET' || method === 'HEAD' ? undefined : body, http2 })
        assert.ok(res.status >= 200 && res.status < 500, `${method} ${target} ${JSON.stringify(body)} → ${res.status} ${res.text}`)
        if (res.status >= 400 && method !== 'HEAD') {
          assert.equal(typeof (res.json as { message?: unknown } | undefined)?.message, 'string', `${method} ${target} → ${res.text}`)
        }
      }
      // The server is still healthy.
      assert.equal((await env.request(root, '/v1/key/generate/my-key', { method: 'POST', http2 })).status, 200)
      assert.deepEqual(env.errorLines.filter((l) => l.includes('unexpected')), [])
    })
  }
})
