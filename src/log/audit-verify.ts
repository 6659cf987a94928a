/**
 * Checks the hash chain of one or several audit files, in the order given (oldest first):
 * every line must be a chained event whose `seq` follows the one before it (plus the events
 * it records as `lost`) and whose hash covers it and links to the line before; a file's
 * first event links to the last event of the file before it. With a chain key, every MAC
 * must match and the last event must carry one (events after the last MAC are unproven).
 * Reports the first problem with its file and line number.
 */
import { GENESIS, chainHash, chainMac, macEquals, parseChainFields } from './audit-chain.js'

/** One audit file's content and its name for messages. */
export interface AuditFileText {
  readonly name: string
  readonly text: string
}

/** A problem, located. */
export interface ChainProblem {
  readonly file: string
  /** 1-based line number. */
  readonly line: number
  readonly message: string
}

/** A recorded gap: the server could not write `lost` events before this line. */
export interface RecordedGap {
  readonly file: string
  readonly line: number
  readonly lost: number
}

export interface VerifyResult {
  readonly ok: boolean
  readonly problem: ChainProblem | undefined
  /** Chained events checked. */
  readonly events: number
  /** Lines before the chain begins that carry no chain (written before chaining existed). */
  readonly unchained: number
  readonly firstSeq: number | undefined
  readonly lastSeq: number | undefined
  readonly head: string | undefined
  /** The first chained event links to a file not given (its `prev` is not the genesis). */
  readonly continuesEarlierFile: boolean
  readonly gaps: readonly RecordedGap[]
  /** MACs checked (with a key). */
  readonly macs: number
}

/** Verifies `files` in order; `key` (the chain key) makes MACs required and checked. */
export function verifyAuditChain(files: readonly AuditFileText[], key: Uint8Array | undefined): VerifyResult {
  let seq: number | undefined
  let hash = GENESIS
  let events = 0
  let unchained = 0
  let firstSeq: number | undefined
  let continuesEarlierFile = false
  let macs = 0
  // Where the last event without a MAC after the last MAC is (with a key).
  let unprovenSince: { file: string; line: number } | undefined
  const gaps: RecordedGap[] = []
  const result = (problem: ChainProblem | undefined): VerifyResult => ({
    ok: problem === undefined,
    problem,
    events,
    unchained,
    firstSeq,
    lastSeq: seq,
    head: seq === undefined ? undefined : hash,
    continuesEarlierFile,
    gaps,
    macs,
  })

  for (const { name, text } of files) {
    if (text === '') continue
    const lines = text.split('\n')
    const last = lines.pop()
    if (last !== '') return result({ file: name, line: lines.length + 1, message: 'the last line is cut off (no end of line): the file was truncated' })
    for (let i = 0; i < lines.length; i++) {
      const at = (message: string): VerifyResult => result({ file: name, line: i + 1, message })
      const line = lines[i] ?? ''
      let fields
      try {
        fields = parseChainFields(line)
      } catch (err) {
        return at((err as Error).message)
      }
      if (fields === undefined) {
        if (seq !== undefined) return at('an event without a chain field inside the chain (inserted)')
        unchained++
        continue
      }
      const firstOfFile = i === 0 || (seq === undefined && unchained > 0)
      let prevHash = hash
      if (seq === undefined) {
        // The first chained event: it starts the chain, or links to a file not given.
        if (fields.prev === undefined) return at('the first chained event has no link (prev): events before it are missing')
        if (fields.prev !== GENESIS) continuesEarlierFile = true
        else if (fields.seq !== 1 + fields.lost) return at(`the chain starts with sequence number ${fields.seq}, not ${1 + fields.lost}`)
        prevHash = fields.prev
        firstSeq = fields.seq
      } else {
        if (fields.prev === GENESIS) {
          return at(`a new chain starts here (sequence number ${fields.seq}); events or files before it are not linked: earlier events were removed, or a server started on an empty audit file`)
        }
        if (fields.prev !== undefined && fields.prev !== hash) {
          return at(
            firstOfFile
              ? `does not link to the last event of the file before (sequence number ${seq}): a file is missing or the files are out of order`
              : `does not link to the line before: events were removed or rewritten before it`,
          )
        }
        const expected = seq + 1 + fields.lost
        if (fields.seq < expected) return at(`sequence number ${fields.seq} after ${seq}: an event is repeated, reordered or inserted`)
        if (fields.seq > expected) {
          return at(`sequence number ${fields.seq} after ${seq}: ${fields.seq - expected} event(s) are missing or out of order before this line`)
        }
      }
      if (chainHash(prevHash, fields.covered) !== fields.hash) {
        return at('the hash does not match the event: the line was edited, or an event before it was removed or moved')
      }
      if (fields.lost > 0) gaps.push({ file: name, line: i + 1, lost: fields.lost })
      if (key !== undefined) {
        if (fields.mac !== undefined) {
          if (!macEquals(chainMac(key, fields.hash), fields.mac)) {
            return at('the MAC does not match: the chain was rewritten (or the wrong key was given)')
          }
          macs++
          unprovenSince = undefined
        } else {
          unprovenSince ??= { file: name, line: i + 1 }
        }
      }
      seq = fields.seq
      hash = fields.hash
      events++
    }
  }
  if (unprovenSince !== undefined) {
    return result({ ...unprovenSince, message: 'no MAC from this line to the end: these events are not authenticated (appended or rewritten without the key)' })
  }
  return result(undefined)
}
