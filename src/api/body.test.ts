import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { RequestAbortedError, optionalBase64, optionalString, optionalStringList, parseJsonObject, readBody } from './body.js'
import type { BodySource } from './body.js'
import { ErrBodyTimeout, ErrBodyTooLarge, ErrInvalidJson, KesError } from './errors.js'

class FakeRequest extends EventEmitter implements BodySource {
  readonly headers: Record<string, string | undefined>
  resumed = false
  constructor(headers: Record<string, string | undefined> = {}) {
    super()
    this.headers = headers
  }
  resume(): this {
    this.resumed = true
    return this
  }
}

test('a declared Content-Length over the limit is refused before reading', async () => {
  const req = new FakeRequest({ 'content-length': '11' })
  await assert.rejects(readBody(req, 10), (e) => e === ErrBodyTooLarge)
  assert.equal(req.listenerCount('data'), 0)
})

test('a body growing past the limit is refused and the rest discarded', async () => {
  const req = new FakeRequest()
  const watcher = new ReadWatcher()
  const charged: number[] = []
  const body = readBody(req, 10, undefined, (n) => charged.push(n) > 0, watcher)
  req.emit('data', Buffer.alloc(6))
  req.emit('data', Buffer.alloc(6))
  await assert.rejects(body, (e) => e === ErrBodyTooLarge)
  assert.ok(req.resumed)
  // The rest arrives and is let through: nothing more is taken, and the read ended once.
  req.emit('data', Buffer.alloc(6))
  req.emit('end')
  assert.deepEqual(charged, [6])
  assert.equal(watcher.done, 1)
})

test('a body that stalls is refused with 408', async () => {
  const req = new FakeRequest()
  const body = readBody(req, 10, 1)
  req.emit('data', Buffer.alloc(3))
  await assert.rejects(body, (e) => e === ErrBodyTimeout)
  assert.ok(req.resumed)
})

test('a client that goes away mid-body over HTTP/1.1 (an ECONNRESET error) is an aborted request, not a server error', async () => {
  const req = new FakeRequest()
  const body = readBody(req, 10)
  req.emit('data', Buffer.alloc(3))
  req.emit('error', Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))
  await assert.rejects(body, (e) => e instanceof RequestAbortedError && e.message === 'request aborted')
  // Any other error stays what it is.
  const other = new FakeRequest()
  const failed = readBody(other, 10)
  const err = new Error('something else')
  other.emit('error', err)
  await assert.rejects(failed, (e) => e === err)
})

test('chunks are joined; a client that goes away rejects', async () => {
  const req = new FakeRequest()
  const body = readBody(req, 10)
  req.emit('data', Buffer.from('ab'))
  req.emit('data', 'cd')
  req.emit('end')
  assert.equal((await body).toString(), 'abcd')
  const gone = new FakeRequest()
  const aborted = readBody(gone, 10)
  gone.emit('close')
  await assert.rejects(aborted, RequestAbortedError)
})

test('a parsed body is zeroed', () => {
  const body = Buffer.from('{"plaintext":"c2VjcmV0"}')
  assert.deepEqual(parseJsonObject(body), { plaintext: 'c2VjcmV0' })
  assert.ok(body.every((b) => b === 0))
})

test('JSON bodies: empty is {}, anything but an object is invalid json', () => {
  assert.deepEqual(parseJsonObject(Buffer.alloc(0)), {})
  for (const bad of ['[]', 'null', '1', '"x"', '{', '{"a":1}x']) {
    assert.throws(() => parseJsonObject(Buffer.from(bad)), (e) => e === ErrInvalidJson, bad)
  }
  // A __proto__ key stays an own property and never becomes a prototype.
  const o = parseJsonObject(Buffer.from('{"__proto__":{"polluted":1}}'))
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined)
  assert.equal(Object.getPrototypeOf(o), Object.prototype)
})

test('fields: strict base64, null is missing, wrong types are 400', () => {
  const body = parseJsonObject(Buffer.from('{"a":"aGk=","b":null,"c":"aGk","d":5,"l":["x"],"m":[1]}'))
  assert.deepEqual(optionalBase64(body, 'a'), Buffer.from('hi'))
  assert.equal(optionalBase64(body, 'b'), undefined)
  assert.equal(optionalBase64(body, 'missing'), undefined)
  for (const f of ['c', 'd']) assert.throws(() => optionalBase64(body, f), (e) => e instanceof KesError && e.status === 400)
  assert.deepEqual(optionalStringList(body, 'l'), ['x'])
  assert.throws(() => optionalStringList(body, 'm'), (e) => e instanceof KesError && e.status === 400)
  // Inherited properties are not fields.
  assert.equal(optionalBase64(body, 'toString'), undefined)
})

/** Counts how often a body read said it was over (the router's watcher: 408 or 503 at a deadline). */
class ReadWatcher {
  done = 0
  bodyDone(): void {
    this.done++
  }
}

