import type { ServerState } from '../../server/state.js'
import { listFilter } from '../pattern.js'
import type { Reply } from '../reply.js'
import { json, listing, ok } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/** POST /v1/identity/assign/:policy/:identity — one policy per identity; a new assignment replaces the old. */
export async function assignIdentity(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [policy, identity] = req.args as [string, string]
  await s.access.assign(policy, identity, req.identity)
  return ok()
}

/**
 * GET /v1/identity/list/:pattern — one JSON object `{"<identity>":"<policy>"}` (the seed's
 * form), sorted, the admin left out, then the `Status` and `Error` trailers of every listing.
 */
export async function listIdentities(req: ApiRequest, s: ServerState): Promise<Reply> {
  const matches = listFilter(req.args[0] ?? '')
  const out: Record<string, string> = {}
  for (const [identity, policy] of await s.access.listIdentities()) {
    if (matches(identity)) out[identity] = policy
  }
  return listing(json(200, out))
}

/** DELETE /v1/identity/forget/:identity — an unknown identity is 404. */
export async function forgetIdentity(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [identity] = req.args as [string]
  await s.access.forget(identity)
  return ok()
}
