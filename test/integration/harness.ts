// Test harness: a real OpenKES server on 127.0.0.1:0 with real certificates
// made by the project's own certificate code, and a small mTLS client that
// speaks HTTP/1.1 or HTTP/2.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { after, before } from 'node:test'
import tls from 'node:tls'
import YAML from 'yaml'
import { loadConfigFile } from '../../src/config/load.js'
import { startServer } from '../../src/server/server.js'
import type { RunningServer, StartOptions } from '../../src/server/server.js'
import { createCertificate } from '../../src/x509/certificate.js'
import type { IssuedCertificate } from '../../src/x509/certificate.js'
import type { TableName } from '../../src/keystore/keystore.js'
import type { TestPostgres } from '../support/postgres.js'

/** The key store the servers of this test process use: 'fs' (default) or a test PostgreSQL. */
export type StoreKind = 'fs' | 'postgres'

let postgres: TestPostgres | undefined

/**
 * Makes every TestEnv created afterwards in this process run its server on `db` (a schema of
 * its own per TestEnv) instead of ./keys: the config-level switch that runs one suite against
 * both stores. The test/integration/postgres/ files call it, then import the suite.
 */
export function usePostgres(db: TestPostgres): void {
  postgres = db
}

/** Which store this process's servers use. */
export function storeKind(): StoreKind {
  return postgres === undefined ? 'fs' : 'postgres'
}

/**
 * The config with its key store replaced by this TestEnv's PostgreSQL schema (the YAML is
 * re-written; a test's fs `keystore:` or KES v0.13 `keys:` store section is dropped).
 */
function withPostgres(yaml: string, db: TestPostgres, schema: string): string {
  const doc = YAML.parseDocument(yaml)
  if (doc.errors.length > 0) return yaml
  doc.delete('keystore')
  if (YAML.isMap(doc.get('keys'))) doc.delete('keys')
  return `${String(doc)}${db.keystoreYaml(schema)}`
}

/** A client identity: its certificate, key and identity hex. */
export interface Client {
  readonly name: string
  readonly cert: IssuedCertificate
  readonly identity: string
}

/** A response as tests see it. */
export interface Response {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: unknown
}

/** Options of one request. */
export interface RequestOptions {
  readonly method?: string
  readonly body?: string | Buffer | object
  readonly http2?: boolean
  readonly headers?: Record<string, string>
}

/** Makes a client identity (Ed25519, as `openkes identity new` does). */
export function makeClient(name: string): Client {
  const cert = createCertificate('ed25519', { commonName: name, extKeyUsage: ['clientAuth'] })
  return { name, cert, identity: cert.identity }
}

/** A test environment: a temp dir with server certificates and a config file. */
export class TestEnv {
  readonly dir: string
  serverCert: IssuedCertificate
  server: RunningServer | undefined
  readonly errorLines: string[] = []
  /** The store kind of this environment's server, and its PostgreSQL schema (when 'postgres'). */
  readonly store: StoreKind = storeKind()
  readonly #postgres = postgres
  readonly schema: string | undefined
  readonly #sessions = new Map<string, http2.ClientHttp2Session>()
  readonly #agents = new Map<string, https.Agent>()
  // Every server started and not yet stopped: a test that fails between a start
  // and its stop must not leave a server running (it would keep the test
  // process alive), so dispose() stops them all.
  readonly #running = new Set<RunningServer>()
  #externalPort: number | undefined

  private constructor(dir: string, serverCert: IssuedCertificate, schema: string | undefined) {
    this.dir = dir
    this.serverCert = serverCert
    this.schema = schema
  }

