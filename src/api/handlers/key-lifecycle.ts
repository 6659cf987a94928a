/**
 * The key lifecycle APIs KES never had (docs/api.md, "Key versions and deleted keys"):
 * rotation, rewrap, and deletes that can be undone. KES clients never call them, and nothing
 * they call changes because these exist.
 */
import { encodeBase64 } from '../../crypto/base64.js'
import type { ServerState } from '../../server/state.js'
import { parseJsonObject } from '../body.js'
import { listFilter } from '../pattern.js'
import type { Reply } from '../reply.js'
import { json, listing, ndjson, ok } from '../reply.js'
import type { ApiRequest } from '../routes.js'
import { decryptWith, parseCiphertextBody } from './key.js'

/** POST /v1/key/rotate/:name — adds a new random version; answers `{"id":<the new version's id>}`. */
export async function rotateKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const rotated = await s.keys.rotate(name, req.identity)
  // Without isDue, rotate always adds a version.
  return json(200, { id: rotated?.newest.id })
}

/**
 * POST /v1/key/rewrap/:name — `{"ciphertext","context"}` as for decrypt → `{"ciphertext"}` sealed
 * under the newest version with the same context. The plaintext never leaves the server.
 */
export async function rewrapKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const { ciphertext, context } = parseCiphertextBody(parseJsonObject(await req.readBody()))
  const plaintext = await decryptWith(s, name, ciphertext, context)
  try {
    const key = await s.keys.get(name)
    return json(200, { ciphertext: encodeBase64(key.newest.encrypt(plaintext, context)) })
  } finally {
    plaintext.fill(0)
  }
}

/** GET /v1/key/deleted/:pattern — nd-json `{"name","deleted_at","deleted_by"}` lines (by name, newest deletion first), then the listing trailers. */
export async function listDeletedKeys(req: ApiRequest, s: ServerState): Promise<Reply> {
  const deleted = await s.deletedKeys.list(listFilter(req.args[0] ?? ''))
  return listing(ndjson(deleted))
}

/** POST /v1/key/restore/:name — brings back the most recent deletion of the key (404 none kept, 409 name taken again). */
export async function restoreKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  await s.deletedKeys.restore(name)
  return ok()
}

/** POST /v1/key/purge/:name — destroys every kept deletion of the key now (404 none kept). */
export async function purgeKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  await s.deletedKeys.purge(name)
  return ok()
}
