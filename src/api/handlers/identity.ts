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

/**
 * GET /v1/identity/describe/:identity — `{"policy","created_at","created_by"}` (times left out
 * where unknown); the admin is `{"admin":true,"policy":""}`; an identity without a policy is 404.
 */
export async function describeIdentity(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [identity] = req.args as [string]
  if (s.access.isAdmin(identity)) return json(200, { admin: true, policy: '' })
  const info = await s.access.describeIdentity(identity)
  return json(200, { policy: info.policy, ...times(info.createdAt, info.createdBy) })
}

/**
 * GET /v1/identity/self/describe — who the caller is, open to every identity with a
 * certificate: the admin is `{"identity","admin":true}`; an identity with a policy gets
 * `{"identity","policy","allow":{...},"deny":{...},"created_at","created_by"}` with the rules
 * as maps of pattern → {} (as kes-go decodes them); one without a policy `{"identity","policy":""}`.
 */
export async function describeSelf(req: ApiRequest, s: ServerState): Promise<Reply> {
  const identity = req.identity
  if (s.access.isAdmin(identity)) return json(200, { identity, admin: true })
  const self = await s.access.describeSelf(identity)
  if (self === undefined) return json(200, { identity, policy: '' })
  return json(200, {
    identity,
    policy: self.policy,
    allow: ruleMap(self.rules?.allow ?? []),
    deny: ruleMap(self.rules?.deny ?? []),
    ...times(self.createdAt, self.createdBy),
  })
}

// KES sends rules as an object of pattern → rule, and a rule has no fields yet. The
// prototype-less object keeps a pattern named `__proto__` an ordinary key.
function ruleMap(patterns: readonly string[]): Record<string, Record<string, never>> {
  const map = Object.create(null) as Record<string, Record<string, never>>
  for (const p of patterns) map[p] = {}
  return map
}

function times(createdAt: string | undefined, createdBy: string | undefined): { created_at?: string; created_by?: string } {
  return {
    ...(createdAt === undefined ? {} : { created_at: createdAt }),
    ...(createdBy === undefined ? {} : { created_by: createdBy }),
  }
}
