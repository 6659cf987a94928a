/**
 * A problem with the server configuration. The message always starts with `config: ` and, when
 * the problem is a value, names its YAML path: `config: tls.key: missing`.
 */
export class ConfigError extends Error {
  /** The YAML path of the offending value (`policy.p.allow[1]`), or '' for file-level problems. */
  readonly path: string

  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(path === '' ? `config: ${problem}` : `config: ${path}: ${problem}`, options)
    this.name = 'ConfigError'
    this.path = path
  }
}
