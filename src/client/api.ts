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

/** One audit event (`GET /v1/log/audit/trace`). */
export interface AuditEvent {
  readonly time: string
  readonly request: { readonly path: string; readonly identity: string; readonly method?: string; readonly ip?: string }
  readonly response: { readonly code: number; readonly time: number; readonly error?: string }
}

/** One error-log event (`GET /v1/log/error/trace`). */
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
  createKey(name: string): Promise<void>
  importKey(name: string, key: Uint8Array, cipher?: 'AES256' | 'ChaCha20'): Promise<void>
  deleteKey(name: string): Promise<void>
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
  assignIdentity(policy: string, identity: string): Promise<void>
  /** identity → policy. */
  listIdentities(pattern?: string): Promise<Record<string, string>>
  forgetIdentity(identity: string): Promise<void>
  /** The Prometheus text exposition: the KES families as KES clients see them (default), or every family as Prometheus does. */
  metrics(view?: MetricsView): Promise<string>
  auditLog(): Promise<LogStream<AuditEvent>>
  errorLog(): Promise<LogStream<ErrorEvent>>
  /** Closes every connection. */
  close(): Promise<void>
}
