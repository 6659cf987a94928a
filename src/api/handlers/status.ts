import type { Reply } from '../reply.js'
import { json } from '../reply.js'
import type { ApiRequest } from '../routes.js'
import type { ServerState } from '../../server/state.js'

/** GET /version: `{"version":"<semver>"}`, open to every identity with a certificate. */
export async function version(_req: ApiRequest, s: ServerState): Promise<Reply> {
  return json(200, { version: s.version })
}
