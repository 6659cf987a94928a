// Response types of the API in their wire spelling, declared once: the server's handlers build
// them and the client library (src/client/api.ts) returns them, so the two cannot drift apart.

/**
 * The `/v1/status` answer, in the spelling current KES clients (kes-go v0.2+) decode. With the key
 * store unreachable, `keystore_latency` is absent and `keystore_unavailable` and
 * `keystore_unreachable` are both true (kes-go v0.1 refuses one without the other).
 */
export interface StatusResponse {
  readonly version: string
  /** Go's GOOS / GOARCH spelling, as KES reports it: linux, amd64, arm64, ... */
  readonly os: string
  readonly arch: string
  /** Whole seconds since the server started. */
  readonly uptime: number
  readonly num_cpu: number
  readonly num_cpu_used: number
  /** Bytes. */
  readonly mem_heap_used: number
  readonly mem_stack_used: number
  /** Round trip to the key store in whole ms (at least 1); absent when it is unreachable. */
  readonly keystore_latency?: number
  readonly keystore_unavailable?: true
  readonly keystore_unreachable?: true
}

/** One entry of `/v1/api`: a route of the server's route table. */
export interface ApiDescription {
  readonly method: string
  /** The route's path; ends with `/` when it takes arguments (`/v1/key/create/`). */
  readonly path: string
  /** The largest request body in bytes. */
  readonly max_body: number
  /** Whole seconds; 0 for none (the log streams). */
  readonly timeout: number
}
