// Loaded into a child `openkes server` (node --import, Node.js 20.6+) by the stress
// tests that bound its memory (test/integration/edge.ts, startChildServer with
// `memoryProbe`). Every PROBE_MS (500 ms) each process of the server (the primary and
// its workers: they inherit NODE_OPTIONS) collects its garbage and writes what
// it then still holds to <dir>/<pid>.json.
//
// Why: the resident size of a Node.js process says little about what it holds.
// V8 keeps the pages its heap grew into, and since Node 22 it sizes the young
// generation from the machine's memory (on a 24 GiB machine up to 128 MiB of
// new space per process, against 32 MiB on Node 20); after a full GC Node 24
// reported a 16 MiB heap in a process still resident at 205 MiB. Live memory
// after a GC (JS heap in use + external memory, which holds every Buffer) is
// what a client made the server hold, on every Node.js version.
import { rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'

/** What one process holds, as written to <dir>/<pid>.json. */
export interface ProbeSample {
  /** JS heap in use plus external memory (Buffers, TLS and HTTP/2 state V8 knows of), after a full GC. */
  readonly heldBytes: number
  /** Resident size, sampled at the same moment. */
  readonly rssBytes: number
}

export const PROBE_DIR_ENV = 'OPENKES_TEST_MEMORY_PROBE'
const PROBE_MS = 500

const dir = process.env[PROBE_DIR_ENV]
if (dir !== undefined && dir !== '') {
  // V8's gc(), as --expose-gc gives it (older Node.js 20 releases refuse that flag in NODE_OPTIONS).
  v8.setFlagsFromString('--expose-gc')
  const exposed: unknown = vm.runInNewContext('gc')
  if (typeof exposed !== 'function') throw new Error('memory probe: V8 did not expose gc()')
  const gc = exposed as () => void
  const file = path.join(dir, `${process.pid}.json`)
  let writing = false
  const probe = (): void => {
    if (writing) return
    writing = true
    gc()
    const m = process.memoryUsage()
    const sample: ProbeSample = { heldBytes: m.heapUsed + m.external, rssBytes: m.rss }
    // Written whole, then renamed: a reader never sees half a file.
    writeFile(`${file}.tmp`, JSON.stringify(sample))
      .then(() => rename(`${file}.tmp`, file))
      .catch(() => {})
      .finally(() => (writing = false))
  }
  setInterval(probe, PROBE_MS).unref()
}
