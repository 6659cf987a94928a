import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { RequestAbortedError, optionalBase64, optionalStringList, parseJsonObject, readBody } from './body.js'
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
  const body = readBody(req, 10)
  req.emit('data', Buffer.alloc(6))
  req.emit('data', Buffer.alloc(6))
  await assert.rejects(body, (e) => e === ErrBodyTooLarge)
  assert.ok(req.resumed)
  assert.equal(req.listenerCount('data'), 0)
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
  assert.equal(req.listenerCount('data'), 0)
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
