// The TypeScript client of the KES API (api.ts has the public types). It
// speaks HTTP/2 over mutual TLS, falls back to HTTP/1.1 for servers without
// h2, and fails over between endpoints the way MinIO's KES client does.
import { Buffer } from 'node:buffer'
import { setMaxListeners } from 'node:events'
import { readFile } from 'node:fs/promises'
import { STATUS_CODES } from 'node:http'
import http2 from 'node:http2'
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2'
import https from 'node:https'
import { isIP } from 'node:net'
import type { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import tls from 'node:tls'
import { inspect } from 'node:util'
import { KesError } from '../api/errors.js'
import { decodeBase64Strict, encodeBase64 } from '../crypto/base64.js'
import type { AuditEvent, DataKey, ErrorEvent, KesApi, KesClientOptions, LogStream, PolicyRules } from './api.js'

const DEFAULT_TIMEOUT_MS = 15_000
const DEFAULT_MAX_RETRIES = 2
// Backoff between passes over the endpoints: exponential from 50 ms, capped at 1 s, jittered.
const BACKOFF_BASE_MS = 50
const BACKOFF_CAP_MS = 1_000
// An endpoint that failed with a network error goes to the back of the line for this long.
const UNHEALTHY_MS = 5_000
// Idle connections are closed after this long: before servers close them (OpenKES after 120 s),
// so that a request seldom meets a connection the server has just closed.
const IDLE_CONNECTION_MS = 30_000
// A bound on buffered response bodies, so a broken server cannot exhaust memory.
const MAX_RESPONSE_BYTES = 64 << 20
// A log stream pauses its connection once this many events wait for the reader.
const MAX_QUEUED_EVENTS = 1_024
// At most this many pages of a paginated key list (KES 2023-10-24 and later).
const MAX_LIST_PAGES = 10_000

type Headers = Readonly<Record<string, string | string[] | undefined>>

/** One API call as the transport sees it. */
interface Call {
  readonly method: 'GET' | 'POST' | 'DELETE'
  /** The request target, names already percent-encoded. */
  readonly path: string
  readonly body?: Buffer
  /**
   * Whether sending the call twice is harmless. A call that is not (create,
   * import, delete, forget) is retried only when it certainly never reached a
   * server, since a repeat could turn its success into "exists" or "not found".
   */
  readonly idempotent: boolean
}

/** A response whose body may still be arriving. */
interface Opened {
  readonly status: number
  readonly headers: Headers
  readonly body: Readable
  /** The trailers; complete once the body has ended. */
  trailers(): Headers
  /** Abandons the response (and, for HTTP/1.1, its connection). */
  cancel(): void
}

/** How far an attempt got, to tell a safe retry from a possibly repeated request. */
interface Progress {
  /** The request may have reached the server. */
  sent: boolean
  /** The attempt used a connection that had been idle in the pool (it may have gone stale). */
  reused: boolean
}

/** TLS settings shared by every connection of a client: the credentials are parsed once. */
interface TlsMaterial {
  readonly secureContext: tls.SecureContext
  readonly rejectUnauthorized: boolean
}

/** Where the credentials come from; file contents are read on first use. */
interface Credentials {
  readonly cert: string | Buffer | undefined
  readonly key: string | Buffer | undefined
  readonly certFile: string | undefined
  readonly keyFile: string | undefined
  readonly keyPassword: string | undefined
  readonly ca: string | Buffer | undefined
  readonly caFile: string | undefined
  readonly insecure: boolean
}

/** An HTTP/2 session and the number of streams that keep it referenced. */
interface H2Connection {
  readonly session: ClientHttp2Session
  active: number
}

/** One server and the connections to it. */
interface Endpoint {
  /** The origin, `https://host:port`. */
  readonly origin: string
  readonly host: string
  readonly port: number
  /** The TLS server name; undefined for IP addresses, which SNI cannot carry. */
  readonly servername: string | undefined
  /** What ALPN said: unknown until the first connection. */
  protocol: 'unknown' | 'h2' | 'http1'
  unhealthyUntil: number
  h2: H2Connection | undefined
  h2Connecting: Promise<H2Connection | undefined> | undefined
  agent: https.Agent | undefined
}

/** A response that is not what the API promises; an answer, so it is not retried. */
class InvalidResponseError extends Error {
  constructor(call: Call, why: string) {
    super(`kes client: invalid response to ${call.method} ${call.path}: ${why}`)
    this.name = 'InvalidResponseError'
  }
}

function clientError(message: string, code: string): Error {
  return Object.assign(new Error(`kes client: ${message}`), { code })
}

function closedError(): Error {
  return clientError('closed', 'ERR_KES_CLIENT_CLOSED')
}

/**
 * A client of the KES API (OpenKES, and KES servers of every generation).
 * Requests go to the endpoints in turn; network errors and 503 answers are
 * retried on the next endpoint and, after a jittered backoff, in further
 * passes. API errors reject with a KesError carrying the server's status and
 * message, so `err.status === ErrKeyNotFound.status && err.message === ErrKeyNotFound.message`
 * identifies a missing key. Call `close()` when done.
 */
export class KesClient implements KesApi {
  readonly #endpoints: readonly Endpoint[]
  readonly #credentials: Credentials
  readonly #http1: boolean
  readonly #timeoutMs: number
  readonly #maxRetries: number
  readonly #closing = new AbortController()
  readonly #streams = new Set<{ close(): void }>()
  #tls: Promise<TlsMaterial> | undefined
  // Each call starts at the next endpoint, from a random first one, to spread the load.
  #cursor: number

  /**
   * Checks the options; nothing is read or connected until the first call.
   * Throws TypeError for no endpoints, an endpoint that is not an `https://host[:port]`
   * URL, a credential given both inline and as a file, a certificate without a key
   * (or the reverse), or a timeout or retry count out of range.
   */
  constructor(options: KesClientOptions) {
    if (options.endpoints.length === 0) throw new TypeError('kes client: no endpoints')
    this.#endpoints = options.endpoints.map(parseEndpoint)
    if (options.cert !== undefined && options.certFile !== undefined) throw new TypeError('kes client: give cert or certFile, not both')
    if (options.key !== undefined && options.keyFile !== undefined) throw new TypeError('kes client: give key or keyFile, not both')
    if (options.ca !== undefined && options.caFile !== undefined) throw new TypeError('kes client: give ca or caFile, not both')
    const hasCert = options.cert !== undefined || options.certFile !== undefined
    const hasKey = options.key !== undefined || options.keyFile !== undefined
    if (hasCert !== hasKey) throw new TypeError('kes client: a client certificate needs its private key and the other way round')
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`kes client: timeoutMs '${timeoutMs}' is not a positive number`)
    const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES
    if (!Number.isInteger(maxRetries) || maxRetries < 0) throw new TypeError(`kes client: maxRetries '${maxRetries}' is not a whole number >= 0`)
    this.#credentials = {
      cert: options.cert,
      key: options.key,
      certFile: options.certFile,
      keyFile: options.keyFile,
      keyPassword: options.keyPassword,
      ca: options.ca,
      caFile: options.caFile,
      insecure: options.insecure === true,
    }
    this.#http1 = options.http1 === true
    this.#timeoutMs = timeoutMs
    this.#maxRetries = maxRetries
    this.#cursor = Math.floor(Math.random() * this.#endpoints.length)
    // Every call in flight listens for close(); many concurrent calls are normal, not a leak.
    setMaxListeners(0, this.#closing.signal)
  }

  /** The server version (`GET /version`). Rejects with KesError or a network error. */
  async version(): Promise<string> {
    const call = get('/version')
    const body = jsonObject(call, await this.#request(call))
    return stringField(call, body, 'version')
  }

  /**
   * Creates a key with a random 256-bit secret (`POST /v1/key/create/:name`).
   * Rejects with KesError 400 `key does already exist`, 403, or a network error;
   * it is retried only when the request certainly never reached a server.
   */
  async createKey(name: string): Promise<void> {
    await this.#request({ method: 'POST', path: `/v1/key/create/${enc(name)}`, idempotent: false })
  }

  /**
   * Imports a 256-bit key (`POST /v1/key/import/:name`), for `cipher` (default AES256).
   * The body carries both the current (`key`, `cipher`) and the seed-era (`bytes`) field,
   * so servers of either generation take it. Rejects with KesError 400 `invalid key`,
   * 400 `key does already exist`, 403, or a network error; retried like createKey.
   */
  async importKey(name: string, key: Uint8Array, cipher: 'AES256' | 'ChaCha20' = 'AES256'): Promise<void> {
    const encoded = encodeBase64(key)
    const body = Buffer.from(JSON.stringify({ key: encoded, cipher, bytes: encoded }))
    try {
      await this.#request({ method: 'POST', path: `/v1/key/import/${enc(name)}`, body, idempotent: false })
    } finally {
      body.fill(0)
    }
  }

  /**
   * Deletes a key (`DELETE /v1/key/delete/:name`). Rejects with KesError 404
   * `key does not exist`, 403, or a network error; retried like createKey.
   */
  async deleteKey(name: string): Promise<void> {
    await this.#request({ method: 'DELETE', path: `/v1/key/delete/${enc(name)}`, idempotent: false })
  }

  /**
   * Lists key names (`GET /v1/key/list/:pattern`): empty or `*` lists all. Accepts the
   * nd-json `{"name"}` lines of OpenKES and KES up to 2023, KES 0.17's `{"Name"}`, and the
   * paginated `{"names","continue_at"}` of later KES. Returns the names sorted.
   * Rejects with KesError (403, 400 for a bad pattern) or a network error.
   */
  async listKeys(pattern?: string): Promise<string[]> {
    const base = `/v1/key/list/${listPattern(pattern)}`
    const names: string[] = []
    const seen = new Set<string>()
    let continueAt = ''
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const call = get(continueAt === '' ? base : `${base}?continue_at=${enc(continueAt)}`)
      const list = parseNameList(call, await this.#request(call))
      names.push(...list.names)
      // Stop on a repeated cursor too: a server that ignores it would loop forever.
      if (list.continueAt === '' || seen.has(list.continueAt)) break
      seen.add(list.continueAt)
      continueAt = list.continueAt
    }
    return [...new Set(names)].sort()
  }

  /**
   * Generates a data key under the named key (`POST /v1/key/generate/:name`):
   * `plaintext` to use, `ciphertext` to store. `context` must be given again to decrypt.
   * Rejects with KesError 404 `key does not exist`, 403, or a network error.
   */
  async generateKey(name: string, context?: Uint8Array): Promise<DataKey> {
    // KES before 2023 rejects an empty body, so an empty object goes out at least.
    const call = post(`/v1/key/generate/${enc(name)}`, context === undefined ? {} : { context: encodeBase64(context) })
    const raw = await this.#request(call)
    try {
      const body = jsonObject(call, raw)
      return { plaintext: bytesField(call, body, 'plaintext'), ciphertext: bytesField(call, body, 'ciphertext') }
    } finally {
      raw.fill(0)
    }
  }

  /**
   * Encrypts a small plaintext with the named key (`POST /v1/key/encrypt/:name`).
   * Rejects with KesError 404 `key does not exist`, 403, 413 for too much data, or a network error.
   */
  async encrypt(name: string, plaintext: Uint8Array, context?: Uint8Array): Promise<Buffer> {
    const fields: Record<string, string> = { plaintext: encodeBase64(plaintext) }
    if (context !== undefined) fields['context'] = encodeBase64(context)
    const call = post(`/v1/key/encrypt/${enc(name)}`, fields)
    try {
      return bytesField(call, jsonObject(call, await this.#request(call)), 'ciphertext')
    } finally {
      call.body?.fill(0)
    }
  }

  /**
   * Decrypts a ciphertext of the named key (`POST /v1/key/decrypt/:name`) with the context
   * it was sealed with. Rejects with KesError 400 `decryption failed: ciphertext is not authentic`,
   * 400 `invalid ciphertext`, 404 `key does not exist`, 403, or a network error.
   */
  async decrypt(name: string, ciphertext: Uint8Array, context?: Uint8Array): Promise<Buffer> {
    const fields: Record<string, string> = { ciphertext: encodeBase64(ciphertext) }
    if (context !== undefined) fields['context'] = encodeBase64(context)
    const call = post(`/v1/key/decrypt/${enc(name)}`, fields)
    const raw = await this.#request(call)
    try {
      const body = jsonObject(call, raw)
      // Some KES versions sent `null` for an empty plaintext.
      if (body['plaintext'] === null) return Buffer.alloc(0)
      return bytesField(call, body, 'plaintext')
    } finally {
      raw.fill(0)
    }
  }

  /**
   * Creates or replaces a policy (`POST /v1/policy/write/:name`). Rejects with
   * KesError 400 (bad name or glob, or a policy fixed in the server config), 403, or a network error.
   */
  async writePolicy(name: string, rules: PolicyRules): Promise<void> {
    await this.#request(post(`/v1/policy/write/${enc(name)}`, { allow: [...rules.allow], deny: [...rules.deny] }))
  }

  /**
   * Reads a policy (`GET /v1/policy/read/:name`); also understands the seed's `paths`
   * and the rule maps of current KES. Rejects with KesError 404 `policy does not exist`,
   * 403, or a network error.
   */
  async readPolicy(name: string): Promise<PolicyRules> {
    const call = get(`/v1/policy/read/${enc(name)}`)
    const body = jsonObject(call, await this.#request(call))
    const allow = body['allow'] ?? body['paths']
    return { allow: ruleList(call, allow, 'allow'), deny: ruleList(call, body['deny'], 'deny') }
  }

  /**
   * Lists policy names (`GET /v1/policy/list/:pattern`), sorted: a JSON array, as
   * OpenKES and KES 0.17 send it, or the nd-json and paged forms of later KES.
   * Rejects with KesError (403) or a network error.
   */
  async listPolicies(pattern?: string): Promise<string[]> {
    const call = get(`/v1/policy/list/${listPattern(pattern)}`)
    return [...new Set(parseNameList(call, await this.#request(call)).names)].sort()
  }

  /**
   * Deletes a policy and its assignments (`DELETE /v1/policy/delete/:name`). Rejects with
   * KesError 404 `policy does not exist`, 400 for a config policy, 403, or a network error;
   * retried like createKey.
   */
  async deletePolicy(name: string): Promise<void> {
    await this.#request({ method: 'DELETE', path: `/v1/policy/delete/${enc(name)}`, idempotent: false })
  }

  /**
   * Assigns a policy to an identity (`POST /v1/identity/assign/:policy/:identity`),
   * replacing its previous one. Rejects with KesError 404 `policy does not exist`,
   * 400 `identity is root`, 403 `identity cannot assign policy to itself`, 403, or a network error.
   */
  async assignIdentity(policy: string, identity: string): Promise<void> {
    await this.#request({ method: 'POST', path: `/v1/identity/assign/${enc(policy)}/${enc(identity)}`, idempotent: true })
  }

  /**
   * Lists identities and their policies (`GET /v1/identity/list/:pattern`): the JSON object
   * of OpenKES and KES 0.7, the nd-json `{"identity","policy"}` lines of KES 0.17 to 2023,
   * or the paged `{"identities"}` of later KES (policies unknown there: ''). Rejects with
   * KesError (403) or a network error.
   */
  async listIdentities(pattern?: string): Promise<Record<string, string>> {
    const call = get(`/v1/identity/list/${listPattern(pattern)}`)
    return parseIdentityList(call, await this.#request(call))
  }

  /**
   * Removes an identity's policy assignment (`DELETE /v1/identity/forget/:identity`).
   * Rejects with KesError 404 `identity does not exist`, 400 `identity is root`, 403, or a
   * network error; retried like createKey.
   */
  async forgetIdentity(identity: string): Promise<void> {
    await this.#request({ method: 'DELETE', path: `/v1/identity/forget/${enc(identity)}`, idempotent: false })
  }

  /** The Prometheus text exposition (`GET /v1/metrics`). Rejects with KesError (403) or a network error. */
  async metrics(): Promise<string> {
    return (await this.#request(get('/v1/metrics'))).toString('utf8')
  }

  /**
   * Subscribes to the audit log (`GET /v1/log/audit/trace`). Resolves once the server
   * answered 200; the stream then yields one event per completed request until the server
   * ends it or `close()` is called. Rejects with KesError (403) or a network error; the
   * iteration throws a network error if the connection breaks.
   */
  async auditLog(): Promise<LogStream<AuditEvent>> {
    return this.#openStream(get('/v1/log/audit/trace'), parseAuditEvent)
  }

  /**
   * Subscribes to the error log (`GET /v1/log/error/trace`), like auditLog.
   * Rejects with KesError (403) or a network error.
   */
  async errorLog(): Promise<LogStream<ErrorEvent>> {
    return this.#openStream(get('/v1/log/error/trace'), parseErrorEvent)
  }

  /**
   * Closes every connection and log stream. Pending calls reject with a `kes client: closed`
   * error (code `ERR_KES_CLIENT_CLOSED`), and so does every later call. Never rejects.
   */
  async close(): Promise<void> {
    if (!this.#closing.signal.aborted) this.#closing.abort(closedError())
    for (const stream of this.#streams) stream.close()
    const closed: Promise<void>[] = []
    for (const ep of this.#endpoints) {
      if (ep.h2 !== undefined) closed.push(destroySession(ep.h2.session))
      ep.h2 = undefined
      ep.agent?.destroy()
      ep.agent = undefined
    }
    await Promise.all(closed)
  }

  /** What JSON.stringify shows: the endpoints, never credentials. */
  toJSON(): { endpoints: string[] } {
    return { endpoints: this.#endpoints.map((ep) => ep.origin) }
  }

  /** What util.inspect and console.log show: the endpoints, never credentials. */
  [inspect.custom](): string {
    return `KesClient { endpoints: ${this.#endpoints.map((ep) => `'${ep.origin}'`).join(', ')} }`
  }

  /** Sends a call and reads the whole body of its 2xx answer. */
  async #request(call: Call): Promise<Buffer> {
    return this.#withFailover(call, async (opened, signal) => {
      const body = await readBody(opened, signal)
      if (opened.status < 200 || opened.status > 299) throw errorFromBody(opened.status, body)
      // KES 0.17 streamed lists and reported a failure after the fact in trailers.
      const trailers = opened.trailers()
      const trailerStatus = Number(headerValue(trailers['status']) ?? '200')
      if (Number.isInteger(trailerStatus) && trailerStatus >= 400) {
        throw new KesError(trailerStatus, headerValue(trailers['error']) ?? STATUS_CODES[trailerStatus] ?? 'error')
      }
      return body
    })
  }

  async #openStream<T>(call: Call, parse: (call: Call, value: unknown) => T): Promise<LogStream<T>> {
    const stream = await this.#withFailover(call, async (opened, signal) => {
      if (opened.status !== 200) throw errorFromBody(opened.status, await readBody(opened, signal))
      const s: NdjsonStream<T> = new NdjsonStream<T>(opened, (value) => parse(call, value), () => this.#streams.delete(s))
      this.#streams.add(s)
      return s
    })
    // close() may have run while the stream was opening; then it must not stay open.
    if (this.#closing.signal.aborted) {
      stream.close()
      throw closedError()
    }
    return stream
  }

  /**
   * Runs `finish` on the answer of the first endpoint that gives one. Endpoints
   * are tried healthy ones first, from a rotating start; a pass over all of them
   * is repeated up to maxRetries times after a backoff. 503 answers and network
   * errors go on to the next endpoint; any other answer, and a KesError thrown by
   * `finish`, is final. The per-attempt timeout covers everything until `finish`
   * returns.
   */
  async #withFailover<T>(call: Call, finish: (opened: Opened, signal: AbortSignal) => Promise<T>): Promise<T> {
    const closing = this.#closing.signal
    if (closing.aborted) throw closedError()
    const material = await this.#tlsMaterial()
    let lastError: unknown
    for (let pass = 0; pass <= this.#maxRetries; pass++) {
      if (pass > 0) await sleep(backoffMs(pass), closing)
      for (const ep of this.#order()) {
        if (closing.aborted) throw closedError()
        const deadline = new Deadline(this.#timeoutMs, closing, call)
        const progress: Progress = { sent: false, reused: false }
        try {
          const result = await this.#attempt(ep, call, material, deadline.signal, progress, finish)
          ep.unhealthyUntil = 0
          return result
        } catch (err) {
          if (closing.aborted) throw closedError()
          if (err instanceof InvalidResponseError) throw err
          if (err instanceof KesError) {
            // The server answered, so the endpoint is fine; a 503 is worth asking another.
            ep.unhealthyUntil = 0
            if (err.status !== 503 || !call.idempotent) throw err
            lastError = err
            continue
          }
          ep.unhealthyUntil = Date.now() + UNHEALTHY_MS
          lastError = err
          if (progress.sent && !call.idempotent) throw err
        } finally {
          deadline.clear()
        }
      }
    }
    throw lastError
  }

  /**
   * One endpoint's try. A failure on a connection that sat idle in the pool is
   * most often a connection the server has just closed, not a broken server: it
   * gets one more try on a fresh connection before the endpoint counts as failed.
   */
  async #attempt<T>(
    ep: Endpoint,
    call: Call,
    material: TlsMaterial,
    signal: AbortSignal,
    progress: Progress,
    finish: (opened: Opened, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    try {
      return await finish(await this.#open(ep, call, material, signal, progress), signal)
    } catch (err) {
      const stale = progress.reused && !(err instanceof KesError) && !(err instanceof InvalidResponseError)
      if (!stale || signal.aborted || (progress.sent && !call.idempotent)) throw err
      progress.sent = false
      progress.reused = false
      return finish(await this.#open(ep, call, material, signal, progress, true), signal)
    }
  }

  async #open(ep: Endpoint, call: Call, material: TlsMaterial, signal: AbortSignal, progress: Progress, fresh = false): Promise<Opened> {
    if (!this.#http1 && ep.protocol !== 'http1') {
      if (fresh && ep.h2 !== undefined) {
        ep.h2.session.close()
        ep.h2 = undefined
      }
      const connection = await this.#h2Connection(ep, material, signal, progress)
      if (connection !== undefined) return openH2(connection, call, signal, progress)
    }
    return openH1(this.#agent(ep, material), ep, call, signal, progress)
  }

  /** The endpoint's HTTP/2 session, connecting if needed; undefined when the server has no h2. */
  async #h2Connection(ep: Endpoint, material: TlsMaterial, signal: AbortSignal, progress: Progress): Promise<H2Connection | undefined> {
    const current = ep.h2
    if (current !== undefined && !current.session.closed && !current.session.destroyed) {
      progress.reused = current.active === 0
      return current
    }
    ep.h2 = undefined
    // Concurrent calls share one connection attempt; each waits only as long as its own deadline.
    ep.h2Connecting ??= connectH2(ep, material, this.#timeoutMs, this.#closing.signal).finally(() => {
      ep.h2Connecting = undefined
    })
    return raceSignal(ep.h2Connecting, signal)
  }

  #agent(ep: Endpoint, material: TlsMaterial): https.Agent {
    ep.agent ??= new https.Agent({
      keepAlive: true,
      // For sockets in the pool only; Node's agent never times out a socket in use.
      timeout: IDLE_CONNECTION_MS,
      ...tlsOptions(material),
      servername: ep.servername,
      ALPNProtocols: ['http/1.1'],
    })
    return ep.agent
  }

  /** Healthy endpoints from a rotating start, then the unhealthy ones, longest-failed first. */
  #order(): Endpoint[] {
    const n = this.#endpoints.length
    const start = this.#cursor
    this.#cursor = (this.#cursor + 1) % n
    const rotated = [...this.#endpoints.slice(start), ...this.#endpoints.slice(0, start)]
    const now = Date.now()
    const healthy = rotated.filter((ep) => ep.unhealthyUntil <= now)
    const unhealthy = rotated.filter((ep) => ep.unhealthyUntil > now).sort((a, b) => a.unhealthyUntil - b.unhealthyUntil)
    return [...healthy, ...unhealthy]
  }

  /** The TLS material, read from files on first use; a failed read is tried again by the next call. */
  #tlsMaterial(): Promise<TlsMaterial> {
    this.#tls ??= loadTlsMaterial(this.#credentials).catch((err: unknown) => {
      this.#tls = undefined
      throw err
    })
    return this.#tls
  }
}

function parseEndpoint(endpoint: string): Endpoint {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new TypeError(`kes client: endpoint '${endpoint}' is not a URL`)
  }
  if (url.protocol !== 'https:') throw new TypeError(`kes client: endpoint '${endpoint}' is not https`)
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`kes client: endpoint '${endpoint}' must be https://host[:port]`)
  }
  // URL keeps the brackets of an IPv6 literal; sockets want the bare address.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return {
    origin: url.origin,
    host,
    port: url.port === '' ? 443 : Number(url.port),
    servername: isIP(host) === 0 ? host : undefined,
    protocol: 'unknown',
    unhealthyUntil: 0,
    h2: undefined,
    h2Connecting: undefined,
    agent: undefined,
  }
}

