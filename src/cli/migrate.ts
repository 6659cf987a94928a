// `openkes migrate`: copy keys, policies and identity assignments from one key store to another
// (a KES key directory, a Vault export, another OpenKES store), byte for byte.
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { GlobSyntaxError, compileGlob } from '../auth/glob.js'
import type { Glob } from '../auth/glob.js'
import { ConfigError, loadConfigFile } from '../config/load.js'
import type { Config, SealConfig } from '../config/validate.js'
import type { KeyStore, TableName } from '../keystore/keystore.js'
import { openFsStore } from '../keystore/fs/fs-store.js'
import { openPostgresStore } from '../keystore/postgres/pg-store.js'
import { describeLocation as describePostgres } from '../keystore/postgres/pg-options.js'
import { createMemStore } from '../keystore/mem/mem-store.js'
import { applySeal, describeStore } from '../keystore/seal/open-seal.js'
import { errorCode } from './fs-errors.js'
import { UsageError } from './command-spec.js'
import type { LocalCommand } from './command-spec.js'
import { EXIT_FAILURE, EXIT_OK } from './io.js'
import type { CommandIO } from './io.js'
import { ENTRY_NOUN, TABLES, copyStore } from './migrate-copy.js'
import type { CopyReport, EntryResult, Tally } from './migrate-copy.js'

/** Where migrate writes besides stdout/stderr: whether stderr is a terminal (progress bar). */
interface MigrateTerminal {
  readonly stderrIsTTY: boolean
  /** Source of `${VAR}` values in config files. */
  readonly env: NodeJS.ProcessEnv
}

/** A plain progress line is printed after this many entries when stderr is not a terminal. */
export const PROGRESS_EVERY = 100

/** A store that can't be opened or read: exit 1. */
class StoreOpenError extends Error {}

/** A key store named on the command line, opened. */
interface OpenedStore {
  readonly store: KeyStore
  /** What the user named, for messages. */
  readonly label: string
  /** Identifies the store: two arguments naming the same store must not be migrated into each other. */
  readonly location: string
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory()
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return false
    throw new StoreOpenError(`cannot open '${p}': ${errorCode(err) ?? String(err)}`)
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}

/**
 * Where a config's key store is. One case per kind of store OpenKES can open; a new backend
 * (PostgreSQL) adds its case here and in `openConfigured`.
 */
function locationOf(keystore: Config['keystore']): string {
  switch (keystore.kind) {
    case 'fs':
      return `fs:${keystore.path}`
    case 'postgres':
      return describePostgres(keystore)
  }
}

/**
 * Opens the store a config names. `mustExist` (the source) refuses a missing directory instead of
 * creating it; `readOnly` (a dry run's destination) stands in an empty store for a missing one,
 * so that nothing is created.
 */
async function openConfigured(keystore: Config['keystore'], seal: SealConfig | undefined, mustExist: boolean, readOnly: boolean): Promise<KeyStore> {
  let store: KeyStore
  switch (keystore.kind) {
    case 'fs': {
      const present = await isDirectory(keystore.path)
      if (!present && mustExist) throw new StoreOpenError(`key directory '${keystore.path}' does not exist`)
      try {
        store = !present && readOnly ? createMemStore() : await openFsStore(keystore.path)
      } catch (err) {
        throw new StoreOpenError((err as Error).message)
      }
      break
    }
    case 'postgres':
      // A dry run still connects (and creates the schema when missing, as a server start
      // would): the point of a dry run is to find out whether the copy can work.
      try {
        store = await openPostgresStore(keystore)
      } catch (err) {
        throw new StoreOpenError((err as Error).message)
      }
      break
  }
  // The config's seal: keys are unsealed when read from a sealed source and sealed when
  // written to a sealed destination, so migrate moves keys into and out of sealed stores.
  try {
    return await applySeal(store, seal, describeStore(keystore))
  } catch (err) {
    await store.close()
    throw new StoreOpenError((err as Error).message)
  }
}

