// `openkes audit verify [--key FILE] FILE...`: checks the hash chain of audit files offline.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { readChainKey } from '../log/audit-log.js'
import { verifyAuditChain } from '../log/audit-verify.js'
import type { AuditFileText } from '../log/audit-verify.js'
import { errorCode } from './fs-errors.js'
import type { CommandGroup, LocalCommand } from './command-spec.js'
import { EXIT_FAILURE, EXIT_OK } from './io.js'
import type { CommandIO } from './io.js'

/** `openkes audit verify [--key FILE] FILE...`. */
const verifyCommand: LocalCommand = {
  kind: 'local',
  name: 'verify',
  summary: 'check the hash chain of audit files (oldest first)',
  args: ['file...'],
  completeArgs: 'files',
  options: {
    key: {
      type: 'string',
      value: 'FILE',
      help: 'the log.audit_chain_key file: every MAC is checked, and events\nafter the last MAC count as not authenticated',
      complete: 'files',
    },
  },
  description: `Give rotated files oldest first, the current file last: every event must
follow the one before it, and each file must link to the end of the file
before it. The first broken, missing, reordered or inserted event is
reported with its file and line number.
Exit status: 0 when the whole chain holds, 1 when it does not (or a file
can't be read), 2 on a usage error.`,
  examples: ['openkes audit verify --key /etc/openkes/audit-chain.key audit.log.2 audit.log.1 audit.log'],
  run(inv) {
    const key = inv.options['key']
    return verifyAuditFiles(inv.args, typeof key === 'string' ? key : undefined, inv.io)
  },
}

/** `openkes audit ...`: the audit file, offline. */
export const auditCommands: CommandGroup = {
  name: 'audit',
  summary: 'check the hash chain of audit files',
  commands: [verifyCommand],
}

/** Verifies `files` in order; resolves to the exit code. */
export async function verifyAuditFiles(files: readonly string[], keyFile: string | undefined, io: CommandIO): Promise<number> {
  const cwd = io.cwd ?? process.cwd()
  let key: Buffer | undefined
  const texts: AuditFileText[] = []
  try {
    if (keyFile !== undefined) key = await readChainKey(path.resolve(cwd, keyFile))
    for (const file of files) {
      try {
        texts.push({ name: file, text: await readFile(path.resolve(cwd, file), 'utf8') })
      } catch (err) {
        throw new Error(`cannot read '${file}': ${errorCode(err) ?? String(err)}`)
      }
    }
  } catch (err) {
    io.stderr(`openkes audit verify: ${(err as Error).message}\n`)
    return EXIT_FAILURE
  }
  const r = verifyAuditChain(texts, key)
  key?.fill(0)
  for (const gap of r.gaps) io.stdout(`${gap.file}:${gap.line}: note: the server could not write ${gap.lost} event(s) before this one (recorded in the chain)\n`)
  if (r.problem !== undefined) {
    io.stderr(`${r.problem.file}:${r.problem.line}: ${r.problem.message}\n`)
    io.stderr(`audit chain BROKEN (${r.events} event(s) checked before the problem)\n`)
    return EXIT_FAILURE
  }
  if (r.events === 0) {
    io.stderr(`openkes audit verify: no chained events in ${files.length === 1 ? 'the file' : 'the files'}\n`)
    return EXIT_FAILURE
  }
  const start = r.continuesEarlierFile ? `continues an earlier file at sequence number ${r.firstSeq ?? '?'}` : 'starts at its beginning'
  const mac = key === undefined ? 'MACs not checked (no --key)' : `${r.macs} MAC(s) verified, the last event is authenticated`
  const unchained = r.unchained > 0 ? `; ${r.unchained} line(s) before the chain carry none` : ''
  io.stdout(
    `audit chain OK: ${files.length} file(s), ${r.events} event(s), sequence ${r.firstSeq ?? '?'}..${r.lastSeq ?? '?'}; ` +
      `the chain ${start}; ${mac}${unchained}; head ${r.head ?? ''}\n`,
  )
  return EXIT_OK
}
