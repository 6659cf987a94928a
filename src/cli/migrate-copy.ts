// The work of `openkes migrate`: copy the entries of one key store into another, byte for byte,
// and prove each copied key works. Written against the KeyStore interface only, so any two stores
// OpenKES can open (fs today, PostgreSQL later) can be source and destination.
import { randomBytes } from 'node:crypto'
import type { Glob } from '../auth/glob.js'
import { isValidName } from '../auth/names.js'
import { parseKeyEntry } from '../crypto/key-version.js'
import type { KeyVersions } from '../crypto/key-version.js'
import { EntryExistsError, TABLE_NAMES } from '../keystore/keystore.js'
import type { KeyStore, Table, TableName } from '../keystore/keystore.js'

/** The tables migrate copies, in the order it copies them (keys first: policies name them). */
export const TABLES: readonly TableName[] = TABLE_NAMES

/** How one entry is named in messages: `key 'a'`, `policy 'p'`, `assignment '<identity>'`. */
export const ENTRY_NOUN: Readonly<Record<TableName, string>> = {
  keys: 'key',
  policies: 'policy',
  identities: 'assignment',
  deleted: 'deleted key',
}

/** What became of one entry. */
export type Outcome = 'copied' | 'would copy' | 'already there' | 'conflict' | 'failed'

/** One entry's outcome; `reason` says why for conflicts and failures (never any stored bytes). */
export interface EntryResult {
  readonly table: TableName
  readonly name: string
  readonly outcome: Outcome
  readonly reason?: string
}

/** Counts per table. `copied` counts "would copy" in a dry run. */
export interface Tally {
  copied: number
  alreadyThere: number
  conflicts: number
  failed: number
}

/** What `migrate` is asked to do. */
export interface CopyOptions {
  /** Change nothing; report what would be copied. */
  readonly dryRun: boolean
  /** Allow entries that already exist in the destination (identical: skipped; different: conflict). */
  readonly merge: boolean
  /** Only keys whose names match are copied; policies and assignments are not filtered. */
  readonly pattern: Glob | undefined
  /** Called after each entry with the number of entries done and the total. */
  readonly onProgress?: (done: number, total: number) => void
  /** Called with every entry's result as it is known. */
  readonly onResult?: (result: EntryResult) => void
}

/** The outcome of a migration. */
export interface CopyReport {
  /** Without --merge: the entries the destination already holds; when not empty, nothing was copied. */
  readonly existing: readonly EntryResult[]
  readonly tallies: Readonly<Record<TableName, Tally>>
}

const VERIFY_CONTEXT = Buffer.from('openkes migrate: verify copy')

/** The entry names of every table that migrate copies, filtered as the options say. */
async function sourceNames(source: KeyStore, opts: CopyOptions): Promise<Array<[TableName, string]>> {
  const names: Array<[TableName, string]> = []
  for (const table of TABLES) {
    for (const name of await source[table].list()) {
      if (table === 'keys' && opts.pattern !== undefined && !opts.pattern.matches(name)) continue
      names.push([table, name])
    }
  }
  return names
}

