/**
 * Glob patterns with the semantics of Go's `path.Match`, which KES (up to 0.22) uses for policy
 * rules and list patterns. Matching works on the UTF-8 bytes of the input, exactly as Go does, so
 * even Go's quirks (a `*` may stop inside a multi-byte character) come out the same.
 *
 * Every string is turned into a "byte string" (one UTF-16 unit per UTF-8 byte, values 0-255).
 * ASCII strings already are byte strings, so the common case needs no conversion or allocation.
 */

/** Thrown by {@link compileGlob} for a malformed pattern (Go's `ErrBadPattern`). */
export class GlobSyntaxError extends Error {
  /** The malformed pattern as given. */
  readonly pattern: string
  constructor(pattern: string) {
    super(`syntax error in pattern '${pattern}'`)
    this.name = 'GlobSyntaxError'
    this.pattern = pattern
  }
}

/** A compiled pattern; `matches` is safe to call on the request hot path. */
export interface Glob {
  readonly pattern: string
  /** Reports whether the WHOLE string `s` matches the pattern. Never throws. */
  matches(s: string): boolean
}

const SLASH = 0x2f
const RUNE_ERROR = 0xfffd

const ItemKind = { Literal: 0, AnyChar: 1, Class: 2 } as const

interface LiteralItem { readonly kind: typeof ItemKind.Literal; readonly bytes: string }
interface AnyCharItem { readonly kind: typeof ItemKind.AnyChar }
interface ClassItem {
  readonly kind: typeof ItemKind.Class
  readonly negated: boolean
  /** Inclusive code point ranges as flat pairs: lo0, hi0, lo1, hi1, ... */
  readonly ranges: readonly number[]
}
type Item = LiteralItem | AnyCharItem | ClassItem

/** Stars followed by a star-free run of items, as in Go's chunk-based matcher. */
interface Chunk {
  readonly star: boolean
  readonly items: readonly Item[]
}

const ANY_CHAR: AnyCharItem = Object.freeze({ kind: ItemKind.AnyChar })

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

/** UTF-8 bytes of `s` as a byte string; lone surrogates become U+FFFD like any UTF-8 encoder. */
function toByteString(s: string): string {
  return isAscii(s) ? s : Buffer.from(s, 'utf8').toString('latin1')
}

/**
 * Decodes the UTF-8 sequence at `i` (bounded by `end`), like Go's `utf8.DecodeRuneInString`:
 * an invalid or truncated sequence decodes as U+FFFD with width 1.
 * Returns `rune * 8 + width` so the hot path needs no object.
 */
