// Start-up checks of the files that hold secrets, as ssh checks private keys:
// the server's TLS key, the key store directory and the key files in it must
// not be open to other users. A problem is a warning, or with --strict a
// reason not to start.
import { lstat, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { isValidName } from '../auth/names.js'
import type { Config } from '../config/validate.js'

// At most this many key files are looked at (start-up must stay fast on huge stores).
const MAX_KEY_FILES_CHECKED = 10_000

/** What is wrong with a mode: any access by others, or writing by the group. */
function problemOf(mode: number, isDir: boolean): string | undefined {
  const others = mode & 0o007
  if (others & 0o002) return 'writable by every user'
  if (others !== 0) return isDir ? 'open to every user' : 'readable by every user'
  if (mode & 0o020) return 'writable by its group'
  return undefined
}

function octal(mode: number): string {
  return '0' + (mode & 0o777).toString(8)
}

/**
 * The unsafe permissions of the server's secret files, one message each (empty when all
 * are safe). Files that can't be read are left to the code that opens them. Always empty
 * on Windows, where mode bits don't describe access.
 */
export async function findUnsafeFiles(config: Config): Promise<string[]> {
  if (process.platform === 'win32') return []
  const found: string[] = []
  const keyFile = await statQuietly(config.tls.keyFile)
  const keyProblem = keyFile === undefined ? undefined : problemOf(keyFile.mode, false)
  if (keyFile !== undefined && keyProblem !== undefined) {
    found.push(`tls.key '${config.tls.keyFile}' is ${keyProblem} (mode ${octal(keyFile.mode)}); chmod 600 it`)
  }
  // The other files that hold secrets: the seal's root key or PIN, the audit chain key.
  const secretFiles: Array<[string, string | undefined]> = [
    ['seal.key_file', config.seal?.kind === 'key_file' ? config.seal.file : undefined],
    ['seal.pkcs11.pin_file', config.seal?.kind === 'pkcs11' ? config.seal.pinFile : undefined],
    ['log.audit_chain_key', config.log.auditChainKeyFile],
  ]
  for (const [setting, file] of secretFiles) {
    const stats = file === undefined ? undefined : await statQuietly(file)
    const problem = stats === undefined ? undefined : problemOf(stats.mode, false)
    if (stats !== undefined && problem !== undefined) found.push(`${setting} '${file ?? ''}' is ${problem} (mode ${octal(stats.mode)}); chmod 600 it`)
  }
  if (config.keystore.kind === 'postgres') {
    const file = config.keystore.passwordFile
    const stats = file === undefined ? undefined : await statQuietly(file)
    const problem = stats === undefined ? undefined : problemOf(stats.mode, false)
    if (stats !== undefined && problem !== undefined) {
      found.push(`keystore.postgres.password_file '${file}' is ${problem} (mode ${octal(stats.mode)}); chmod 600 it`)
    }
    return found
  }
  const dir = config.keystore.path
  const dirStats = await statQuietly(dir)
  if (dirStats === undefined || !dirStats.isDirectory()) return found
  const dirProblem = problemOf(dirStats.mode, true)
  if (dirProblem !== undefined) {
    found.push(`keystore.fs.path '${dir}' is ${dirProblem} (mode ${octal(dirStats.mode)}); chmod 700 it`)
  }
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return found
  }
  let unsafe = 0
  let example = ''
  for (const name of names.slice(0, MAX_KEY_FILES_CHECKED)) {
    if (!isValidName(name)) continue
    let s
    try {
      s = await lstat(path.join(dir, name))
    } catch {
      continue
    }
    // Symlinked keys (Kubernetes secrets) carry their target's mode, which their mount sets.
    if (!s.isFile()) continue
    const p = problemOf(s.mode, false)
    if (p === undefined) continue
    if (unsafe === 0) example = `'${name}' is ${p}, mode ${octal(s.mode)}`
    unsafe++
  }
  if (unsafe > 0) {
    found.push(`keystore.fs.path '${dir}': ${unsafe} key file${unsafe === 1 ? '' : 's'} open to other users (${example}); chmod 600 them`)
  }
  return found
}

async function statQuietly(file: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await stat(file)
  } catch {
    return undefined
  }
}