async function openArgument(arg: string, env: NodeJS.ProcessEnv, role: 'source' | 'destination', dryRun: boolean): Promise<OpenedStore> {
  const resolved = path.resolve(arg)
  let keystore: Config['keystore']
  let seal: SealConfig | undefined
  // A directory is a key directory; so is a path that does not exist yet, unless it is named like
  // a config file (then the config error says it is missing).
  if ((await isDirectory(resolved)) || (!(await exists(resolved)) && !/\.ya?ml$/i.test(resolved))) {
    keystore = { kind: 'fs', path: resolved }
  } else {
    try {
      const config = await loadConfigFile(resolved, env)
      keystore = config.keystore
      seal = config.seal
    } catch (err) {
      if (err instanceof ConfigError) throw new StoreOpenError(`${arg}: ${err.message}`)
      throw err
    }
  }
  const store = await openConfigured(keystore, seal, role === 'source', role === 'destination' && dryRun)
  return { store, label: arg, location: locationOf(keystore) }
}

/** What `openkes migrate` was asked to do. */
interface MigrateOptions {
  readonly from: string
  readonly to: string
  readonly dryRun: boolean
  readonly merge: boolean
  readonly pattern: Glob | undefined
}

// Only the pattern needs checking beyond what the command table checks (--from and --to given).
function patternOption(value: unknown): Glob | undefined {
  if (typeof value !== 'string') return undefined
  try {
    return compileGlob(value)
  } catch (err) {
    if (err instanceof GlobSyntaxError) throw new UsageError(`--pattern: ${err.message}`)
    throw err
  }
}

/** `openkes migrate`: its options, help and action, as an entry of the command table. */
export const migrateCommand: LocalCommand = {
  kind: 'local',
  name: 'migrate',
  summary: 'copy keys, policies and identity assignments from one key store to another',
  args: [],
  options: {
    from: { type: 'string', value: 'SOURCE', required: true, help: 'config file or key directory to copy from', complete: 'files' },
    to: { type: 'string', value: 'DEST', required: true, help: 'config file or key directory to copy to', complete: 'files' },
    'dry-run': { type: 'boolean', help: 'change nothing; list what would be copied' },
    merge: {
      type: 'boolean',
      help: 'let DEST hold some of the entries already: identical ones are\nskipped ("already there"), different ones are reported as conflicts',
    },
    pattern: { type: 'string', value: 'GLOB', help: "copy only the keys whose names match (e.g. 'minio-*');\npolicies and assignments are always copied" },
  },
  description: `SOURCE and DEST are each a KES or OpenKES config file (its key store is used)
or a key directory. Keys are copied byte for byte, so every ciphertext made
with them stays valid, and each copy is checked: a ciphertext made with the
source key must decrypt with the key read back from DEST. Key material is
never printed.

Without --merge, nothing is copied when DEST holds any entry to be copied.
Exit status: 0 when every entry was copied or already there, 1 when one
failed or conflicted (or a store cannot be opened), 2 on a usage error.
See docs/migrating.md for moving from KES, Vault and cloud secret stores.`,
  examples: [
    'openkes migrate --from /etc/kes/config.yml --to /etc/openkes/config.yml --dry-run',
    'openkes migrate --from /etc/kes/config.yml --to /etc/openkes/config.yml',
    'openkes migrate --from ./vault-export --to /etc/openkes/config.yml --merge',
    "openkes migrate --from old.yml --to new.yml --pattern 'minio-*'",
  ],
  validate: (_args, options) => void patternOption(options['pattern']),
  run(inv) {
    const o = inv.options
    const opts: MigrateOptions = {
      from: typeof o['from'] === 'string' ? o['from'] : '',
      to: typeof o['to'] === 'string' ? o['to'] : '',
      dryRun: o['dry-run'] === true,
      merge: o['merge'] === true,
      pattern: patternOption(o['pattern']),
    }
    return runMigration(opts, inv.io, { stderrIsTTY: inv.ctx.stderrIsTTY === true, env: inv.ctx.env })
  },
}

const TABLE_LABEL: Readonly<Record<TableName, string>> = {
  keys: 'keys:       ',
  policies: 'policies:   ',
  identities: 'assignments:',
  deleted: 'deleted:    ',
}