/**
 * Reads the credential files and builds the TLS context. A bad PEM or a wrong key
 * password fails here, once, instead of on every connection attempt.
 */
async function loadTlsMaterial(c: Credentials): Promise<TlsMaterial> {
  const [cert, key, ca] = await Promise.all([
    c.certFile === undefined ? c.cert : readFile(c.certFile),
    c.keyFile === undefined ? c.key : readFile(c.keyFile),
    c.caFile === undefined ? c.ca : readFile(c.caFile),
  ])
  const options: tls.SecureContextOptions = { minVersion: 'TLSv1.2' }
  if (cert !== undefined) options.cert = cert
  if (key !== undefined) options.key = key
  if (c.keyPassword !== undefined) options.passphrase = c.keyPassword
  // Without a CA, Node verifies against its built-in roots.
  if (ca !== undefined) options.ca = ca
  try {
    return { secureContext: tls.createSecureContext(options), rejectUnauthorized: !c.insecure }
  } finally {
    if (Buffer.isBuffer(key) && c.keyFile !== undefined) key.fill(0)
  }
}

function tlsOptions(m: TlsMaterial): tls.ConnectionOptions {
  return { secureContext: m.secureContext, rejectUnauthorized: m.rejectUnauthorized }
}

/**
 * Connects over TLS offering h2 and http/1.1. With h2 it returns a session on
 * that socket; without (a KES that has no HTTP/2) it marks the endpoint HTTP/1.1
 * and returns undefined. Every failure here happens before a request exists.
 */
