import type { Reply } from './reply.js'
import type { ServerState } from '../server/state.js'
import {
  createKey,
  decryptKey,
  deleteKey,
  describeKey,
  encryptKey,
  generateKey,
  hmacKey,
  importKey,
  listKeys,
} from './handlers/key.js'
import { listDeletedKeys, purgeKey, restoreKey, rewrapKey, rotateKey } from './handlers/key-lifecycle.js'
import { deletePolicy, describePolicy, listPolicies, readPolicy, writePolicy } from './handlers/policy.js'
import { assignIdentity, describeIdentity, describeSelf, forgetIdentity, listIdentities } from './handlers/identity.js'
import { traceAuditLog, traceErrorLog } from './handlers/log.js'
import { metrics } from './handlers/metrics.js'
import { listApis, ready, status, version } from './handlers/status.js'

/** A path parameter and the syntax it must have (checked before authorization). */
export type Param = 'key' | 'policy' | 'identity' | 'pattern'

/** What a handler gets: the caller, the validated path parameters and a body reader. */
export interface ApiRequest {
  readonly identity: string
  readonly args: readonly string[]
  /** The Accept header, if any (`/v1/metrics` answers Prometheus and KES clients differently). */
  readonly accept: string | undefined
  /** Reads the body, at most the route's maxBodyBytes (413 beyond). */
  readBody(): Promise<Buffer>
  /** The route table the router serves (for `/v1/api`, so it can't list another). */
  readonly routes: readonly Route[]
  /**
   * Whether the caller may still call this route, by the configuration and
   * policies in force when asked (a log stream asks again after every change).
   * Rejects when the store can't be read.
   */
  stillAllowed(): Promise<boolean>
}

/** Handles one API call; throws KesError for every failure a client may see. */
export type Handler = (req: ApiRequest, s: ServerState) => Promise<Reply>

/** One API: everything the router needs to know about it, as data. */
export interface Route {
  /** Path without parameters and without a trailing slash. */
  readonly path: string
  /** Accepted methods; the first is the one the seed document names. */
  readonly methods: readonly string[]
  readonly params: readonly Param[]
  readonly maxBodyBytes: number
  /**
   * How long a request may take until its answer starts, reading the body included; 0 for
   * none (the log streams, which last as long as their reader). The config's `api:` section
   * can change it per route.
   */
  readonly timeoutMs: number
  /** 'none': any identity with a certificate; 'policy': admin, or a policy that allows the path. */
  readonly auth: 'none' | 'policy'
  readonly handler: Handler
}

const MiB = 1 << 20
// KES gives every API 15 seconds, and the log streams no limit.
const T = 15_000
const STREAM = 0

// Methods: the seed's, plus POST wherever PUT or DELETE is documented, and PUT
// wherever POST is (the seed's own example deletes a key with POST; current
// clients PUT what older ones POST, e.g. kes-go's HMAC). Deletes stay DELETE
// (and POST): no KES client sends PUT there.
const WRITE = ['POST', 'PUT'] as const
const DELETE = ['DELETE', 'POST'] as const
const READ = ['GET'] as const
const PURGE = ['POST', 'DELETE'] as const

/** The API: the seed's and, beside it, the one current KES clients call (docs/api.md). */
export const routes: readonly Route[] = [
  { path: '/version', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: T, auth: 'none', handler: version },
  { path: '/v1/ready', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: ready },
  { path: '/v1/status', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: status },
  { path: '/v1/metrics', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: metrics },
  { path: '/v1/api', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: listApis },
  { path: '/v1/key/create', methods: WRITE, params: ['key'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: createKey },
  { path: '/v1/key/import', methods: WRITE, params: ['key'], maxBodyBytes: MiB, timeoutMs: T, auth: 'policy', handler: importKey },
  { path: '/v1/key/describe', methods: READ, params: ['key'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: describeKey },
  { path: '/v1/key/delete', methods: DELETE, params: ['key'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: deleteKey },
  { path: '/v1/key/list', methods: READ, params: ['pattern'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: listKeys },
  { path: '/v1/key/generate', methods: WRITE, params: ['key'], maxBodyBytes: MiB, timeoutMs: T, auth: 'policy', handler: generateKey },
  { path: '/v1/key/encrypt', methods: WRITE, params: ['key'], maxBodyBytes: MiB, timeoutMs: T, auth: 'policy', handler: encryptKey },
  { path: '/v1/key/decrypt', methods: WRITE, params: ['key'], maxBodyBytes: MiB, timeoutMs: T, auth: 'policy', handler: decryptKey },
  { path: '/v1/key/hmac', methods: WRITE, params: ['key'], maxBodyBytes: MiB, timeoutMs: T, auth: 'policy', handler: hmacKey },
  // Key lifecycle (OpenKES only): versions, rotation, rewrap, deletes that can be undone.
  { path: '/v1/key/rotate', methods: WRITE, params: ['key'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: rotateKey },
  { path: '/v1/key/rewrap', methods: WRITE, params: ['key'], maxBodyBytes: MiB, timeoutMs: T, auth: 'policy', handler: rewrapKey },
  { path: '/v1/key/deleted', methods: READ, params: ['pattern'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: listDeletedKeys },
  { path: '/v1/key/restore', methods: WRITE, params: ['key'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: restoreKey },
  { path: '/v1/key/purge', methods: PURGE, params: ['key'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: purgeKey },
  { path: '/v1/policy/write', methods: WRITE, params: ['policy'], maxBodyBytes: MiB, timeoutMs: T, auth: 'policy', handler: writePolicy },
  { path: '/v1/policy/read', methods: READ, params: ['policy'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: readPolicy },
  { path: '/v1/policy/describe', methods: READ, params: ['policy'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: describePolicy },
  { path: '/v1/policy/list', methods: READ, params: ['pattern'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: listPolicies },
  { path: '/v1/policy/delete', methods: DELETE, params: ['policy'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: deletePolicy },
  { path: '/v1/identity/assign', methods: WRITE, params: ['policy', 'identity'], maxBodyBytes: MiB, timeoutMs: T, auth: 'policy', handler: assignIdentity },
  { path: '/v1/identity/describe', methods: READ, params: ['identity'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: describeIdentity },
  { path: '/v1/identity/self/describe', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: T, auth: 'none', handler: describeSelf },
  { path: '/v1/identity/list', methods: READ, params: ['pattern'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: listIdentities },
  { path: '/v1/identity/forget', methods: DELETE, params: ['identity'], maxBodyBytes: 0, timeoutMs: T, auth: 'policy', handler: forgetIdentity },
  { path: '/v1/log/audit', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: STREAM, auth: 'policy', handler: traceAuditLog },
  { path: '/v1/log/error', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: STREAM, auth: 'policy', handler: traceErrorLog },
  // The seed's names of the two streams.
  { path: '/v1/log/audit/trace', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: STREAM, auth: 'policy', handler: traceAuditLog },
  { path: '/v1/log/error/trace', methods: READ, params: [], maxBodyBytes: 0, timeoutMs: STREAM, auth: 'policy', handler: traceErrorLog },
]

/** Paths the config's `api:` section may open to every client (`skip_auth`): probes and introspection, never key or policy APIs. */
export const SKIP_AUTH_PATHS: readonly string[] = ['/version', '/v1/ready', '/v1/status', '/v1/metrics', '/v1/api']
