import type { EventHub } from '../../log/event-hub.js'
import type { ServerState } from '../../server/state.js'
import { KesError } from '../errors.js'
import type { Reply } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/** GET /v1/log/audit (and the seed's /v1/log/audit/trace) — every audit event from now on, as nd-json; this request's own event comes first. */
export async function traceAuditLog(req: ApiRequest, s: ServerState): Promise<Reply> {
  return trace(s.auditLog.hub, req)
}

/** GET /v1/log/error (and the seed's /v1/log/error/trace) — every error event from now on, as `{"message":"..."}` nd-json lines. */
export async function traceErrorLog(req: ApiRequest, s: ServerState): Promise<Reply> {
  return trace(s.errorLog.hub, req)
}

// Each reader may hold a bounded buffer, so their number is bounded too. The
// place is taken here, at once, not when the stream opens: requests checking
// the cap meanwhile must already see it taken. The stream stays open only
// while its reader is still allowed to read it.
function trace(hub: EventHub, req: ApiRequest): Reply {
  const place = hub.reserve()
  if (place === undefined) throw new KesError(503, 'too many log readers')
  return {
    status: 200,
    contentType: 'application/x-ndjson',
    attach: (sink) => place.subscribe(sink, req.stillAllowed),
    release: () => place.release(),
  }
}
