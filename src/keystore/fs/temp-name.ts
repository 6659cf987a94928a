/**
 * Names of the store's temp files, which say who wrote them, so that start-up
 * can tell a crash leftover from a write in progress by another server sharing
 * the directory:
 *
 *   .tmp-<host>-<boot>-<pid>-<random>
 *
 * `host` hashes the host name, `boot` is this kernel boot (Linux boot_id, else
 * the boot time), `pid` the writing process. A temp file of this host and boot
 * whose process is gone (or is us, just started) is a leftover; one of this
 * host from an earlier boot is too (nothing of that boot runs any more). One
 * of a live process, or written by another host (or a container with its own
 * host name), can't be told from a write in progress, so it is a leftover
 * only once it is older than any write takes.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import os from 'node:os'

/** Temp files start with a dot, so a crash never leaves anything that lists as an entry. */
export const TEMP_PREFIX = '.tmp-'

// A write takes milliseconds; a foreign temp file this old belongs to no write in progress.
export const FOREIGN_STALE_MS = 10 * 60_000

function short(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8)
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    // Not Linux: the boot time, to the minute (uptime drifts a little against the clock).
    return String(Math.round((Date.now() / 1000 - os.uptime()) / 60))
  }
}

// Computed once, at start-up: the same for every write of this process.
const HOST = short(os.hostname())
const BOOT = short(bootId())

/** This process's host and boot tags (tests build temp names of other writers from them). */
export const WRITER_TAGS = Object.freeze({ host: HOST, boot: BOOT })

/** A new temp file name for this process. */
export function newTempName(): string {
  return `${TEMP_PREFIX}${HOST}-${BOOT}-${process.pid}-${randomBytes(8).toString('hex')}`
}

/** What to do with a temp file found in the store directory. */
export type TempVerdict = 'remove' | 'remove-if-stale'

/**
 * Whether a temp file named `name` may belong to a live writer. `isAlive` tells whether a
 * process of this host runs (injected for tests).
 */
export function judgeTempFile(name: string, isAlive: (pid: number) => boolean = processIsAlive): TempVerdict {
  const m = /^\.tmp-([0-9a-f]{8})-([0-9a-f]{8})-([0-9]+)-[0-9a-f]+$/.exec(name)
  // Written by an OpenKES before temp names said who wrote them: a leftover (a live old
  // server sharing the directory would only see that one write fail, and say so).
  if (m === null) return 'remove'
  const [, host, boot, pidText] = m
  if (host !== HOST) return 'remove-if-stale'
  if (boot !== BOOT) return 'remove'
  const pid = Number(pidText)
  if (pid === process.pid) return 'remove'
  // A live process of that pid may be another server writing now, or an unrelated process
  // that reused the pid of a crashed one: either way, no write lasts FOREIGN_STALE_MS.
  return isAlive(pid) ? 'remove-if-stale' : 'remove'
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it runs, as another user.
    return typeof err === 'object' && err !== null && 'code' in err && err.code === 'EPERM'
  }
}
