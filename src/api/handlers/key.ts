import { decodePublicBase64Strict, encodeBase64 } from '../../crypto/base64.js'
import { randomPool } from '../../crypto/random-pool.js'
import { InvalidCiphertextError, NotAuthenticError, SecretKey } from '../../crypto/secret-key.js'
import type { Cipher } from '../../crypto/secret-key.js'
import type { ServerState } from '../../server/state.js'
import { optionalBase64, optionalString, parseJsonObject } from '../body.js'
import type { JsonObject } from '../body.js'
import { ErrDecrypt, ErrInvalidCiphertext, ErrInvalidKey, KesError } from '../errors.js'
import { listFilter } from '../pattern.js'
import type { Reply } from '../reply.js'
import { json, jsonText, listing, ndjson, ok } from '../reply.js'
import type { ApiRequest } from '../routes.js'

const KEY_BYTES = 32

/** POST /v1/key/create/:name — a new random 256-bit AES256 key. */
export async function createKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const bytes = randomPool.take(KEY_BYTES)
  const key = new SecretKey(bytes, 'AES256', { createdAt: new Date().toISOString(), createdBy: req.identity })
  bytes.fill(0)
  await s.keys.create(name, key)
  return ok()
}

/**
 * POST /v1/key/import/:name — `{"bytes":b64}` (seed) or `{"key":b64,"cipher":"AES256"|"ChaCha20"}` (current
 * clients). The body is checked before the name is looked up (400 before 400 "exists").
 */
export async function importKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const body = parseJsonObject(await req.readBody())
  const cipher = parseCipher(optionalString(body, 'cipher'))
  const bytes = optionalBase64(body, 'key') ?? optionalBase64(body, 'bytes')
  if (bytes === undefined || bytes.length !== KEY_BYTES) {
    bytes?.fill(0)
    throw ErrInvalidKey
  }
  const key = new SecretKey(bytes, cipher, { createdAt: new Date().toISOString(), createdBy: req.identity })
  bytes.fill(0)
  await s.keys.create(name, key)
  return ok()
}

// KES has spelled the two key types differently over time; accept every spelling.
const CIPHERS: ReadonlyMap<string, Cipher> = new Map<string, Cipher>([
  ['AES256', 'AES256'],
  ['AES256-GCM_SHA256', 'AES256'],
  ['ChaCha20', 'ChaCha20'],
  ['XCHACHA20-POLY1305', 'ChaCha20'],
])

function parseCipher(name: string | undefined): Cipher {
  if (name === undefined || name === '') return 'AES256'
  const cipher = CIPHERS.get(name)
  if (cipher === undefined) throw new KesError(400, 'invalid cipher: must be AES256 or ChaCha20')
  return cipher
}

/**
 * DELETE /v1/key/delete/:name — idempotent: a missing key is 200 too, so a
 * client that retries a delete whose answer was lost (KES 0.17) never fails.
 */
export async function deleteKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  // With a retention period the key is kept in the deleted-keys table (restore, purge).
  await s.deletedKeys.delete(name, req.identity)
  return ok()
}

/** GET /v1/key/list/:pattern — nd-json `{"name":...}` lines, sorted, then the `Status` and `Error` trailers. */
export async function listKeys(req: ApiRequest, s: ServerState): Promise<Reply> {
  const matches = listFilter(req.args[0] ?? '')
  const names = await s.keys.list()
  return listing(ndjson(names.filter(matches).map((name) => ({ name }))))
}

/** POST /v1/key/generate/:name — a fresh 256-bit data key, in plain and sealed under the named key. */
export async function generateKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const body = parseJsonObject(await req.readBody())
  const context = optionalBase64(body, 'context')
  const key = s.keys.peek(name) ?? (await s.keys.get(name))
  const plaintext = randomPool.take(KEY_BYTES)
  const ciphertext = key.newest.encryptToBase64(plaintext, context)
  // Base64 needs no JSON escaping: the same text as JSON.stringify of {plaintext, ciphertext}.
  const reply = jsonText(200, '{"plaintext":"' + encodeBase64(plaintext) + '","ciphertext":"' + ciphertext + '"}')
  plaintext.fill(0)
  return reply
}

/** POST /v1/key/encrypt/:name — seals a small plaintext (bounded by the 1 MiB body limit). */
export async function encryptKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const body = parseJsonObject(await req.readBody())
  // KES treats a missing plaintext as empty.
  const plaintext = optionalBase64(body, 'plaintext') ?? Buffer.alloc(0)
  const context = optionalBase64(body, 'context')
  const key = s.keys.peek(name) ?? (await s.keys.get(name))
  const ciphertext = key.newest.encryptToBase64(plaintext, context)
  plaintext.fill(0)
  return jsonText(200, '{"ciphertext":"' + ciphertext + '"}')
}