function decodeRune(b: string, i: number, end: number): number {
  const b0 = b.charCodeAt(i)
  if (b0 < 0x80) return b0 * 8 + 1
  const invalid = RUNE_ERROR * 8 + 1
  if (b0 < 0xc2 || b0 > 0xf4) return invalid
  const width = b0 < 0xe0 ? 2 : b0 < 0xf0 ? 3 : 4
  if (i + width > end) return invalid
  const b1 = b.charCodeAt(i + 1)
  // The second byte's allowed range excludes overlong forms, surrogates and values past U+10FFFF.
  let lo = 0x80
  let hi = 0xbf
  if (b0 === 0xe0) lo = 0xa0
  else if (b0 === 0xed) hi = 0x9f
  else if (b0 === 0xf0) lo = 0x90
  else if (b0 === 0xf4) hi = 0x8f
  if (b1 < lo || b1 > hi) return invalid
  if (width === 2) return (((b0 & 0x1f) << 6) | (b1 & 0x3f)) * 8 + 2
  const b2 = b.charCodeAt(i + 2)
  if (b2 < 0x80 || b2 > 0xbf) return invalid
  if (width === 3) return (((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f)) * 8 + 3
  const b3 = b.charCodeAt(i + 3)
  if (b3 < 0x80 || b3 > 0xbf) return invalid
  return (((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f)) * 8 + 4
}

/** Where the chunk starting at `start` ends: at a `*` outside a `[...]`, or at the end. */
function chunkEnd(p: string, start: number): number {
  let inClass = false
  let i = start
  for (; i < p.length; i++) {
    const c = p[i]
    if (c === '\\') {
      if (i + 1 < p.length) i++
    } else if (c === '[') {
      inClass = true
    } else if (c === ']') {
      inClass = false
    } else if (c === '*' && !inClass) {
      break
    }
  }
  return i
}

class PatternParser {
  readonly #p: string
  readonly #end: number
  #i: number
  #literal = ''

  constructor(p: string, start: number, end: number) {
    this.#p = p
    this.#i = start
    this.#end = end
  }

  /** Parses the chunk into items; throws `Error` (caller wraps it) when malformed. */
  parse(): Item[] {
    const items: Item[] = []
    const flush = (): void => {
      if (this.#literal !== '') items.push({ kind: ItemKind.Literal, bytes: this.#literal })
      this.#literal = ''
    }
    while (this.#i < this.#end) {
      const c = this.#p[this.#i]
      if (c === '[') {
        flush()
        this.#i++
        items.push(this.#parseClass())
      } else if (c === '?') {
        flush()
        items.push(ANY_CHAR)
        this.#i++
      } else {
        if (c === '\\') {
          this.#i++
          if (this.#i >= this.#end) throw new Error('trailing backslash')
        }
        // Literals compare byte by byte, so a multi-byte character is just several literal bytes.
        this.#literal += this.#p[this.#i]
        this.#i++
      }
    }
    flush()
    return items
  }

  #parseClass(): ClassItem {
    let negated = false
    if (this.#i < this.#end && this.#p[this.#i] === '^') {
      negated = true
      this.#i++
    }
    const ranges: number[] = []
    for (;;) {
      // A ']' right after '[' or '[^' is not a close: that is the malformed empty class.
      if (this.#i < this.#end && this.#p[this.#i] === ']' && ranges.length > 0) {
        this.#i++
        return { kind: ItemKind.Class, negated, ranges }
      }
      const lo = this.#classChar()
      let hi = lo
      if (this.#p[this.#i] === '-') {
        this.#i++
        hi = this.#classChar()
      }
      ranges.push(lo, hi)
    }
  }

  /** One (possibly escaped) class character; like Go, something must follow it inside the chunk. */
  #classChar(): number {
    const c = this.#p[this.#i]
    if (this.#i >= this.#end || c === '-' || c === ']') throw new Error('bad class character')
    if (c === '\\') {
      this.#i++
      if (this.#i >= this.#end) throw new Error('trailing backslash in class')
    }
    const decoded = decodeRune(this.#p, this.#i, this.#end)
    const rune = decoded >> 3
    const width = decoded & 7
    if (rune === RUNE_ERROR && width === 1) throw new Error('invalid utf-8 in class')
    this.#i += width
    if (this.#i >= this.#end) throw new Error('unclosed class')
    return rune
  }
}

function parsePattern(pattern: string): Chunk[] {
  const p = toByteString(pattern)
  const chunks: Chunk[] = []
  let i = 0
  while (i < p.length) {
    let star = false
    while (i < p.length && p[i] === '*') {
      star = true
      i++
    }
    const end = chunkEnd(p, i)
    let items: Item[]
    try {
      items = new PatternParser(p, i, end).parse()
    } catch {
      throw new GlobSyntaxError(pattern)
    }
    chunks.push({ star, items })
    i = end
  }
  return chunks
}

/** Matches `items` at position `pos` of byte string `s`; returns the end position or -1. */
function matchChunk(items: readonly Item[], s: string, pos: number): number {
  let i = pos
  for (const item of items) {
    if (item.kind === ItemKind.Literal) {
      if (!s.startsWith(item.bytes, i)) return -1
      i += item.bytes.length
      continue
    }
    if (i >= s.length) return -1
    const b = s.charCodeAt(i)
    if (item.kind === ItemKind.AnyChar) {
      if (b === SLASH) return -1
      i += b < 0x80 ? 1 : decodeRune(s, i, s.length) & 7
      continue
    }
    let rune = b
    let width = 1
    if (b >= 0x80) {
      const decoded = decodeRune(s, i, s.length)
      rune = decoded >> 3
      width = decoded & 7
    }
    let found = false
    const r = item.ranges
    for (let k = 0; k < r.length; k += 2) {
      if ((r[k] ?? 0) <= rune && rune <= (r[k + 1] ?? -1)) {
        found = true
        break
      }
    }
    if (found === item.negated) return -1
    i += width
  }
  return i
}

/**
 * Go's algorithm: each chunk is matched at the leftmost position its stars allow (never skipping
 * over '/'), without backtracking into earlier chunks; only the last chunk must reach the end.
 */
function matchChunks(chunks: readonly Chunk[], s: string): boolean {
  let pos = 0
  next: for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c]
    if (chunk === undefined) break
    const last = c === chunks.length - 1
    if (chunk.star && chunk.items.length === 0) return s.indexOf('/', pos) < 0
    const end = matchChunk(chunk.items, s, pos)
    if (end >= 0 && (end === s.length || !last)) {
      pos = end
      continue
    }
    if (chunk.star) {
      for (let skip = pos; skip < s.length && s.charCodeAt(skip) !== SLASH; skip++) {
        const e = matchChunk(chunk.items, s, skip + 1)
        if (e < 0 || (last && e !== s.length)) continue
        pos = e
        continue next
      }
    }
    return false
  }
  return pos === s.length
}

class CompiledGlob implements Glob {
  readonly pattern: string
  readonly #chunks: readonly Chunk[]
  /** Set when the pattern has no meta characters: then matching is string equality. */
  readonly #exact: string | undefined
  /**
   * The ASCII literal every match must start with ('' if none). ASCII bytes are the same in the
   * UTF-16 input, so most non-matching paths are refused before any conversion.
   */
  readonly #prefix: string

  constructor(pattern: string) {
    this.pattern = pattern
    this.#chunks = parsePattern(pattern)
    this.#exact = hasGlobMeta(pattern) ? undefined : pattern
    const first = this.#chunks[0]
    const item = first !== undefined && !first.star ? first.items[0] : undefined
    this.#prefix = item?.kind === ItemKind.Literal && isAscii(item.bytes) ? item.bytes : ''
    Object.freeze(this)
  }

  matches(s: string): boolean {
    if (this.#exact !== undefined) return s === this.#exact
    if (!s.startsWith(this.#prefix)) return false
    return matchChunks(this.#chunks, toByteString(s))
  }
}

/**
 * Compiles a Go `path.Match` pattern once for fast repeated matching.
 * Throws `GlobSyntaxError` when the pattern is malformed (in current Go every malformed
 * pattern is an error, whatever it is matched against) and `TypeError` for a non-string.
 */
export function compileGlob(pattern: string): Glob {
  if (typeof pattern !== 'string') throw new TypeError('auth/glob: pattern must be a string')
  return new CompiledGlob(pattern)
}

/** Reports whether `pattern` is a well-formed pattern. Never throws. */
export function isValidGlob(pattern: string): boolean {
  if (typeof pattern !== 'string') return false
  try {
    parsePattern(pattern)
    return true
  } catch {
    return false
  }
}

/** Reports whether `s` contains a glob meta character: `*`, `?`, `[` or `\`. Never throws. */
export function hasGlobMeta(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    // '*' 0x2a, '?' 0x3f, '[' 0x5b, '\' 0x5c
    if (c === 0x2a || c === 0x3f || c === 0x5b || c === 0x5c) return true
  }
  return false
}
