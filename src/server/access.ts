import {
  ErrIdentityIsRoot,
  ErrIdentityNotFound,
  ErrPolicyNotFound,
  ErrSelfAssign,
  ErrStoreUnavailable,
  badGateway,
  definedInConfig,
} from '../api/errors.js'
import { Policy } from '../auth/policy.js'
import type { PolicyRules } from '../auth/policy.js'
import type { ConfigPolicy } from '../config/validate.js'
import { ExpiringCache } from '../keystore/cache.js'
import type { KeyStore } from '../keystore/keystore.js'
import type { ChangeEvent } from '../keystore/change-feed.js'
import type { ErrorLog } from '../log/error-log.js'
import { storeFailure } from './store-failure.js'

/**
 * The form a policy was written in, which is the form it is read back in:
 * `allow-deny` (`{"allow":[...],"deny":[...]}`) or the seed's `paths`
 * (`{"paths":[...]}`, allow rules only). Each client generation decodes only
 * its own form, some refusing unknown fields (the KES 0.17 client).
 */
export type PolicyForm = 'allow-deny' | 'paths'

/** A policy as the API shows it. */
export interface PolicyInfo {
  readonly allow: readonly string[]
  readonly deny: readonly string[]
  readonly form: PolicyForm
  readonly createdAt: string | undefined
  readonly createdBy: string | undefined
}

/** An identity's policy assignment as the API shows it. */
export interface IdentityInfo {
  readonly policy: string
  readonly createdAt: string | undefined
  readonly createdBy: string | undefined
}

/** What `/v1/identity/self/describe` tells a non-admin caller: its assignment and the rules in force. */
export interface SelfInfo extends IdentityInfo {
  /** The rules that authorize the caller; undefined when it has no policy in force. */
  readonly rules: { readonly allow: readonly string[]; readonly deny: readonly string[] } | undefined
}

/** What a non-admin identity may do; `undefined` policy means nothing but the open APIs. */
interface Grant {
  readonly policy: Policy | undefined
}

// How long a server trusts what it read about an identity's policy. Changes
// made through this server apply at once (the cache is cleared); changes made
// by another server on the same store apply within this time.
export const GRANT_TTL_MS = 1000

/**
 * Policies and identity→policy assignments: the fixed ones of the server
 * configuration, plus those written through the API, which live in the key
 * store (so they survive restarts and every server on the store shares them).
 */
export class AccessControl {
  readonly #admin: string | undefined
  readonly #configPolicies: ReadonlyMap<string, Policy>
  readonly #configForms: ReadonlyMap<string, PolicyForm>
  readonly #configIdentities: ReadonlyMap<string, string>
  readonly #store: KeyStore
  readonly #errorLog: ErrorLog
  readonly #grants = new ExpiringCache<Grant>({ expiryAnyMs: GRANT_TTL_MS, expiryUnusedMs: 0 })
  // The last grant read per identity, kept `offlineMs`: used only while the store is unreachable,
  // so a database outage neither locks everyone out nor grants anything new.
  readonly #offlineGrants: ExpiringCache<Grant> | undefined
  readonly #unsubscribe: () => void
  readonly #onChange: () => void
  #generation = 0

  constructor(opts: {
    adminIdentity: string | undefined
    policies: ReadonlyMap<string, ConfigPolicy>
    store: KeyStore
    errorLog: ErrorLog
    /** Called after every policy or assignment change made through this server (open log streams are re-checked). */
    onChange?: () => void
    /** `cache.expiry.offline`: how long a grant read from the store may be used while the store is unreachable. */
    offlineMs?: number
  }) {
    this.#onChange = opts.onChange ?? (() => {})
    const offlineMs = opts.offlineMs ?? 0
    this.#offlineGrants = offlineMs > 0 ? new ExpiringCache<Grant>({ expiryAnyMs: offlineMs, expiryUnusedMs: 0 }) : undefined
    this.#unsubscribe = opts.store.changes.subscribe((event) => this.#heard(event))
    this.#admin = opts.adminIdentity
    const policies = new Map<string, Policy>()
    const forms = new Map<string, PolicyForm>()
    const identities = new Map<string, string>()
    for (const [name, p] of opts.policies) {
      policies.set(name, new Policy({ allow: p.allow, deny: p.deny }))
      forms.set(name, formOf(p.form, p.deny))
      for (const id of p.identities) identities.set(id, name)
    }
    this.#configPolicies = policies
    this.#configForms = forms
    this.#configIdentities = identities
    this.#store = opts.store
    this.#errorLog = opts.errorLog
  }

