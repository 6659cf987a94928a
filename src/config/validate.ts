import { isIPv4, isIPv6 } from 'node:net'
import path from 'node:path'
import { compileGlob, GlobSyntaxError } from '../auth/glob.js'
import { isValidIdentity, isValidName } from '../auth/names.js'
import { SKIP_AUTH_PATHS, routes } from '../api/routes.js'
import { ConfigError } from './config-error.js'
import { durationSettingMs } from './duration.js'
import { expandEnv } from './env.js'
import { FrozenMap } from './frozen-map.js'
import { MIGRATE_HINT, backendInUse, isBlank } from './kes-backends.js'
import { limitsSection } from './limits-section.js'
import type { Limits } from './limits-section.js'
import { SSL_MODES } from '../keystore/postgres/pg-options.js'
import type { PostgresSettings, SslMode } from '../keystore/postgres/pg-options.js'

export { ConfigError } from './config-error.js'

/** A policy defined in the config file; such policies cannot be changed through the API. */
export interface ConfigPolicy {
  readonly allow: readonly string[]
  readonly deny: readonly string[]
  /** Lowercase hex identities bound to this policy (each identity has at most one policy). */
  readonly identities: readonly string[]
  /**
   * The form the policy is read back in: `paths` for one configured with `paths` alone
   * (KES before v0.15), otherwise (and when absent) `allow-deny`.
   */
  readonly form?: 'allow-deny' | 'paths'
}

/** One rule of `rotation:`; the first rule whose pattern matches a key name applies. */
export interface RotationRule {
  /** A policy-style glob over key names. */
  readonly pattern: string
  readonly everyMs: number
}

/** The settings of one API in the config's `api:` section (KES 2023 layout). */
export interface ApiSetting {
  /** Serve the API to every client with a certificate, without a policy (only SKIP_AUTH_PATHS). */
  readonly skipAuth: boolean
  /** Replaces the route's timeout; undefined keeps it. */
  readonly timeoutMs: number | undefined
}

/** The validated, deep-frozen server configuration. All file paths are absolute. */
export interface Config {
  /** Listen address `host:port`; an empty host means all interfaces. */
  readonly address: string
  /** The admin (root) identity, lowercase hex; undefined when configured as 'disabled'. */
  readonly adminIdentity: string | undefined
  readonly tls: {
    readonly keyFile: string
    readonly certFile: string
    /** Password of an encrypted PEM key. Not enumerable, so printing the config never shows it. */
    readonly password: string | undefined
    /** When set, client certificates must chain to this CA. */
    readonly caFile: string | undefined
  }
  readonly policies: ReadonlyMap<string, ConfigPolicy>
  /**
   * 0 disables that expiry. `expiryOfflineMs` (present when > 0): while the key store is
   * unreachable, a key read from it up to this long ago is still served (KES `cache.expiry.offline`).
   */
  readonly cache: { readonly expiryAnyMs: number; readonly expiryUnusedMs: number; readonly expiryOfflineMs?: number }
  /** error: error log to stderr; audit: audit log to stdout; auditFile: also append it to this file. */
  readonly log: {
    readonly error: boolean
    readonly audit: boolean
    readonly auditFile: string | undefined
    /** `log.audit_fail_closed`: refuse requests (503) while audit events can't be written to auditFile. Absent means off. */
    readonly auditFailClosed?: boolean
    /** `log.audit_chain_key`: a file holding the key that MACs the audit file's hash chain. Absent means no MACs. */
    readonly auditChainKeyFile?: string
  }
  /** Key names to create at start-up when missing. */
  readonly keys: readonly string[]
  /** Scheduled rotation (`rotation:`): keys matching a pattern get a new version every `everyMs`. */
  readonly rotation: readonly RotationRule[]
  /** `deleted_keys.retention`: how long a deleted key can be restored; 0 destroys it at once (as KES). */
  readonly deletedKeys: { readonly retentionMs: number }
  readonly keystore: { readonly kind: 'fs'; readonly path: string } | PostgresSettings
  /** `seal:` — the root key that seals the master keys at rest; absent: keys are stored as they are. */
  readonly seal?: SealConfig
  /** Per-API settings by route path (`/v1/status`, `/v1/key/create`: no trailing slash). */
  readonly api: ReadonlyMap<string, ApiSetting>
  /** Connection, body and timeout limits (`limits:`, an OpenKES extension). */
  readonly limits: Limits
  /** The absolute path of the file the config was read from, if any. */
  readonly sourceFile: string | undefined
}

/**
 * The `seal:` section: where the root key is. `key` (base64 or hex of 32 bytes, normally
 * `${ENV_VAR}`) and `pin` are not enumerable, so printing the config never shows them.
 */
export type SealConfig =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'key_file'; readonly file: string }
  | ({ readonly kind: 'pkcs11' } & Pkcs11Settings)