function connectH2(ep: Endpoint, material: TlsMaterial, timeoutMs: number, closing: AbortSignal): Promise<H2Connection | undefined> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      ...tlsOptions(material),
      host: ep.host,
      port: ep.port,
      servername: ep.servername,
      ALPNProtocols: ['h2', 'http/1.1'],
    })
    const fail = (err: unknown): void => {
      cleanup()
      socket.destroy()
      reject(err)
    }
    const onAbort = (): void => fail(closing.reason)
    const timer = setTimeout(() => fail(clientError(`connecting to '${ep.origin}' timed out after ${timeoutMs} ms`, 'ETIMEDOUT')), timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      closing.removeEventListener('abort', onAbort)
      socket.off('error', fail)
      socket.off('secureConnect', onSecure)
    }
    const onSecure = (): void => {
      cleanup()
      if (socket.alpnProtocol !== 'h2') {
        socket.destroy()
        ep.protocol = 'http1'
        resolve(undefined)
        return
      }
      ep.protocol = 'h2'
      const session = http2.connect(ep.origin, { createConnection: () => socket })
      const connection: H2Connection = { session, active: 0 }
      const forget = (): void => {
        if (ep.h2 === connection) ep.h2 = undefined
      }
      // A broken session fails its streams, which report it; the session is just dropped.
      session.on('error', forget)
      session.once('close', forget)
      session.once('goaway', forget)
      session.setTimeout(IDLE_CONNECTION_MS, () => session.close())
      // An idle session must not keep the process alive; open streams ref it.
      session.unref()
      ep.h2 = connection
      resolve(connection)
    }
    if (closing.aborted) {
      fail(closing.reason)
      return
    }
    closing.addEventListener('abort', onAbort, { once: true })
    socket.once('secureConnect', onSecure)
    socket.once('error', fail)
  })
}

