// One load-generator process of `npm run bench`. It is forked by bench/run.ts
// (never on a server's event loop), gets one job over IPC, drives one server
// with it and sends back what it measured. Every response is checked: the
// status, the JSON shape, and for decrypt that the plaintext is the one the
// server generated for that ciphertext.
import { randomBytes } from 'node:crypto'
import http2 from 'node:http2'
import tls from 'node:tls'
import type { Job, Op, WorkerResult } from './protocol.js'

/** The TLS material and target every connection of a job uses. */
interface Target {
  readonly port: number
  readonly key: string
  readonly cert: string
  readonly ca: string
}

/** One request as the generator sends it, with the check of its answer. */
interface Call {
  readonly method: 'GET' | 'POST'
  readonly path: string
  readonly body: string
  /** Undefined when the answer is right; else why it is wrong. */
  check(status: number, body: string): string | undefined
}

/** A data key the server generated, kept for decrypt calls. */
interface DataKey {
  readonly plaintext: string
  readonly ciphertext: string
}

function parseObject(body: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const BASE64_32_BYTES = /^[A-Za-z0-9+/]{43}=$/

/** Builds the next call of an op. `keys` holds data keys generated beforehand (for decrypt). */
function callMaker(op: Op, keyNames: readonly string[], dataKeys: readonly DataKey[]): () => Call {
  let i = 0
  const keyName = (): string => keyNames[i % keyNames.length] as string
  const generate = (name: string): Call => ({
    method: 'POST',
    path: `/v1/key/generate/${name}`,
    body: '{}',
    check(status, body) {
      if (status !== 200) return `generate: status ${status}`
      const o = parseObject(body)
      if (o === undefined || typeof o['plaintext'] !== 'string' || !BASE64_32_BYTES.test(o['plaintext']) || typeof o['ciphertext'] !== 'string') {
        return 'generate: bad JSON'
      }
      return undefined
    },
  })
  const decrypt = (name: string, dk: DataKey): Call => ({
    method: 'POST',
    path: `/v1/key/decrypt/${name}`,
    body: JSON.stringify({ ciphertext: dk.ciphertext }),
    check(status, body) {
      if (status !== 200) return `decrypt: status ${status}`
      const o = parseObject(body)
      if (o === undefined || o['plaintext'] !== dk.plaintext) return 'decrypt: wrong plaintext'
      return undefined
    },
  })
  const plaintext = randomBytes(32).toString('base64')
  const encryptBody = JSON.stringify({ plaintext })
  const encrypt = (name: string): Call => ({
    method: 'POST',
    path: `/v1/key/encrypt/${name}`,
    body: encryptBody,
    check(status, body) {
      if (status !== 200) return `encrypt: status ${status}`
      const o = parseObject(body)
      if (o === undefined || typeof o['ciphertext'] !== 'string' || o['ciphertext'].length === 0) return 'encrypt: bad JSON'
      return undefined
    },
  })
  const version: Call = {
    method: 'GET',
    path: '/version',
    body: '',
    check(status, body) {
      if (status !== 200) return `version: status ${status}`
      const o = parseObject(body)
      if (o === undefined || typeof o['version'] !== 'string') return 'version: bad JSON'
      return undefined
    },
  }
  const decryptCalls = dataKeys.map((dk) => decrypt(keyNames[0] as string, dk))
  return () => {
    i++
    switch (op) {
      case 'generate':
        return generate(keyName())
      case 'encrypt':
        return encrypt(keyName())
      case 'decrypt':
        return decryptCalls[i % decryptCalls.length] as Call
      case 'version':
        return version
      case 'mixed':
        // MinIO's mix: one data key per write, one decrypt per read; reads outnumber writes.
        return i % 3 === 0 ? generate(keyName()) : i % 3 === 1 ? (decryptCalls[i % decryptCalls.length] as Call) : encrypt(keyName())
    }
  }
}

// ---- HTTP/1.1 over one TLS socket, keep-alive or one request per connection ----

/** A minimal HTTP/1.1 client for one connection: one request at a time, Content-Length answers only. */
class Http1Connection {
  readonly #socket: tls.TLSSocket
  #buf = ''
  #pending: ((status: number, body: string) => void) | undefined
  #fail: ((err: Error) => void) | undefined

  private constructor(socket: tls.TLSSocket) {
    this.#socket = socket
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      this.#buf += chunk
      this.#parse()
    })
    const broken = (err?: Error): void => {
      const fail = this.#fail
      this.#pending = undefined
      this.#fail = undefined
      fail?.(err ?? new Error('connection closed'))
    }
    socket.on('error', broken)
    socket.on('close', () => broken())
  }

  static open(t: Target, session: Buffer | undefined, onSession?: (s: Buffer) => void): Promise<Http1Connection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: t.port, key: t.key, cert: t.cert, ca: t.ca, servername: 'localhost', ALPNProtocols: ['http/1.1'], session })
      if (onSession !== undefined) socket.on('session', onSession)
      socket.once('secureConnect', () => {
        socket.off('error', reject)
        resolve(new Http1Connection(socket))
      })
      socket.once('error', reject)
    })
  }

  get reused(): boolean {
    return this.#socket.isSessionReused()
  }

  request(call: Call, close: boolean): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      this.#pending = (status, body) => resolve({ status, body })
      this.#fail = reject
      const length = Buffer.byteLength(call.body)
      this.#socket.write(
        `${call.method} ${call.path} HTTP/1.1\r\nHost: localhost\r\n${close ? 'Connection: close\r\n' : ''}Content-Length: ${length}\r\n\r\n${call.body}`,
      )
    })
  }

  destroy(): void {
    this.#socket.destroy()
  }

  #parse(): void {
    const end = this.#buf.indexOf('\r\n\r\n')
    if (end < 0 || this.#pending === undefined) return
    const head = this.#buf.slice(0, end)
    const status = Number(head.slice(9, 12))
    const m = /\r\ncontent-length: *(\d+)/i.exec(head)
    if (m === null) {
      this.#fail?.(new Error('answer without Content-Length'))
      return
    }
    const total = end + 4 + Number(m[1])
    if (this.#buf.length < total) return
    const body = Buffer.from(this.#buf.slice(end + 4, total), 'latin1').toString('utf8')
    this.#buf = this.#buf.slice(total)
    const done = this.#pending
    this.#pending = undefined
    this.#fail = undefined
    done(status, body)
  }
}

// ---- the job ----

interface Tally {
  requests: number
  errors: number
  resumed: number
  readonly errorKinds: Map<string, number>
  latenciesUs: number[]
}

function countError(t: Tally, why: string): void {
  t.errors++
  t.errorKinds.set(why, (t.errorKinds.get(why) ?? 0) + 1)
}

async function prepareDataKeys(t: Target, keyName: string, n: number): Promise<DataKey[]> {
  const conn = await Http1Connection.open(t, undefined)
  const out: DataKey[] = []
  try {
    for (let i = 0; i < n; i++) {
      const { status, body } = await conn.request({ method: 'POST', path: `/v1/key/generate/${keyName}`, body: '{}', check: () => undefined }, false)
      const o = parseObject(body)
      if (status !== 200 || o === undefined || typeof o['plaintext'] !== 'string' || typeof o['ciphertext'] !== 'string') {
        throw new Error(`cannot prepare data keys: generate answered ${status} ${body}`)
      }
      out.push({ plaintext: o['plaintext'], ciphertext: o['ciphertext'] })
    }
  } finally {
    conn.destroy()
  }
  return out
}

async function run(job: Job): Promise<WorkerResult> {
  const target: Target = { port: job.port, key: job.tls.key, cert: job.tls.cert, ca: job.tls.ca }
  const dataKeys = job.op === 'decrypt' || job.op === 'mixed' ? await prepareDataKeys(target, job.keyNames[0] as string, 32) : []
  const next = callMaker(job.op, job.keyNames, dataKeys)
  const tally: Tally = { requests: 0, errors: 0, resumed: 0, errorKinds: new Map(), latenciesUs: [] }
  let measuring = false
  let stop = false
  const record = (startMs: number, call: Call, status: number, body: string): void => {
    if (!measuring) return
    tally.requests++
    tally.latenciesUs.push((performance.now() - startMs) * 1000)
    const why = call.check(status, body)
    if (why !== undefined) countError(tally, why)
  }
  const failed = (err: unknown): void => {
    if (measuring) countError(tally, `transport: ${err instanceof Error ? err.message : String(err)}`)
  }

  const loops: Array<Promise<void>> = []
  const closers: Array<() => void> = []
  switch (job.transport) {
    case 'h1': {
      for (let c = 0; c < job.concurrency; c++) {
        loops.push(
          (async () => {
            let conn = await Http1Connection.open(target, undefined)
            closers.push(() => conn.destroy())
            while (!stop) {
              const call = next()
              const t0 = performance.now()
              try {
                const { status, body } = await conn.request(call, false)
                record(t0, call, status, body)
              } catch (err) {
                failed(err)
                conn.destroy()
                if (!stop) conn = await Http1Connection.open(target, undefined)
              }
            }
            conn.destroy()
          })(),
        )
      }
      break
    }
    case 'newconn':
    case 'newconn-resume': {
      const resume = job.transport === 'newconn-resume'
      for (let c = 0; c < job.concurrency; c++) {
        loops.push(
          (async () => {
            let session: Buffer | undefined
            while (!stop) {
              const call = next()
              const t0 = performance.now()
              let conn: Http1Connection | undefined
              try {
                conn = await Http1Connection.open(target, resume ? session : undefined, resume ? (s) => (session = s) : undefined)
                const { status, body } = await conn.request(call, true)
                if (measuring && conn.reused) tally.resumed++
                record(t0, call, status, body)
              } catch (err) {
                failed(err)
              } finally {
                conn?.destroy()
              }
            }
          })(),
        )
      }
      break
    }
    case 'h2': {
      const session = http2.connect(`https://127.0.0.1:${target.port}`, { key: target.key, cert: target.cert, ca: target.ca, servername: 'localhost' })
      session.on('error', failed)
      closers.push(() => session.destroy())
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve())
        session.once('error', reject)
      })
      const one = (call: Call): Promise<void> =>
        new Promise((resolve) => {
          const t0 = performance.now()
          const s = session.request({ ':method': call.method, ':path': call.path }, { endStream: call.body === '' })
          let status = 0
          let body = ''
          s.setEncoding('utf8')
          s.on('response', (h) => (status = Number(h[':status'])))
          s.on('data', (c: string) => (body += c))
          s.on('end', () => {
            record(t0, call, status, body)
            resolve()
          })
          s.on('error', (err) => {
            failed(err)
            resolve()
          })
          if (call.body !== '') s.end(call.body)
        })
      for (let c = 0; c < job.concurrency; c++) {
        loops.push(
          (async () => {
            while (!stop) await one(next())
          })(),
        )
      }
      break
    }
  }
  // The parent decides when measuring starts and stops (for every load process
  // of the scenario at once) and reads the server's CPU time at those moments.
  send({ kind: 'ready' })
  await nextCommand('measure')
  measuring = true
  const measuredFrom = performance.now()
  await nextCommand('stop')
  measuring = false
  const seconds = (performance.now() - measuredFrom) / 1000
  stop = true
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 5_000))])
  for (const close of closers) close()
  return {
    kind: 'result',
    requests: tally.requests,
    errors: tally.errors,
    errorKinds: Object.fromEntries(tally.errorKinds),
    resumed: tally.resumed,
    seconds,
    latenciesUs: Float64Array.from(tally.latenciesUs),
  }
}

const commands: string[] = []
let commandWaiter: (() => void) | undefined

/** Resolves once the parent sent `command` (a string message). */
async function nextCommand(command: string): Promise<void> {
  for (;;) {
    const got = commands.shift()
    if (got === command) return
    if (got === undefined) await new Promise<void>((r) => (commandWaiter = r))
  }
}

function send(message: unknown): void {
  process.send?.(message)
}

/** Sends `message` to the bench, then closes the channel: only once the message is written, or a large result is cut off. */
function sendLast(message: unknown): void {
  if (process.send === undefined) return
  process.send(message, undefined, {}, () => process.disconnect?.())
}

process.on('message', (message: Job | string) => {
  if (typeof message === 'string') {
    commands.push(message)
    const w = commandWaiter
    commandWaiter = undefined
    w?.()
    return
  }
  run(message).then(
    (result) => sendLast(result),
    (err: unknown) => sendLast({ kind: 'failed', message: err instanceof Error ? err.message : String(err) }),
  )
})
