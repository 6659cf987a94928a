// Parsing of response bodies: the JSON fields of single answers, the name and
// identity lists in every form KES servers of each generation sent, and the
// KesError of a failed answer. Pure functions of a body; no I/O.
import type { Buffer } from 'node:buffer'
import { STATUS_CODES } from 'node:http'
import { KesError } from '../api/errors.js'
import { decodeBase64Strict } from '../crypto/base64.js'
import type { ApiRoute, IdentityDescription, KeyDescription, PolicyDescription, SelfDescription, ServerStatus } from './api.js'
import { InvalidResponseError, isRecord } from './call.js'
import type { Call } from './call.js'

/** The KesError for a non-2xx answer: the server's `{"message"}`, else its text, else the status text. */
export function errorFromBody(status: number, body: Buffer): KesError {
  const text = body.toString('utf8')
  try {
    const value: unknown = JSON.parse(text)
    if (isRecord(value) && typeof value['message'] === 'string') return new KesError(status, value['message'])
  } catch {
    // not JSON: the text itself is the best message there is
  }
  const trimmed = text.trim()
  return new KesError(status, trimmed !== '' ? trimmed.slice(0, 1_000) : (STATUS_CODES[status] ?? `status ${status}`))
}

/**
 * The JSON documents of a body: the whole body when it is one JSON value
 * (possibly pretty-printed), otherwise one per non-empty nd-json line.
 */
function jsonDocuments(call: Call, body: Buffer): unknown[] {
  const text = body.toString('utf8')
  if (text.trim() === '') return []
  try {
    return [JSON.parse(text)]
  } catch {
    // nd-json with more than one line
  }
  const docs: unknown[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    try {
      docs.push(JSON.parse(line))
    } catch {
      throw new InvalidResponseError(call, 'body is neither JSON nor nd-json')
    }
  }
  return docs
}

/**
 * The names of a key or policy list, in every form KES servers sent, and the next page's cursor.
 * Throws InvalidResponseError for a body that is not such a list.
 */
export function parseNameList(call: Call, body: Buffer): { names: string[]; continueAt: string } {
  const names: string[] = []
  let continueAt = ''
  for (const doc of jsonDocuments(call, body)) {
    if (Array.isArray(doc)) {
      names.push(...doc.map((n: unknown) => nameOf(call, n)))
    } else if (isRecord(doc) && Array.isArray(doc['names'])) {
      names.push(...doc['names'].map((n: unknown) => nameOf(call, n)))
      if (typeof doc['continue_at'] === 'string') continueAt = doc['continue_at']
    } else if (isRecord(doc)) {
      names.push(nameOf(call, doc['name'] ?? doc['Name']))
    } else {
      throw new InvalidResponseError(call, 'list entry is not a name')
    }
  }
  return { names, continueAt }
}

function nameOf(call: Call, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidResponseError(call, 'list entry is not a name')
  return value
}

/**
 * The identity → policy map of an identity list, in every form KES servers sent ('' where
 * the server does not say the policy). Throws InvalidResponseError for a body that is not such a list.
 */
export function parseIdentityList(call: Call, body: Buffer): Record<string, string> {
  const pairs: [string, string][] = []
  for (const doc of jsonDocuments(call, body)) {
    if (!isRecord(doc)) throw new InvalidResponseError(call, 'identity list entry is not an object')
    if (typeof doc['identity'] === 'string') {
      const policy = doc['policy']
      pairs.push([doc['identity'], typeof policy === 'string' ? policy : ''])
    } else if (Array.isArray(doc['identities'])) {
      for (const id of doc['identities']) pairs.push([nameOf(call, id), ''])
    } else {
      for (const [identity, policy] of Object.entries(doc)) {
        if (typeof policy !== 'string') throw new InvalidResponseError(call, 'identity list maps an identity to a non-string')
        pairs.push([identity, policy])
      }
    }
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const out: Record<string, string> = {}
  // defineProperty, not assignment: an identity named `__proto__` stays a plain entry.
  for (const [identity, policy] of pairs) Object.defineProperty(out, identity, { value: policy, enumerable: true, writable: true, configurable: true })
  return out
}

/**
 * A policy's allow or deny rules: a list (seed, OpenKES), a map of rule objects (current KES), or absent.
 * Throws InvalidResponseError for anything else.
 */
export function ruleList(call: Call, value: unknown, what: string): string[] {
  if (value === undefined || value === null) return []
  if (Array.isArray(value)) return value.map((r: unknown) => {
    if (typeof r !== 'string') throw new InvalidResponseError(call, `${what} rule is not a string`)
    return r
  })
  if (isRecord(value)) return Object.keys(value)
  throw new InvalidResponseError(call, `${what} rules are not a list`)
}

/** The body as a JSON object. Throws InvalidResponseError when it is not one. */
export function jsonObject(call: Call, body: Buffer): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    throw new InvalidResponseError(call, 'body is not JSON')
  }
  if (!isRecord(value)) throw new InvalidResponseError(call, 'body is not a JSON object')
  return value
}

