// The TypeScript client of the KES API (api.ts has the public types). It
// speaks HTTP/2 over mutual TLS, falls back to HTTP/1.1 for servers without
// h2, and fails over between endpoints the way MinIO's KES client does.
// This module holds the API methods, retries, backoff and failover; the
// connections are transport.ts's, body parsing responses.ts's, and log
// streams log-stream.ts's.
import { Buffer } from 'node:buffer'
import { setMaxListeners } from 'node:events'
import { inspect } from 'node:util'
import { KesError } from '../api/errors.js'
import { encodeBase64 } from '../crypto/base64.js'
import type {
  ApiRoute,
  AuditEvent,
  DataKey,
  ErrorEvent,
  IdentityDescription,
  KesApi,
  KesClientOptions,
  KeyDescription,
  LogStream,
  MetricsView,
  PolicyDescription,
  PolicyRules,
  SelfDescription,
  ServerStatus,
} from './api.js'
import { InvalidResponseError, closedError } from './call.js'
import type { Call } from './call.js'
import { NdjsonStream, parseAuditEvent, parseErrorEvent } from './log-stream.js'
import {
  bytesField,
  errorFromBody,
  jsonObject,
  parseApiList,
  parseDeletedList,
  parseIdentityDescription,
  parseIdentityList,
  parseKeyDescription,
  parseKeyVersions,
  parseNameList,
  parsePolicyDescription,
  parseSelfDescription,
  parseServerStatus,
  ruleList,
  stringField,
} from './responses.js'
import type { DeletedKeyInfo, KeyVersionInfo } from './responses.js'
import { loadTlsMaterial } from './tls-material.js'
import type { Credentials, TlsMaterial } from './tls-material.js'
import { Deadline, closeEndpoint, openRequest, parseEndpoint, readBody } from './transport.js'
import type { Endpoint, Opened, Progress, TransportSettings } from './transport.js'

