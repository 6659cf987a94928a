import { GlobSyntaxError } from '../../auth/glob.js'
import type { PolicyForm } from '../../server/access.js'
import type { ServerState } from '../../server/state.js'
import { optionalStringList, parseJsonObject } from '../body.js'
import { KesError } from '../errors.js'
import { listFilter } from '../pattern.js'
import type { Reply } from '../reply.js'
import { json, ok } from '../reply.js'
import type { ApiRequest } from '../routes.js'

/**
 * POST /v1/policy/write/:name — `{"allow":[...],"deny":[...]}` or the seed form `{"paths":[...]}` (= allow).
 * The form is stored with the policy and read back as written: `paths` alone is the seed form; a body with
 * `allow` or `deny` is the allow/deny form, and a `paths` list given with them is appended to allow. A body
 * with none of the three (or only `null`s) is an empty allow/deny policy. Empty patterns are dropped and
 * duplicates kept once, as KES did; a malformed glob is a 400.
 */
export async function writePolicy(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const body = parseJsonObject(await req.readBody())
  const allowList = optionalStringList(body, 'allow')
  const denyList = optionalStringList(body, 'deny')
  const paths = optionalStringList(body, 'paths')
  const form: PolicyForm = paths !== undefined && allowList === undefined && denyList === undefined ? 'paths' : 'allow-deny'
  const allow = rules([...(allowList ?? []), ...(paths ?? [])])
  const deny = rules(denyList ?? [])
  try {
    await s.access.writePolicy(name, { allow, deny }, req.identity, form)
  } catch (err) {
    if (err instanceof GlobSyntaxError) throw new KesError(400, `invalid policy: ${err.message}`)
    throw err
  }
  return ok()
}

function rules(patterns: string[]): string[] {
  return [...new Set(patterns.filter((p) => p !== ''))]
}

/**
 * GET /v1/policy/read/:name — in the form it was written (or configured) in, and nothing more:
 * `{"allow":[...],"deny":[...]}`, or `{"paths":[...]}` for the seed form. Clients decode only their
 * own form, and the KES 0.17 one refuses unknown fields.
 */
export async function readPolicy(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const policy = await s.access.readPolicy(name)
  if (policy.form === 'paths') return json(200, { paths: policy.allow })
  return json(200, { allow: policy.allow, deny: policy.deny })
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
