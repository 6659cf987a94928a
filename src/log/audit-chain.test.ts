import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AuditChain, GENESIS, parseChainFields } from './audit-chain.js'
import { formatAuditEvent } from './audit-log.js'
import { verifyAuditChain } from './audit-verify.js'
import type { AuditFileText } from './audit-verify.js'

const KEY = Buffer.from('k'.repeat(40))
const OTHER_KEY = Buffer.from('x'.repeat(40))

function event(n: number): string {
  return formatAuditEvent({ time: new Date(n * 1000), method: 'POST', path: `/v1/key/generate/k${n}`, identity: 'ab'.repeat(32), ip: '127.0.0.1', status: 200, durationNs: BigInt(n), error: undefined })
}

/** Writes `batches` (event counts) through a chain, as AuditFile does: one file per entry of `files`. */
function writeFiles(files: ReadonlyArray<readonly number[]>, key: Uint8Array | undefined = KEY): AuditFileText[] {
  const chain = new AuditChain(undefined, key)
  let n = 0
  return files.map((batches, i) => {
    if (i > 0) chain.relink()
    let text = ''
    for (const size of batches) {
      const lines = Array.from({ length: size }, () => event(++n))
      const out = chain.chain(lines)
      chain.commit(out)
      text += out.text
    }
    return { name: `audit.log.${files.length - 1 - i}`, text }
  })
}

const lines = (t: string): string[] => t.split('\n').slice(0, -1)
const join = (l: readonly string[]): string => l.map((x) => `${x}\n`).join('')

test('a chained event is today\'s event plus one chain field at the end', () => {
  const [file] = writeFiles([[1]])
  const line = lines(file?.text ?? '')[0] ?? ''
  const parsed = JSON.parse(line) as Record<string, unknown>
  const plain = JSON.parse(event(1)) as Record<string, unknown>
  assert.deepEqual(Object.keys(parsed), [...Object.keys(plain), 'chain'])
  for (const k of Object.keys(plain)) assert.deepEqual(parsed[k], plain[k])
  const chain = parsed['chain'] as Record<string, unknown>
  assert.deepEqual(Object.keys(chain), ['seq', 'prev', 'hash', 'mac'])
  assert.equal(chain['seq'], 1)
  assert.equal(chain['prev'], GENESIS)
  assert.match(String(chain['hash']), /^[0-9a-f]{64}$/)
})

test('a clean chain over several rotated files verifies; MACs only on the last event of each write', () => {
  const files = writeFiles([[3, 1], [2], [1, 4]])
  const r = verifyAuditChain(files, KEY)
  assert.equal(r.problem, undefined)
  assert.equal(r.ok, true)
  assert.equal(r.events, 11)
  assert.equal(r.firstSeq, 1)
  assert.equal(r.lastSeq, 11)
  assert.equal(r.macs, 5)
  // The first line of each later file links to the file before it.
  for (const f of files.slice(1)) assert.notEqual(parseChainFields(lines(f.text)[0] ?? '')?.prev, undefined)
  assert.equal(verifyAuditChain(files, undefined).ok, true)
})

test('events the server could not write are recorded as a gap, and the chain still holds', () => {
  const chain = new AuditChain(undefined, undefined)
  let text = ''
  const a = chain.chain([event(1), event(2)])
  chain.commit(a)
  text += a.text
  chain.chain([event(3), event(4)]) // the write failed and was cut off again
  chain.lose(2)
  chain.lose(1) // one more dropped while the disk was full
  const b = chain.chain([event(6)])
  chain.commit(b)
  text += b.text
  const fields = parseChainFields(lines(b.text)[0] ?? '')
  assert.equal(fields?.seq, 6)
  assert.equal(fields?.lost, 3)
  const r = verifyAuditChain([{ name: 'audit.log', text }], undefined)
  assert.equal(r.ok, true, r.problem?.message)
  assert.deepEqual(r.gaps, [{ file: 'audit.log', line: 3, lost: 3 }])
})

test('a server restarted on its file goes on with the chain (prev links to the last line)', () => {
  const [first] = writeFiles([[2]])
  const last = parseChainFields(lines(first?.text ?? '').at(-1) ?? '')
  assert.ok(last !== undefined)
  const restarted = new AuditChain({ seq: last.seq, hash: last.hash }, KEY)
  const out = restarted.chain([event(3)])
  const r = verifyAuditChain([{ name: 'audit.log', text: (first?.text ?? '') + out.text }], KEY)
  assert.equal(r.ok, true, r.problem?.message)
  assert.equal(r.lastSeq, 3)
})

