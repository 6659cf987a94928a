import { metricsAudience } from '../../metrics/audience.js'
import type { ServerState } from '../../server/state.js'
import type { Reply } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/**
 * GET /v1/metrics — the Prometheus text exposition format 0.0.4. A request whose Accept names a
 * Prometheus format gets every family; any other (KES clients send no Accept) gets the KES
 * families only, each as exactly one series, since the KES 0.17 client refuses more.
 */
export async function metrics(req: ApiRequest, s: ServerState): Promise<Reply> {
  return { status: 200, contentType: 'text/plain; version=0.0.4', body: s.metrics.render(metricsAudience(req.accept)) }
}
