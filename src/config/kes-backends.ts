/**
 * The key store backends of KES that OpenKES does not serve, and how to tell whether a config
 * section of one of them is in use or just left over from KES's config template.
 *
 * KES's own templates (v0.14 to 2023) list every backend under `keystore:` with empty values
 * (`vault: {endpoint: ""}`, `aws: {secretsmanager: {endpoint: ""}}`, ...), and users filled in
 * only the one they used. KES up to v0.22 picked the backend whose address field was set and
 * ignored the others, so a config copied from the template carries all of them. We do the same:
 * a backend whose address field is empty is inert and ignored; one that has it set fails the
 * start and says how to move its keys.
 */

/** Where to read about moving keys out of a store OpenKES can't open. */
export const MIGRATE_HINT =
  "export the keys into a directory and bring them in with 'openkes migrate' (see docs/migrating.md)"

/**
 * For each KES backend, the path (inside its section) of the field whose value KES took as
 * "this backend is configured": the endpoint, or for GCP the project id.
 */
export const KES_BACKENDS: ReadonlyMap<string, readonly string[]> = new Map([
  ['generic', ['endpoint']],
  ['kes', ['endpoint']],
  ['vault', ['endpoint']],
  ['fortanix', ['sdkms', 'endpoint']],
  ['gemalto', ['keysecure', 'endpoint']],
  ['aws', ['secretsmanager', 'endpoint']],
  ['gcp', ['secretmanager', 'project_id']],
  ['azure', ['keyvault', 'endpoint']],
  ['entrust', ['keycontrol', 'endpoint']],
])

/** A YAML value as validation sees it (see `RawValue` in validate.ts). */
type Raw = null | string | ReadonlyMap<string, Raw> | readonly Raw[]

/** Whether a value says nothing: absent, null, '', an empty list or a mapping of such values. */
export function isBlank(v: Raw | undefined): boolean {
  if (v === undefined || v === null) return true
  if (typeof v === 'string') return v.trim() === ''
  if (Array.isArray(v)) return v.every((item) => isBlank(item))
  return [...(v as ReadonlyMap<string, Raw>).values()].every((item) => isBlank(item))
}

/**
 * Whether the section of backend `kind` is in use. Known backends are in use when their address
 * field is set (even to a `${VAR}`: that says the user meant it); unknown ones when anything in
 * them is set.
 */
export function backendInUse(kind: string, section: Raw | undefined): boolean {
  const marker = KES_BACKENDS.get(kind)
  if (marker === undefined || !(section instanceof Map)) return !isBlank(section)
  let v: Raw | undefined = section
  for (const step of marker) {
    if (!(v instanceof Map)) return !isBlank(v)
    v = (v as ReadonlyMap<string, Raw>).get(step)
  }
  return !isBlank(v)
}