const DEFAULT_TIMEOUT_MS = 15_000
const DEFAULT_MAX_RETRIES = 2
// Backoff between passes over the endpoints: exponential from 50 ms, capped at 1 s, jittered.
const BACKOFF_BASE_MS = 50
const BACKOFF_CAP_MS = 1_000
// An endpoint that failed with a network error goes to the back of the line for this long.
const UNHEALTHY_MS = 5_000
// What servers answer for a path they do not have: 404 (KES, OpenKES), 405 (a path
// prefix they know with another method) or 501 (KES 0.x for unknown APIs).
const UNKNOWN_PATH_STATUSES: ReadonlySet<number> = new Set([404, 405, 501])
// At most this many pages of a paginated key list (KES 2023-10-24 and later).
const MAX_LIST_PAGES = 10_000

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
  readonly #transport: TransportSettings
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
    this.#transport = { http1: options.http1 === true, timeoutMs, closing: this.#closing.signal }
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
   * The server's status (`GET /v1/status`, KES 2023 and later): version, platform, uptime,
   * CPUs, memory and key-store latency; an unreachable key store is reported in the answer
   * (`keystore_unreachable`), not as an error. Rejects with KesError (403; 404 or 501 from
   * older servers) or a network error.
   */
  async status(): Promise<ServerStatus> {
    const call = get('/v1/status')
    return parseServerStatus(call, await this.#request(call))
  }

  /**
   * Resolves when a server's key store is reachable (`GET /v1/ready` answers 200). Rejects
   * with KesError 503 `key store is unavailable` (after asking every endpoint, as for any
   * 503), 403, or a network error.
   */
  async ready(): Promise<void> {
    await this.#request(get('/v1/ready'))
  }

  /** The server's route table (`GET /v1/api`). Rejects with KesError (403; 404 from older servers) or a network error. */
  async apis(): Promise<ApiRoute[]> {
    const call = get('/v1/api')
    return parseApiList(call, await this.#request(call))
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
   * What the server knows of a key (`GET /v1/key/describe/:name`): name, id, algorithm and,
   * where known, creation time and creator. Rejects with KesError 404 `key does not exist`,
   * 403, or a network error.
   */
  async describeKey(name: string): Promise<KeyDescription> {
    const call = get(`/v1/key/describe/${enc(name)}`)
    return parseKeyDescription(call, await this.#request(call))
  }

  /**
   * HMAC-SHA256 of `message` under the named key (`PUT /v1/key/hmac/:name`, as kes-go sends
   * it): the same key and message always give the same MAC. Rejects with KesError 404
   * `key does not exist`, 403, or a network error.
   */
  async hmac(name: string, message: Uint8Array): Promise<Buffer> {
    const call: Call = { ...post(`/v1/key/hmac/${enc(name)}`, { message: encodeBase64(message) }), method: 'PUT' }
    try {
      return bytesField(call, jsonObject(call, await this.#request(call)), 'hmac')
    } finally {
      call.body?.fill(0)
    }
  }

  /**
   * Deletes a key (`DELETE /v1/key/delete/:name`). OpenKES and KES up to 0.17 answer
   * 200 for a missing key too; KES 2023 and later reject with KesError 404 `key does not
   * exist` (so it is retried like createKey). Rejects with 403, or a network error.
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
   * Adds a new version to a key (`POST /v1/key/rotate/:name`, OpenKES); resolves the new
   * version's key id. Rejects with KesError 404 `key does not exist`, 403, or a network error.
   */
  async rotateKey(name: string): Promise<string> {
    const call: Call = { method: 'POST', path: `/v1/key/rotate/${enc(name)}`, idempotent: false }
    return stringField(call, jsonObject(call, await this.#request(call)), 'id')
  }

  /**
   * Re-seals a ciphertext under the key's newest version (`POST /v1/key/rewrap/:name`,
   * OpenKES), with the same context. Rejects like decrypt.
   */
  async rewrap(name: string, ciphertext: Uint8Array, context?: Uint8Array): Promise<Buffer> {
    const fields: Record<string, string> = { ciphertext: encodeBase64(ciphertext) }
    if (context !== undefined) fields['context'] = encodeBase64(context)
    const call = post(`/v1/key/rewrap/${enc(name)}`, fields)
    return bytesField(call, jsonObject(call, await this.#request(call)), 'ciphertext')
  }

  /**
   * The versions of a key, oldest first (`GET /v1/key/describe/:name`): a key never rotated,
   * or one on a KES server, is its only version. Rejects with KesError 404, 403, or a network error.
   */
  async keyVersions(name: string): Promise<KeyVersionInfo[]> {
    const call = get(`/v1/key/describe/${enc(name)}`)
    return parseKeyVersions(call, jsonObject(call, await this.#request(call)))
  }

  /** Kept deletions of keys matching a pattern (`GET /v1/key/deleted/:pattern`, OpenKES). */
  async listDeletedKeys(pattern?: string): Promise<DeletedKeyInfo[]> {
    const call = get(`/v1/key/deleted/${listPattern(pattern)}`)
    return parseDeletedList(call, await this.#request(call))
  }

  /** Restores the most recent deletion of a key (`POST /v1/key/restore/:name`, OpenKES): 404 none kept, 409 name taken. */
  async restoreKey(name: string): Promise<void> {
    await this.#request({ method: 'POST', path: `/v1/key/restore/${enc(name)}`, idempotent: false })
  }

  /** Destroys every kept deletion of a key now (`POST /v1/key/purge/:name`, OpenKES): 404 none kept. */
  async purgeKey(name: string): Promise<void> {
    await this.#request({ method: 'POST', path: `/v1/key/purge/${enc(name)}`, idempotent: false })
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
   * A policy's name and, where known, creation time and creator (`GET /v1/policy/describe/:name`).
   * Rejects with KesError 404 `policy does not exist`, 403, or a network error.
   */
  async describePolicy(name: string): Promise<PolicyDescription> {
    const call = get(`/v1/policy/describe/${enc(name)}`)
    return parsePolicyDescription(call, await this.#request(call))
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

  /**
   * An identity's policy, whether it is the admin, and where known when and by whom it was
   * assigned (`GET /v1/identity/describe/:identity`). Rejects with KesError 404
   * `identity does not exist` (also for one without a policy), 403, or a network error.
   */
  async describeIdentity(identity: string): Promise<IdentityDescription> {
    const call = get(`/v1/identity/describe/${enc(identity)}`)
    return parseIdentityDescription(call, await this.#request(call))
  }

  /**
   * Who the caller is (`GET /v1/identity/self/describe`, open to every identity with a
   * certificate): its identity, whether it is the admin, its policy and that policy's rules.
   * Rejects with KesError (404 or 501 from older servers) or a network error.
   */
  async describeSelf(): Promise<SelfDescription> {
    const call = get('/v1/identity/self/describe')
    return parseSelfDescription(call, await this.#request(call))
  }

  /**
   * The Prometheus text exposition (`GET /v1/metrics`). `kes` (the default) asks as KES
   * clients do, without Accept: OpenKES then answers the KES families (`kes_http_*`,
   * `kes_log_*`, `kes_system_*`), each as one series. `prometheus` asks as Prometheus
   * does and gets every family with its labels. Rejects with KesError (403) or a network error.
   */
  async metrics(view: MetricsView = 'kes'): Promise<string> {
    const call: Call = view === 'prometheus' ? { ...get('/v1/metrics'), accept: PROMETHEUS_ACCEPT } : get('/v1/metrics')
    return (await this.#request(call)).toString('utf8')
  }

  /**
   * Subscribes to the audit log (`GET /v1/log/audit`; on a server that does not know that
   * path, i.e. answers 404, 405 or 501, the older `GET /v1/log/audit/trace`). Resolves once
   * the server answered 200; the stream then yields one event per completed request until
   * the server ends it or `close()` is called. Rejects with KesError (403) or a network
   * error; the iteration throws a network error if the connection breaks.
   */
  async auditLog(): Promise<LogStream<AuditEvent>> {
    return this.#openStreamOf('/v1/log/audit', '/v1/log/audit/trace', parseAuditEvent)
  }

  /**
   * Subscribes to the error log (`GET /v1/log/error`, or `/v1/log/error/trace` on older
   * servers), like auditLog. Rejects with KesError (403) or a network error.
   */
  async errorLog(): Promise<LogStream<ErrorEvent>> {
    return this.#openStreamOf('/v1/log/error', '/v1/log/error/trace', parseErrorEvent)
  }

  /**
   * Closes every connection and log stream. Pending calls reject with a `kes client: closed`
   * error (code `ERR_KES_CLIENT_CLOSED`), and so does every later call. Never rejects.
   */
  async close(): Promise<void> {
    if (!this.#closing.signal.aborted) this.#closing.abort(closedError())
    for (const stream of this.#streams) stream.close()
    await Promise.all(this.#endpoints.map(closeEndpoint))
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
      // Listings (OpenKES, KES 0.17) report a failure after the headers in the
      // trailers: `Status` and `Error` (`{"message":...}`, or plain text).
      const trailers = opened.trailers()
      const trailerStatus = Number(headerValue(trailers['status']) ?? '200')
      if (Number.isInteger(trailerStatus) && trailerStatus >= 400) {
        throw errorFromBody(trailerStatus, Buffer.from(headerValue(trailers['error']) ?? ''))
      }
      return body
    })
  }

  // KES 2023 renamed the streams; servers before it answer the new name as an unknown path.
  async #openStreamOf<T>(path: string, olderPath: string, parse: (call: Call, value: unknown) => T): Promise<LogStream<T>> {
    try {
      return await this.#openStream(get(path), parse)
    } catch (err) {
      if (err instanceof KesError && UNKNOWN_PATH_STATUSES.has(err.status)) return this.#openStream(get(olderPath), parse)
      throw err
    }
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
      return await finish(await openRequest(ep, call, material, this.#transport, signal, progress), signal)
    } catch (err) {
      const stale = progress.reused && !(err instanceof KesError) && !(err instanceof InvalidResponseError)
      if (!stale || signal.aborted || (progress.sent && !call.idempotent)) throw err
      progress.sent = false
      progress.reused = false
      return finish(await openRequest(ep, call, material, this.#transport, signal, progress, true), signal)
    }
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

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function enc(name: string): string {
  return encodeURIComponent(name)
}

// '*' means "all" to every KES generation; an empty last segment does not (KES 0.17 read it as the pattern 'list').
function listPattern(pattern: string | undefined): string {
  return pattern === undefined || pattern === '' ? '*' : enc(pattern)
}

// What Prometheus sends when it scrapes (it always names its exposition formats).
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

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
