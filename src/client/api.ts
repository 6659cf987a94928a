import type { ApiDescription, StatusResponse } from '../api/wire.js'
import type { DeletedKeyInfo, KeyVersionInfo } from './responses.js'
// The client library's public types. The implementation is kes-client.ts;
// the CLI and tests program against these.

/** How a client finds and authenticates to servers. */
export interface KesClientOptions {
  /** One or more server URLs (`https://host:port`); requests fail over between them. */
  readonly endpoints: readonly string[]
  /** Client certificate and key: PEM text/bytes, or file paths (`certFile`/`keyFile`). */
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
  readonly certFile?: string
  readonly keyFile?: string
  /** Password of an encrypted private key. */
  readonly keyPassword?: string
  /** CA certificate(s) to verify the server with: PEM text/bytes, or a file path (`caFile`). */
  readonly ca?: string | Buffer
  readonly caFile?: string
  /** Skip server certificate verification (like curl -k). Off unless asked for. */
  readonly insecure?: boolean
  /** Use HTTP/1.1 only (default: HTTP/2, falling back to HTTP/1.1 when the server has no h2). */
  readonly http1?: boolean
  /** Per-request timeout (default 15 s); streams are not subject to it. */
  readonly timeoutMs?: number
  /** Retries of a request after network errors and 503 answers (default 2 retries per endpoint pass). */
  readonly maxRetries?: number
}

/** A generated data key: use `plaintext`, store `ciphertext`. */
export interface DataKey {
  readonly plaintext: Buffer
  readonly ciphertext: Buffer
}

/** A policy: API path globs; deny rules win. */
export interface PolicyRules {
  readonly allow: readonly string[]
  readonly deny: readonly string[]
}

/**
 * How to ask for metrics: `kes` as KES clients (no Accept; OpenKES answers its KES families, one
 * series each), `prometheus` as Prometheus (every family, with labels).
 */
export type MetricsView = 'kes' | 'prometheus'

/**
 * A server's status (`GET /v1/status`, KES 2023 and later), fields in their wire spelling: the
 * type the server answers with. With the key store unreachable, `keystore_latency` is absent and
 * `keystore_unreachable` is true.
 */
export type ServerStatus = StatusResponse

/** One entry of a server's route table (`GET /v1/api`), the type the server answers with. */
export type ApiRoute = ApiDescription

/** What a server tells about a key (`GET /v1/key/describe/:name`). */
export interface KeyDescription {
  readonly name: string
  /** The key id ciphertexts carry. */
  readonly id: string
  /** `AES256`, `ChaCha20` (or what a server sends; '' when it sends none). */
  readonly algorithm: string
  /** RFC 3339 time and creator identity, when the server knows them. */
  readonly created_at?: string
  readonly created_by?: string
}

/** What a server tells about a policy (`GET /v1/policy/describe/:name`). */
export interface PolicyDescription {
  readonly name: string
  readonly created_at?: string
  readonly created_by?: string
}

/** What a server tells about an identity (`GET /v1/identity/describe/:identity`). */
export interface IdentityDescription {
  /** Whether it is the admin identity (which has no policy: ''). */
  readonly admin: boolean
  readonly policy: string
  readonly created_at?: string
  readonly created_by?: string
}

/** Who the calling identity is (`GET /v1/identity/self/describe`). */
export interface SelfDescription {
  readonly identity: string
  readonly admin: boolean
  /** '' for the admin and for an identity without a policy. */
  readonly policy: string
  /** The policy's rules (empty when there is none). */
  readonly allow: readonly string[]
  readonly deny: readonly string[]
  readonly created_at?: string
  readonly created_by?: string
}

/** One audit event (`GET /v1/log/audit`, or `/v1/log/audit/trace` on older servers). */
export interface AuditEvent {
  readonly time: string
  readonly request: { readonly path: string; readonly identity: string; readonly method?: string; readonly ip?: string }
  readonly response: { readonly code: number; readonly time: number; readonly error?: string }
}

/** One error-log event (`GET /v1/log/error`, or `/v1/log/error/trace` on older servers). */
export interface ErrorEvent {
  readonly message: string
}

/** A live log stream: iterate it; `close()` ends it. */
export interface LogStream<T> extends AsyncIterable<T> {
  close(): void
}

/**
 * Every endpoint of an OpenKES/KES server. Every method rejects with a
 * KesError (status and the server's message) for an API error, or with a
 * network error once every endpoint and retry has failed.
 */
export interface KesApi {
  version(): Promise<string>
  /** The server's status (KES 2023+); an older server answers 404 or 501. */
  status(): Promise<ServerStatus>
  /** Resolves when a server's key store is reachable; rejects with KesError 503 `key store is unavailable` otherwise. */
  ready(): Promise<void>
  /** The server's route table (KES 2023+). */
  apis(): Promise<ApiRoute[]>
  createKey(name: string): Promise<void>
  importKey(name: string, key: Uint8Array, cipher?: 'AES256' | 'ChaCha20'): Promise<void>
  deleteKey(name: string): Promise<void>
  describeKey(name: string): Promise<KeyDescription>
  /** HMAC-SHA256 of `message` under the named key's HMAC key: the same key and message give the same MAC. */
  hmac(name: string, message: Uint8Array): Promise<Buffer>
  /** Key names matching a pattern (empty or `*`: all; a glob; otherwise a prefix), sorted. */
  listKeys(pattern?: string): Promise<string[]>
  generateKey(name: string, context?: Uint8Array): Promise<DataKey>
  encrypt(name: string, plaintext: Uint8Array, context?: Uint8Array): Promise<Buffer>
  decrypt(name: string, ciphertext: Uint8Array, context?: Uint8Array): Promise<Buffer>
  /** OpenKES key lifecycle: a new version; resolves its key id. */
  rotateKey(name: string): Promise<string>
  /** OpenKES: the ciphertext re-sealed under the newest version. */
  rewrap(name: string, ciphertext: Uint8Array, context?: Uint8Array): Promise<Buffer>
  /** The versions of a key, oldest first (one for a key never rotated, or on KES). */
  keyVersions(name: string): Promise<KeyVersionInfo[]>
  /** OpenKES: deleted keys kept for restore. */
  listDeletedKeys(pattern?: string): Promise<DeletedKeyInfo[]>
  restoreKey(name: string): Promise<void>
  purgeKey(name: string): Promise<void>
  writePolicy(name: string, rules: PolicyRules): Promise<void>
  readPolicy(name: string): Promise<PolicyRules>
  listPolicies(pattern?: string): Promise<string[]>
  deletePolicy(name: string): Promise<void>
  describePolicy(name: string): Promise<PolicyDescription>
  assignIdentity(policy: string, identity: string): Promise<void>
  /** identity → policy. */
  listIdentities(pattern?: string): Promise<Record<string, string>>
  forgetIdentity(identity: string): Promise<void>
  describeIdentity(identity: string): Promise<IdentityDescription>
  /** Who the caller is: its identity, admin or not, its policy and rules. */
  describeSelf(): Promise<SelfDescription>
  /** The Prometheus text exposition: the KES families as KES clients see them (default), or every family as Prometheus does. */
  metrics(view?: MetricsView): Promise<string>
  auditLog(): Promise<LogStream<AuditEvent>>
  errorLog(): Promise<LogStream<ErrorEvent>>
  /** Closes every connection. */
  close(): Promise<void>
}
