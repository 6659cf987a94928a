// The HTTP/1.1 fast path's parser and connection, without a network: which raw requests it
// takes (everything else must go to Node's parser untouched), what it makes of them, and how
// a connection writes answers, queues what arrives meanwhile and hands itself over.
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { describe, test } from 'node:test'
import type { TLSSocket } from 'node:tls'
import { isFastTarget } from './fast-routes.js'
import { FastConnection, FastResponse, parseFastRequest } from './http1-fast-path.js'
import type { FastRequest } from './http1-fast-path.js'

const NO_SOCKET = {} as TLSSocket
const CRLF = '\r\n'

/** A raw request: the request line, header lines, then the body (the framing is the caller's). */
function raw(requestLine: string, headerLines: readonly string[], body: string | Buffer = ''): Buffer {
  return Buffer.concat([Buffer.from(requestLine + CRLF + headerLines.map((h) => h + CRLF).join('') + CRLF, 'latin1'), Buffer.from(body)])
}

/** A POST of `body` to `target` with Host and an exact Content-Length, plus `more` header lines. */
function post(target: string, body: string | Buffer, more: readonly string[] = []): Buffer {
  return raw(`POST ${target} HTTP/1.1`, ['Host: kes', `Content-Length: ${Buffer.byteLength(body)}`, ...more], body)
}

function parse(bytes: Buffer): FastRequest | undefined {
  return parseFastRequest(bytes, NO_SOCKET)
}