  /** The admin (root) identity, which bypasses every policy. */
  get adminIdentity(): string | undefined {
    return this.#admin
  }

  /** True when `identity` is the admin identity. */
  isAdmin(identity: string): boolean {
    return this.#admin !== undefined && identity === this.#admin
  }

  /**
   * Whether a non-admin identity may call `path`. No policy, or an assigned
   * policy that no longer exists, refuses everything. Throws 502/503 when the
   * store cannot be read (never "allowed" by accident).
   */
  async allows(identity: string, path: string): Promise<boolean> {
    const grant = await this.#grant(identity)
    return grant.policy !== undefined && grant.policy.allows(path)
  }

  /**
   * `allows` decided from the grant cache alone: true or false when the identity's grant is
   * cached, undefined when only `allows` can tell (it must read the store).
   */
  allowsCached(identity: string, path: string): boolean | undefined {
    const grant = this.#grants.peek(identity)
    if (grant === undefined) return undefined
    return grant.policy !== undefined && grant.policy.allows(path)
  }

  async #grant(identity: string): Promise<Grant> {
    const cached = this.#grants.peek(identity)
    if (cached !== undefined) return cached
    const generation = this.#generation
    let grant: Grant | undefined
    try {
      grant = await this.#guard('failed to read identity', () => this.#grants.get(identity, () => this.#loadGrant(identity)))
    } catch (err) {
      // Only "unreachable" falls back, and only to what the store itself said before.
      const held = err === ErrStoreUnavailable ? this.#offlineGrants?.peek(identity) : undefined
      if (held !== undefined) return held
      throw err
    }
    // Not when a change was heard meanwhile: the grant may be from before it.
    if (grant !== undefined && generation === this.#generation) this.#offlineGrants?.set(identity, grant)
    return grant ?? { policy: undefined }
  }

