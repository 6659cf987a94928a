// Live log streams (`/v1/log/audit/trace`, `/v1/log/error/trace`): nd-json
// events read from an open response as they arrive, and the parsers that turn
// each line into an AuditEvent or ErrorEvent.
import type { Buffer } from 'node:buffer'
import { StringDecoder } from 'node:string_decoder'
import type { AuditEvent, ErrorEvent, LogStream } from './api.js'
import { InvalidResponseError, clientError, isRecord } from './call.js'
import type { Call } from './call.js'
import type { Opened } from './transport.js'

// A log stream pauses its connection once this many events wait for the reader.
const MAX_QUEUED_EVENTS = 1_024

/**
 * A log stream: nd-json events from an open response, parsed line by line
 * (a line may arrive split over chunks). The connection is paused while too
 * many events wait for the reader.
 */
export class NdjsonStream<T> implements LogStream<T> {
  readonly #opened: Opened
  readonly #parse: (value: unknown) => T
  readonly #onRelease: () => void
  readonly #decoder = new StringDecoder('utf8')
  readonly #queue: T[] = []
  #partial = ''
  /** The server ended the stream. */
  #ended = false
  /** Closed by the reader, or the error was handed over: nothing more comes. */
  #done = false
  #released = false
  #error: unknown
  #waiter: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void } | undefined

  /**
   * Reads events from `opened`'s body; `parse` turns one JSON line into an event (throwing ends
   * the stream with that error), and `onRelease` runs once when the stream has ended, failed or closed.
   */
  constructor(opened: Opened, parse: (value: unknown) => T, onRelease: () => void) {
    this.#opened = opened
    this.#parse = parse
    this.#onRelease = onRelease
    const body = opened.body
    body.on('error', (err: unknown) => this.#fail(err))
    // A close without an end is a broken connection (unless the reader closed it).
    body.once('close', () => this.#fail(clientError('log stream closed by the connection', 'ECONNRESET')))
    if (body.destroyed) {
      this.#fail(body.errored ?? clientError('log stream closed by the connection', 'ECONNRESET'))
      return
    }
    body.on('data', (chunk: Buffer) => this.#push(chunk))
    body.once('end', () => this.#end())
  }

  /** Ends the stream: the connection is cancelled and iteration finishes. */
  close(): void {
    if (this.#done) return
    this.#done = true
    this.#queue.length = 0
    this.#opened.cancel()
    this.#release()
    this.#wake()
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.#next(),
      return: () => {
        this.close()
        return Promise.resolve({ done: true, value: undefined })
      },
    }
  }

  #next(): Promise<IteratorResult<T>> {
    if (this.#queue.length > 0) {
      const event = this.#queue.shift() as T
      if (this.#queue.length < MAX_QUEUED_EVENTS / 2 && this.#opened.body.isPaused()) this.#opened.body.resume()
      return Promise.resolve({ done: false, value: event })
    }
    if (this.#error !== undefined && !this.#done) {
      this.#done = true
      return Promise.reject(this.#error)
    }
    if (this.#ended || this.#done) return Promise.resolve({ done: true, value: undefined })
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject }
    })
  }

  #finished(): boolean {
    return this.#done || this.#ended || this.#error !== undefined
  }

  #push(chunk: Buffer): void {
    if (this.#finished()) return
    const lines = (this.#partial + this.#decoder.write(chunk)).split('\n')
    this.#partial = lines.pop() ?? ''
    for (const line of lines) {
      if (!this.#pushLine(line)) return
    }
    if (this.#queue.length >= MAX_QUEUED_EVENTS) this.#opened.body.pause()
    this.#wake()
  }

  /** Queues the event of one line; false (and the stream failed) when the line is not an event. */
  #pushLine(line: string): boolean {
    const text = line.trim()
    if (text === '') return true
    let event: T
    try {
      event = this.#parse(JSON.parse(text))
    } catch (err) {
      this.#fail(err instanceof InvalidResponseError ? err : clientError('log stream sent a line that is not JSON', 'ERR_KES_INVALID_RESPONSE'))
      this.#opened.cancel()
      return false
    }
    this.#queue.push(event)
    return true
  }

  #end(): void {
    if (this.#finished()) return
    const rest = this.#partial + this.#decoder.end()
    this.#partial = ''
    if (!this.#pushLine(rest)) return
    this.#ended = true
    this.#release()
    this.#wake()
  }

  #fail(err: unknown): void {
    if (this.#finished()) return
    this.#error = err
    this.#release()
    this.#wake()
  }

  #release(): void {
    if (this.#released) return
    this.#released = true
    this.#onRelease()
  }

  /** Hands a waiting reader what there is now: an event, the error, or the end. */
  #wake(): void {
    const waiter = this.#waiter
    if (waiter === undefined) return
    if (this.#queue.length === 0 && !this.#finished()) return
    this.#waiter = undefined
    this.#next().then(waiter.resolve, waiter.reject)
  }
}

/** One audit event of the audit log. Throws InvalidResponseError for a value that is not one. */
export function parseAuditEvent(call: Call, value: unknown): AuditEvent {
  if (!isRecord(value)) throw new InvalidResponseError(call, 'audit event is not an object')
  const request = value['request']
  const response = value['response']
  if (typeof value['time'] !== 'string' || !isRecord(request) || !isRecord(response)) {
    throw new InvalidResponseError(call, 'audit event lacks time, request or response')
  }
  const path = request['path']
  const identity = request['identity']
  const code = response['code']
  const time = response['time']
  if (typeof path !== 'string' || typeof identity !== 'string' || typeof code !== 'number' || typeof time !== 'number') {
    throw new InvalidResponseError(call, 'audit event has a malformed request or response')
  }
  const method = request['method']
  const ip = request['ip']
  const error = response['error']
  return {
    time: value['time'],
    request: {
      path,
      identity,
      ...(typeof method === 'string' ? { method } : {}),
      ...(typeof ip === 'string' ? { ip } : {}),
    },
    response: { code, time, ...(typeof error === 'string' ? { error } : {}) },
  }
}

/** One event of the error log. Throws InvalidResponseError for a value that is not one. */
export function parseErrorEvent(call: Call, value: unknown): ErrorEvent {
  if (!isRecord(value) || typeof value['message'] !== 'string') throw new InvalidResponseError(call, 'error event lacks a message')
  return { message: value['message'] }
}
