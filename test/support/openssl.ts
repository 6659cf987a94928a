// Whether the openssl command is on this machine: tests that cross-check
// against it skip that check where it is missing.
import { execFileSync } from 'node:child_process'

/** True when `openssl version` runs. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