  // Another server (or worker) changed a policy or assignment.
  #heard(event: ChangeEvent): void {
    this.#generation++
    if (event.kind === 'change' && event.table === 'identities') {
      this.#grants.delete(event.name)
      this.#offlineGrants?.delete(event.name)
    } else if (event.kind === 'reset' || event.table === 'policies') {
      // A policy may be assigned to any number of identities.
      this.#grants.clear()
      this.#offlineGrants?.clear()
    } else {
      return
    }
    this.#onChange()
  }

  async #loadGrant(identity: string): Promise<Grant> {
    const configuredFor = this.#configIdentities.get(identity)
    const assignment = configuredFor === undefined ? await this.#storedAssignment(identity) : undefined
    const policyName = configuredFor ?? assignment?.policy
    if (policyName === undefined) return { policy: undefined }
    const configured = this.#configPolicies.get(policyName)
    if (configured !== undefined) return { policy: configured }
    const stored = await this.#storedPolicy(policyName)
    if (stored === undefined) return { policy: undefined }
    // An assignment older than its policy was made to an earlier policy of
    // that name, since deleted (an assign racing a delete can leave one
    // behind): it must not grant what the new policy allows.
    if (assignment?.created_at !== undefined && stored.created_at !== undefined && assignment.created_at < stored.created_at) {
      return { policy: undefined }
    }
    return { policy: new Policy(stored) }
  }

  // ---- policies ----

  /**
   * Creates or replaces an API policy, remembering the form it was written in
   * (`paths` only applies without deny rules); a replaced policy keeps its
   * creation time, so its assignments stay valid. Throws 400 for a config
   * policy, 502/503.
   */
  async writePolicy(name: string, rules: PolicyRules, createdBy: string, form: PolicyForm = 'allow-deny'): Promise<void> {
    if (this.#configPolicies.has(name)) throw definedInConfig('policy', name)
    new Policy(rules) // refuse what would not compile before storing it
    const existing = await this.#storedPolicy(name)
    const record: StoredPolicy = {
      allow: [...rules.allow],
      deny: [...rules.deny],
      form: formOf(form, rules.deny),
      created_at: existing?.created_at ?? new Date().toISOString(),
      created_by: existing?.created_by ?? createdBy,
    }
    await this.#guard('failed to write policy', () =>
      this.#store.policies.put(name, Buffer.from(JSON.stringify(record))),
    )
    this.#changed()
  }

  /** Reads a policy (config or API). Throws ErrPolicyNotFound, 502/503. */
  async readPolicy(name: string): Promise<PolicyInfo> {
    const configured = this.#configPolicies.get(name)
    if (configured !== undefined) {
      const form = this.#configForms.get(name) ?? 'allow-deny'
      return { allow: configured.allow, deny: configured.deny, form, createdAt: undefined, createdBy: undefined }
    }
    const stored = await this.#storedPolicy(name, 'fail')
    if (stored === undefined) throw ErrPolicyNotFound
    return { allow: stored.allow, deny: stored.deny, form: stored.form, createdAt: stored.created_at, createdBy: stored.created_by }
  }

  /** Every policy name (config and API), sorted. */
  async listPolicies(): Promise<string[]> {
    const stored = await this.#guard('failed to list policies', () => this.#store.policies.list())
    return sortedUnique([...this.#configPolicies.keys(), ...stored])
  }

  /**
   * Deletes an API policy and every assignment to it, so that re-creating a
   * policy of the same name never silently restores old grants.
   * Throws 400 for a config policy, ErrPolicyNotFound, 502/503.
   */
  async deletePolicy(name: string): Promise<void> {
    if (this.#configPolicies.has(name)) throw definedInConfig('policy', name)
    const deleted = await this.#guard('failed to delete policy', () => this.#store.policies.delete(name))
    this.#changed()
    // Remove assignments even when the policy was already gone: they are dangling.
    for (const [identity, policy] of await this.#storedAssignments()) {
      if (policy !== name) continue
      await this.#guard('failed to delete identity', () => this.#store.identities.delete(identity))
    }
    this.#changed()
    if (!deleted) throw ErrPolicyNotFound
  }

  // ---- identities ----

  /**
   * Assigns `policy` to `identity`, replacing an earlier assignment.
   * Throws ErrIdentityIsRoot, ErrSelfAssign, 400 for a config identity, ErrPolicyNotFound, 502/503.
   */
  async assign(policy: string, identity: string, caller: string): Promise<void> {
    if (this.isAdmin(identity)) throw ErrIdentityIsRoot
    if (identity === caller) throw ErrSelfAssign
    if (this.#configIdentities.has(identity)) throw definedInConfig('identity', identity)
    if (!this.#configPolicies.has(policy) && (await this.#storedPolicy(policy)) === undefined) {
      throw ErrPolicyNotFound
    }
    const record: StoredIdentity = { policy, created_at: new Date().toISOString(), created_by: caller }
    await this.#guard('failed to write identity', () =>
      this.#store.identities.put(identity, Buffer.from(JSON.stringify(record))),
    )
    this.#changed()
  }

  /** Removes an identity's assignment. Throws ErrIdentityIsRoot, 400 for a config identity, ErrIdentityNotFound, 502/503. */
  async forget(identity: string): Promise<void> {
    if (this.isAdmin(identity)) throw ErrIdentityIsRoot
    if (this.#configIdentities.has(identity)) throw definedInConfig('identity', identity)
    const deleted = await this.#guard('failed to delete identity', () => this.#store.identities.delete(identity))
    this.#changed()
    if (!deleted) throw ErrIdentityNotFound
  }

  /**
   * The policy assigned to a non-admin identity (config or API), with the assignment's
   * creation time and creator where known. Throws ErrIdentityNotFound when it has none, 502/503.
   */
  async describeIdentity(identity: string): Promise<IdentityInfo> {
    const configured = this.#configIdentities.get(identity)
    if (configured !== undefined) return { policy: configured, createdAt: undefined, createdBy: undefined }
    const stored = await this.#storedAssignment(identity)
    if (stored === undefined) throw ErrIdentityNotFound
    return { policy: stored.policy, createdAt: stored.created_at, createdBy: stored.created_by }
  }

  /**
   * Who a non-admin caller is: its assignment and the rules that authorize it, by the same
   * rules as `allows` (an assignment to a missing policy, or one older than its policy, grants
   * nothing and so shows no rules). Undefined when the identity has no policy. Throws 502/503.
   */
  async describeSelf(identity: string): Promise<SelfInfo | undefined> {
    let info: IdentityInfo
    try {
      info = await this.describeIdentity(identity)
    } catch (err) {
      if (err === ErrIdentityNotFound) return undefined
      throw err
    }
    const configured = this.#configPolicies.get(info.policy)
    if (configured !== undefined) return { ...info, rules: { allow: configured.allow, deny: configured.deny } }
    const stored = await this.#storedPolicy(info.policy)
    const stale = info.createdAt !== undefined && stored?.created_at !== undefined && info.createdAt < stored.created_at
    return { ...info, rules: stored === undefined || stale ? undefined : { allow: stored.allow, deny: stored.deny } }
  }

  /** Every identity → policy assignment (config and API), sorted by identity; the admin is never listed. */
  async listIdentities(): Promise<Array<[string, string]>> {
    const all = new Map<string, string>(await this.#storedAssignments())
    for (const [id, policy] of this.#configIdentities) all.set(id, policy)
    if (this.#admin !== undefined) all.delete(this.#admin)
    return [...all].sort((a, b) => compare(a[0], b[0]))
  }

  // Grants read before a change are stale now, and so may be open log streams.
  #changed(): void {
    this.#generation++
    this.#grants.clear()
    this.#offlineGrants?.clear()
    this.#onChange()
  }

  /** Clears cached grants (tests, reloads). */
  clearCache(): void {
    this.#grants.clear()
  }

  /** Stops the grant cache's timer. */
  close(): void {
    this.#unsubscribe()
    this.#offlineGrants?.close()
    this.#grants.close()
  }

  // ---- stored records ----

  /**
   * A stored policy. A corrupt one grants nothing (`ifCorrupt: 'deny'`, for
   * authorization) or is a 502 like a corrupt key (`'fail'`, for the API).
   */
  async #storedPolicy(name: string, ifCorrupt: 'deny' | 'fail' = 'deny'): Promise<StoredPolicy | undefined> {
    const raw = await this.#guard('failed to read policy', () => this.#store.policies.get(name))
    if (raw === undefined) return undefined
    const parsed = parseStoredPolicy(raw)
    if (parsed === undefined) {
      this.#errorLog.error(`keystore: policy '${name}' is corrupt`)
      if (ifCorrupt === 'fail') throw badGateway('failed to read policy')
    }
    return parsed
  }

  async #storedAssignment(identity: string): Promise<StoredIdentity | undefined> {
    const raw = await this.#guard('failed to read identity', () => this.#store.identities.get(identity))
    if (raw === undefined) return undefined
    const parsed = parseStoredIdentity(raw)
    if (parsed === undefined) {
      this.#errorLog.error(`keystore: identity '${identity}' is corrupt and is treated as unassigned`)
    }
    return parsed
  }

  async #storedAssignments(): Promise<Array<[string, string]>> {
    const ids = await this.#guard('failed to list identities', () => this.#store.identities.list())
    const out: Array<[string, string]> = []
    for (const id of ids) {
      const a = await this.#storedAssignment(id)
      if (a !== undefined) out.push([id, a.policy])
    }
    return out
  }

  async #guard<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op()
    } catch (err) {
      throw storeFailure(err, what, this.#errorLog)
    }
  }
}

/**
 * A policy as stored by OpenKES in the key store's policies table (JSON).
 * `form` is absent in records written before it existed: they were stored
 * as allow/deny records (a seed `paths` body was merged into allow), so they
 * read back in the allow/deny form.
 */
interface StoredPolicy {
  allow: string[]
  deny: string[]
  form: PolicyForm
  created_at?: string
  created_by?: string
}

/** An identity assignment as stored in the identities table (JSON). */
interface StoredIdentity {
  policy: string
  created_at?: string
  created_by?: string
}

function parseStoredPolicy(raw: Buffer): StoredPolicy | undefined {
  const v = parseJson(raw)
  if (v === undefined) return undefined
  const allow = v['allow']
  const deny = v['deny']
  if (!isStringList(allow) || !isStringList(deny)) return undefined
  try {
    new Policy({ allow, deny })
  } catch {
    return undefined
  }
  const form = formOf(v['form'] === 'paths' ? 'paths' : 'allow-deny', deny)
  return { allow, deny, form, created_at: optString(v['created_at']), created_by: optString(v['created_by']) }
}

/**
 * The form a policy is shown in. The seed's `paths` form has no deny rules,
 * so a policy with any is always shown as allow/deny: no rule is ever hidden.
 */
function formOf(form: PolicyForm | undefined, deny: readonly string[]): PolicyForm {
  return form === 'paths' && deny.length === 0 ? 'paths' : 'allow-deny'
}

function parseStoredIdentity(raw: Buffer): StoredIdentity | undefined {
  const v = parseJson(raw)
  const policy = v?.['policy']
  if (v === undefined || typeof policy !== 'string') return undefined
  return { policy, created_at: optString(v['created_at']), created_by: optString(v['created_by']) }
}

function parseJson(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((e) => typeof e === 'string')
}

function optString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function sortedUnique(names: string[]): string[] {
  return [...new Set(names)].sort(compare)
}