/** Where the token and key are (the validated `seal.pkcs11` section). */
export interface Pkcs11Settings {
  /** The PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly library: string
  /** Index in the list of slots that hold a token (`slot`); undefined when `token_label` is used. */
  readonly slot: number | undefined
  readonly tokenLabel: string | undefined
  /** The user PIN (`pin`, usually `${ENV_VAR}`) or a file holding it (`pin_file`). */
  readonly pin: string | undefined
  readonly pinFile: string | undefined
  /** The CKA_LABEL of the AES key. */
  readonly keyLabel: string
}

/**
 * The YAML document as plain data: every scalar is its text (numbers and booleans keep their
 * spelling), `null` is an empty or null value, mappings are string-keyed `Map`s (so a
 * `__proto__` key is just a key).
 */
export type RawValue = null | string | RawMap | readonly RawValue[]
/** A YAML mapping in {@link RawValue} form. */
export type RawMap = ReadonlyMap<string, RawValue>

/** What validation needs besides the document. */
export interface ValidateOptions {
  /** Relative file paths are resolved against this directory (the config file's). */
  readonly baseDir: string
  /** Source of `${VAR}` values. */
  readonly env: NodeJS.ProcessEnv
  readonly sourceFile?: string | undefined
}

const DEFAULT_ADDRESS = '0.0.0.0:7373'
const DEFAULT_EXPIRY_ANY_MS = 5 * 60_000
const DEFAULT_EXPIRY_UNUSED_MS = 30_000