// Each kind of tampering, and the line it must be reported at.
interface Tamper {
  readonly name: string
  readonly change: (files: AuditFileText[]) => AuditFileText[]
  readonly file: string
  readonly line: number
  readonly message: RegExp
  readonly key?: Uint8Array
}

const edit = (t: string, i: number, f: (l: string) => string): string => join(lines(t).map((l, j) => (j === i ? f(l) : l)))

const TAMPERING: readonly Tamper[] = [
  { name: 'an edited field', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 1, (l) => l.replace('"code":200', '"code":403')) }], file: 'audit.log.0', line: 2, message: /hash does not match/ },
  { name: 'an edited sequence number', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 2, (l) => l.replace(/"seq":\d+/, '"seq":99')) }], file: 'audit.log.0', line: 3, message: /sequence number 99 after 6/ },
  { name: 'a deleted line', change: ([a, b]) => [{ ...a!, text: join(lines(a!.text).filter((_, j) => j !== 1)) }, b!], file: 'audit.log.1', line: 2, message: /sequence number 3 after 1: 1 event\(s\) are missing/ },
  { name: 'two lines swapped', change: ([a, b]) => { const l = lines(a!.text); return [{ ...a!, text: join([l[0]!, l[2]!, l[1]!, l[3]!]) }, b!] }, file: 'audit.log.1', line: 2, message: /sequence number 3 after 1/ },
  { name: 'a line copied in (replayed)', change: ([a, b]) => { const l = lines(a!.text); return [{ ...a!, text: join([l[0]!, l[1]!, l[1]!, ...l.slice(2)]) }, b!] }, file: 'audit.log.1', line: 3, message: /sequence number 2 after 2: an event is repeated, reordered or inserted/ },
  { name: 'an unchained line inserted', change: ([a, b]) => { const l = lines(a!.text); return [{ ...a!, text: join([l[0]!, event(99).trimEnd(), ...l.slice(1)]) }, b!] }, file: 'audit.log.1', line: 2, message: /without a chain field/ },
  { name: 'a line replaced by a JSON array', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 1, () => '[1,2]') }], file: 'audit.log.0', line: 2, message: /^not a JSON object$/ },
  { name: 'a chain field that is not an object', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 1, (l) => l.replace(/"chain":\{.*\}\}$/, '"chain":7}')) }], file: 'audit.log.0', line: 2, message: /^malformed chain field$/ },
  { name: 'a sequence number that is not a number', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 1, (l) => l.replace(/"seq":(\d+)/, '"seq":"$1"')) }], file: 'audit.log.0', line: 2, message: /^malformed chain\.seq$/ },
  { name: 'a sequence number of 0', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 1, (l) => l.replace(/"seq":\d+/, '"seq":0')) }], file: 'audit.log.0', line: 2, message: /^malformed chain\.seq$/ },
  { name: 'a link that is not a hash', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 0, (l) => l.replace(/"prev":"[0-9a-f]{64}"/, '"prev":"XYZ"')) }], file: 'audit.log.0', line: 1, message: /^malformed chain\.prev$/ },
  { name: 'a negative lost count', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 1, (l) => l.replace(/("seq":\d+)/, '$1,"lost":-2')) }], file: 'audit.log.0', line: 2, message: /^malformed chain\.lost$/ },
  { name: 'the first file without its first link', change: ([a, b]) => [{ ...a!, text: edit(a!.text, 0, (l) => l.replace(/,"prev":"[0-9a-f]{64}"/, '')) }, b!], file: 'audit.log.1', line: 1, message: /the first chained event has no link \(prev\)/ },
  { name: 'the chain starting past 1', change: ([a, b]) => [{ ...a!, text: edit(a!.text, 0, (l) => l.replace(/"seq":1,/, '"seq":5,')) }, b!], file: 'audit.log.1', line: 1, message: /the chain starts with sequence number 5, not 1/ },
  { name: 'a new chain started inside the files', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 0, (l) => l.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${GENESIS}"`)) }], file: 'audit.log.0', line: 1, message: /a new chain starts here/ },
  { name: 'a line whose link was rewritten', change: ([a, b]) => [a!, { ...b!, text: edit(b!.text, 1, (l) => l.replace(/("seq":\d+)/, `$1,"prev":"${'1'.repeat(64)}"`)) }], file: 'audit.log.0', line: 2, message: /does not link to the line before/ },
  { name: 'a file cut off mid-line', change: ([a, b]) => [a!, { ...b!, text: b!.text.slice(0, -30) }], file: 'audit.log.0', line: 4, message: /cut off|not a JSON/ },
  { name: 'the last lines of a rotated file removed', change: ([a, b]) => [{ ...a!, text: join(lines(a!.text).slice(0, 2)) }, b!], file: 'audit.log.0', line: 1, message: /does not link to the last event of the file before/ },
  { name: 'rotated files given in the wrong order', change: ([a, b]) => [b!, a!], file: 'audit.log.1', line: 1, message: /does not link|new chain starts/ },
  { name: 'a rotated file missing', change: ([a, b]) => [a!, { ...b!, text: '' }, { name: 'audit.log', text: writeFiles([[4], [3], [2]])[2]!.text }], file: 'audit.log', line: 1, message: /does not link to the last event of the file before/ },
  {
    name: 'the whole chain recomputed without the key',
    change: ([a, b]) => {
      // An attacker rewrites event 2 and recomputes every hash after it, but has no key.
      const forged = new AuditChain(undefined, OTHER_KEY)
      const all = [...lines(a!.text), ...lines(b!.text)].map((l) => `${l.slice(0, l.indexOf(',"chain"'))}}\n`)
      all[1] = all[1]!.replace('"code":200', '"code":404')
      const out = forged.chain(all.slice(0, 4))
      forged.commit(out)
      forged.relink()
      const rest = forged.chain(all.slice(4))
      return [{ ...a!, text: out.text }, { ...b!, text: rest.text }]
    },
    file: 'audit.log.1',
    line: 4,
    message: /MAC does not match/,
  },
  {
    name: 'events appended without a MAC',
    change: ([a, b]) => {
      const l = lines(b!.text)
      const last = parseChainFields(l.at(-1)!)!
      const c = new AuditChain({ seq: last.seq, hash: last.hash }, undefined)
      return [a!, { ...b!, text: b!.text + c.chain([event(50)]).text.replace(',"prev":"' + last.hash + '"', '') }]
    },
    file: 'audit.log.0',
    line: 5,
    message: /hash does not match|no MAC from this line/,
  },
]