  /**
   * Creates the temp dir and the server certificate. `sameStoreAs`: on PostgreSQL, use that
   * environment's schema (several servers on one store); on fs the test points at its directory.
   * `schema`: on PostgreSQL, use this existing schema.
   */
  static async create(opts: { sameStoreAs?: TestEnv; schema?: string } = {}): Promise<TestEnv> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-test-'))
    const serverCert = createCertificate('ecdsa-p256', {
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      extKeyUsage: ['serverAuth'],
    })
    await writeFile(path.join(dir, 'server.key'), serverCert.keyPem, { mode: 0o600 })
    await writeFile(path.join(dir, 'server.cert'), serverCert.certPem)
    return new TestEnv(dir, serverCert, opts.schema ?? opts.sameStoreAs?.schema ?? postgres?.newSchema())
  }

  /**
   * Stores a raw key entry (e.g. a KES key file) under `name` as the server's store keeps it:
   * a file in ./keys, or a row of this environment's schema.
   */
  async putKeyEntry(name: string, bytes: Buffer): Promise<void> {
    if (this.#postgres !== undefined && this.schema !== undefined) {
      const q = `"${this.schema}".keys`
      await this.#postgres.admin((c) => c.query(`INSERT INTO ${q} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, [name, bytes]))
      return
    }
    await mkdir(path.join(this.dir, 'keys'), { recursive: true, mode: 0o700 })
    await writeFile(path.join(this.dir, 'keys', name), bytes, { mode: 0o600 })
  }

  /** The raw bytes the store keeps for `name` in `table` (a file, or a row), undefined when missing. */
  async readEntry(table: TableName, name: string): Promise<Buffer | undefined> {
    if (this.#postgres !== undefined && this.schema !== undefined) {
      const r = await this.#postgres.admin((c) => c.query(`SELECT value FROM "${this.schema}".${table} WHERE name = $1`, [name]))
      return (r.rows[0] as { value?: Buffer } | undefined)?.value
    }
    return readFile(path.join(this.#tableDir(table), name)).catch(() => undefined)
  }

  /** Every entry name the store keeps in `table` (files without temp files, or rows), sorted. */
  async listEntries(table: TableName): Promise<string[]> {
    if (this.#postgres !== undefined && this.schema !== undefined) {
      const r = await this.#postgres.admin((c) => c.query(`SELECT name FROM "${this.schema}".${table}`))
      return r.rows.map((row) => String((row as { name: unknown }).name)).sort()
    }
    const names = await readdir(this.#tableDir(table)).catch(() => [])
    return names.filter((n) => !n.startsWith('.')).sort()
  }

  /** Overwrites an existing entry with raw bytes (e.g. to corrupt it). */
  async writeEntry(table: TableName, name: string, bytes: Buffer): Promise<void> {
    if (this.#postgres !== undefined && this.schema !== undefined) {
      await this.#postgres.admin((c) => c.query(`UPDATE "${this.schema}".${table} SET value = $2 WHERE name = $1`, [name, bytes]))
      return
    }
    await writeFile(path.join(this.#tableDir(table), name), bytes)
  }

  // Where the fs store of ./keys keeps a table (see src/keystore/fs/fs-store.ts).
  #tableDir(table: TableName): string {
    return table === 'keys' ? path.join(this.dir, 'keys') : path.join(this.dir, 'keys', '.openkes', table)
  }

  /**
   * Makes the server's key store unreachable (fs: its directory removed; PostgreSQL: the
   * database stopped) and returns the function that brings it back.
   */
  async breakStore(): Promise<() => Promise<void>> {
    const db = this.#postgres
    if (db !== undefined) {
      await db.halt()
      return () => db.resume()
    }
    const keys = path.join(this.dir, 'keys')
    await rm(keys, { recursive: true })
    return async () => {
      await mkdir(keys, { mode: 0o700 })
    }
  }

  /**
   * Writes `config.yml` (the address and tls section are added; `tlsExtra`
   * holds more lines for the tls section) and starts the server from it.
   */
  async start(yamlBody: string, opts: StartOptions = {}, tlsExtra = ''): Promise<RunningServer> {
    const file = await this.writeConfig(yamlBody, tlsExtra)
    const config = await loadConfigFile(file, this.configEnv)
    const server = await startServer(config, { errorSink: (line) => this.errorLines.push(line), ...opts })
    this.#running.add(server)
    this.server = server
    return server
  }

  /** Writes `config.yml` (address and tls section added) and returns its path. */
  async writeConfig(yamlBody: string, tlsExtra = '', address = '127.0.0.1:0'): Promise<string> {
    let yaml = `address: ${address}\ntls:\n  key: ./server.key\n  cert: ./server.cert\n${tlsExtra}${yamlBody}`
    if (this.#postgres !== undefined && this.schema !== undefined) yaml = withPostgres(yaml, this.#postgres, this.schema)
    const file = path.join(this.dir, 'config.yml')
    await writeFile(file, yaml)
    return file
  }

  /** The environment configs are loaded with (the PostgreSQL password, when on PostgreSQL). */
  get configEnv(): NodeJS.ProcessEnv {
    return this.#postgres?.env ?? {}
  }

  /** Points the client at a server this test did not start in-process (a child process). */
  useExternalPort(port: number): void {
    this.#externalPort = port
  }

  /** Forgets the client connections (after the server restarted or changed its certificate). */
  resetConnections(): void {
    for (const s of this.#sessions.values()) s.destroy()
    this.#sessions.clear()
    for (const a of this.#agents.values()) a.destroy()
    this.#agents.clear()
  }

  /** Stops the server and closes the client connections (the temp dir stays, for restarts). */
  async stop(): Promise<void> {
    this.resetConnections()
    const server = this.server
    this.server = undefined
    if (server === undefined) return
    this.#running.delete(server)
    await server.close(100)
  }

  /** Stops every server this env started (also those a failed test left running) and removes the temp dir. */
  async dispose(): Promise<void> {
    await this.stop()
    for (const server of this.#running) await server.close(100)
    this.#running.clear()
    await rm(this.dir, { recursive: true, force: true })
  }

  get port(): number {
    if (this.#externalPort !== undefined) return this.#externalPort
    if (this.server === undefined) throw new Error('server not started')
    return this.server.port
  }

  /** Sends one request as `client` and reads the whole response. */
  async request(client: Client, target: string, opts: RequestOptions = {}): Promise<Response> {
    const method = opts.method ?? 'GET'
    const body =
      opts.body === undefined
        ? undefined
        : typeof opts.body === 'string' || Buffer.isBuffer(opts.body)
          ? opts.body
          : JSON.stringify(opts.body)
    return opts.http2 === true
      ? this.#request2(client, method, target, body, opts.headers ?? {})
      : this.#request1(client, method, target, body, opts.headers ?? {})
  }

  #agent(client: Client): https.Agent {
    let agent = this.#agents.get(client.name)
    if (agent === undefined) {
      agent = new https.Agent({
        keepAlive: true,
        cert: client.cert.certPem,
        key: client.cert.keyPem,
        ca: this.serverCert.certPem,
        servername: 'localhost',
      })
      this.#agents.set(client.name, agent)
    }
    return agent
  }

  #request1(client: Client, method: string, target: string, body: string | Buffer | undefined, headers: Record<string, string>): Promise<Response> {
    return new Promise((resolve, reject) => {
      const framing = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }
      const req = https.request(
        { host: '127.0.0.1', port: this.port, method, path: target, agent: this.#agent(client), headers: { ...framing, ...headers } },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => resolve(toResponse(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))))
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }

  #session(client: Client): http2.ClientHttp2Session {
    let s = this.#sessions.get(client.name)
    if (s === undefined || s.closed || s.destroyed) {
      s = http2.connect(`https://localhost:${this.port}`, {
        cert: client.cert.certPem,
        key: client.cert.keyPem,
        ca: this.serverCert.certPem,
        host: '127.0.0.1',
        servername: 'localhost',
      })
      s.on('error', () => {})
      this.#sessions.set(client.name, s)
    }
    return s
  }

  #request2(client: Client, method: string, target: string, body: string | Buffer | undefined, headers: Record<string, string>): Promise<Response> {
    return new Promise((resolve, reject) => {
      const stream = this.#session(client).request({ ':method': method, ':path': target, ...headers })
      const chunks: Buffer[] = []
      let status = 0
      let resHeaders: Record<string, string | string[] | undefined> = {}
      stream.on('response', (h) => {
        status = Number(h[':status'])
        resHeaders = h as Record<string, string | string[] | undefined>
      })
      stream.on('data', (c: Buffer) => chunks.push(c))
      // A stream the server ended or reset without answering is a failure, not a response with status 0.
      stream.on('end', () =>
        status === 0
          ? reject(new Error(`HTTP/2 stream ended without a response (rstCode ${stream.rstCode})`))
          : resolve(toResponse(status, resHeaders, Buffer.concat(chunks))),
      )
      stream.on('close', () => reject(new Error(`HTTP/2 stream closed without a response (rstCode ${stream.rstCode})`)))
      stream.on('error', reject)
      // Node ends the request side itself for bodiless methods such as HEAD.
      if (!stream.writableEnded) stream.end(body)
    })
  }

  /** Opens a raw TLS connection (for handshake tests). */
  connectTls(opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: this.port, servername: 'localhost', ca: this.serverCert.certPem, ...opts }, () => resolve(socket))
      socket.on('error', reject)
    })
  }
}

function toResponse(status: number, headers: Record<string, string | string[] | undefined>, body: Buffer): Response {
  const text = body.toString('utf8')
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status, headers, text, json }
}

/** The fs key store in ./keys, as a config section. */
export const FS_KEYSTORE = 'keystore:\n  fs:\n    path: ./keys\n'

/** A server config with `admin` as the admin identity, then `extra` (more top-level YAML lines). */
export function adminConfig(admin: string, extra = ''): string {
  return `admin:\n  identity: ${admin}\n${extra}`
}

/**
 * For the enclosing describe(): a TestEnv whose server runs `config`, started before its tests
 * and disposed after them. Returns the environment's accessor (it exists once the tests run).
 */
export function serverPerSuite(config: string, opts: StartOptions = {}): () => TestEnv {
  let env: TestEnv | undefined
  before(async () => {
    env = await TestEnv.create()
    await env.start(config, opts)
  })
  after(async () => {
    await env?.dispose()
  })
  return () => {
    if (env === undefined) throw new Error('the server of this suite was not started')
    return env
  }
}

/**
 * For the enclosing describe(): `count` servers on one key store (the first environment's; on
 * PostgreSQL one schema), each started from `config` before the tests and disposed after them.
 * The array fills when the tests run; `at(i)` is the accessor of the i-th server.
 */
export function serversOnOneStore(count: number, config: string): { readonly envs: readonly TestEnv[]; at(i: number): () => TestEnv } {
  const envs: TestEnv[] = []
  before(async () => {
    const first = await TestEnv.create()
    envs.push(first)
    while (envs.length < count) envs.push(await TestEnv.create({ sameStoreAs: first }))
    for (const e of envs) await e.start(config)
  })
  after(async () => {
    for (const e of envs) await e.dispose()
  })
  const at = (i: number) => (): TestEnv => {
    const e = envs[i]
    if (e === undefined) throw new Error('servers not started')
    return e
  }
  return { envs, at }
}

/** The error body the contract prescribes. */
export function errorBody(message: string): { message: string } {
  return { message }
}