/** Every event a request can still emit after its body read is over. */
function emitEverything(req: FakeRequest): void {
  req.emit('data', Buffer.alloc(1, 9))
  req.emit('end')
  req.emit('error', new Error('late'))
  req.emit('close')
}

test('the limit is inclusive: a declared or actual body of exactly maxBytes is read', async () => {
  const declared = new FakeRequest({ 'content-length': '10' })
  const body = readBody(declared, 10)
  declared.emit('data', Buffer.alloc(4, 1))
  declared.emit('data', Buffer.alloc(6, 2))
  declared.emit('end')
  assert.deepEqual(await body, Buffer.concat([Buffer.alloc(4, 1), Buffer.alloc(6, 2)]))
  const undeclared = new FakeRequest()
  const one = readBody(undeclared, 10)
  undeclared.emit('data', Buffer.alloc(10, 3))
  undeclared.emit('end')
  assert.deepEqual(await one, Buffer.alloc(10, 3))
  assert.equal(undeclared.resumed, false)
})

test('every way a body read ends, ends it once: what the request emits later changes nothing', async () => {
  const ended = new FakeRequest()
  const endedWatch = new ReadWatcher()
  const a = readBody(ended, 10, undefined, undefined, endedWatch)
  ended.emit('data', Buffer.from('ok'))
  ended.emit('end')
  emitEverything(ended)
  assert.deepEqual(await a, Buffer.from('ok'))
  assert.equal(endedWatch.done, 1)

  const closed = new FakeRequest()
  const closedWatch = new ReadWatcher()
  const b = readBody(closed, 10, undefined, undefined, closedWatch)
  closed.emit('close')
  emitEverything(closed)
  await assert.rejects(b, (e) => e instanceof RequestAbortedError && e.message === 'request aborted')
  assert.equal(closedWatch.done, 1)

  const reset = new FakeRequest()
  const resetWatch = new ReadWatcher()
  const c = readBody(reset, 10, undefined, undefined, resetWatch)
  const cause = Object.assign(new Error('aborted'), { code: 'ECONNRESET' })
  reset.emit('error', cause)
  emitEverything(reset)
  await assert.rejects(c, (e) => e instanceof RequestAbortedError && e.cause === cause)
  assert.equal(resetWatch.done, 1)

  const tooLarge = new FakeRequest()
  const tooLargeWatch = new ReadWatcher()
  const d = readBody(tooLarge, 2, undefined, undefined, tooLargeWatch)
  tooLarge.emit('data', Buffer.alloc(3))
  emitEverything(tooLarge)
  await assert.rejects(d, (e) => e === ErrBodyTooLarge)
  assert.equal(tooLargeWatch.done, 1)

  const stalled = new FakeRequest()
  const stalledWatch = new ReadWatcher()
  const e = readBody(stalled, 2, 1, undefined, stalledWatch)
  await assert.rejects(e, (x) => x === ErrBodyTimeout)
  emitEverything(stalled)
  assert.equal(stalledWatch.done, 1)
})

test('a body of exactly {} is the empty object without the JSON parser; anything else is parsed', () => {
  assert.deepEqual(parseJsonObject(Buffer.from('{}')), {})
  assert.deepEqual(parseJsonObject(Buffer.from(' {}')), {})
  assert.deepEqual(parseJsonObject(Buffer.from('{"a":1}')), { a: 1 })
  for (const bad of ['{', '}', '{]', '[]']) assert.throws(() => parseJsonObject(Buffer.from(bad)), (e) => e === ErrInvalidJson, bad)
})

test('field errors say which field and what is wrong', () => {
  const body = parseJsonObject(Buffer.from('{"n":5,"bad64":"aGk","s":"x","snull":null,"l":["x","y"],"mixed":["x",1],"lnull":null,"notlist":"x"}'))
  const message = (f: () => unknown): string => {
    try {
      f()
    } catch (e) {
      assert.ok(e instanceof KesError)
      assert.equal(e.status, 400)
      return e.message
    }
    assert.fail('no error')
  }
  assert.equal(message(() => optionalBase64(body, 'n')), "invalid json: 'n' must be a base64 string")
  assert.equal(message(() => optionalBase64(body, 'bad64')), "invalid json: 'bad64' is not valid base64")
  assert.equal(optionalString(body, 's'), 'x')
  assert.equal(optionalString(body, 'snull'), undefined)
  assert.equal(optionalString(body, 'missing'), undefined)
  assert.equal(optionalString(body, 'toString'), undefined)
  assert.equal(message(() => optionalString(body, 'n')), "invalid json: 'n' must be a string")
  assert.deepEqual(optionalStringList(body, 'l'), ['x', 'y'])
  assert.equal(optionalStringList(body, 'lnull'), undefined)
  assert.equal(optionalStringList(body, 'missing'), undefined)
  assert.equal(message(() => optionalStringList(body, 'mixed')), "invalid json: 'mixed' must be a list of strings")
  assert.equal(message(() => optionalStringList(body, 'notlist')), "invalid json: 'notlist' must be a list of strings")
})
