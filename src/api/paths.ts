/** A request path, percent-decoded once and split into segments. */
export interface ParsedPath {
  /**
   * Decoded segments after the leading `/`: `/v1/key/create/a` → ['v1', 'key',
   * 'create', 'a']. A segment whose percent-encoding is malformed stays as sent.
   */
  readonly segments: readonly string[]
  /**
   * True when the path has what a router must never guess about: malformed
   * percent-encoding, `//`, `.`/`..` segments or encoded slashes. The router
   * answers 400 for it, after deciding 404 and 405 (docs/api.md, "Requests and responses"), and
   * never redirects, because KES clients do not follow redirects.
   */
  readonly malformed: boolean
}

/**
 * Splits a request target into decoded path segments. The query string is
 * dropped (KES ignores it, so a `?` in a list pattern arrives as `%3F`), and
 * the absolute form (`https://host/path`, RFC 9112 §3.2.2) is accepted.
 */
export function parsePath(target: string): ParsedPath {
  const q = target.indexOf('?')
  let raw = q < 0 ? target : target.slice(0, q)
  if (raw.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = /^https?:\/\/[^/]*/i.exec(raw)
    if (absolute === null) return { segments: [raw], malformed: true }
    raw = raw.slice(absolute[0].length) || '/'
  }
  const parts = raw.slice(1).split('/')
  const last = parts.length - 1
  const segments: string[] = new Array<string>(parts.length)
  let malformed = false
  for (let i = 0; i <= last; i++) {
    const part = parts[i] as string
    // Only the last segment may be empty: `/v1/key/list/` means "no pattern".
    if (part === '' && i !== last) malformed = true
    const seg = part.indexOf('%') < 0 ? part : decodeSegment(part)
    if (seg === undefined) {
      malformed = true
      segments[i] = part
      continue
    }
    if (seg === '.' || seg === '..' || seg.includes('/')) malformed = true
    segments[i] = seg
  }
  return { segments, malformed }
}

function decodeSegment(part: string): string | undefined {
  try {
    return decodeURIComponent(part)
  } catch {
    return undefined
  }
}
