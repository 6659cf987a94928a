// One regex each: no allocation, and the length bound is part of the pattern. Only ASCII is
// allowed, so 255 characters are 255 bytes (docs/api.md, "Names and list patterns").
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$/
const IDENTITY = /^[0-9a-f]{64}$/

/**
 * Reports whether `s` is a valid key or policy name: 1–255 bytes of `A-Z a-z 0-9 _ - .`,
 * not starting with `.`. Never throws (a non-string is invalid).
 */
export function isValidName(s: string): boolean {
  return typeof s === 'string' && NAME.test(s)
}

/**
 * Reports whether `s` is an identity as it appears in paths and configs: exactly 64 lowercase
 * hex characters (a SHA-256). Never throws (a non-string is invalid).
 */
export function isValidIdentity(s: string): boolean {
  return typeof s === 'string' && IDENTITY.test(s)
}
