// A file that can't be written, for the audit tests: a symlink to /dev/full (every write fails
// with ENOSPC), pointed at a regular file again to make writing work.
import { existsSync } from 'node:fs'
import { rename, symlink } from 'node:fs/promises'

/** Whether /dev/full exists here (Linux); the tests that need it skip without it. */
export const HAVE_DEV_FULL = process.platform === 'linux' && existsSync('/dev/full')

/** The `skip` option of a test or describe() that needs /dev/full. */
export const NEEDS_DEV_FULL = { skip: HAVE_DEV_FULL ? false : 'needs /dev/full (Linux)' }

/** Points the symlink `link` at `target` (e.g. '/dev/full'), atomically: a writer opening `link` never finds it missing. */
export async function pointAt(link: string, target: string): Promise<void> {
  const tmp = `${link}.new`
  await symlink(target, tmp)
  await rename(tmp, link)
}
