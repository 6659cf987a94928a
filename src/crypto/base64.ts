import { Buffer } from 'node:buffer'

/**
 * Decodes standard, padded base64 (`A-Z a-z 0-9 + /`, `=` padding, length a multiple of 4).
 * Returns `undefined` for anything else: the URL-safe alphabet, missing padding, whitespace,
 * stray characters, or non-zero bits after the last byte (which no encoder writes). The empty
 * string decodes to an empty buffer. The result is a fresh `Buffer.alloc`'d buffer, never pooled
 * memory, since it may hold key bytes. Never throws.
 */
export function decodeBase64Strict(s: string): Buffer | undefined {
  if (s.length % 4 !== 0) return undefined
  const padding = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0
  const decoded = Buffer.alloc((s.length / 4) * 3 - padding)
  // Node's decoder is lenient (it skips whitespace and bad characters and accepts the URL-safe
  // alphabet), so only canonical input survives the re-encoding. This is several times faster
  // than a regular expression over the string.
  decoded.write(s, 'base64')
  if (decoded.toString('base64') !== s) return undefined
  return decoded
}

/**
 * `decodeBase64Strict` for values that are not secret (ciphertexts and their parts): the same
 * strictness, but the result may live in Node's shared buffer pool, which saves an allocation
 * per call on the decrypt path. Never use it for plaintexts or keys.
 */
export function decodePublicBase64Strict(s: string): Buffer | undefined {
  if (s.length % 4 !== 0) return undefined
  const decoded = Buffer.from(s, 'base64')
  if (decoded.toString('base64') !== s) return undefined
  return decoded
}

/** Encodes bytes as standard, padded base64. */
export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
}
