// A temporary directory for the tests of one file or describe(), made before them and removed
// after them (also when a test failed).
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before } from 'node:test'

/** Registers the hooks; returns the directory's accessor (it exists once the tests run). */
export function tempDirPerSuite(prefix: string): () => string {
  let dir: string | undefined
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), `openkes-${prefix}-`))
  })
  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })
  return () => {
    if (dir === undefined) throw new Error('the temporary directory is made before the tests run')
    return dir
  }
}