function emptyTally(): Tally {
  return { copied: 0, alreadyThere: 0, conflicts: 0, failed: 0 }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Copies every entry of `source` into `destination` (see `CopyOptions`). Without `merge`, first
 * checks that the destination holds none of the entries and copies nothing if it holds any.
 * Each copied key is read back and must decrypt a ciphertext made with the source key; a copy
 * that fails this is removed again and counted as failed. Never throws for one entry's problem;
 * throws only when a table cannot be listed.
 */
export async function copyStore(source: KeyStore, destination: KeyStore, opts: CopyOptions): Promise<CopyReport> {
  const entries = await sourceNames(source, opts)
  const tallies: Record<TableName, Tally> = { keys: emptyTally(), policies: emptyTally(), identities: emptyTally(), deleted: emptyTally() }

  if (!opts.merge) {
    const existing: EntryResult[] = []
    for (const [table, name] of entries) {
      if ((await destination[table].get(name)) !== undefined) {
        existing.push({ table, name, outcome: 'conflict', reason: 'already in the destination' })
      }
    }
    if (existing.length > 0) return { existing, tallies }
  }

  let done = 0
  for (const [table, name] of entries) {
    const result = await copyEntry(table, name, source[table], destination[table], opts.dryRun)
    const tally = tallies[table]
    if (result.outcome === 'copied' || result.outcome === 'would copy') tally.copied++
    else if (result.outcome === 'already there') tally.alreadyThere++
    else if (result.outcome === 'conflict') tally.conflicts++
    else tally.failed++
    opts.onResult?.(result)
    opts.onProgress?.(++done, entries.length)
  }
  return { existing: [], tallies }
}

async function copyEntry(table: TableName, name: string, from: Table, to: Table, dryRun: boolean): Promise<EntryResult> {
  const fail = (reason: string): EntryResult => ({ table, name, outcome: 'failed', reason })
  const conflict = (reason: string): EntryResult => ({ table, name, outcome: 'conflict', reason })
  if (table === 'keys' && !isValidName(name)) return fail('not a valid key name')

  let value: Buffer | undefined
  let existing: Buffer | undefined
  let sourceKey: KeyVersions | undefined
  try {
    try {
      value = await from.get(name)
    } catch (err) {
      return fail(`cannot read the source: ${messageOf(err)}`)
    }
    if (value === undefined) return fail('vanished from the source')
    if (table === 'keys') {
      try {
        sourceKey = parseKeyEntry(value)
      } catch (err) {
        return fail(`the source entry is not a key: ${messageOf(err)}`)
      }
    }
    try {
      existing = await to.get(name)
    } catch (err) {
      return fail(`cannot read the destination: ${messageOf(err)}`)
    }
    if (existing !== undefined) {
      if (existing.equals(value)) return { table, name, outcome: 'already there' }
      return conflict(differenceOf(table, sourceKey, existing))
    }
    if (dryRun) return { table, name, outcome: 'would copy' }

    try {
      await to.create(name, value)
    } catch (err) {
      if (err instanceof EntryExistsError) return conflict('created in the destination meanwhile')
      return fail(`cannot write the destination: ${messageOf(err)}`)
    }
    const problem = await verifyCopy(to, name, value, sourceKey)
    if (problem === undefined) return { table, name, outcome: 'copied' }
    // Only what this run created is removed: a bad copy must not be mistaken for a good one.
    const removed = await to.delete(name).then(
      () => 'removed again',
      (err: unknown) => `could not be removed: ${messageOf(err)}`,
    )
    return fail(`the copy did not verify (${problem}) and ${removed}`)
  } finally {
    value?.fill(0)
    existing?.fill(0)
  }
}

/** Why a destination entry differs from the source one, without showing either. */
function differenceOf(table: TableName, sourceKey: KeyVersions | undefined, existing: Buffer): string {
  if (table !== 'keys' || sourceKey === undefined) return `the destination holds a different ${ENTRY_NOUN[table]}`
  try {
    // Key ids are public (every ciphertext carries one), so comparing them reveals nothing.
    if (parseKeyEntry(existing).newest.id === sourceKey.newest.id) return 'the destination holds the same key in another file format'
  } catch {
    return 'the destination holds an entry that is not a key'
  }
  return 'the destination holds a different key'
}

/**
 * Reads the copy back: its bytes must equal the source's and, for keys, every version of it must
 * decrypt a fresh ciphertext made with the same version of the source key (a rotated key's old
 * versions open the ciphertexts made before the rotation). Returns what went wrong, or undefined
 * when all is well.
 */
async function verifyCopy(to: Table, name: string, value: Buffer, sourceKey: KeyVersions | undefined): Promise<string | undefined> {
  let back: Buffer | undefined
  try {
    back = await to.get(name)
  } catch (err) {
    return `cannot read it back: ${messageOf(err)}`
  }
  try {
    if (back === undefined) return 'it is missing'
    if (!back.equals(value)) return 'it reads back different bytes'
    if (sourceKey === undefined) return undefined
    const probe = randomBytes(32)
    try {
      const copied = parseKeyEntry(back)
      if (copied.versions.length !== sourceKey.versions.length) return 'it has another number of versions'
      // The probe ciphertexts name their version's key id, so each opens with that version only.
      for (const version of sourceKey.versions) {
        const plaintext = copied.decrypt(version.encrypt(probe, VERIFY_CONTEXT), VERIFY_CONTEXT)
        if (!plaintext.equals(probe)) return 'it decrypts to something else'
      }
      return undefined
    } catch (err) {
      return `a ciphertext of the source key does not decrypt with it: ${messageOf(err)}`
    }
  } finally {
    back?.fill(0)
  }
}