const H2_NOT_PROCESSED = new Set(['ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_INVALID_SESSION'])

function openH2(connection: H2Connection, call: Call, signal: AbortSignal, progress: Progress): Promise<Opened> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const { session } = connection
    const headers: http2.OutgoingHttpHeaders = { ':method': call.method, ':path': call.path }
    if (call.body !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = call.body.length
    }
    let stream: ClientHttp2Stream
    try {
      stream = session.request(headers, { endStream: call.body === undefined })
    } catch (err) {
      // The session went away under us; nothing was sent.
      reject(err)
      return
    }
    progress.sent = true
    connection.active++
    session.ref()
    let trailers: Headers = {}
    stream.on('trailers', (t) => {
      trailers = t
    })
    stream.once('close', () => {
      connection.active--
      if (connection.active === 0 && !session.destroyed) session.unref()
    })
    const onAbort = (): void => {
      stream.close(http2.constants.NGHTTP2_CANCEL)
      fail(signal.reason)
    }
    const fail = (err: unknown): void => {
      cleanup()
      // A refused stream, or one beyond the server's GOAWAY, was never processed.
      if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || H2_NOT_PROCESSED.has(errorCode(err))) progress.sent = false
      reject(err)
    }
    const onClose = (): void => fail(clientError(`stream closed before a response (code ${stream.rstCode ?? 'unknown'})`, 'ECONNRESET'))
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort)
      stream.off('error', fail)
      stream.off('close', onClose)
      stream.off('response', onResponse)
    }
    const onResponse = (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void => {
      cleanup()
      // Whoever reads the body sees a later error through `destroyed`/`errored`; until then it must not crash us.
      stream.on('error', () => {})
      resolve({
        status: Number(h[':status']),
        headers: h,
        body: stream,
        trailers: () => trailers,
        cancel: () => {
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL)
        },
      })
    }
    signal.addEventListener('abort', onAbort, { once: true })
    stream.once('response', onResponse)
    stream.once('error', fail)
    stream.once('close', onClose)
    if (call.body !== undefined) stream.end(call.body)
  })
}

