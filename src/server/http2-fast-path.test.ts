// The HTTP/2 fast path's request and response adapters over a stand-in for Node's server stream.
// (test/integration/fast-path.test.ts compares them with the compatibility layer over real HTTP/2.)
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import { describe, test } from 'node:test'
import { isStreamGone, routeStream, SESSION_PEER, StreamRequest, StreamResponse } from './http2-fast-path.js'
import { RequestTurns } from './request-turns.js'

/** Records what the adapters do with the stream. */
class FakeStream extends EventEmitter {
  destroyed = false
  closed = false
  headersSent = false
  readableEnded = false
  writableLength = 0
  session: { [SESSION_PEER]?: { remoteAddress: string }; destroyed: boolean } | undefined = { [SESSION_PEER]: { remoteAddress: '127.0.0.1' }, destroyed: false }
  readonly responded: Array<[OutgoingHttpHeaders, unknown]> = []
  readonly written: Array<string | Buffer> = []
  /** The callbacks of writes, in order: call one to complete its write. */
  readonly writeCallbacks: Array<(err?: Error | null) => void> = []
  ended: Array<string | Buffer | undefined> = []
  trailers: OutgoingHttpHeaders[] = []
  respond(headers: OutgoingHttpHeaders, options?: unknown): void {
    this.responded.push([{ ...headers }, options])
    this.headersSent = true
  }
  write(chunk: string | Buffer, cb?: (err?: Error | null) => void): boolean {
    this.written.push(chunk)
    if (cb !== undefined) this.writeCallbacks.push(cb)
    return true
  }
  end(body?: string | Buffer): this {
    this.ended.push(body)
    return this
  }
  sendTrailers(headers: OutgoingHttpHeaders): void {
    this.trailers.push(headers)
  }
  destroy(): this {
    this.destroyed = true
    return this
  }
  resume(): this {
    return this
  }
  get asStream(): ServerHttp2Stream {
    return this as unknown as ServerHttp2Stream
  }
}

describe('StreamResponse', () => {
  test('writeHead then end: one respond with :status, the body written, and the stream ended once that write completed', () => {
    const stream = new FakeStream()
    const res = new StreamResponse(stream.asStream)
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': 2 })
    assert.equal(res.headersSent, true)
    res.end('{}')
    assert.deepEqual(stream.responded, [[{ 'content-type': 'application/json', 'content-length': 2, ':status': 404 }, undefined]])
    assert.deepEqual(stream.written, ['{}'])
    assert.deepEqual(stream.ended, [], 'not ended with its last write (Node would build an ERR_STREAM_DESTROYED error per response)')
    assert.equal(res.writableEnded, true)
    stream.writeCallbacks[0]?.()
    assert.deepEqual(stream.ended, [undefined])
    assert.deepEqual(stream.trailers, [], 'no trailers')
    res.end('again')
    assert.deepEqual(stream.written, ['{}'], 'a second end is ignored')
    assert.equal(stream.writeCallbacks.length, 1)
  })

  test('a body write that fails (the client reset the stream), or completes on a destroyed stream, ends nothing', () => {
    const failed = new FakeStream()
    new StreamResponse(failed.asStream).end('{}')
    failed.writeCallbacks[0]?.(new Error('stream reset'))
    const destroyed = new FakeStream()
    new StreamResponse(destroyed.asStream).end('{}')
    destroyed.destroyed = true
    destroyed.writeCallbacks[0]?.(null)
    assert.deepEqual([failed.ended, destroyed.ended], [[], []])
  })

  test('end without writeHead answers 200; an empty body ends the stream without data', () => {
    const stream = new FakeStream()
    new StreamResponse(stream.asStream).end('')
    assert.deepEqual(stream.responded.map(([h]) => h[':status']), [200])
    assert.deepEqual(stream.ended, [undefined])
  })

  test('write passes parts through, writableLength is the stream\'s, destroy destroys the stream', () => {
    const stream = new FakeStream()
    const res = new StreamResponse(stream.asStream)
    res.writeHead(200, {})
    assert.equal(res.write('a'), true)
    stream.writableLength = 7
    assert.equal(res.writableLength, 7)
    res.addTrailers()
    res.destroy()
    assert.equal(stream.destroyed, true)
    assert.deepEqual(stream.written, ['a'])
    assert.deepEqual(stream.trailers, [])
  })

  test('a stream the client reset gets nothing: no respond, no write, no end', () => {
    const stream = new FakeStream()
    stream.closed = true
    const res = new StreamResponse(stream.asStream)
    res.writeHead(200, {})
    assert.equal(res.write('a'), false)
    res.end('{}')
    assert.deepEqual([stream.responded, stream.written, stream.ended, stream.writeCallbacks], [[], [], [], []])
  })

  test('once listens on the stream', () => {
    const stream = new FakeStream()
    let finished = 0
    new StreamResponse(stream.asStream).once('finish', () => finished++)
    stream.emit('finish')
    stream.emit('finish')
    assert.equal(finished, 1)
  })
})

