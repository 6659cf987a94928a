import { metricsAudience } from '../../metrics/audience.js'
import { renderSnapshot } from '../../metrics/snapshot.js'
import type { ServerState } from '../../server/state.js'
import type { Reply } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/**
 * GET /v1/metrics — the Prometheus text exposition format 0.0.4. A request whose Accept names a
 * Prometheus format gets every family; any other (KES clients send no Accept) gets the KES
 * families only, each as exactly one series, since the KES 0.17 client refuses more. Under
 * `--workers N` one scrape counts every worker: the worker serving it gathers the others'
 * metrics through the primary and renders the sum.
 */
export async function metrics(req: ApiRequest, s: ServerState): Promise<Reply> {
  const audience = metricsAudience(req.accept)
  const body = s.gatherMetrics === undefined ? s.metrics.render(audience) : renderSnapshot(await s.gatherMetrics(), audience)
  return { status: 200, contentType: 'text/plain; version=0.0.4', body }
}