function child(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`
}

function isMap(v: RawValue | undefined): v is RawMap {
  return v instanceof Map
}

/** Reads raw values at YAML paths, expanding `${VAR}` in every string it hands out. */
class Reader {
  readonly #env: NodeJS.ProcessEnv

  constructor(env: NodeJS.ProcessEnv) {
    this.#env = env
  }

  /**
   * The mapping at `path` (undefined when absent or null), after checking its keys: deliberately
   * unsupported KES keys and unknown keys are errors.
   */
  mapping(
    v: RawValue | undefined,
    path: string,
    known: readonly string[],
    unsupported: readonly string[] = [],
  ): RawMap | undefined {
    if (v === undefined || v === null) return undefined
    if (!isMap(v)) throw new ConfigError(path, 'expected a mapping')
    for (const key of v.keys()) {
      if (unsupported.includes(key)) throw new ConfigError(child(path, key), 'not supported')
      if (!known.includes(key)) throw new ConfigError(child(path, key), 'unknown field')
    }
    return v
  }

  /** The string at `path` with `${VAR}` expanded; undefined when absent or null. */
  string(v: RawValue | undefined, path: string): string | undefined {
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'string') throw new ConfigError(path, 'expected a string')
    return expandEnv(v, path, this.#env)
  }

  /** Like `string`, but '' also counts as absent. */
  nonEmptyString(v: RawValue | undefined, path: string): string | undefined {
    const s = this.string(v, path)
    return s === '' ? undefined : s
  }

  /** The list of strings at `path`, each expanded; [] when absent or null. */
  stringList(v: RawValue | undefined, path: string): string[] {
    if (v === undefined || v === null) return []
    if (!Array.isArray(v)) throw new ConfigError(path, 'expected a list of strings')
    return v.map((item: RawValue, i: number) => {
      if (typeof item !== 'string') throw new ConfigError(path, 'expected a list of strings')
      return expandEnv(item, `${path}[${i}]`, this.#env)
    })
  }

  list(v: RawValue | undefined, path: string): readonly RawValue[] {
    if (v === undefined || v === null) return []
    if (!Array.isArray(v)) throw new ConfigError(path, 'expected a list')
    return v
  }
}

function validateAddress(address: string): string {
  const invalid = (): ConfigError => new ConfigError('address', `invalid address '${address}'`)
  const colon = address.lastIndexOf(':')
  if (colon < 0) throw invalid()
  const host = address.slice(0, colon)
  const port = address.slice(colon + 1)
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) throw invalid()
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || !isIPv6(host.slice(1, -1))) throw invalid()
  } else if (host !== '' && !isIPv4(host) && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(host)) {
    // Unbracketed IPv6 ('::1:7373') is ambiguous, so like Go we refuse it.
    throw invalid()
  }
  return address
}

function validateIdentity(value: string, path: string): string {
  const id = value.toLowerCase()
  if (!isValidIdentity(id)) throw new ConfigError(path, `invalid identity '${value}'`)
  return id
}

function adminIdentity(top: RawMap, r: Reader): string | undefined {
  const admin = r.mapping(top.get('admin'), 'admin', ['identity'])
  const fromAdmin = r.nonEmptyString(admin?.get('identity'), 'admin.identity')
  // `root:` is the spelling of KES before v0.17.
  const fromRoot = r.nonEmptyString(top.get('root'), 'root')
  if (fromAdmin !== undefined && fromRoot !== undefined) {
    throw new ConfigError('root', 'cannot be used together with admin.identity')
  }
  const at = fromRoot !== undefined ? 'root' : 'admin.identity'
  const value = fromAdmin ?? fromRoot
  if (value === undefined) throw new ConfigError('admin.identity', 'missing')
  if (value === 'disabled') return undefined
  return validateIdentity(value, at)
}

const PROXY_ADVICE =
  'OpenKES does not accept client certificates forwarded by a proxy; ' +
  'let the proxy pass TLS through (TCP mode) so that clients present their certificates to OpenKES, ' +
  'or remove the proxy identities'

/**
 * `tls.proxy`: KES's templates carry it with no identities, which means "no proxy" and is
 * accepted. Proxy identities are refused when `refuseIdentities` is set.
 */
function proxySection(v: RawValue | undefined, at: string, r: Reader, refuseIdentities: boolean): void {
  const proxy = r.mapping(v, at, ['identities', 'header'])
  const header = r.mapping(proxy?.get('header'), `${at}.header`, ['cert'])
  r.string(header?.get('cert'), `${at}.header.cert`)
  const identities = r.stringList(proxy?.get('identities'), `${at}.identities`).filter((id) => id.trim() !== '')
  if (refuseIdentities && identities.length > 0) throw new ConfigError(`${at}.identities`, `not supported; ${PROXY_ADVICE}`)
}

/**
 * `tls.auth` (KES 2024+): on = verify client certificates. OpenKES verifies them exactly when
 * `tls.ca` is set, so `on` needs a CA and `off` must not have one (KES would not have verified).
 */
function tlsAuth(r: Reader, v: RawValue | undefined, hasCa: boolean): void {
  const auth = r.nonEmptyString(v, 'tls.auth')?.toLowerCase()
  if (auth === undefined) return
  if (auth !== 'on' && auth !== 'off') throw new ConfigError('tls.auth', 'expected on or off')
  if (auth === 'on' && !hasCa) {
    throw new ConfigError('tls.auth', 'on needs tls.ca: OpenKES verifies client certificates against tls.ca only')
  }
  if (auth === 'off' && hasCa) {
    throw new ConfigError(
      'tls.auth',
      'off cannot be used together with tls.ca: OpenKES verifies client certificates whenever tls.ca is set; remove tls.ca or set tls.auth: on',
    )
  }
}

function tlsSection(top: RawMap, r: Reader, baseDir: string): Config['tls'] {
  const tls = r.mapping(top.get('tls'), 'tls', ['key', 'cert', 'password', 'ca', 'auth', 'proxy'])
  const key = r.nonEmptyString(tls?.get('key'), 'tls.key')
  if (key === undefined) throw new ConfigError('tls.key', 'missing')
  const cert = r.nonEmptyString(tls?.get('cert'), 'tls.cert')
  if (cert === undefined) throw new ConfigError('tls.cert', 'missing')
  const ca = r.nonEmptyString(tls?.get('ca'), 'tls.ca')
  tlsAuth(r, tls?.get('auth'), ca !== undefined)
  proxySection(tls?.get('proxy'), 'tls.proxy', r, true)
  const password = r.nonEmptyString(tls?.get('password'), 'tls.password')
  const result = {
    keyFile: path.resolve(baseDir, key),
    certFile: path.resolve(baseDir, cert),
    caFile: ca === undefined ? undefined : path.resolve(baseDir, ca),
  }
  // Not enumerable: JSON.stringify and util.inspect of the config skip the password.
  Object.defineProperty(result, 'password', { value: password, enumerable: false })
  return result as Config['tls']
}

function patterns(list: readonly string[], path: string): string[] {
  list.forEach((pattern, i) => {
    try {
      compileGlob(pattern)
    } catch (err) {
      if (err instanceof GlobSyntaxError) throw new ConfigError(`${path}[${i}]`, err.message)
      throw err
    }
  })
  return list.slice()
}

function policiesSection(
  top: RawMap,
  r: Reader,
  admin: string | undefined,
): ReadonlyMap<string, ConfigPolicy> {
  const section = top.get('policy')
  if (section === undefined || section === null) return new FrozenMap([])
  if (!isMap(section)) throw new ConfigError('policy', 'expected a mapping')
  const policies: Array<[string, ConfigPolicy]> = []
  const owner = new Map<string, string>()
  for (const [name, value] of section) {
    const at = `policy.${name}`
    if (!isValidName(name)) throw new ConfigError(at, `invalid policy name '${name}'`)
    const p = r.mapping(value, at, ['allow', 'paths', 'deny', 'identities'])
    // `paths` is the spelling of KES before v0.15; both lists together are the allow rules.
    const allow = [
      ...patterns(r.stringList(p?.get('allow'), `${at}.allow`), `${at}.allow`),
      ...patterns(r.stringList(p?.get('paths'), `${at}.paths`), `${at}.paths`),
    ]
    const deny = patterns(r.stringList(p?.get('deny'), `${at}.deny`), `${at}.deny`)
    const pathsOnly = p?.get('paths') != null && p.get('allow') == null && p.get('deny') == null
    const identities: string[] = []
    r.stringList(p?.get('identities'), `${at}.identities`).forEach((value, i) => {
      const idPath = `${at}.identities[${i}]`
      const id = validateIdentity(value, idPath)
      if (id === admin) throw new ConfigError(idPath, 'identity is the admin identity')
      const other = owner.get(id)
      if (other !== undefined && other !== name) {
        throw new ConfigError(idPath, `identity '${id}' is already assigned to policy '${other}'`)
      }
      if (other === undefined) {
        owner.set(id, name)
        identities.push(id)
      }
    })
    policies.push([
      name,
      Object.freeze({
        allow: Object.freeze(allow),
        deny: Object.freeze(deny),
        identities: Object.freeze(identities),
        ...(pathsOnly ? { form: 'paths' as const } : {}),
      }),
    ])
  }
  return new FrozenMap(policies)
}

function durationMs(r: Reader, v: RawValue | undefined, path: string, fallbackMs: number): number {
  const s = r.nonEmptyString(v, path)
  return s === undefined ? fallbackMs : durationSettingMs(s, path)
}

function cacheSection(top: RawMap, r: Reader): Config['cache'] {
  const cache = r.mapping(top.get('cache'), 'cache', ['expiry'])
  const expiry = r.mapping(cache?.get('expiry'), 'cache.expiry', ['any', 'all', 'unused', 'offline'])
  // As in KES: while the key store is unreachable, cached keys are served up to this long after
  // they were read, even when `any`/`unused` dropped them (0: no longer than those allow).
  const offline = durationMs(r, expiry?.get('offline'), 'cache.expiry.offline', 0)
  // `all` is the spelling of KES v0.7 for `any`.
  const any = expiry?.get('any')
  const all = expiry?.get('all')
  const hasAny = any !== undefined && any !== null
  if (hasAny && all !== undefined && all !== null) {
    throw new ConfigError('cache.expiry.all', 'cannot be used together with cache.expiry.any')
  }
  return {
    expiryAnyMs: hasAny
      ? durationMs(r, any, 'cache.expiry.any', DEFAULT_EXPIRY_ANY_MS)
      : durationMs(r, all, 'cache.expiry.all', DEFAULT_EXPIRY_ANY_MS),
    expiryUnusedMs: durationMs(r, expiry?.get('unused'), 'cache.expiry.unused', DEFAULT_EXPIRY_UNUSED_MS),
    ...(offline > 0 ? { expiryOfflineMs: offline } : {}),
  }
}

// KES 2024+ also takes a slog level (DEBUG, INFO, WARN, ERROR, optionally with +n/-n) where
// on/off used to be; OpenKES has no finer levels, so any level turns the log on.
const LOG_LEVEL = /^(debug|info|warn|error)([+-][0-9]+)?$/

function onOff(r: Reader, v: RawValue | undefined, path: string, fallback: boolean): boolean {
  const expected = 'expected on, off or a log level (DEBUG, INFO, WARN, ERROR)'
  if (v !== undefined && v !== null && typeof v !== 'string') throw new ConfigError(path, expected)
  const s = r.nonEmptyString(v, path)
  if (s === undefined) return fallback
  // YAML 1.1 parsers (KES's) read on/off as booleans, YAML 1.2 as strings: accept both spellings.
  const word = s.trim().toLowerCase()
  switch (word) {
    case 'on':
    case 'true':
      return true
    case 'off':
    case 'false':
      return false
    default:
      if (LOG_LEVEL.test(word)) return true
      throw new ConfigError(path, expected)
  }
}

function logSection(top: RawMap, r: Reader, baseDir: string): Config['log'] {
  const log = r.mapping(top.get('log'), 'log', ['error', 'audit', 'audit_file', 'audit_fail_closed', 'audit_chain_key'])
  const auditFile = r.nonEmptyString(log?.get('audit_file'), 'log.audit_file')
  const failClosed = onOff(r, log?.get('audit_fail_closed'), 'log.audit_fail_closed', false)
  if (failClosed && auditFile === undefined) throw new ConfigError('log.audit_fail_closed', 'needs log.audit_file')
  const chainKey = r.nonEmptyString(log?.get('audit_chain_key'), 'log.audit_chain_key')
  if (chainKey !== undefined && auditFile === undefined) throw new ConfigError('log.audit_chain_key', 'needs log.audit_file')
  return {
    error: onOff(r, log?.get('error'), 'log.error', true),
    audit: onOff(r, log?.get('audit'), 'log.audit', false),
    auditFile: auditFile === undefined ? undefined : path.resolve(baseDir, auditFile),
    ...(failClosed ? { auditFailClosed: true } : {}),
    ...(chainKey !== undefined ? { auditChainKeyFile: path.resolve(baseDir, chainKey) } : {}),
  }
}

function keysSection(top: RawMap, r: Reader): string[] {
  const names: string[] = []
  // A mapping is the key store in the KES v0.13 layout (read by keystoreSection), not key names.
  if (isMap(top.get('keys'))) return names
  r.list(top.get('keys'), 'keys').forEach((entry, i) => {
    const at = `keys[${i}]`
    const key = r.mapping(entry, at, ['name'])
    if (key === undefined) throw new ConfigError(at, 'expected a mapping')
    const name = r.nonEmptyString(key.get('name'), `${at}.name`)
    if (name === undefined) throw new ConfigError(`${at}.name`, 'missing')
    if (!isValidName(name)) throw new ConfigError(`${at}.name`, `invalid key name '${name}'`)
    if (!names.includes(name)) names.push(name)
  })
  return names
}

function keystoreSection(top: RawMap, r: Reader, baseDir: string): Config['keystore'] {
  // KES before v0.14 kept the key store under `keys:`; KES v0.17 still read that layout.
  const oldLayout = isMap(top.get('keys'))
  const at = oldLayout ? 'keys' : 'keystore'
  const section = top.get(at)
  if (oldLayout && !isBlank(top.get('keystore'))) {
    throw new ConfigError('keys', 'a key store under keys (the KES v0.13 layout) cannot be used together with keystore')
  }
  let fs: RawMap | undefined
  if (section !== undefined && section !== null) {
    if (!isMap(section)) throw new ConfigError(at, 'expected a mapping')
    // Every KES backend but fs (vault, aws, gcp, azure, gemalto, fortanix, ...) is refused by name,
    // unless its section is an unused leftover of KES's config template (see kes-backends.ts).
    for (const [kind, value] of section) {
      if (kind !== 'fs' && kind !== 'postgres' && backendInUse(kind, value)) throw new ConfigError(`${at}.${kind}`, `not supported; ${MIGRATE_HINT}`)
    }
    if (!isBlank(section.get('postgres'))) {
      if (!isBlank(section.get('fs'))) throw new ConfigError(`${at}.postgres`, `cannot be used together with ${at}.fs`)
      return postgresSection(section.get('postgres'), `${at}.postgres`, r, baseDir)
    }
    fs = r.mapping(section.get('fs'), `${at}.fs`, ['path'])
    if (section.has('fs')) {
      const dir = r.nonEmptyString(fs?.get('path'), `${at}.fs.path`)
      if (dir === undefined) throw new ConfigError(`${at}.fs.path`, 'missing')
      return { kind: 'fs', path: path.resolve(baseDir, dir) }
    }
  }
  // No keystore section: the filesystem store in ./keys next to the config file (as in KES).
  return { kind: 'fs', path: path.resolve(baseDir, 'keys') }
}

const DEFAULT_PG_PORT = 5432
const DEFAULT_PG_SCHEMA = 'openkes'
const DEFAULT_PG_POOL_SIZE = 10
const DEFAULT_PG_CONNECT_TIMEOUT_MS = 5_000
const DEFAULT_PG_QUERY_TIMEOUT_MS = 10_000
// An unquoted PostgreSQL identifier, lowercase (what `CREATE SCHEMA name` makes).
const PG_SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

function portNumber(text: string, path: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) === 0 || Number(text) > 65535) throw new ConfigError(path, `invalid port '${text}'`)
  return Number(text)
}

function positiveInt(r: Reader, v: RawValue | undefined, path: string, fallback: number, max: number): number {
  const s = r.nonEmptyString(v, path)
  if (s === undefined) return fallback
  if (!/^[0-9]+$/.test(s) || Number(s) < 1 || Number(s) > max) throw new ConfigError(path, `expected a whole number from 1 to ${max}`)
  return Number(s)
}

/**
 * `keystore.postgres`: a connection `url` or `host`/`port`/`user`/`database` (not both), the
 * password inline (`${VAR}`), in the url, or in `password_file` (never required inline), and
 * TLS as libpq's sslmode/sslrootcert/sslcert/sslkey. The default sslmode is verify-full: key
 * material never crosses a network in plaintext unless the config says `sslmode: disable`.
 */
function postgresSection(v: RawValue | undefined, at: string, r: Reader, baseDir: string): PostgresSettings {
  const pgm = r.mapping(v, at, [
    'url', 'host', 'port', 'user', 'password', 'password_file', 'database', 'schema',
    'pool_size', 'connect_timeout', 'query_timeout', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey',
  ])
  const get = (key: string): string | undefined => r.nonEmptyString(pgm?.get(key), `${at}.${key}`)
  const url = get('url')
  let host = get('host')
  let port = get('port')
  let user = get('user')
  let password = get('password')
  let database = get('database')
  let sslmodeText = get('sslmode')
  if (url !== undefined) {
    for (const key of ['host', 'port', 'user', 'database'] as const) {
      if (get(key) !== undefined) throw new ConfigError(`${at}.${key}`, `cannot be used together with ${at}.url`)
    }
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw new ConfigError(`${at}.url`, 'expected a URL postgres://user@host:port/database')
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw new ConfigError(`${at}.url`, 'expected a URL postgres://user@host:port/database')
    }
    host = decodeURIComponent(parsed.hostname).replace(/^\[(.*)\]$/, '$1') || undefined
    port = parsed.port || undefined
    user = decodeURIComponent(parsed.username) || undefined
    database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || undefined
    if (parsed.password !== '') {
      if (password !== undefined) throw new ConfigError(`${at}.password`, `cannot be used together with a password in ${at}.url`)
      password = decodeURIComponent(parsed.password)
    }
    for (const [key, value] of parsed.searchParams) {
      if (key !== 'sslmode') throw new ConfigError(`${at}.url`, `the URL parameter '${key}' is not supported; use the setting ${at}.${key} where there is one`)
      if (sslmodeText !== undefined) throw new ConfigError(`${at}.sslmode`, `cannot be used together with sslmode in ${at}.url`)
      sslmodeText = value
    }
  }
  if (host === undefined) throw new ConfigError(`${at}.host`, 'missing')
  if (user === undefined) throw new ConfigError(`${at}.user`, 'missing')
  const passwordFile = get('password_file')
  if (password !== undefined && passwordFile !== undefined) throw new ConfigError(`${at}.password_file`, `cannot be used together with ${at}.password`)
  const schema = get('schema') ?? DEFAULT_PG_SCHEMA
  if (!PG_SCHEMA_NAME.test(schema)) throw new ConfigError(`${at}.schema`, `invalid schema name '${schema}': lowercase letters, digits and _, at most 63`)
  const sslMode = (sslmodeText ?? 'verify-full').toLowerCase()
  if (!(SSL_MODES as readonly string[]).includes(sslMode)) {
    throw new ConfigError(`${at}.sslmode`, `expected ${SSL_MODES.join(', ')} (allow and prefer may fall back to plaintext and are not supported)`)
  }
  const file = (key: string): string | undefined => {
    const f = get(key)
    return f === undefined ? undefined : path.resolve(baseDir, f)
  }
  const sslRootCert = file('sslrootcert')
  const sslCert = file('sslcert')
  const sslKey = file('sslkey')
  if ((sslCert === undefined) !== (sslKey === undefined)) throw new ConfigError(`${at}.${sslCert === undefined ? 'sslcert' : 'sslkey'}`, 'missing: sslcert and sslkey go together')
  if (sslMode === 'disable' && (sslRootCert ?? sslCert) !== undefined) throw new ConfigError(`${at}.sslmode`, 'disable cannot be used together with sslrootcert, sslcert or sslkey')
  const settings = {
    kind: 'postgres' as const,
    host,
    port: port === undefined ? DEFAULT_PG_PORT : portNumber(port, `${at}.${url === undefined ? 'port' : 'url'}`),
    user,
    passwordFile: passwordFile === undefined ? undefined : path.resolve(baseDir, passwordFile),
    database: database ?? user,
    schema,
    poolSize: positiveInt(r, pgm?.get('pool_size'), `${at}.pool_size`, DEFAULT_PG_POOL_SIZE, 1000),
    connectTimeoutMs: durationMs(r, pgm?.get('connect_timeout'), `${at}.connect_timeout`, DEFAULT_PG_CONNECT_TIMEOUT_MS) || DEFAULT_PG_CONNECT_TIMEOUT_MS,
    queryTimeoutMs: durationMs(r, pgm?.get('query_timeout'), `${at}.query_timeout`, DEFAULT_PG_QUERY_TIMEOUT_MS) || DEFAULT_PG_QUERY_TIMEOUT_MS,
    sslMode: sslMode as SslMode,
    sslRootCert,
    sslCert,
    sslKey,
  }
  // Not enumerable: JSON.stringify and util.inspect of the config skip the password.
  Object.defineProperty(settings, 'password', { value: password, enumerable: false })
  return settings
}

function trueOrFalse(r: Reader, v: RawValue | undefined, path: string): boolean {
  if (v !== undefined && v !== null && typeof v !== 'string') throw new ConfigError(path, 'expected true or false')
  const s = r.nonEmptyString(v, path)
  if (s === undefined) return false
  switch (s.toLowerCase()) {
    case 'true':
      return true
    case 'false':
      return false
    default:
      throw new ConfigError(path, 'expected true or false')
  }
}

/**
 * The `api:` section of KES 2023 configs: `api: {<path>: {skip_auth: bool, timeout: <duration>}}`.
 * A path is a route of the API, with or without its trailing `/` (`/v1/key/create/`); any other
 * is refused. `skip_auth: true` serves an API without a policy, so it is refused everywhere but
 * on the probe and introspection APIs (SKIP_AUTH_PATHS): a typo must never open a key API.
 * `timeout: 0` keeps the default; the log streams take no timeout.
 */
function apiSection(top: RawMap, r: Reader): ReadonlyMap<string, ApiSetting> {
  const section = top.get('api')
  if (section === undefined || section === null) return new FrozenMap([])
  if (!isMap(section)) throw new ConfigError('api', 'expected a mapping')
  const known = new Map(routes.map((route) => [route.path, route]))
  const settings = new Map<string, ApiSetting>()
  for (const [key, value] of section) {
    const at = `api.${key}`
    const routePath = key.length > 1 && key.endsWith('/') ? key.slice(0, -1) : key
    const route = known.get(routePath)
    if (route === undefined) throw new ConfigError(at, `unknown API path '${key}'`)
    if (settings.has(routePath)) throw new ConfigError(at, `'${routePath}' is configured twice`)
    const m = r.mapping(value, at, ['skip_auth', 'timeout'])
    const skipAuth = trueOrFalse(r, m?.get('skip_auth'), `${at}.skip_auth`)
    if (skipAuth && !SKIP_AUTH_PATHS.includes(routePath)) {
      throw new ConfigError(`${at}.skip_auth`, `not allowed: only ${SKIP_AUTH_PATHS.join(', ')} can be served without a policy`)
    }
    const timeoutMs = durationMs(r, m?.get('timeout'), `${at}.timeout`, 0)
    if (timeoutMs > 0 && route.timeoutMs === 0) throw new ConfigError(`${at}.timeout`, 'not supported: log streams have no timeout')
    settings.set(routePath, Object.freeze({ skipAuth, timeoutMs: timeoutMs > 0 ? timeoutMs : undefined }))
  }
  return new FrozenMap([...settings])
}

function optionalSeal(seal: SealConfig | undefined): { seal?: SealConfig } {
  return seal === undefined ? {} : { seal }
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value
  for (const key of Object.getOwnPropertyNames(value)) {
    deepFreeze((value as Record<string, unknown>)[key])
  }
  return Object.freeze(value)
}

/**
 * `seal: {key: <base64 or hex> | key_file: PATH | pkcs11: {library, slot | token_label,
 * pin | pin_file, key_label}}` — exactly one root key source.
 */
function sealSection(top: RawMap, r: Reader, baseDir: string): SealConfig | undefined {
  const seal = r.mapping(top.get('seal'), 'seal', ['key', 'key_file', 'pkcs11'])
  if (seal === undefined) return undefined
  const key = r.nonEmptyString(seal.get('key'), 'seal.key')
  const keyFile = r.nonEmptyString(seal.get('key_file'), 'seal.key_file')
  const p11 = r.mapping(seal.get('pkcs11'), 'seal.pkcs11', ['library', 'slot', 'token_label', 'pin', 'pin_file', 'key_label'])
  const given = [key, keyFile, p11].filter((v) => v !== undefined).length
  if (given !== 1) throw new ConfigError('seal', 'needs exactly one of key, key_file or pkcs11')
  if (key !== undefined) {
    if (!/^[0-9a-fA-F]{64}$/.test(key.trim()) && !/^[A-Za-z0-9+/]{43}=$/.test(key.trim())) {
      throw new ConfigError('seal.key', 'expected 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits')
    }
    const result = { kind: 'key' as const }
    Object.defineProperty(result, 'key', { value: key.trim(), enumerable: false })
    return result as SealConfig
  }
  if (keyFile !== undefined) return { kind: 'key_file', file: path.resolve(baseDir, keyFile) }
  const m = p11 as RawMap
  const library = r.nonEmptyString(m.get('library'), 'seal.pkcs11.library')
  if (library === undefined) throw new ConfigError('seal.pkcs11.library', 'missing')
  const keyLabel = r.nonEmptyString(m.get('key_label'), 'seal.pkcs11.key_label')
  if (keyLabel === undefined) throw new ConfigError('seal.pkcs11.key_label', 'missing')
  const slotText = r.nonEmptyString(m.get('slot'), 'seal.pkcs11.slot')
  const tokenLabel = r.nonEmptyString(m.get('token_label'), 'seal.pkcs11.token_label')
  if ((slotText === undefined) === (tokenLabel === undefined)) throw new ConfigError('seal.pkcs11', 'needs exactly one of slot or token_label')
  if (slotText !== undefined && !/^\d{1,6}$/.test(slotText)) throw new ConfigError('seal.pkcs11.slot', 'expected a slot number (0 is the first slot with a token)')
  const pin = r.string(m.get('pin'), 'seal.pkcs11.pin')
  const pinFile = r.nonEmptyString(m.get('pin_file'), 'seal.pkcs11.pin_file')
  if ((pin === undefined) === (pinFile === undefined)) throw new ConfigError('seal.pkcs11', 'needs exactly one of pin (e.g. ${OPENKES_HSM_PIN}) or pin_file')
  const result = {
    kind: 'pkcs11' as const,
    library: path.isAbsolute(library) || !library.includes('/') ? library : path.resolve(baseDir, library),
    slot: slotText === undefined ? undefined : Number(slotText),
    tokenLabel,
    pinFile: pinFile === undefined ? undefined : path.resolve(baseDir, pinFile),
    keyLabel,
  }
  Object.defineProperty(result, 'pin', { value: pin, enumerable: false })
  return result as SealConfig
}

const TOP_LEVEL = ['address', 'admin', 'root', 'tls', 'policy', 'cache', 'log', 'keys', 'keystore', 'api', 'version', 'proxy', 'limits', 'rotation', 'deleted_keys', 'seal'] as const

/** Default `deleted_keys.retention`: a week (168h). */
export const DEFAULT_DELETED_RETENTION_MS = 7 * 24 * 3600_000

/**
 * OpenKES's key lifecycle settings (KES has none, so KES configs never carry them):
 *
 *   rotation:                 # scheduled rotation, optional
 *     - pattern: "minio-*"    # key names (policy glob)
 *       every: 8760h          # Go duration, > 0
 *   deleted_keys:
 *     retention: 168h         # default; 0 destroys deleted keys at once, as KES did
 */
function lifecycleSections(top: RawMap, r: Reader): Pick<Config, 'rotation' | 'deletedKeys'> {
  const rotation: RotationRule[] = r.list(top.get('rotation'), 'rotation').map((entry, i) => {
    const at = `rotation[${i}]`
    const rule = r.mapping(entry, at, ['pattern', 'every'])
    if (rule === undefined) throw new ConfigError(at, 'expected a mapping')
    const pattern = r.nonEmptyString(rule.get('pattern'), `${at}.pattern`)
    if (pattern === undefined) throw new ConfigError(`${at}.pattern`, 'missing')
    try {
      compileGlob(pattern)
    } catch (err) {
      if (err instanceof GlobSyntaxError) throw new ConfigError(`${at}.pattern`, `invalid pattern '${pattern}'`)
      throw err
    }
    const everyMs = durationMs(r, rule.get('every'), `${at}.every`, 0)
    if (everyMs <= 0) throw new ConfigError(`${at}.every`, 'missing: a duration greater than 0, e.g. 720h')
    return Object.freeze({ pattern, everyMs })
  })
  const deleted = r.mapping(top.get('deleted_keys'), 'deleted_keys', ['retention'])
  return {
    rotation: Object.freeze(rotation),
    deletedKeys: Object.freeze({ retentionMs: durationMs(r, deleted?.get('retention'), 'deleted_keys.retention', DEFAULT_DELETED_RETENTION_MS) }),
  }
}

/** `version:` (KES 2023+): optional, and 'v1' is the only version there is. */
function checkVersion(top: RawMap, r: Reader): void {
  const version = r.nonEmptyString(top.get('version'), 'version')
  if (version !== undefined && version !== 'v1') {
    throw new ConfigError('version', `unsupported config version '${version}': OpenKES reads v1`)
  }
}

/**
 * Turns a parsed KES YAML document (the v0.13/v0.14, v0.17 and 2023 `version: v1` layouts) into a deep-frozen `Config`: checks every field,
 * expands whole-value `${VAR}`s from `opts.env`, applies defaults and resolves relative file
 * paths against `opts.baseDir`. Throws `ConfigError` naming the YAML path of the first problem.
 */
export function validateConfig(raw: RawValue, opts: ValidateOptions): Config {
  const r = new Reader(opts.env)
  const baseDir = path.resolve(opts.baseDir)
  if (raw !== null && !isMap(raw)) throw new ConfigError('', 'expected a mapping at the top level')
  const top: RawMap = r.mapping(raw, '', TOP_LEVEL) ?? new Map()
  checkVersion(top, r)
  // Some KES v0.13 example configs put `proxy:` at the top level, where KES ignored it: so do we.
  proxySection(top.get('proxy'), 'proxy', r, false)
  const address = validateAddress(r.nonEmptyString(top.get('address'), 'address') ?? DEFAULT_ADDRESS)
  const admin = adminIdentity(top, r)
  const config: Config = {
    address,
    adminIdentity: admin,
    tls: tlsSection(top, r, baseDir),
    policies: policiesSection(top, r, admin),
    cache: cacheSection(top, r),
    log: logSection(top, r, baseDir),
    keys: keysSection(top, r),
    ...lifecycleSections(top, r),
    keystore: keystoreSection(top, r, baseDir),
    api: apiSection(top, r),
    ...optionalSeal(sealSection(top, r, baseDir)),
    limits: limitsSection(top.get('limits'), opts.env),
    sourceFile: opts.sourceFile === undefined ? undefined : path.resolve(opts.sourceFile),
  }
  return deepFreeze(config)
}