describe('StreamRequest', () => {
  test('reads its method, target and headers; the body is the stream\'s data; errors reach it only as close', () => {
    const stream = new FakeStream()
    const headers: IncomingHttpHeaders = { ':method': 'POST', ':path': '/v1/key/decrypt/k', 'content-length': '2' }
    const req = new StreamRequest(stream.asStream, headers, 'POST', '/v1/key/decrypt/k')
    assert.deepEqual([req.method, req.url, req.httpVersionMajor, req.headers['content-length']], ['POST', '/v1/key/decrypt/k', 2, '2'])
    assert.equal(req.socket, stream.session?.[SESSION_PEER])
    const seen: string[] = []
    const onData = (c: Buffer): void => {
      seen.push(c.toString())
    }
    const onError = (): void => {
      seen.push('error')
    }
    req.on('data', onData)
    req.on('error', onError)
    assert.equal(stream.listenerCount('error'), 0, 'a stream error is not a body reader\'s error')
    stream.emit('data', Buffer.from('{}'))
    req.off('data', onData)
    req.off('error', onError)
    stream.emit('data', Buffer.from('more'))
    req.resume()
    assert.deepEqual(seen, ['{}'])
    assert.equal(req.readableEnded, false)
    stream.readableEnded = true
    assert.equal(req.readableEnded, true)
  })
})

describe('routeStream', () => {
  const cases: ReadonlyArray<[string, IncomingHttpHeaders, 'fast' | 'compat']> = [
    ['decrypt', { ':method': 'POST', ':path': '/v1/key/decrypt/k' }, 'fast'],
    ['/version', { ':method': 'GET', ':path': '/version' }, 'fast'],
    ['a listing', { ':method': 'GET', ':path': '/v1/key/list/*' }, 'compat'],
    ['HEAD /version', { ':method': 'HEAD', ':path': '/version' }, 'compat'],
    ['expect: 100-continue', { ':method': 'POST', ':path': '/v1/key/decrypt/k', expect: '100-continue' }, 'compat'],
    ['no :path (CONNECT)', { ':method': 'CONNECT', ':authority': 'kes:7373' }, 'compat'],
  ]
  for (const [name, headers, way] of cases) {
    test(`${name} → ${way}`, () => {
      const stream = new FakeStream()
      const ways: string[] = []
      const self = {}
      routeStream(
        (req) => {
          assert.equal(req.stream, stream.asStream)
          ways.push('fast')
        },
        undefined,
        function (this: unknown, s) {
          assert.equal(this, self)
          assert.equal(s, stream.asStream)
          ways.push('compat')
        },
        self,
        stream.asStream,
        headers,
        0,
        [],
      )
      assert.deepEqual(ways, [way])
      // A fast-path stream's error (a reset) must not be thrown as an unhandled 'error' event.
      if (way === 'fast') stream.emit('error', new Error('stream reset'))
    })
  }
})

describe('StreamRequest.socket', () => {
  test('is the peer noted on its session, read once: still there when the session is destroyed or gone', () => {
    const stream = new FakeStream()
    const req = new StreamRequest(stream.asStream, { ':method': 'POST', ':path': '/v1/key/generate/k' }, 'POST', '/v1/key/generate/k')
    assert.equal(req.socket?.remoteAddress, '127.0.0.1')
    // (Node's session.socket would now throw ERR_HTTP2_SOCKET_UNBOUND on any read: it is never read.)
    ;(stream.session as { destroyed: boolean }).destroyed = true
    assert.equal(req.socket?.remoteAddress, '127.0.0.1')
    stream.session = undefined
    assert.equal(req.socket?.remoteAddress, '127.0.0.1', 'a request that outlives its session is still audited with its address')
  })

  test('is undefined on a session with no peer noted (the server then refuses the request)', () => {
    const stream = new FakeStream()
    stream.session = { destroyed: false }
    assert.equal(new StreamRequest(stream.asStream, {}, 'GET', '/version').socket, undefined)
    stream.session = undefined
    assert.equal(new StreamRequest(stream.asStream, {}, 'GET', '/version').socket, undefined)
  })
})

