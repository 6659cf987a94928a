import type { ServerState } from '../../server/state.js'
import type { Reply } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/** GET /v1/log/audit/trace — every audit event from now on, as nd-json; this request's own event comes first. */
export async function traceAuditLog(_req: ApiRequest, s: ServerState): Promise<Reply> {
  return { status: 200, contentType: 'application/x-ndjson', attach: (sink) => s.auditLog.hub.subscribe(sink) }
}

/** GET /v1/log/error/trace — every error event from now on, as `{"message":"..."}` nd-json lines. */
export async function traceErrorLog(_req: ApiRequest, s: ServerState): Promise<Reply> {
  return { status: 200, contentType: 'application/x-ndjson', attach: (sink) => s.errorLog.hub.subscribe(sink) }
}
