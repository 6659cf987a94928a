// Hostile input, generated with fast-check: requests no client should send —
// random methods, paths, headers and bodies (truncated, oversized, deeply
// nested, bad base64, huge numbers, `__proto__` keys, invalid UTF-8), some cut
// off mid-body — over HTTP/1.1 and HTTP/2. The server must answer each with a
// 2xx-4xx status and every error as {"message": string}, never crash, never
// count a 5xx. Shared by the quick run in `npm test` and the 20,000-request
// run in `npm run test:stress`.
import http2 from 'node:http2'
import https from 'node:https'
import fc from 'fast-check'
import { routes } from '../../src/api/routes.js'
import type { Client, TestEnv } from './harness.js'

/** One generated request. */
export interface HostileRequest {
  readonly http2: boolean
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer | undefined
  /** Send only this many bytes of the body, then cut the request off. */
  readonly abortAfter: number | undefined
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT2', 'X']
const SEGMENT_ATOMS = [
  '', '.', '..', '%2F', '%2e%2e', '%', '%zz', '%00', '%FF', '%C3%28', '%ED%A0%80', '%C3%A9', '*', '?', '[', ']', '\\',
  'k', 'key-1', 'a'.repeat(80), 'f'.repeat(64), '0'.repeat(64), '__proto__', 'constructor', 'prototype', '~', '$', ';', ',',
]
const TOKEN_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789-'.split('')
const VALUE_CHARS = ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCXYZ[\\]^_`abcxyz{|}~'.split('')

const token = fc.array(fc.constantFrom(...TOKEN_CHARS), { minLength: 1, maxLength: 12 }).map((cs) => 'x-' + cs.join(''))
const headerValue = fc.array(fc.constantFrom(...VALUE_CHARS), { maxLength: 40 }).map((cs) => cs.join('').trim())

const segment = fc.oneof(
  fc.constantFrom(...SEGMENT_ATOMS),
  fc.array(fc.constantFrom(...TOKEN_CHARS, '.', '_', '*', '%41'), { maxLength: 20 }).map((cs) => cs.join('')),
)
const routeBase = fc.constantFrom(...routes.map((r) => r.path))
const path = fc
  .tuple(fc.oneof(routeBase, fc.constant(''), fc.constant('/v1'), fc.constant('/v1/key')), fc.array(segment, { maxLength: 4 }), fc.option(fc.constantFrom('?x=%', '?a=1&b', '#f', '?'), { nil: undefined }))
  .map(([base, segs, query]) => (base + (segs.length > 0 ? '/' + segs.join('/') : '') + (query ?? '')) || '/')

const base64ish = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64')),
  fc.constantFrom('', '=', 'A', 'AA', 'AAA', 'A===', '====', '!!!!', 'AAAA\n', ' AAAA', 'AA==AA==', '-_-_', 'e30', '\u00e9\u00e9\u00e9\u00e9'),
)
const hugeNumber = fc.constantFrom('1e400', '-1e400', '9'.repeat(400), '0.' + '0'.repeat(400) + '1', '1e-400', '-0', '18446744073709551616', 'NaN', 'Infinity')
const field = fc.constantFrom('plaintext', 'ciphertext', 'context', 'bytes', 'key', 'cipher', 'allow', 'deny', 'paths', 'associated_data', 'message', '__proto__', 'constructor')
const jsonValue = fc.oneof(fc.json({ maxDepth: 3 }), base64ish.map((s) => JSON.stringify(s)), hugeNumber)
const jsonObject = fc.array(fc.tuple(field, jsonValue), { maxLength: 5 }).map((kv) => '{' + kv.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',') + '}')

const bodyText = fc.oneof(
  { weight: 6, arbitrary: jsonObject },
  { weight: 2, arbitrary: jsonObject.chain((s) => fc.nat({ max: Math.max(0, s.length - 1) }).map((n) => s.slice(0, n))) },
  { weight: 1, arbitrary: fc.nat({ max: 5000 }).map((n) => '['.repeat(n) + ']'.repeat(n % 2 === 0 ? n : 0)) },
  { weight: 1, arbitrary: fc.nat({ max: 5000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', '{"__proto__":null}', '{"plaintext":"AAAA","__proto__":[]}') },
  { weight: 1, arbitrary: fc.constantFrom('', 'null', '[]', '"x"', '1', 'true', '{', '}', '{"a":1}{"b":2}', '\ufeff{}') },
  { weight: 1, arbitrary: fc.json() },
)
const body: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { weight: 20, arbitrary: fc.constant(undefined) },
  { weight: 100, arbitrary: bodyText.map((s) => Buffer.from(s)) },
  // Invalid UTF-8, and raw bytes.
  { weight: 20, arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.concat([Buffer.from('{"plaintext":"'), Buffer.from(b), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')])) },
  // Over the 1 MiB limit (rare: it is slow to send).
  { weight: 1, arbitrary: fc.constantFrom(0, 1).map((n) => (n === 0 ? Buffer.alloc((1 << 20) + 1, 0x41) : Buffer.from('{"plaintext":"' + 'A'.repeat((1 << 20) + 8) + '"}'))) },
)

/** The generator of hostile requests. */
export const hostileRequest: fc.Arbitrary<HostileRequest> = fc
  .record({
    http2: fc.boolean(),
    method: fc.constantFrom(...METHODS),
    path,
    headers: fc.dictionary(token, headerValue, { maxKeys: 3 }),
    contentType: fc.option(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '*/*'), { nil: undefined }),
    body,
    abort: fc.option(fc.nat({ max: 100 }), { nil: undefined, freq: 12 }),
  })
  .map(({ http2, method, path, headers, contentType, body, abort }) => {
    const h: Record<string, string> = { ...headers }
    if (contentType !== undefined) h['content-type'] = contentType
    const withBody = body !== undefined && method !== 'GET' && method !== 'HEAD' ? body : undefined
    const abortAfter = abort !== undefined && withBody !== undefined && withBody.length > 1 ? Math.floor((withBody.length * abort) / 101) : undefined
    return { http2, method, path, headers: h, body: withBody, abortAfter }
  })

/** What the server answered (status 0: cut off by the test, as asked). */
export interface HostileAnswer {
  readonly status: number
  readonly contentType: string | undefined
  readonly text: string
}

const ANSWER_MS = 20_000

/** Sends hostile requests over one HTTP/2 session and one HTTP/1.1 keep-alive agent of `client`. */
export class HostileSender {
  readonly #env: TestEnv
  readonly #client: Client
  #session: http2.ClientHttp2Session | undefined
  readonly #agent: https.Agent

  constructor(env: TestEnv, client: Client) {
    this.#env = env
    this.#client = client
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: 8, cert: client.cert.certPem, key: client.cert.keyPem, ca: env.serverCert.certPem, servername: 'localhost' })
  }

  close(): void {
    this.#session?.destroy()
    this.#agent.destroy()
  }

  send(r: HostileRequest): Promise<HostileAnswer> {
    return r.http2 ? this.#send2(r) : this.#send1(r)
  }

  #h2(): http2.ClientHttp2Session {
    if (this.#session === undefined || this.#session.closed || this.#session.destroyed) {
      this.#session = http2.connect(`https://localhost:${this.#env.port}`, {
        cert: this.#client.cert.certPem,
        key: this.#client.cert.keyPem,
        ca: this.#env.serverCert.certPem,
        host: '127.0.0.1',
        servername: 'localhost',
      })
      this.#session.on('error', () => {})
    }
    return this.#session
  }

  #send2(r: HostileRequest): Promise<HostileAnswer> {
    return new Promise((resolve, reject) => {
      const stream = this.#h2().request({ ':method': r.method, ':path': r.path, ...r.headers }, { endStream: false })
      let status = 0
      let contentType: string | undefined
      const chunks: Buffer[] = []
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL)
        reject(new Error(`no answer within ${ANSWER_MS} ms: ${describe(r)}`))
      }, ANSWER_MS)
      let settled = false
      const done = (): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve({ status, contentType, text: Buffer.concat(chunks).toString() })
        // The answer may come before the body went out; Node's client then keeps the stream
        // open until its writes finish, which flow control may never allow.
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL)
      }
      stream.on('response', (h) => {
        status = Number(h[':status'])
        contentType = h['content-type'] as string | undefined
        // A log stream never ends by itself.
        if (status === 200 && contentType === 'application/x-ndjson' && r.path.includes('/log/')) {
          stream.close(http2.constants.NGHTTP2_CANCEL)
        }
      })
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('error', () => {})
      stream.on('end', done)
      stream.on('close', done)
      if (r.abortAfter !== undefined && r.body !== undefined) {
        stream.write(r.body.subarray(0, r.abortAfter), () => {
          status = 0
          stream.close(http2.constants.NGHTTP2_CANCEL)
        })
        return
      }
      if (!stream.writableEnded) stream.end(r.body)
    })
  }

  #send1(r: HostileRequest): Promise<HostileAnswer> {
    return new Promise((resolve, reject) => {
      const framing: Record<string, string> = r.body === undefined ? {} : { 'content-length': String(r.body.length) }
      let settled = false
      const finish = (a: HostileAnswer): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(a)
      }
      const req = https.request(
        { host: '127.0.0.1', port: this.#env.port, method: r.method, path: r.path, agent: this.#agent, headers: { ...r.headers, ...framing } },
        (res) => {
          const chunks: Buffer[] = []
          const contentType = res.headers['content-type']
          if (res.statusCode === 200 && contentType === 'application/x-ndjson' && r.path.includes('/log/')) {
            req.destroy()
            return finish({ status: 200, contentType, text: '' })
          }
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => finish({ status: r.abortAfter !== undefined ? 0 : (res.statusCode ?? 0), contentType, text: Buffer.concat(chunks).toString() }))
          res.on('error', () => finish({ status: 0, contentType, text: '' }))
        },
      )
      const timer = setTimeout(() => {
        req.destroy()
        reject(new Error(`no answer within ${ANSWER_MS} ms: ${describe(r)}`))
      }, ANSWER_MS)
      req.on('error', () => finish({ status: 0, contentType: undefined, text: '' }))
      if (r.abortAfter !== undefined && r.body !== undefined) {
        req.write(r.body.subarray(0, r.abortAfter), () => req.destroy())
        return
      }
      req.end(r.body)
    })
  }
}