/** A string field of a JSON object. Throws InvalidResponseError when it is missing or not a string. */
export function stringField(call: Call, body: Record<string, unknown>, field: string): string {
  const value = body[field]
  if (typeof value !== 'string') throw new InvalidResponseError(call, `'${field}' is not a string`)
  return value
}

/** A base64 field of a JSON object, decoded. Throws InvalidResponseError when it is missing or not strict base64. */
export function bytesField(call: Call, body: Record<string, unknown>, field: string): Buffer {
  const bytes = decodeBase64Strict(stringField(call, body, field))
  if (bytes === undefined) throw new InvalidResponseError(call, `'${field}' is not base64`)
  return bytes
}

/** An optional string field: undefined when absent or null. Throws InvalidResponseError for another type. */
function optionalString(call: Call, body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new InvalidResponseError(call, `'${field}' is not a string`)
  return value
}

/** A number field, 0 when absent or null (older servers leave some out). Throws InvalidResponseError for another type. */
function numberField(call: Call, body: Record<string, unknown>, field: string): number {
  const value = body[field]
  if (value === undefined || value === null) return 0
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidResponseError(call, `'${field}' is not a number`)
  return value
}

/** A boolean field, false when absent or null. Throws InvalidResponseError for another type. */
function booleanField(call: Call, body: Record<string, unknown>, field: string): boolean {
  const value = body[field]
  if (value === undefined || value === null) return false
  if (typeof value !== 'boolean') throw new InvalidResponseError(call, `'${field}' is not a boolean`)
  return value
}

// Creation times and creators are left out when unknown; KES sends Go's zero
// time and an empty identity for them, which mean the same.
function creation(call: Call, body: Record<string, unknown>): { created_at?: string; created_by?: string } {
  const at = optionalString(call, body, 'created_at')
  const by = optionalString(call, body, 'created_by')
  return {
    ...(at !== undefined && at !== '' && !at.startsWith('0001-01-01') ? { created_at: at } : {}),
    ...(by !== undefined && by !== '' ? { created_by: by } : {}),
  }
}

/** A `/v1/status` answer. Throws InvalidResponseError when it lacks a version or has fields of the wrong type. */
export function parseServerStatus(call: Call, body: Buffer): ServerStatus {
  const o = jsonObject(call, body)
  const unreachable = booleanField(call, o, 'keystore_unreachable') || booleanField(call, o, 'keystore_unavailable')
  return {
    version: stringField(call, o, 'version'),
    os: optionalString(call, o, 'os') ?? '',
    arch: optionalString(call, o, 'arch') ?? '',
    uptime: numberField(call, o, 'uptime'),
    num_cpu: numberField(call, o, 'num_cpu'),
    num_cpu_used: numberField(call, o, 'num_cpu_used'),
    mem_heap_used: numberField(call, o, 'mem_heap_used'),
    mem_stack_used: numberField(call, o, 'mem_stack_used'),
    ...(unreachable
      ? { keystore_unavailable: true, keystore_unreachable: true }
      : { keystore_latency: numberField(call, o, 'keystore_latency') }),
  }
}

/** A `/v1/api` answer: a JSON array of routes. Throws InvalidResponseError for anything else. */
export function parseApiList(call: Call, body: Buffer): ApiRoute[] {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    throw new InvalidResponseError(call, 'body is not JSON')
  }
  if (!Array.isArray(value)) throw new InvalidResponseError(call, 'body is not a JSON array')
  return value.map((entry: unknown) => {
    if (!isRecord(entry)) throw new InvalidResponseError(call, 'route is not an object')
    return {
      method: stringField(call, entry, 'method'),
      path: stringField(call, entry, 'path'),
      max_body: numberField(call, entry, 'max_body'),
      timeout: numberField(call, entry, 'timeout'),
    }
  })
}