describe('parseFastRequest: the requests the fast path takes', () => {
  const cases: ReadonlyArray<{ name: string; bytes: Buffer; method: string; url: string; body: string }> = [
    ...['generate', 'encrypt', 'decrypt'].flatMap((api) =>
      ['POST', 'PUT'].map((method) => ({
        name: `${method} /v1/key/${api}/k`,
        bytes: raw(`${method} /v1/key/${api}/k HTTP/1.1`, ['Host: kes', 'Content-Length: 13'], '{"context":""}'.slice(0, 13)),
        method,
        url: `/v1/key/${api}/k`,
        body: '{"context":""',
      })),
    ),
    { name: 'GET /version', bytes: raw('GET /version HTTP/1.1', ['Host: kes']), method: 'GET', url: '/version', body: '' },
    { name: 'GET /version?x', bytes: raw('GET /version?x HTTP/1.1', ['Host: kes']), method: 'GET', url: '/version?x', body: '' },
    { name: 'GET /v1/status', bytes: raw('GET /v1/status HTTP/1.1', ['Host: kes']), method: 'GET', url: '/v1/status', body: '' },
    { name: 'GET /v1/ready', bytes: raw('GET /v1/ready HTTP/1.1', ['Host: kes']), method: 'GET', url: '/v1/ready', body: '' },
    { name: 'GET /version with a small body', bytes: raw('GET /version HTTP/1.1', ['Host: kes', 'Content-Length: 3'], 'abc'), method: 'GET', url: '/version', body: 'abc' },
    { name: 'Connection: keep-alive (any case)', bytes: post('/v1/key/generate/k', '{}', ['Connection: Keep-Alive']), method: 'POST', url: '/v1/key/generate/k', body: '{}' },
    { name: 'Content-Length: 0, no body', bytes: raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 0']), method: 'POST', url: '/v1/key/generate/k', body: '' },
    { name: 'no Content-Length, no body', bytes: raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes']), method: 'POST', url: '/v1/key/generate/k', body: '' },
    { name: 'leading zeros in Content-Length', bytes: raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 002'], '{}'), method: 'POST', url: '/v1/key/generate/k', body: '{}' },
    { name: 'whitespace around a value', bytes: raw('POST /v1/key/generate/k HTTP/1.1', ['Host:   kes \t', 'Content-Length:\t2 '], '{}'), method: 'POST', url: '/v1/key/generate/k', body: '{}' },
    { name: 'a query after the key name', bytes: post('/v1/key/decrypt/k?x=1', '{}'), method: 'POST', url: '/v1/key/decrypt/k?x=1', body: '{}' },
    { name: 'a body of exactly 64 KiB', bytes: post('/v1/key/encrypt/k', Buffer.alloc(64 * 1024, 'a')), method: 'POST', url: '/v1/key/encrypt/k', body: 'a'.repeat(64 * 1024) },
    { name: 'a body holding CRLFs and NULs', bytes: post('/v1/key/encrypt/k', 'a\r\n\r\nb\0'), method: 'POST', url: '/v1/key/encrypt/k', body: 'a\r\n\r\nb\0' },
  ]
  for (const c of cases) {
    test(c.name, () => {
      const req = parse(c.bytes)
      assert.ok(req !== undefined, 'taken by the fast path')
      assert.equal(req.method, c.method)
      assert.equal(req.url, c.url)
      assert.equal(req.completeBody.toString('latin1'), c.body)
      assert.equal(req.httpVersionMajor, 1)
      assert.equal(req.httpVersionMinor, 1)
    })
  }

  test('header names are lowercased, values trimmed and kept as sent', () => {
    const req = parse(raw('POST /v1/key/generate/k HTTP/1.1', ['HOST: kes.example:7373', 'Content-Type:  application/json ', 'X-Odd-Name: A b\tc', 'content-length: 2'], '{}'))
    assert.ok(req !== undefined)
    assert.deepEqual({ ...req.headers }, { host: 'kes.example:7373', 'content-type': 'application/json', 'x-odd-name': 'A b\tc', 'content-length': '2' })
    // A name Object.prototype has never becomes a header of the fast path's plain object: Node parses it.
    for (const name of ['__proto__', 'constructor', 'Constructor']) {
      assert.equal(parse(post('/v1/key/generate/k', '{}', [`${name}: x`])), undefined, name)
    }
  })
})

describe('parseFastRequest: everything else goes to Node', () => {
  const big = 'x'.repeat(8 * 1024)
  const cases: ReadonlyArray<[string, Buffer]> = [
    ['a route that is not fast (GET /v1/key/list/*)', raw('GET /v1/key/list/* HTTP/1.1', ['Host: kes'])],
    ['POST /v1/key/create/k', post('/v1/key/create/k', '')],
    ['HEAD /version', raw('HEAD /version HTTP/1.1', ['Host: kes'])],
    ['GET on generate', raw('GET /v1/key/generate/k HTTP/1.1', ['Host: kes'])],
    ['DELETE on decrypt', raw('DELETE /v1/key/decrypt/k HTTP/1.1', ['Host: kes'])],
    ['POST /version', post('/version', '')],
    ['a lowercase method', raw('post /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 0'])],
    ['HTTP/1.0', raw('GET /version HTTP/1.0', ['Host: kes'])],
    ['HTTP/2.0 on an HTTP/1 connection', raw('GET /version HTTP/2.0', ['Host: kes'])],
    ['no version', Buffer.from('GET /version\r\nHost: kes\r\n\r\n')],
    ['lowercase version', raw('GET /version http/1.1', ['Host: kes'])],
    ['two spaces in the request line', raw('GET  /version HTTP/1.1', ['Host: kes'])],
    ['no Host', raw('GET /version HTTP/1.1', ['Accept: */*'])],
    ['two Hosts', raw('GET /version HTTP/1.1', ['Host: a', 'Host: b'])],
    ['Transfer-Encoding: chunked', raw('POST /v1/key/decrypt/k HTTP/1.1', ['Host: kes', 'Transfer-Encoding: chunked'], '2\r\n{}\r\n0\r\n\r\n')],
    ['transfer-encoding in odd case', raw('POST /v1/key/decrypt/k HTTP/1.1', ['Host: kes', 'TrAnSfEr-EnCoDiNg: chunked'], '0\r\n\r\n')],
    ['Transfer-Encoding with Content-Length', raw('POST /v1/key/decrypt/k HTTP/1.1', ['Host: kes', 'Content-Length: 5', 'Transfer-Encoding: chunked'], '0\r\n\r\n')],
    ['Expect: 100-continue', post('/v1/key/generate/k', '{}', ['Expect: 100-continue'])],
    ['Upgrade', raw('GET /version HTTP/1.1', ['Host: kes', 'Connection: keep-alive', 'Upgrade: websocket'])],
    ['TE', raw('GET /version HTTP/1.1', ['Host: kes', 'TE: trailers'])],
    ['Trailer', post('/v1/key/generate/k', '{}', ['Trailer: X'])],
    ['HTTP2-Settings', raw('GET /version HTTP/1.1', ['Host: kes', 'HTTP2-Settings: AAAA'])],
    ['duplicate Content-Length (equal)', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 2', 'Content-Length: 2'], '{}')],
    ['duplicate Content-Length (different)', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 2', 'content-length: 0'], '{}')],
    ['a list in Content-Length', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 2, 2'], '{}')],
    ['duplicate of any header', post('/v1/key/generate/k', '{}', ['X-A: 1', 'x-a: 2'])],
    ['Content-Length not digits', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 0x2'], '{}')],
    ['Content-Length signed', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: +2'], '{}')],
    ['Content-Length negative', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: -1'], '{}')],
    ['Content-Length empty', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length:'], '')],
    ['Content-Length huge', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 99999999999999999999'], '{}')],
    ['Content-Length fractional', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 2.0'], '{}')],
    ['obs-fold (space)', raw('GET /version HTTP/1.1', ['Host: kes', 'X-A: 1', ' continued'])],
    ['obs-fold (tab)', raw('GET /version HTTP/1.1', ['Host: kes', 'X-A: 1', '\tcontinued'])],
    ['whitespace before the colon', raw('GET /version HTTP/1.1', ['Host : kes'])],
    ['tab before the colon', raw('GET /version HTTP/1.1', ['Host\t: kes'])],
    ['no colon', raw('GET /version HTTP/1.1', ['Host: kes', 'garbage'])],
    ['empty header name', raw('GET /version HTTP/1.1', ['Host: kes', ': x'])],
    ['a separator in a header name', raw('GET /version HTTP/1.1', ['Host: kes', 'X(a): 1'])],
    ['NUL in a value', raw('GET /version HTTP/1.1', ['Host: kes', 'X-A: a\0b'])],
    ['CTL in a value', raw('GET /version HTTP/1.1', ['Host: kes', 'X-A: a\x01b'])],
    ['DEL in a value', raw('GET /version HTTP/1.1', ['Host: kes', 'X-A: a\x7fb'])],
    ['bare CR in a value', raw('GET /version HTTP/1.1', ['Host: kes', 'X-A: a\rb'])],
    ['bare LF ends a line', Buffer.from('GET /version HTTP/1.1\r\nHost: kes\nX-A: 1\r\n\r\n')],
    ['a space in the target', raw('POST /v1/key/generate/a b HTTP/1.1', ['Host: kes', 'Content-Length: 0'])],
    ['non-ASCII in the target', Buffer.concat([Buffer.from('POST /v1/key/generate/\xe9 HTTP/1.1\r\nHost: kes\r\nContent-Length: 0\r\n\r\n', 'latin1')])],
    ['a control character in the target', raw('POST /v1/key/generate/a\x01 HTTP/1.1', ['Host: kes', 'Content-Length: 0'])],
    ['an absolute-form target', raw('GET https://kes/version HTTP/1.1', ['Host: kes'])],
    ['an asterisk target', raw('OPTIONS * HTTP/1.1', ['Host: kes'])],
    ['a target not starting with /', raw('GET version HTTP/1.1', ['Host: kes'])],
    ['/versionX', raw('GET /versionX HTTP/1.1', ['Host: kes'])],
    ['/version/', raw('GET /version/ HTTP/1.1', ['Host: kes'])],
    ['/v1/statusz', raw('GET /v1/statusz HTTP/1.1', ['Host: kes'])],
    ['/v1/key/generate without a slash', post('/v1/key/generate', '{}')],
    ['Connection: close', raw('GET /version HTTP/1.1', ['Host: kes', 'Connection: close'])],
    ['Connection: keep-alive, Upgrade', raw('GET /version HTTP/1.1', ['Host: kes', 'Connection: keep-alive, Upgrade'])],
    ['body shorter than declared (more to come)', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 10'], '{}')],
    ['body longer than declared (pipelined bytes)', raw('POST /v1/key/generate/k HTTP/1.1', ['Host: kes', 'Content-Length: 2'], '{}GET')],
    ['two whole requests', Buffer.concat([post('/v1/key/generate/k', '{}'), post('/v1/key/generate/k', '{}')])],
    ['a GET followed by another', Buffer.concat([raw('GET /version HTTP/1.1', ['Host: kes']), raw('GET /version HTTP/1.1', ['Host: kes'])])],
    ['the head not finished', Buffer.from('GET /version HTTP/1.1\r\nHost: kes\r\n')],
    ['only the request line', Buffer.from('GET /version HTTP/1.1\r\n')],
    ['nothing', Buffer.alloc(0)],
    ['a head over 8 KiB', raw('GET /version HTTP/1.1', ['Host: kes', `X-Big: ${big}`])],
    ['a body over 64 KiB', post('/v1/key/encrypt/k', Buffer.alloc(64 * 1024 + 1, 'a'))],
    ['more than 64 headers', raw('GET /version HTTP/1.1', ['Host: kes', ...Array.from({ length: 64 }, (_, i) => `X-H${i}: ${i}`)])],
    ['a TLS/HTTP2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
  ]
  for (const [name, bytes] of cases) {
    test(name, () => {
      assert.equal(parse(bytes), undefined)
    })
  }

  test('the limits are where they say: a head of exactly 8 KiB is taken, one byte more is not', () => {
    const head = (extra: number): Buffer => {
      const start = 'GET /version HTTP/1.1\r\nHost: kes\r\nX-Pad: '
      // The head ends at the CRLFCRLF; its length before that is what is bounded.
      return Buffer.from(start + 'p'.repeat(8 * 1024 - start.length + extra) + '\r\n\r\n', 'latin1')
    }
    assert.ok(parse(head(0)) !== undefined)
    assert.equal(parse(head(1)), undefined)
  })

  test('64 headers are taken, 65 are not', () => {
    const headers = (n: number): string[] => ['Host: kes', ...Array.from({ length: n - 1 }, (_, i) => `X-H${i}: ${i}`)]
    assert.ok(parse(raw('GET /version HTTP/1.1', headers(64))) !== undefined)
    assert.equal(parse(raw('GET /version HTTP/1.1', headers(65))), undefined)
  })
})

describe('isFastTarget', () => {
  const cases: ReadonlyArray<[string, string, boolean]> = [
    ['POST', '/v1/key/generate/k', true],
    ['PUT', '/v1/key/generate/k', true],
    ['POST', '/v1/key/encrypt/k', true],
    ['PUT', '/v1/key/decrypt/k', true],
    ['POST', '/v1/key/generate/', true],
    ['POST', '/v1/key/generate/a/b', true],
    ['POST', '/v1/key/generate/%41?x', true],
    ['GET', '/version', true],
    ['GET', '/version?x', true],
    ['GET', '/v1/status', true],
    ['GET', '/v1/ready', true],
    ['GET', '/v1/ready?', true],
    ['GET', '/v1/key/generate/k', false],
    ['HEAD', '/version', false],
    ['DELETE', '/v1/key/decrypt/k', false],
    ['post', '/v1/key/generate/k', false],
    ['POST', '/v1/key/generate', false],
    ['POST', '/v1/key/hmac/k', false],
    ['POST', '/v1/key/create/k', false],
    ['GET', '/versionX', false],
    ['GET', '/version/', false],
    ['GET', '/versions', false],
    ['GET', '/v1/statusx', false],
    ['GET', '/v1/metrics', false],
    ['GET', '/v1/key/list/*', false],
    ['GET', 'version', false],
    ['GET', '', false],
    ['GET', '*', false],
    ['POST', '/v1/key/generate/a b', false],
    ['POST', '/v1/key/generate/\u00e9', false],
    ['POST', '/v1/key/generate/\x7f', false],
    ['POST', '//v1/key/generate/k', false],
  ]
  for (const [method, url, fast] of cases) {
    test(`${method} ${JSON.stringify(url)} → ${fast}`, () => {
      assert.equal(isFastTarget(method, url), fast)
    })
  }
})

/** A stand-in for the TLS socket: records writes, pauses, ends and what was put back. */
class FakeSocket extends EventEmitter {
  destroyed = false
  writable = true
  paused = false
  ended = false
  /** What write() answers: false as a socket whose client does not read ('drain' follows). */
  takesMore = true
  readonly written: string[] = []
  readonly unshifted: Buffer[] = []

  write(chunk: string | Buffer): boolean {
    this.written.push(typeof chunk === 'string' ? chunk : chunk.toString('latin1'))
    return this.takesMore
  }
  isPaused(): boolean {
    return this.paused
  }
  end(): this {
    this.ended = true
    this.writable = false
    return this
  }
  destroy(): this {
    this.destroyed = true
    this.writable = false
    return this
  }
  pause(): this {
    this.paused = true
    return this
  }
  resume(): this {
    this.paused = false
    return this
  }
  unshift(chunk: Buffer): void {
    this.unshifted.push(chunk)
  }
  get asTls(): TLSSocket {
    return this as unknown as TLSSocket
  }
}

/** A connection on a fake socket whose requests the test answers by hand. */
function connection(keepAliveSeconds = 7): { socket: FakeSocket; served: Array<[FastRequest, FastResponse]>; handedOver: number[] } {
  const socket = new FakeSocket()
  const served: Array<[FastRequest, FastResponse]> = []
  const handedOver: number[] = []
  new FastConnection(socket.asTls, {
    serve: (req, res) => served.push([req, res]),
    handOver: () => handedOver.push(socket.listenerCount('data')),
    keepAliveSeconds,
  })
  return { socket, served, handedOver }
}

/** A connection that has just received one fast request (a generate of key k with `body`): its request and response. */
function oneRequest(body = '{}'): { socket: FakeSocket; served: Array<[FastRequest, FastResponse]>; req: FastRequest; res: FastResponse } {
  const { socket, served } = connection()
  socket.emit('data', post('/v1/key/generate/k', body))
  const [req, res] = served[0] as [FastRequest, FastResponse]
  return { socket, served, req, res }
}

/** The header lines of a written response, lowercased names. */
function headerLines(response: string): string[] {
  return response
    .slice(0, response.indexOf('\r\n\r\n'))
    .split('\r\n')
    .slice(1)
    .map((l) => l.slice(0, l.indexOf(':')).toLowerCase())
}

describe('FastConnection', () => {
  test('answers in one write: status line, the given headers, Date, keep-alive, then the body', () => {
    const { socket, served } = connection(7)
    socket.emit('data', post('/v1/key/generate/k', '{}'))
    assert.equal(served.length, 1)
    const [, res] = served[0] as [FastRequest, FastResponse]
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 })
    res.end('{}')
    assert.equal(socket.written.length, 1)
    const out = socket.written[0] as string
    assert.match(out, /^HTTP\/1\.1 200 OK\r\ncontent-type: application\/json\r\ncontent-length: 2\r\nDate: [^\r]+ GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=7\r\n\r\n\{\}$/)
    assert.equal(socket.ended, false)
  })

  test('a body without a Content-Length gets one; parts written before end go out with it', () => {
    const { socket, res } = oneRequest()
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('h\u00e9')
    res.end(Buffer.from('!'))
    const out = socket.written[0] as string
    assert.match(out, /\r\nContent-Length: 4\r\n/)
    assert.ok(out.endsWith('\r\n\r\nh\xc3\xa9!'), JSON.stringify(out))
  })

  test('a response header with CR or LF is refused before anything is written', () => {
    const { socket, res } = oneRequest()
    assert.throws(() => res.writeHead(200, { 'x-a': 'a\r\nSet-Cookie: x' }), TypeError)
    assert.deepEqual(socket.written, [])
  })

  test('connection: close from the router: one Connection header, then the socket is ended', () => {
    const { socket, res, served } = oneRequest()
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': 2, connection: 'close' })
    res.end('{}')
    const out = socket.written[0] as string
    assert.deepEqual(
      headerLines(out).filter((n) => n === 'connection'),
      ['connection'],
      out,
    )
    assert.match(out, /\r\nconnection: close\r\n/i)
    assert.doesNotMatch(out, /keep-alive/i)
    assert.equal(socket.ended, true)
    // Nothing after the close is served.
    socket.emit('data', post('/v1/key/generate/k', '{}'))
    assert.equal(served.length, 1)
  })

  test('bytes that arrive while a request is served wait, and are dispatched after its answer', () => {
    const { socket, served } = connection()
    socket.emit('data', post('/v1/key/generate/a', '{}'))
    const second = post('/v1/key/generate/b', '{"x":1}')
    socket.emit('data', second.subarray(0, 10))
    socket.emit('data', second.subarray(10))
    assert.equal(served.length, 1, 'the second waits for the first')
    const [, first] = served[0] as [FastRequest, FastResponse]
    first.writeHead(200, { 'content-length': 1 })
    first.end('1')
    assert.equal(served.length, 2)
    const [req2, res2] = served[1] as [FastRequest, FastResponse]
    assert.equal(req2.url, '/v1/key/generate/b')
    assert.equal(req2.completeBody.toString(), '{"x":1}')
    res2.writeHead(200, { 'content-length': 1 })
    res2.end('2')
    assert.deepEqual(
      socket.written.map((w) => w.slice(-1)),
      ['1', '2'],
    )
  })

  test('a request it does not take hands the connection over with every byte put back, once', () => {
    const { socket, served, handedOver } = connection()
    const bytes = raw('GET /v1/key/list/* HTTP/1.1', ['Host: kes'])
    socket.emit('data', bytes)
    assert.equal(served.length, 0)
    assert.deepEqual(handedOver, [0], 'handed over once, after it stopped listening')
    assert.deepEqual(socket.unshifted, [bytes])
    assert.equal(socket.paused, false, 'resumed for Node to read')
    // Later bytes are Node's: the fast path neither serves nor puts them back.
    socket.emit('data', post('/v1/key/generate/k', '{}'))
    assert.equal(served.length, 0)
    assert.equal(socket.unshifted.length, 1)
  })

  test('a split request queued behind a fast one is handed over whole after the answer', () => {
    const { socket, served, handedOver } = connection()
    socket.emit('data', post('/v1/key/generate/a', '{}'))
    const next = post('/v1/key/generate/b', '{}')
    socket.emit('data', next.subarray(0, 5))
    const [, res] = served[0] as [FastRequest, FastResponse]
    res.writeHead(200, { 'content-length': 0 })
    res.end()
    // Only a part of the next request had come: Node gets that part and reads the rest itself.
    assert.equal(served.length, 1)
    assert.equal(handedOver.length, 1)
    assert.deepEqual(socket.unshifted, [next.subarray(0, 5)])
    assert.equal(socket.written.length, 1)
  })

  test('a destroyed response destroys the connection', () => {
    const { socket, res } = oneRequest()
    let closed = 0
    res.once('close', () => closed++)
    res.destroy()
    assert.equal(socket.destroyed, true)
    assert.equal(closed, 1)
    assert.deepEqual(socket.written, [])
  })

  test('a request that listens for its body gets it once, then end', async () => {
    const { req } = oneRequest('{"a":1}')
    const chunks: Buffer[] = []
    const ended = new Promise<void>((resolve) => req.on('end', () => resolve()))
    req.on('data', (c: Buffer) => chunks.push(c))
    await ended
    assert.equal(Buffer.concat(chunks).toString(), '{"a":1}')
    assert.equal(req.readableEnded, true)
  })

  test('a client that keeps sending while a request is served is paused, not buffered without end', () => {
    const { socket, served } = connection()
    socket.emit('data', post('/v1/key/generate/a', '{}'))
    // 4 MiB more while the first request is still being served (say, its key is read from a slow store).
    for (let i = 0; i < 64; i++) socket.emit('data', Buffer.alloc(64 * 1024, 'x'))
    assert.equal(socket.paused, true, 'the socket is paused once more than one request can hold has queued')
    const [, res] = served[0] as [FastRequest, FastResponse]
    res.writeHead(200, { 'content-length': 0 })
    res.end()
    // What queued is not a fast request: it goes to Node, which reads on.
    assert.equal(socket.paused, false)
  })

  test('an answer the socket cannot take at once holds the next request until the client reads', () => {
    const { socket, served } = connection()
    socket.takesMore = false
    socket.emit('data', post('/v1/key/generate/a', '{}'))
    const [, first] = served[0] as [FastRequest, FastResponse]
    first.writeHead(200, { 'content-length': 0 })
    first.end()
    socket.emit('data', post('/v1/key/generate/b', '{}'))
    assert.equal(served.length, 1, 'not served while the first answer waits for the client')
    socket.takesMore = true
    socket.emit('drain')
    assert.equal(served.length, 2, 'served once the client read')
    assert.equal((served[1] as [FastRequest, FastResponse])[0].url, '/v1/key/generate/b')
  })

  test('a listener taken off before the body is delivered gets nothing; resume() changes nothing', async () => {
    const { req } = oneRequest('{"a":1}')
    const got: string[] = []
    const dropped = (c: Buffer): void => {
      got.push('dropped ' + c.toString())
    }
    req.on('data', dropped)
    req.on('data', (c: Buffer) => got.push(c.toString()))
    req.off('data', dropped)
    req.off('end', dropped)
    req.resume()
    await new Promise<void>((resolve) => req.on('end', () => resolve()))
    assert.deepEqual(got, ['{"a":1}'])
  })

  test('an error on the socket (a reset) destroys it', () => {
    const { socket } = connection()
    socket.emit('error', new Error('read ECONNRESET'))
    assert.equal(socket.destroyed, true)
  })

  test('trailers are never sent: the answer is one Content-Length response', () => {
    const { socket, res } = oneRequest()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.addTrailers()
    res.end('{}')
    assert.equal(socket.written.length, 1)
    assert.match(socket.written[0] as string, /\r\nContent-Length: 2\r\n/)
    assert.doesNotMatch(socket.written[0] as string, /Trailer|chunked/i)
  })
})