function summaryLine(table: TableName, t: Tally, dryRun: boolean): string {
  const copied = dryRun ? `${t.copied} to copy` : `${t.copied} copied`
  return `${TABLE_LABEL[table]} ${copied}, ${t.alreadyThere} already there, ${t.conflicts} conflicts, ${t.failed} failed\n`
}

function entryLabel(r: EntryResult): string {
  return `${ENTRY_NOUN[r.table]} '${r.name}'`
}

/** Shows progress on stderr: a bar on a terminal, otherwise a line every PROGRESS_EVERY entries. */
function progressReporter(io: CommandIO, isTTY: boolean): { update(done: number, total: number): void; finish(): void } {
  let drawn = false
  return {
    update(done, total) {
      if (!isTTY) {
        if (done % PROGRESS_EVERY === 0 && done < total) io.stderr(`migrate: ${done}/${total} entries\n`)
        return
      }
      const width = 30
      const filled = total === 0 ? width : Math.round((done / total) * width)
      io.stderr(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} entries`)
      drawn = true
    },
    finish() {
      if (drawn) io.stderr('\n')
      drawn = false
    },
  }
}

/**
 * Runs a migration. Returns the exit code: 0 when every entry was copied (or already there),
 * 1 when any entry failed or conflicted or a store could not be opened. Throws UsageError
 * when --from and --to name the same store.
 */
async function runMigration(opts: MigrateOptions, io: CommandIO, terminal: MigrateTerminal): Promise<number> {
  const opened: OpenedStore[] = []
  try {
    const source = await openArgument(opts.from, terminal.env, 'source', opts.dryRun)
    opened.push(source)
    const destination = await openArgument(opts.to, terminal.env, 'destination', opts.dryRun)
    opened.push(destination)
    if (source.location === destination.location) {
      throw new UsageError(`--from and --to name the same key store (${source.location})`)
    }
    return await migrate(source, destination, opts, io, terminal.stderrIsTTY)
  } catch (err) {
    if (!(err instanceof StoreOpenError)) throw err
    io.stderr(`openkes migrate: ${err.message}\n`)
    return EXIT_FAILURE
  } finally {
    for (const o of opened) await o.store.close()
  }
}

async function migrate(
  source: OpenedStore,
  destination: OpenedStore,
  opts: { dryRun: boolean; merge: boolean; pattern: Glob | undefined },
  io: CommandIO,
  stderrIsTTY: boolean,
): Promise<number> {
  const progress = progressReporter(io, stderrIsTTY)
  let report: CopyReport
  try {
    report = await copyStore(source.store, destination.store, {
      ...opts,
      onProgress: (done, total) => progress.update(done, total),
      onResult(r) {
        if (r.outcome === 'would copy') io.stdout(`would copy ${entryLabel(r)}\n`)
        if (r.outcome === 'conflict' || r.outcome === 'failed') {
          progress.finish()
          io.stderr(`${r.outcome}: ${entryLabel(r)}: ${r.reason ?? ''}\n`)
        }
      },
    })
  } catch (err) {
    progress.finish()
    // Only listing a whole table throws; the message names the store operation, never a value.
    io.stderr(`openkes migrate: ${(err as Error).message}\n`)
    return EXIT_FAILURE
  }
  progress.finish()

  if (report.existing.length > 0) {
    const lines = report.existing.map((r) => `  ${entryLabel(r)}\n`).join('')
    io.stderr(
      `openkes migrate: ${destination.label} already holds ${report.existing.length} of the entries to copy:\n${lines}` +
        'nothing was copied; run again with --merge to skip identical entries and report different ones\n',
    )
    return EXIT_FAILURE
  }

  const heading = opts.dryRun ? `dry run: nothing was changed in ${destination.label}` : `migrated ${source.label} → ${destination.label}`
  io.stdout(`${heading}\n${TABLES.map((t) => summaryLine(t, report.tallies[t], opts.dryRun)).join('')}`)
  const bad = TABLES.some((t) => report.tallies[t].failed > 0 || report.tallies[t].conflicts > 0)
  return bad ? EXIT_FAILURE : EXIT_OK
}