describe('StreamRequest: a body end told in its turn', () => {
  /** A request with turns that run only when the test says so (one request per turn). */
  function withTurns(): { stream: FakeStream; req: StreamRequest; runTurn(): void; scheduled: Array<() => void> } {
    const stream = new FakeStream()
    const scheduled: Array<() => void> = []
    const turns = new RequestTurns<StreamRequest>(1, (r) => r.endBody(), isStreamGone, (next) => scheduled.push(next))
    // One request takes the first turn's room, so the one under test waits for a turn.
    turns.admit(new StreamRequest(new FakeStream().asStream, {}, 'POST', '/v1/key/generate/k', turns))
    const req = new StreamRequest(stream.asStream, {}, 'POST', '/v1/key/generate/k', turns)
    return {
      stream,
      req,
      scheduled,
      runTurn() {
        scheduled.shift()?.()
      },
    }
  }

  test("the stream's 'end' reaches the reader only in the body end's turn, once; 'data' and 'close' at once", () => {
    const { stream, req, runTurn } = withTurns()
    const seen: string[] = []
    req.on('data', (c: Buffer) => seen.push(`data ${c.toString()}`))
    req.on('end', () => seen.push('end'))
    req.on('close', () => seen.push('close'))
    stream.emit('data', Buffer.from('{}'))
    stream.emit('end')
    assert.deepEqual(seen, ['data {}'], 'the end waits for its turn')
    runTurn()
    assert.deepEqual(seen, ['data {}', 'end'])
    req.endBody()
    stream.emit('close')
    assert.deepEqual(seen, ['data {}', 'end', 'close'], 'told once')
  })

  test('a stream reset while its end waits is never told its end: the reader has its close', () => {
    const { stream, req, runTurn, scheduled } = withTurns()
    const seen: string[] = []
    req.on('end', () => seen.push('end'))
    req.on('close', () => seen.push('close'))
    stream.emit('end')
    stream.closed = true
    stream.destroyed = true
    stream.emit('close')
    runTurn()
    assert.deepEqual(seen, ['close'])
    assert.equal(scheduled.length, 0)
  })

  test("an 'end' listener taken off before its turn is not told", () => {
    const { stream, req, runTurn } = withTurns()
    const seen: string[] = []
    const onEnd = (): void => {
      seen.push('removed')
    }
    req.on('end', onEnd)
    req.on('end', () => seen.push('kept'))
    req.off('end', onEnd)
    stream.emit('end')
    runTurn()
    assert.deepEqual(seen, ['kept'])
  })

  test("without turns, the stream's 'end' is the reader's at once", () => {
    const stream = new FakeStream()
    const req = new StreamRequest(stream.asStream, {}, 'POST', '/v1/key/generate/k')
    const seen: string[] = []
    req.on('end', () => seen.push('end'))
    stream.emit('end')
    assert.deepEqual(seen, ['end'])
  })
})

describe('isStreamGone', () => {
  const cases: ReadonlyArray<[string, Partial<Pick<FakeStream, 'destroyed' | 'closed'>>, boolean]> = [
    ['an open stream', {}, false],
    ['a stream the client reset (closed, then destroyed)', { closed: true, destroyed: true }, true],
    ['a closed stream not yet destroyed', { closed: true }, true],
    ['a destroyed stream (its session torn down)', { destroyed: true }, true],
  ]
  for (const [name, state, gone] of cases) {
    test(`${name}: ${gone ? 'gone' : 'not gone'}`, () => {
      const stream = Object.assign(new FakeStream(), state)
      assert.equal(isStreamGone(new StreamRequest(stream.asStream, {}, 'POST', '/v1/key/generate/k')), gone)
    })
  }
})
