import type { ServerState } from '../../server/state.js'
import type { Reply } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/** GET /v1/metrics — the Prometheus text exposition format 0.0.4. */
export async function metrics(_req: ApiRequest, s: ServerState): Promise<Reply> {
  return { status: 200, contentType: 'text/plain; version=0.0.4', body: s.metrics.render() }
}
