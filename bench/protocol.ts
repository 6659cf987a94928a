// The messages between bench/run.ts and its load-generator processes (bench/load-worker.ts).

/** What a scenario asks the server to do. */
export type Op = 'generate' | 'encrypt' | 'decrypt' | 'mixed' | 'version'
/**
 * How the load reaches the server: `h1` HTTP/1.1 keep-alive connections;
 * `h2` streams on one HTTP/2 connection (as MinIO's client does); `newconn` a new
 * TLS connection per request (full handshake); `newconn-resume` the same, resuming
 * the previous connection's TLS session.
 */
export type Transport = 'h1' | 'h2' | 'newconn' | 'newconn-resume'

/** One load process's part of a scenario. */
export interface Job {
  readonly port: number
  readonly tls: { readonly key: string; readonly cert: string; readonly ca: string }
  readonly op: Op
  readonly transport: Transport
  /** Connections (h1, newconn) or concurrent streams (h2) of this process. */
  readonly concurrency: number
  /** The master keys to use (round robin); decrypt uses the first. */
  readonly keyNames: readonly string[]
}

/** What a load process sends back: 'ready' once connected, then its result. */
export type WorkerMessage =
  | { readonly kind: 'ready' }
  | WorkerResult
  | { readonly kind: 'failed'; readonly message: string }

export interface WorkerResult {
  readonly kind: 'result'
  readonly requests: number
  readonly errors: number
  readonly errorKinds: Record<string, number>
  /** Connections that resumed a TLS session (newconn-resume). */
  readonly resumed: number
  readonly seconds: number
  readonly latenciesUs: Float64Array
}
