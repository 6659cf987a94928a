import type { EventHub } from '../../log/event-hub.js'
import type { ServerState } from '../../server/state.js'
import { KesError } from '../errors.js'
import type { Reply } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/** GET /v1/log/audit (and the seed's /v1/log/audit/trace) — every audit event from now on, as nd-json; this request's own event comes first. */
export async function traceAuditLog(_req: ApiRequest, s: ServerState): Promise<Reply> {
  return trace(s.auditLog.hub)
}

/** GET /v1/log/error (and the seed's /v1/log/error/trace) — every error event from now on, as `{"message":"..."}` nd-json lines. */
export async function traceErrorLog(_req: ApiRequest, s: ServerState): Promise<Reply> {
  return trace(s.errorLog.hub)
}

// Each reader may hold a bounded buffer, so their number is bounded too.
function trace(hub: EventHub): Reply {
  if (hub.full) throw new KesError(503, 'too many log readers')
  return { status: 200, contentType: 'application/x-ndjson', attach: (sink) => hub.subscribe(sink) }
}
