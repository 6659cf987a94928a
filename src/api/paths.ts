import { ErrInvalidPath } from './errors.js'

/** A request path, percent-decoded once and split into segments. */
export interface ParsedPath {
  /** Decoded segments after the leading `/`: `/v1/key/create/a` → ['v1', 'key', 'create', 'a']. */
  readonly segments: readonly string[]
}

/**
 * Splits the raw request target into decoded path segments and drops the
 * query string (KES ignores it, so a `?` in a list pattern arrives as `%3F`).
 * Throws ErrInvalidPath for what a router must never guess about: malformed
 * percent-encoding, `//`, `.`/`..` segments and encoded slashes. We answer
 * 400 instead of redirecting, because KES clients do not follow redirects.
 */
export function parsePath(target: string): ParsedPath {
  const q = target.indexOf('?')
  const raw = q < 0 ? target : target.slice(0, q)
  if (raw.charCodeAt(0) !== 0x2f /* / */) throw ErrInvalidPath
  const parts = raw.slice(1).split('/')
  const last = parts.length - 1
  const segments: string[] = new Array<string>(parts.length)
  for (let i = 0; i <= last; i++) {
    const part = parts[i] as string
    // Only the last segment may be empty: `/v1/key/list/` means "no pattern".
    if (part === '' && i !== last) throw ErrInvalidPath
    const seg = part.indexOf('%') < 0 ? part : decodeSegment(part)
    if (seg === '.' || seg === '..' || seg.includes('/')) throw ErrInvalidPath
    segments[i] = seg
  }
  return { segments }
}

function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw ErrInvalidPath
  }
}
