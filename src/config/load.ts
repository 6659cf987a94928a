import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml'
import type { Document } from 'yaml'
import { ConfigError } from './config-error.js'
import { validateConfig } from './validate.js'
import type { Config, RawMap, RawValue } from './validate.js'

export { ConfigError } from './config-error.js'
export type { Config, ConfigPolicy } from './validate.js'

// Aliases can multiply a small document into a huge one ("billion laughs"); a real config has
// at most a few thousand values.
const MAX_NODES = 100_000

/** Options of {@link parseConfig}. */
export interface ParseConfigOptions {
  /** Relative file paths in the config are resolved against this directory. */
  readonly baseDir: string
  /** Source of `${VAR}` values; only config/ looks at the process environment. */
  readonly env: NodeJS.ProcessEnv
  /** The file the text came from, recorded in `Config.sourceFile`. */
  readonly sourceFile?: string
}

/** The first line of a YAML error, without the source excerpt (which may show a secret). */
function yamlProblem(message: string): string {
  return (message.split('\n', 1)[0] ?? '').replace(/:\s*$/, '')
}

/**
 * Converts the YAML syntax tree into plain data. Scalars keep their source text, so `on`, `0x1F`
 * or an all-digit hex identity reach validation exactly as written; only null becomes `null`.
 */
function toRaw(doc: Document, node: unknown, at: string, budget: { nodes: number }): RawValue {
  if (--budget.nodes < 0) throw new ConfigError('', 'document too large')
  if (isAlias(node)) return toRaw(doc, node.resolve(doc), at, budget)
  if (node === null || node === undefined) return null
  if (isScalar(node)) {
    if (node.value === null || node.value === undefined) return null
    if (typeof node.value === 'string') return node.value
    return node.source ?? String(node.value)
  }
  if (isSeq(node)) return node.items.map((item, i) => toRaw(doc, item, `${at}[${i}]`, budget))
  if (isMap(node)) {
    const map = new Map<string, RawValue>()
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? toRaw(doc, pair.key, at, budget) : undefined
      if (typeof key !== 'string') throw new ConfigError(at, 'mapping keys must be strings')
      const keyPath = at === '' ? key : `${at}.${key}`
      map.set(key, toRaw(doc, pair.value, keyPath, budget))
    }
    return map satisfies RawMap
  }
  throw new ConfigError(at, 'unsupported yaml value')
}

/**
 * Parses KES v0.17-style YAML text into a validated, deep-frozen `Config` (see `validateConfig`).
 * Throws `ConfigError` for invalid YAML (`config: invalid yaml: ...`) or an invalid value.
 */
export function parseConfig(yamlText: string, opts: ParseConfigOptions): Config {
  // YAML 1.2 core schema: `on`/`off`/`yes` stay strings; duplicate keys are errors.
  const lineCounter = new LineCounter()
  const doc = parseDocument(yamlText, { prettyErrors: false, uniqueKeys: true, lineCounter })
  const first = doc.errors[0]
  if (first !== undefined) {
    const pos = lineCounter.linePos(first.pos[0])
    const where = ` at line ${pos.line}, column ${pos.col}`
    throw new ConfigError('', `invalid yaml${where}: ${yamlProblem(first.message)}`)
  }
  const raw = toRaw(doc, doc.contents, '', { nodes: MAX_NODES })
  return validateConfig(raw, { baseDir: opts.baseDir, env: opts.env, sourceFile: opts.sourceFile })
}

/**
 * Reads a config file and returns the validated, deep-frozen `Config`. Relative paths in it are
 * resolved against the file's directory; `${VAR}` values come from `env`.
 * Throws `ConfigError` when the file cannot be read or the config is invalid.
 */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const absolute = path.resolve(file)
  let text: string
  try {
    text = await readFile(absolute, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new ConfigError('', `cannot read '${file}': ${code}`, { cause: err })
  }
  return parseConfig(text, { baseDir: path.dirname(absolute), env, sourceFile: absolute })
}