for (const t of TAMPERING) {
  test(`tampering is found at the right line: ${t.name}`, () => {
    const clean = writeFiles([[2, 2], [1, 3]])
    assert.equal(verifyAuditChain(clean, KEY).ok, true)
    const r = verifyAuditChain(t.change(clean), t.key ?? KEY)
    assert.equal(r.ok, false)
    assert.deepEqual({ file: r.problem?.file, line: r.problem?.line }, { file: t.file, line: t.line }, r.problem?.message)
    assert.match(r.problem?.message ?? '', t.message)
  })
}

test('appended events without a MAC pass without --key but not with it', () => {
  const [a] = writeFiles([[2]])
  const l = lines(a!.text)
  const last = parseChainFields(l.at(-1)!)!
  const c = new AuditChain({ seq: last.seq, hash: last.hash }, undefined)
  c.relink()
  const appended = [{ name: 'audit.log', text: a!.text + c.chain([event(3)]).text }]
  assert.equal(verifyAuditChain(appended, undefined).ok, true)
  const r = verifyAuditChain(appended, KEY)
  assert.deepEqual([r.ok, r.problem?.line], [false, 3])
  assert.match(r.problem?.message ?? '', /no MAC from this line to the end/)
  const wrongKey = verifyAuditChain([a!], OTHER_KEY)
  assert.deepEqual([wrongKey.ok, wrongKey.problem?.line], [false, 2])
})

test('events lost while a batch is being written are recorded by the next batch, not forgotten by its commit', () => {
  const chain = new AuditChain(undefined, KEY)
  const inFlight = chain.chain([event(1)])
  chain.lose(3) // the queue was full while event 1 was being written
  chain.commit(inFlight)
  const next = chain.chain([event(5)])
  chain.commit(next)
  const fields = parseChainFields(next.text.slice(0, -1))
  assert.equal(fields?.lost, 3)
  assert.equal(fields?.seq, 5)
  const result = verifyAuditChain([{ name: 'audit.log', text: inFlight.text + next.text }], KEY)
  assert.equal(result.ok, true)
  assert.deepEqual(result.gaps, [{ file: 'audit.log', line: 2, lost: 3 }])
  assert.equal(result.lastSeq, 5)
})