function openH1(agent: https.Agent, ep: Endpoint, call: Call, signal: AbortSignal, progress: Progress): Promise<Opened> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const headers: Record<string, string> = {}
    if (call.body !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(call.body.length)
    } else if (call.method !== 'GET') {
      headers['content-length'] = '0'
    }
    const req = https.request({ agent, host: ep.host, port: ep.port, servername: ep.servername, method: call.method, path: call.path, headers })
    req.once('socket', (socket) => {
      if (req.reusedSocket) {
        progress.sent = true
        progress.reused = true
      } else {
        // Until the handshake is done the request cannot have left.
        socket.once('secureConnect', () => {
          progress.sent = true
        })
      }
    })
    const onAbort = (): void => {
      req.destroy(signal.reason instanceof Error ? signal.reason : closedError())
    }
    const onError = (err: unknown): void => {
      signal.removeEventListener('abort', onAbort)
      reject(err)
    }
    req.once('error', onError)
    req.once('response', (res) => {
      signal.removeEventListener('abort', onAbort)
      req.off('error', onError)
      // A later error on the request surfaces on the response body instead.
      req.on('error', (err) => res.destroy(err))
      // Whoever reads the body sees a later error through `destroyed`/`errored`; until then it must not crash us.
      res.on('error', () => {})
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: res,
        trailers: () => res.trailers,
        cancel: () => {
          req.destroy()
        },
      })
    })
    signal.addEventListener('abort', onAbort, { once: true })
    req.end(call.body)
  })
}

