import { compileGlob, hasGlobMeta, isValidGlob } from '../auth/glob.js'
import { ErrInvalidPattern } from './errors.js'

/** Decides which names a list call returns. */
export type NameFilter = (name: string) => boolean

const ALL: NameFilter = () => true

/** Throws ErrInvalidPattern for a list pattern that is a malformed glob. */
export function checkListPattern(pattern: string): void {
  if (hasGlobMeta(pattern) && !isValidGlob(pattern)) throw ErrInvalidPattern
}

/**
 * A list pattern (docs/api.md, "Names and list patterns"): empty or `*` lists everything; a
 * pattern with glob characters uses the policy glob rules; anything else is a
 * prefix, because current clients send prefixes and a seed-era exact name is
 * a prefix of itself.
 */
export function listFilter(pattern: string): NameFilter {
  if (pattern === '' || pattern === '*') return ALL
  if (hasGlobMeta(pattern)) {
    const glob = compileGlob(pattern)
    return (name) => glob.matches(name)
  }
  return (name) => name.startsWith(pattern)
}
