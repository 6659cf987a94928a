import { GlobSyntaxError } from '../../auth/glob.js'
import type { ServerState } from '../../server/state.js'
import { optionalStringList, parseJsonObject } from '../body.js'
import { KesError } from '../errors.js'
import { listFilter } from '../pattern.js'
import type { Reply } from '../reply.js'
import { json, ok } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/**
 * POST /v1/policy/write/:name — `{"allow":[...],"deny":[...]}` or the seed form `{"paths":[...]}` (= allow; both
 * given are concatenated). Empty patterns are dropped, as KES did; a malformed glob is a 400.
 */
export async function writePolicy(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const body = parseJsonObject(await req.readBody())
  const allow = rules([...(optionalStringList(body, 'allow') ?? []), ...(optionalStringList(body, 'paths') ?? [])])
  const deny = rules(optionalStringList(body, 'deny') ?? [])
  try {
    await s.access.writePolicy(name, { allow, deny }, req.identity)
  } catch (err) {
    if (err instanceof GlobSyntaxError) throw new KesError(400, `invalid policy: ${err.message}`)
    throw err
  }
  return ok()
}

function rules(patterns: string[]): string[] {
  return [...new Set(patterns.filter((p) => p !== ''))]
}

/** GET /v1/policy/read/:name — `{"allow":[...],"deny":[...],"paths":[...]}` (`paths` = allow, for seed-era clients). */
export async function readPolicy(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const policy = await s.access.readPolicy(name)
  return json(200, { allow: policy.allow, deny: policy.deny, paths: policy.allow })
}

/** GET /v1/policy/list/:pattern — a JSON array of names, sorted. */
export async function listPolicies(req: ApiRequest, s: ServerState): Promise<Reply> {
  const matches = listFilter(req.args[0] ?? '')
  const names = await s.access.listPolicies()
  return json(200, names.filter(matches))
}

/** DELETE /v1/policy/delete/:name — also removes every assignment to the policy. */
export async function deletePolicy(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  await s.access.deletePolicy(name)
  return ok()
}

/** GET /v1/policy/describe/:name — `{"name","created_at","created_by"}`; config policies have no times, so those are left out. */
export async function describePolicy(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const policy = await s.access.readPolicy(name)
  return json(200, {
    name,
    ...(policy.createdAt === undefined ? {} : { created_at: policy.createdAt }),
    ...(policy.createdBy === undefined ? {} : { created_by: policy.createdBy }),
  })
}