/** A short, printable description of a request, for failure messages. */
export function describe(r: HostileRequest): string {
  const body = r.body === undefined ? '' : ` body(${r.body.length})=${JSON.stringify(r.body.subarray(0, 120).toString('latin1'))}`
  return `${r.http2 ? 'h2' : 'h1'} ${r.method} ${r.path} headers=${JSON.stringify(r.headers)}${body}${r.abortAfter === undefined ? '' : ` cut after ${r.abortAfter}`}`
}

/** Throws unless `a` is an acceptable answer to `r`: below 500, errors as {"message": string}. */
export function checkAnswer(r: HostileRequest, a: HostileAnswer): void {
  if (a.status === 0) return // cut off by the client, as generated (or refused before any answer)
  if (a.status >= 500) throw new Error(`${a.status} ${a.text} for ${describe(r)}`)
  if (a.status >= 400 && r.method !== 'HEAD') {
    let message: unknown
    try {
      message = (JSON.parse(a.text) as { message?: unknown }).message
    } catch {
      message = undefined
    }
    if (typeof message !== 'string' || a.contentType !== 'application/json') {
      throw new Error(`error ${a.status} is not {"message"} JSON (${a.contentType}): ${a.text} for ${describe(r)}`)
    }
  }
}

/**
 * Sends `count` generated requests, `concurrency` at a time, with a fixed
 * `seed` (printed, so a failure reproduces), checking each answer.
 */
export async function runHostile(sender: HostileSender, count: number, seed: number, concurrency = 8): Promise<void> {
  console.log(`# hostile input: ${count} requests, fast-check seed ${seed}`)
  await fc.assert(
    fc.asyncProperty(fc.array(hostileRequest, { minLength: concurrency, maxLength: concurrency }), async (batch) => {
      await Promise.all(batch.map(async (r) => checkAnswer(r, await sender.send(r))))
    }),
    { seed, numRuns: Math.ceil(count / concurrency), endOnFailure: process.env.HOSTILE_SHRINK === undefined, includeErrorInReport: true },
  )
}
