// The golden KES key files (test/fixtures/kes-vectors/keystore-fs) and the list of what each
// holds (its expected.json, described in that folder's README), read and checked in one place so
// every test sees the same typed entries, and a broken fixture fails loudly instead of giving
// tests undefined fields.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { Cipher } from '../../src/crypto/secret-key.js'
import { KES_VECTORS } from './fixtures.js'

/** The KES key directories, one per producer (v0.7.2/, v0.17.6/, ..., kes-unit-test/). */
export const KES_KEY_FILES = path.join(KES_VECTORS, 'keystore-fs')

/** The list of every key file and what a loader must read from it. */
export const KES_KEY_FILES_EXPECTED = path.join(KES_KEY_FILES, 'expected.json')

/** A decrypt request that only succeeds with the right key bytes and cipher (all base64). */
export interface KesKeyFileSample {
  context: string
  plaintext: string
  ciphertext: string
}

/** One entry of expected.json: one key file. */
export interface KesKeyFileVector {
  /** The producer directory, e.g. `v0.17.6` or `kes-unit-test`. */
  version: string
  /** The path relative to KES_KEY_FILES: `${version}/${name}`. */
  file: string
  /** The key name (= the file name). */
  name: string
  /** Base64 of the key bytes of an imported key; null for a key the server generated. */
  key: string | null
  cipher: Cipher
  created_at?: string
  created_by?: string
  /** Only in the protobuf format: the separate HMAC key stored in the file (base64). */
  hmac_key?: string
  /** Made by the KES server that wrote the file; missing for kes-unit-test/. */
  sample?: KesKeyFileSample
  /** The same check in the raw ciphertext format; present for every file. */
  raw_sample: KesKeyFileSample
  note?: string
}

const CIPHERS: readonly Cipher[] = ['AES256', 'ChaCha20']
const VECTOR_FIELDS = new Set(['version', 'file', 'name', 'key', 'cipher', 'created_at', 'created_by', 'hmac_key', 'sample', 'raw_sample', 'note'])
const SAMPLE_FIELDS = ['context', 'plaintext', 'ciphertext'] as const

/** Every entry of expected.json, checked against KesKeyFileVector. */
export async function readKesKeyFileVectors(): Promise<readonly KesKeyFileVector[]> {
  return parseKesKeyFileVectors(await readFile(KES_KEY_FILES_EXPECTED, 'utf8'), KES_KEY_FILES_EXPECTED)
}

/** Parses the text of expected.json; throws naming `source` and the entry that does not match. */
export function parseKesKeyFileVectors(text: string, source: string): KesKeyFileVector[] {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what} (see the README next to it)`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    return fail(`not JSON: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (!Array.isArray(parsed)) return fail('expected a JSON array of key file entries')
  return parsed.map((entry: unknown, i) => parseVector(entry, (what) => fail(`entry ${i}: ${what}`)))
}

function parseVector(entry: unknown, fail: (what: string) => never): KesKeyFileVector {
  if (!isRecord(entry)) return fail('expected an object')
  for (const field of Object.keys(entry)) if (!VECTOR_FIELDS.has(field)) fail(`unknown field "${field}"`)
  const string = (field: string): string => {
    const value = entry[field]
    return typeof value === 'string' ? value : fail(`"${field}" must be a string`)
  }
  const optionalString = (field: string): string | undefined => (entry[field] === undefined ? undefined : string(field))
  const sample = (field: string): KesKeyFileSample => {
    const value = entry[field]
    if (!isRecord(value)) return fail(`"${field}" must be an object`)
    const part = (f: (typeof SAMPLE_FIELDS)[number]): string => {
      const text = value[f]
      return typeof text === 'string' ? text : fail(`"${field}.${f}" must be a string`)
    }
    for (const f of Object.keys(value)) if (!(SAMPLE_FIELDS as readonly string[]).includes(f)) fail(`unknown field "${field}.${f}"`)
    return { context: part('context'), plaintext: part('plaintext'), ciphertext: part('ciphertext') }
  }

  const version = string('version')
  const name = string('name')
  const file = string('file')
  if (file !== `${version}/${name}`) fail(`"file" must be "${version}/${name}", not "${file}"`)
  const key = entry['key'] === null ? null : string('key')
  const cipherName = string('cipher')
  const cipher = CIPHERS.find((c) => c === cipherName) ?? fail(`"cipher" must be one of ${CIPHERS.join(', ')}, not "${cipherName}"`)
  const vector: KesKeyFileVector = { version, file, name, key, cipher, raw_sample: sample('raw_sample') }
  // Optional fields are left out when absent (not set to undefined), as JSON.parse gave them.
  const createdAt = optionalString('created_at')
  if (createdAt !== undefined) vector.created_at = createdAt
  const createdBy = optionalString('created_by')
  if (createdBy !== undefined) vector.created_by = createdBy
  const hmacKey = optionalString('hmac_key')
  if (hmacKey !== undefined) vector.hmac_key = hmacKey
  if (entry['sample'] !== undefined) vector.sample = sample('sample')
  const note = optionalString('note')
  if (note !== undefined) vector.note = note
  return vector
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