/** Reads a whole body, at most MAX_RESPONSE_BYTES, failing when `signal` aborts or the connection breaks. */
function readBody(opened: Opened, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const body = opened.body
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort)
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      body.off('close', onClose)
    }
    const onError = (err: unknown): void => {
      cleanup()
      opened.cancel()
      reject(err)
    }
    const onAbort = (): void => onError(signal.reason)
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > MAX_RESPONSE_BYTES) onError(clientError(`response larger than ${MAX_RESPONSE_BYTES} bytes`, 'ERR_KES_RESPONSE_TOO_LARGE'))
      else chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(Buffer.concat(chunks))
    }
    const onClose = (): void => onError(clientError('connection closed before the response ended', 'ECONNRESET'))
    if (signal.aborted) {
      onAbort()
      return
    }
    // The body may have failed between the response and now.
    if (body.destroyed) {
      onError(body.errored ?? clientError('connection closed before the response ended', 'ECONNRESET'))
      return
    }
    signal.addEventListener('abort', onAbort, { once: true })
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onError)
    body.once('close', onClose)
  })
}

/** The KesError for a non-2xx answer: the server's `{"message"}`, else its text, else the status text. */
function errorFromBody(status: number, body: Buffer): KesError {
  const text = body.toString('utf8')
  try {
    const value: unknown = JSON.parse(text)
    if (isRecord(value) && typeof value['message'] === 'string') return new KesError(status, value['message'])
  } catch {
    // not JSON: the text itself is the best message there is
  }
  const trimmed = text.trim()
  return new KesError(status, trimmed !== '' ? trimmed.slice(0, 1_000) : (STATUS_CODES[status] ?? `status ${status}`))
}

