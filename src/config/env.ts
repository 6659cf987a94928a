import { ConfigError } from './config-error.js'

// Only a value that is entirely `${NAME}` is substituted; `a${X}b` stays as written (as in KES).
const WHOLE_VARIABLE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/

/**
 * Returns `value`, or the value of the environment variable it names when it is exactly
 * `${NAME}`. `path` is the YAML path, for the error. Throws `ConfigError`
 * (`config: <path>: environment variable 'NAME' is not set`) for an unset variable; a variable
 * set to '' yields ''.
 */
export function expandEnv(value: string, path: string, env: NodeJS.ProcessEnv): string {
  const m = WHOLE_VARIABLE.exec(value)
  if (m === null) return value
  const name = m[1] ?? ''
  // Own properties only: a name like 'constructor' must not reach Object.prototype.
  const replacement = Object.prototype.hasOwnProperty.call(env, name) ? env[name] : undefined
  if (replacement === undefined) throw new ConfigError(path, `environment variable '${name}' is not set`)
  return replacement
}
