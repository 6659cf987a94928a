import { compileGlob } from './glob.js'
import type { Glob } from './glob.js'

/** The rules of a policy: Go `path.Match` patterns over the decoded request path. */
export interface PolicyRules {
  readonly allow: readonly string[]
  readonly deny: readonly string[]
}

/**
 * A compiled, immutable policy. Checking a path is a pure function of (policy, path): deny
 * rules first, then allow rules, no I/O.
 */
export class Policy {
  /** The allow patterns, in the order given. */
  readonly allow: readonly string[]
  /** The deny patterns, in the order given. */
  readonly deny: readonly string[]
  readonly #allow: readonly Glob[]
  readonly #deny: readonly Glob[]

  /**
   * Compiles every pattern once. Throws `GlobSyntaxError` for the first malformed pattern
   * (deny rules are compiled after allow rules).
   */
  constructor(rules: PolicyRules) {
    this.allow = Object.freeze([...rules.allow])
    this.deny = Object.freeze([...rules.deny])
    this.#allow = Object.freeze(this.allow.map(compileGlob))
    this.#deny = Object.freeze(this.deny.map(compileGlob))
    Object.freeze(this)
  }

  /** Deny rules first: any deny match refuses; then any allow match permits; otherwise refuse. */
  allows(path: string): boolean {
    for (const rule of this.#deny) if (rule.matches(path)) return false
    for (const rule of this.#allow) if (rule.matches(path)) return true
    return false
  }
}