/** A per-attempt timer whose signal also aborts when the client closes. */
class Deadline {
  readonly #controller = new AbortController()
  readonly #timer: NodeJS.Timeout
  readonly #parent: AbortSignal
  readonly #onParentAbort: () => void

  constructor(timeoutMs: number, parent: AbortSignal, call: Call) {
    this.#parent = parent
    this.#timer = setTimeout(() => {
      this.#controller.abort(clientError(`${call.method} ${call.path} timed out after ${timeoutMs} ms`, 'ETIMEDOUT'))
    }, timeoutMs)
    this.#onParentAbort = () => this.#controller.abort(parent.reason)
    parent.addEventListener('abort', this.#onParentAbort, { once: true })
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  clear(): void {
    clearTimeout(this.#timer)
    this.#parent.removeEventListener('abort', this.#onParentAbort)
  }
}

/**
 * A log stream: nd-json events from an open response, parsed line by line
 * (a line may arrive split over chunks). The connection is paused while too
 * many events wait for the reader.
 */
class NdjsonStream<T> implements LogStream<T> {
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

function parseAuditEvent(call: Call, value: unknown): AuditEvent {
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

function parseErrorEvent(call: Call, value: unknown): ErrorEvent {
  if (!isRecord(value) || typeof value['message'] !== 'string') throw new InvalidResponseError(call, 'error event lacks a message')
  return { message: value['message'] }
}

/**
 * The JSON documents of a body: the whole body when it is one JSON value
 * (possibly pretty-printed), otherwise one per non-empty nd-json line.
 */
function jsonDocuments(call: Call, body: Buffer): unknown[] {
  const text = body.toString('utf8')
  if (text.trim() === '') return []
  try {
    return [JSON.parse(text)]
  } catch {
    // nd-json with more than one line
  }
  const docs: unknown[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    try {
      docs.push(JSON.parse(line))
    } catch {
      throw new InvalidResponseError(call, 'body is neither JSON nor nd-json')
    }
  }
  return docs
}

/** The names of a key or policy list, in every form KES servers sent, and the next page's cursor. */
function parseNameList(call: Call, body: Buffer): { names: string[]; continueAt: string } {
  const names: string[] = []
  let continueAt = ''
  for (const doc of jsonDocuments(call, body)) {
    if (Array.isArray(doc)) {
      names.push(...doc.map((n: unknown) => nameOf(call, n)))
    } else if (isRecord(doc) && Array.isArray(doc['names'])) {
      names.push(...doc['names'].map((n: unknown) => nameOf(call, n)))
      if (typeof doc['continue_at'] === 'string') continueAt = doc['continue_at']
    } else if (isRecord(doc)) {
      names.push(nameOf(call, doc['name'] ?? doc['Name']))
    } else {
      throw new InvalidResponseError(call, 'list entry is not a name')
    }
  }
  return { names, continueAt }
}

function nameOf(call: Call, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidResponseError(call, 'list entry is not a name')
  return value
}

function parseIdentityList(call: Call, body: Buffer): Record<string, string> {
  const pairs: [string, string][] = []
  for (const doc of jsonDocuments(call, body)) {
    if (!isRecord(doc)) throw new InvalidResponseError(call, 'identity list entry is not an object')
    if (typeof doc['identity'] === 'string') {
      const policy = doc['policy']
      pairs.push([doc['identity'], typeof policy === 'string' ? policy : ''])
    } else if (Array.isArray(doc['identities'])) {
      for (const id of doc['identities']) pairs.push([nameOf(call, id), ''])
    } else {
      for (const [identity, policy] of Object.entries(doc)) {
        if (typeof policy !== 'string') throw new InvalidResponseError(call, 'identity list maps an identity to a non-string')
        pairs.push([identity, policy])
      }
    }
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const out: Record<string, string> = {}
  // defineProperty, not assignment: an identity named `__proto__` stays a plain entry.
  for (const [identity, policy] of pairs) Object.defineProperty(out, identity, { value: policy, enumerable: true, writable: true, configurable: true })
  return out
}

/** A policy's allow or deny rules: a list (seed, OpenKES), a map of rule objects (current KES), or absent. */
function ruleList(call: Call, value: unknown, what: string): string[] {
  if (value === undefined || value === null) return []
  if (Array.isArray(value)) return value.map((r: unknown) => {
    if (typeof r !== 'string') throw new InvalidResponseError(call, `${what} rule is not a string`)
    return r
  })
  if (isRecord(value)) return Object.keys(value)
  throw new InvalidResponseError(call, `${what} rules are not a list`)
}

function jsonObject(call: Call, body: Buffer): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    throw new InvalidResponseError(call, 'body is not JSON')
  }
  if (!isRecord(value)) throw new InvalidResponseError(call, 'body is not a JSON object')
  return value
}

function stringField(call: Call, body: Record<string, unknown>, field: string): string {
  const value = body[field]
  if (typeof value !== 'string') throw new InvalidResponseError(call, `'${field}' is not a string`)
  return value
}

function bytesField(call: Call, body: Record<string, unknown>, field: string): Buffer {
  const bytes = decodeBase64Strict(stringField(call, body, field))
  if (bytes === undefined) throw new InvalidResponseError(call, `'${field}' is not base64`)
  return bytes
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function errorCode(err: unknown): string {
  return isRecord(err) && typeof err['code'] === 'string' ? err['code'] : ''
}

function enc(name: string): string {
  return encodeURIComponent(name)
}

// '*' means "all" to every KES generation; an empty last segment does not (KES 0.17 read it as the pattern 'list').
function listPattern(pattern: string | undefined): string {
  return pattern === undefined || pattern === '' ? '*' : enc(pattern)
}

function get(path: string): Call {
  return { method: 'GET', path, idempotent: true }
}

function post(path: string, fields: Record<string, unknown>): Call {
  return { method: 'POST', path, body: Buffer.from(JSON.stringify(fields)), idempotent: true }
}

function backoffMs(pass: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (pass - 1))
  // Jitter keeps clients that failed together from retrying in lockstep.
  return ceiling / 2 + Math.random() * (ceiling / 2)
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(closedError())
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(closedError())
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

function destroySession(session: ClientHttp2Session): Promise<void> {
  if (session.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    session.once('close', () => resolve())
    session.destroy()
  })
}
