/**
 * The hash chain of the audit file. Each event line gets one extra field at the end,
 *
 *   {...today's event...,"chain":{"seq":N[,"prev":"<hex>"][,"lost":K],"hash":"<hex>"[,"mac":"<hex>"]}}
 *
 * - `seq` numbers the events the server audited: 1, 2, 3, ...
 * - `hash` = SHA-256(previous event's hash ‖ UTF-8 of the line up to, not including, `,"hash":`),
 *   so it covers the whole event and `seq`, `prev` and `lost`.
 * - `prev` (the previous event's hash) is on the first event a server writes after opening a
 *   file: after a start, a SIGHUP rotation or a config reload. On the very first event of a
 *   chain it is GENESIS (64 zeros). In a rotated-to file it links the file to the last event
 *   of the file before it.
 * - `lost` says that K events the server audited could not be written (a full disk, see
 *   audit-file.ts); `seq` then jumps by K + 1 and the chain links to the last event written,
 *   so a gap made by the server is recorded, not hidden.
 * - `mac` = HMAC-SHA256(`log.audit_chain_key`, hash), on the last event of every write (a
 *   batch), when a chain key is configured. A MAC authenticates the whole chain up to it:
 *   whoever rewrites the file without the key can't recompute it.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/** The `prev` of the first event of a chain. */
export const GENESIS = '0'.repeat(64)

const HASH_FIELD = ',"hash":"'
// The chain object is always the last field of a chained line.
const CHAIN_TAIL = /,"hash":"([0-9a-f]{64})"(?:,"mac":"([0-9a-f]{64})")?\}\}$/

/** Where a chain stands after its last written event. */
export interface ChainHead {
  readonly seq: number
  readonly hash: string
}

/** The hash of one event: SHA-256(prev hash bytes ‖ covered text), as hex. */
export function chainHash(prevHex: string, covered: string): string {
  return createHash('sha256').update(Buffer.from(prevHex, 'hex')).update(covered).digest('hex')
}

/** HMAC-SHA256 of an event hash under the chain key, as hex. */
export function chainMac(key: Uint8Array, hashHex: string): string {
  return createHmac('sha256', key).update(hashHex).digest('hex')
}

/** Compares two hex MACs in constant time. */
export function macEquals(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))
}

/** The chain fields of one line, as written. */
export interface ChainFields {
  readonly seq: number
  readonly prev: string | undefined
  readonly lost: number
  readonly hash: string
  readonly mac: string | undefined
  /** The text the hash covers. */
  readonly covered: string
}

/**
 * The chain fields of a line (without its newline), or undefined when the line has no chain
 * field; throws with a reason when the chain field is there but malformed.
 */
export function parseChainFields(line: string): ChainFields | undefined {
  let event: unknown
  try {
    event = JSON.parse(line)
  } catch {
    throw new Error('not a JSON event (edited or cut off)')
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new Error('not a JSON object')
  if (!('chain' in event)) return undefined
  const chain = event.chain
  const tail = CHAIN_TAIL.exec(line)
  if (tail === null || typeof chain !== 'object' || chain === null) throw new Error('malformed chain field')
  const c = chain as Record<string, unknown>
  const seq = c['seq']
  const prev = c['prev']
  const lost = c['lost'] ?? 0
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) throw new Error('malformed chain.seq')
  if (prev !== undefined && (typeof prev !== 'string' || !/^[0-9a-f]{64}$/.test(prev))) throw new Error('malformed chain.prev')
  if (typeof lost !== 'number' || !Number.isSafeInteger(lost) || lost < 0) throw new Error('malformed chain.lost')
  return {
    seq,
    prev,
    lost,
    hash: tail[1] ?? '',
    mac: tail[2],
    covered: line.slice(0, line.lastIndexOf(HASH_FIELD)),
  }
}

/** A batch chained by `AuditChain.chain`, ready to be written. */
export interface ChainedBatch {
  readonly text: string
  readonly head: ChainHead
  /** The lost events the batch records (in its first line). */
  readonly lost: number
}

/**
 * The chain state of a writer: the head (last event written), events lost since, and whether
 * the next event carries `prev`. A batch is chained with `chain()`, and only after it is on
 * disk does `commit()` move the head; a failed write calls `lose()` instead, so the events of
 * a write that was cut off again leave no trace in the chain but their count.
 */
export class AuditChain {
  #head: ChainHead
  #lost = 0
  #link = true
  #key: Uint8Array | undefined

  constructor(head: ChainHead | undefined, key: Uint8Array | undefined) {
    this.#head = head ?? { seq: 0, hash: GENESIS }
    this.#key = key
  }

  get head(): ChainHead {
    return this.#head
  }

  /** MACs the events chained from now on with `key` (none: no MACs). */
  useKey(key: Uint8Array | undefined): void {
    this.#key = key
  }

  /** The next event written carries `prev` (a new file was opened). */
  relink(): void {
    this.#link = true
  }

  /** `n` events never reached the file; the next event written records them. */
  lose(n: number): void {
    this.#lost += n
  }

  /**
   * Chains a batch of event lines (each a JSON object followed by '\n'). Returns the text to
   * write, the head it leads to and the lost events it records, to be passed to `commit` once
   * written.
   */
  chain(lines: readonly string[]): ChainedBatch {
    let { seq, hash } = this.#head
    let lost = this.#lost
    let link = this.#link
    let text = ''
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] ?? '{}\n'
      seq += 1 + lost
      let covered = `${line.slice(0, line.length - 2)},"chain":{"seq":${seq}`
      if (link) covered += `,"prev":"${hash}"`
      if (lost > 0) covered += `,"lost":${lost}`
      hash = chainHash(hash, covered)
      const mac = this.#key !== undefined && i === lines.length - 1 ? `,"mac":"${chainMac(this.#key, hash)}"` : ''
      text += `${covered}${HASH_FIELD}${hash}"${mac}}}\n`
      lost = 0
      link = false
    }
    return { text, head: { seq, hash }, lost: lines.length > 0 ? this.#lost : 0 }
  }

  /**
   * The batch is on disk. Only the losses it recorded are cleared: events lost while it was
   * being written (the queue was full) are recorded by the next batch.
   */
  commit(written: ChainedBatch): void {
    this.#head = written.head
    this.#lost -= written.lost
    this.#link = false
  }
}

/** The head recorded in the last line of a file's text tail, or undefined when it has none. */
export function headOfLastLine(line: string | undefined): ChainHead | undefined {
  if (line === undefined || line === '') return undefined
  try {
    const fields = parseChainFields(line)
    return fields === undefined ? undefined : { seq: fields.seq, hash: fields.hash }
  } catch {
    return undefined
  }
}