/** POST /v1/key/decrypt/:name — opens a ciphertext of any KES format; every failure is ErrDecrypt or ErrInvalidCiphertext. */
export async function decryptKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const body = parseJsonObject(await req.readBody())
  const encoded = Object.hasOwn(body, 'ciphertext') ? body['ciphertext'] : undefined
  // A ciphertext is not secret: it may be decoded into pooled memory.
  const ciphertext = typeof encoded === 'string' ? decodePublicBase64Strict(encoded) : undefined
  if (ciphertext === undefined) throw ErrInvalidCiphertext
  const context = optionalBase64(body, 'context')
  // A cached key answers without another turn of the event loop (the usual case).
  let plaintext: Buffer
  try {
    const opened = s.keys.decryptNow(name, ciphertext, context)
    plaintext = Buffer.isBuffer(opened) ? opened : await opened
  } catch (err) {
    throw decryptError(err)
  }
  const reply = jsonText(200, '{"plaintext":"' + encodeBase64(plaintext) + '"}')
  plaintext.fill(0)
  return reply
}

/**
 * Reads `{"ciphertext":b64,"context":b64}` (decrypt's and rewrap's body). Throws
 * ErrInvalidCiphertext, or 400 for malformed JSON.
 */
export function parseCiphertextBody(body: JsonObject): { ciphertext: Buffer; context: Buffer | undefined } {
  const encoded = Object.hasOwn(body, 'ciphertext') ? body['ciphertext'] : undefined
  const ciphertext = typeof encoded === 'string' ? decodePublicBase64Strict(encoded) : undefined
  if (ciphertext === undefined) throw ErrInvalidCiphertext
  return { ciphertext, context: optionalBase64(body, 'context') }
}

/** Opens a ciphertext with the named key's versions; every crypto failure is ErrDecrypt or ErrInvalidCiphertext. */
export async function decryptWith(s: ServerState, name: string, ciphertext: Buffer, context: Buffer | undefined): Promise<Buffer> {
  try {
    return await s.keys.decrypt(name, ciphertext, context)
  } catch (err) {
    throw decryptError(err)
  }
}

/** What a client is told about a failed decrypt: ErrDecrypt, ErrInvalidCiphertext, or the error itself (store failures). */
function decryptError(err: unknown): unknown {
  if (err instanceof NotAuthenticError) return ErrDecrypt
  if (err instanceof InvalidCiphertextError) return ErrInvalidCiphertext
  return err
}

/** One version in the `/v1/key/describe` answer of a rotated key (never bytes). */
export interface KeyVersionInfo {
  readonly id: string
  readonly created_at?: string
  readonly created_by?: string
}

/** The `/v1/key/describe` answer; `created_*` are left out when the key file has none. */
export interface DescribeKeyResponse {
  readonly name: string
  /** The key id ciphertexts carry: hex of the first 16 bytes of SHA-256(key). */
  readonly id: string
  /** Always present: kes-go v0.2 reads "AES256" / "ChaCha20" and refuses "". */
  readonly algorithm: Cipher
  readonly created_at?: string
  readonly created_by?: string
  /** Only for a key with more than one version: the id of the newest (= `id`). */
  readonly current_version?: string
  /** Only for a key with more than one version: every version, oldest first. */
  readonly versions?: readonly KeyVersionInfo[]
}

/**
 * GET /v1/key/describe/:name — MinIO calls it every few seconds, so it is served from the key
 * cache like encrypt and decrypt. A missing key is 404 `key does not exist`.
 */
export async function describeKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const key = await s.keys.get(name)
  // created_* say when the key was made (its first version); id is the version that seals now.
  const first = key.versions[0] as SecretKey
  const body: DescribeKeyResponse = {
    name,
    id: key.newest.id,
    algorithm: key.newest.cipher,
    ...(first.createdAt === undefined ? {} : { created_at: first.createdAt }),
    ...(first.createdBy === undefined ? {} : { created_by: first.createdBy }),
    // A key never rotated is described exactly as before versions existed.
    ...(key.versions.length === 1 ? {} : { current_version: key.newest.id, versions: key.versions.map(versionInfo) }),
  }
  return json(200, body)
}

function versionInfo(v: SecretKey): KeyVersionInfo {
  return {
    id: v.id,
    ...(v.createdAt === undefined ? {} : { created_at: v.createdAt }),
    ...(v.createdBy === undefined ? {} : { created_by: v.createdBy }),
  }
}

/**
 * PUT /v1/key/hmac/:name — `{"message":b64}` → `{"hmac":b64}`: HMAC-SHA256 of the message under
 * the key's HMAC key (its own, or the one derived from the master key; see SecretKey.hmac). A
 * missing or null message is the empty message (kes-go sends a nil one as null).
 */
export async function hmacKey(req: ApiRequest, s: ServerState): Promise<Reply> {
  const [name] = req.args as [string]
  const body = parseJsonObject(await req.readBody())
  const message = optionalBase64(body, 'message') ?? Buffer.alloc(0)
  const key = await s.keys.get(name)
  const mac = key.hmac(message)
  message.fill(0)
  return json(200, { hmac: encodeBase64(mac) })
}