/** A `/v1/key/describe` answer. Throws InvalidResponseError without a name or with fields of the wrong type. */
export function parseKeyDescription(call: Call, body: Buffer): KeyDescription {
  const o = jsonObject(call, body)
  return {
    name: stringField(call, o, 'name'),
    id: optionalString(call, o, 'id') ?? '',
    algorithm: optionalString(call, o, 'algorithm') ?? '',
    ...creation(call, o),
  }
}

/** A `/v1/policy/describe` answer. Throws InvalidResponseError without a name. */
export function parsePolicyDescription(call: Call, body: Buffer): PolicyDescription {
  const o = jsonObject(call, body)
  return { name: stringField(call, o, 'name'), ...creation(call, o) }
}

/** A `/v1/identity/describe` answer. Throws InvalidResponseError for fields of the wrong type. */
export function parseIdentityDescription(call: Call, body: Buffer): IdentityDescription {
  const o = jsonObject(call, body)
  return { admin: booleanField(call, o, 'admin'), policy: optionalString(call, o, 'policy') ?? '', ...creation(call, o) }
}

/**
 * A `/v1/identity/self/describe` answer: `policy` as the policy's name with
 * `allow`/`deny` beside it (lists, or maps of pattern → rule), or, as some
 * KES versions sent it, `policy_name` with `policy: {"allow","deny"}`.
 * Throws InvalidResponseError without an identity or for fields of the wrong type.
 */
export function parseSelfDescription(call: Call, body: Buffer): SelfDescription {
  const o = jsonObject(call, body)
  const inline = isRecord(o['policy']) ? o['policy'] : undefined
  const policy = inline !== undefined ? (optionalString(call, o, 'policy_name') ?? '') : (optionalString(call, o, 'policy') ?? '')
  const rules = inline ?? o
  return {
    identity: stringField(call, o, 'identity'),
    admin: booleanField(call, o, 'admin'),
    policy,
    allow: ruleList(call, rules['allow'], 'allow'),
    deny: ruleList(call, rules['deny'], 'deny'),
    ...creation(call, o),
  }
}

/** One version of a key, as `describe` shows it (OpenKES). */
export interface KeyVersionInfo {
  readonly id: string
  readonly createdAt: string | undefined
  readonly createdBy: string | undefined
}

/**
 * The versions of a key from a `describe` answer: its `versions` list (a rotated key on
 * OpenKES), or the key itself as its only version. Throws InvalidResponseError.
 */
export function parseKeyVersions(call: Call, body: Record<string, unknown>): KeyVersionInfo[] {
  const optional = (o: Record<string, unknown>, f: string): string | undefined => (typeof o[f] === 'string' ? (o[f] as string) : undefined)
  const one = (o: Record<string, unknown>): KeyVersionInfo => ({ id: stringField(call, o, 'id'), createdAt: optional(o, 'created_at'), createdBy: optional(o, 'created_by') })
  const list = body['versions']
  if (list === undefined) return [one(body)]
  if (!Array.isArray(list)) throw new InvalidResponseError(call, "'versions' is not a list")
  return list.map((v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidResponseError(call, 'a version is not an object')
    return one(v as Record<string, unknown>)
  })
}

/** One kept deletion, as `GET /v1/key/deleted/:pattern` lists it (OpenKES). */
export interface DeletedKeyInfo {
  readonly name: string
  readonly deletedAt: string
  readonly deletedBy: string | undefined
}

/** The nd-json lines of a deleted-keys listing (trailer lines skipped). Throws InvalidResponseError. */
export function parseDeletedList(call: Call, body: Buffer): DeletedKeyInfo[] {
  const out: DeletedKeyInfo[] = []
  for (const doc of jsonDocuments(call, body)) {
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InvalidResponseError(call, 'not a list of deleted keys')
    const o = doc as Record<string, unknown>
    if (typeof o['name'] !== 'string') continue // a trailer
    out.push({ name: o['name'], deletedAt: stringField(call, o, 'deleted_at'), deletedBy: typeof o['deleted_by'] === 'string' ? o['deleted_by'] : undefined })
  }
  return out
}
