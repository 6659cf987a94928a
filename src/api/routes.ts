import type { Reply } from './reply.js'
import type { ServerState } from '../server/state.js'
import { createKey, decryptKey, deleteKey, encryptKey, generateKey, importKey, listKeys } from './handlers/key.js'
import { deletePolicy, listPolicies, readPolicy, writePolicy } from './handlers/policy.js'
import { assignIdentity, forgetIdentity, listIdentities } from './handlers/identity.js'
import { traceAuditLog, traceErrorLog } from './handlers/log.js'
import { metrics } from './handlers/metrics.js'
import { version } from './handlers/status.js'

/** A path parameter and the syntax it must have (checked before authorization). */
export type Param = 'key' | 'policy' | 'identity' | 'pattern'

/** What a handler gets: the caller, the validated path parameters and a body reader. */
export interface ApiRequest {
  readonly identity: string
  readonly args: readonly string[]
  /** Reads the body, at most the route's maxBodyBytes (413 beyond). */
  readBody(): Promise<Buffer>
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
  /** 'none': any identity with a certificate; 'policy': admin, or a policy that allows the path. */
  readonly auth: 'none' | 'policy'
  readonly handler: Handler
}

const MiB = 1 << 20

// Methods: the seed's, plus POST wherever PUT or DELETE is documented, and PUT
// wherever POST is (the seed's own example deletes a key with POST; current
// clients PUT what older ones POST). docs/api.md, "Requests and responses".
const WRITE = ['POST', 'PUT'] as const
const DELETE = ['DELETE', 'POST'] as const
const READ = ['GET'] as const

/** The seed API (docs/api.md, "Endpoints"). */
export const routes: readonly Route[] = [
  { path: '/version', methods: READ, params: [], maxBodyBytes: 0, auth: 'none', handler: version },
  { path: '/v1/key/create', methods: WRITE, params: ['key'], maxBodyBytes: 0, auth: 'policy', handler: createKey },
  { path: '/v1/key/import', methods: WRITE, params: ['key'], maxBodyBytes: MiB, auth: 'policy', handler: importKey },
  { path: '/v1/key/delete', methods: DELETE, params: ['key'], maxBodyBytes: 0, auth: 'policy', handler: deleteKey },
  { path: '/v1/key/list', methods: READ, params: ['pattern'], maxBodyBytes: 0, auth: 'policy', handler: listKeys },
  { path: '/v1/key/generate', methods: WRITE, params: ['key'], maxBodyBytes: MiB, auth: 'policy', handler: generateKey },
  { path: '/v1/key/encrypt', methods: WRITE, params: ['key'], maxBodyBytes: MiB, auth: 'policy', handler: encryptKey },
  { path: '/v1/key/decrypt', methods: WRITE, params: ['key'], maxBodyBytes: MiB, auth: 'policy', handler: decryptKey },
  { path: '/v1/policy/write', methods: WRITE, params: ['policy'], maxBodyBytes: MiB, auth: 'policy', handler: writePolicy },
  { path: '/v1/policy/read', methods: READ, params: ['policy'], maxBodyBytes: 0, auth: 'policy', handler: readPolicy },
  { path: '/v1/policy/list', methods: READ, params: ['pattern'], maxBodyBytes: 0, auth: 'policy', handler: listPolicies },
  { path: '/v1/policy/delete', methods: DELETE, params: ['policy'], maxBodyBytes: 0, auth: 'policy', handler: deletePolicy },
  { path: '/v1/identity/assign', methods: WRITE, params: ['policy', 'identity'], maxBodyBytes: MiB, auth: 'policy', handler: assignIdentity },
  { path: '/v1/identity/list', methods: READ, params: ['pattern'], maxBodyBytes: 0, auth: 'policy', handler: listIdentities },
  { path: '/v1/identity/forget', methods: DELETE, params: ['identity'], maxBodyBytes: 0, auth: 'policy', handler: forgetIdentity },
  { path: '/v1/metrics', methods: READ, params: [], maxBodyBytes: 0, auth: 'policy', handler: metrics },
  { path: '/v1/log/audit/trace', methods: READ, params: [], maxBodyBytes: 0, auth: 'policy', handler: traceAuditLog },
  { path: '/v1/log/error/trace', methods: READ, params: [], maxBodyBytes: 0, auth: 'policy', handler: traceErrorLog },
]
