import { decodeBase64Strict } from '../crypto/base64.js'
import { ErrBodyBudget, ErrBodyTimeout, ErrBodyTooLarge, ErrInvalidJson, invalidField } from './errors.js'

/** What the body reader needs of a request (an HTTP/1.1 or HTTP/2 compat request). */
export interface BodySource {
  readonly headers: Record<string, string | string[] | undefined>
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown
  on(event: 'end' | 'close', listener: () => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
  off(event: 'data', listener: (chunk: Buffer | string) => void): unknown
  off(event: 'end' | 'close', listener: () => void): unknown
  off(event: 'error', listener: (err: Error) => void): unknown
  resume(): unknown
  /**
   * The whole body, when it had arrived before the request was dispatched (the HTTP/1.1 fast
   * path): then it is taken as it is, with the same checks and no listening.
   */
  readonly completeBody?: Buffer
  /** Called when `completeBody` was taken, so the request counts as read to its end. */
  bodyTaken?(): void
}

// Enough for 1 MiB over any link a key server should serve.
const BODY_TIMEOUT_MS = 30_000

/** Thrown when the client went away before its body was complete. */
export class RequestAbortedError extends Error {}

function errorCode(err: Error): unknown {
  return (err as { code?: unknown }).code
}

/** Asks for room for `bytes` more body bytes in memory; false when there is none (503). */
export type BodyCharge = (bytes: number) => boolean

/**
 * Reads a request body of at most `maxBytes`. A declared Content-Length over
 * the limit is refused before any byte is read; a body that grows past it is
 * refused as soon as it does. Throws ErrBodyTooLarge (413), or ErrBodyTimeout
 * (408) when the body has not arrived within `timeoutMs`, so a client that
 * stalls mid-upload can't hold a request open, or ErrBodyBudget (503) when
 * `charge` finds no room for the bytes in memory. On refusal the rest of the
 * body is discarded, not paused (a paused HTTP/2 stream holds up the whole
 * connection's flow control) nor destroyed (that would destroy the
 * connection before the answer could be sent). A `timeoutMs` of 0 sets no
 * timer: the caller bounds the read by a deadline of its own. `watcher.bodyDone()` is called
 * once the read is over, however it ended (before the returned promise settles).
 */
export function readBody(
  req: BodySource,
  maxBytes: number,
  timeoutMs = BODY_TIMEOUT_MS,
  charge?: BodyCharge,
  watcher?: { bodyDone(): void },
): Promise<Buffer> {
  const complete = req.completeBody
  if (complete !== undefined) {
    return takeCompleteBody(req, complete, maxBytes, (b) => {
      if (charge !== undefined && !charge(b.length)) throw ErrBodyBudget
      return b
    }, watcher)
  }
  const chunks: Buffer[] = []
  return consumeBody(
    req,
    maxBytes,
    timeoutMs,
    (b) => {
      if (charge !== undefined && !charge(b.length)) throw ErrBodyBudget
      chunks.push(b)
    },
    (size) => (chunks.length === 1 ? (chunks[0] as Buffer) : joinChunks(chunks, size)),
    watcher,
  )
}

/**
 * Reads a body nobody needs (an API that takes none) to its end without
 * keeping any of it: the client's bytes cost no memory, yet an HTTP/2 client
 * still sending when the answer comes does not see its stream cut off. The
 * same size and time limits as readBody hold.
 */
export function discardBody(req: BodySource, maxBytes: number, timeoutMs = BODY_TIMEOUT_MS): Promise<void> {
  const complete = req.completeBody
  if (complete !== undefined) return takeCompleteBody(req, complete, maxBytes, () => undefined, undefined)
  return consumeBody(req, maxBytes, timeoutMs, () => {}, () => undefined, undefined)
}

/** readBody and discardBody of a body that is already complete: the same limits, checked at once. */
function takeCompleteBody<T>(
  req: BodySource,
  body: Buffer,
  maxBytes: number,
  take: (body: Buffer) => T,
  watcher: { bodyDone(): void } | undefined,
): Promise<T> {
  try {
    if (body.length > maxBytes) throw ErrBodyTooLarge
    const taken = take(body)
    req.bodyTaken?.()
    return Promise.resolve(taken)
  } catch (err) {
    return Promise.reject(err)
  } finally {
    watcher?.bodyDone()
  }
}

/**
 * Feeds each chunk to `take` (which may throw a KesError to refuse it) and resolves to what
 * `result` makes of the total size, in the same promise (no extra turn per request). Its
 * listeners stay on the request once the read is over, and ignore what comes later: a request
 * is read once and dropped after its answer, and removing four listeners cost more per
 * request than the read itself (a refused body's rest still arrives, and is let through).
 */
function consumeBody<T>(
  req: BodySource,
  maxBytes: number,
  timeoutMs: number,
  take: (chunk: Buffer) => void,
  result: (size: number) => T,
  watcher: { bodyDone(): void } | undefined,
): Promise<T> {
  const declared = req.headers['content-length']
  if (typeof declared === 'string' && Number(declared) > maxBytes) {
    watcher?.bodyDone()
    return Promise.reject(ErrBodyTooLarge)
  }
  return new Promise<T>((resolve, reject) => {
    let size = 0
    let over = false
    // Ends the read once, however it ends; false when it had ended already.
    const finish = (): boolean => {
      if (over) return false
      over = true
      if (timer !== undefined) clearTimeout(timer)
      watcher?.bodyDone()
      return true
    }
    const refuse = (err: unknown): void => {
      if (!finish()) return
      req.resume()
      reject(err)
    }
    const onData = (chunk: Buffer | string): void => {
      if (over) return
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      size += b.length
      if (size > maxBytes) return refuse(ErrBodyTooLarge)
      try {
        take(b)
      } catch (err) {
        refuse(err)
      }
    }
    const onEnd = (): void => {
      if (!finish()) return
      try {
        resolve(result(size))
      } catch (err) {
        reject(err)
      }
    }
    const onError = (err: Error): void => {
      if (!finish()) return
      // Node's HTTP/1.1 request reports a client that went away mid-body as an
      // 'aborted' ECONNRESET error: that is the client's doing, not a server error.
      reject(errorCode(err) === 'ECONNRESET' ? new RequestAbortedError('request aborted', { cause: err }) : err)
    }
    const onClose = (): void => {
      if (finish()) reject(new RequestAbortedError('request aborted'))
    }
    // 0: the caller enforces a deadline of its own (the router's per-request deadline).
    const timer = timeoutMs > 0 ? setTimeout(() => refuse(ErrBodyTimeout), timeoutMs) : undefined
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}

// Buffer.concat would take small results from Node's never-cleared shared
// pool; a body can hold plaintexts and imported keys.
function joinChunks(chunks: readonly Buffer[], size: number): Buffer {
  const out = Buffer.alloc(size)
  let at = 0
  for (const c of chunks) at += c.copy(out, at)
  return out
}

/** A parsed JSON object body. Only fields a parser asks for are ever read. */
export type JsonObject = Readonly<Record<string, unknown>>

const EMPTY: JsonObject = Object.freeze({})

/**
 * Whether the body is exactly `{}`: what a client sends when every field is empty (kes-go leaves
 * empty fields out), and so the usual generate call without a context. JSON.parse's fixed cost
 * is most of what parsing such a call costs; this answers it without the parser.
 */
function isEmptyObject(body: Buffer): boolean {
  return body.length === 2 && body[0] === 0x7b && body[1] === 0x7d
}

/**
 * Parses a request body as one JSON object; an empty body counts as `{}`.
 * The body is zeroed afterwards (it may hold secrets; best effort, as the
 * parsed strings can't be). Throws ErrInvalidJson for anything else
 * (arrays, `null`, syntax errors).
 */
export function parseJsonObject(body: Buffer): JsonObject {
  if (body.length === 0 || isEmptyObject(body)) return EMPTY
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    throw ErrInvalidJson
  } finally {
    body.fill(0)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw ErrInvalidJson
  return value as JsonObject
}

/**
 * Reads an optional base64 field: missing or `null` → undefined. Throws a 400
 * `invalid json: ...` for a non-string or a value that is not strict base64.
 */
export function optionalBase64(obj: JsonObject, field: string): Buffer | undefined {
  const v = Object.hasOwn(obj, field) ? obj[field] : undefined
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw invalidField(`'${field}' must be a base64 string`)
  const b = decodeBase64Strict(v)
  if (b === undefined) throw invalidField(`'${field}' is not valid base64`)
  return b
}

/** Reads an optional string field: missing or `null` → undefined; a non-string is a 400. */
export function optionalString(obj: JsonObject, field: string): string | undefined {
  const v = Object.hasOwn(obj, field) ? obj[field] : undefined
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw invalidField(`'${field}' must be a string`)
  return v
}

/** Reads an optional list of strings: missing or `null` → undefined; anything else but string[] is a 400. */
export function optionalStringList(obj: JsonObject, field: string): string[] | undefined {
  const v = Object.hasOwn(obj, field) ? obj[field] : undefined
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((e): e is string => typeof e === 'string')) {
    throw invalidField(`'${field}' must be a list of strings`)
  }
  return v
}
