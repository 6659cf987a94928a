// Helpers for the client-command tests: a real server from the integration
// harness, client certificate files for it, and the built CLI run as a child
// process with its own environment and stdin.
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeClient, TestEnv } from '../integration/harness.js'
import type { Client } from '../integration/harness.js'

/**
 * The built `openkes` entry point next to this compiled file, so the tests
 * run the CLI of the same build (whatever its output directory).
 */
export const BUILT_MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url))

/** The outcome of a finished command. */
export interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of the test process without any KES_* or NO_COLOR setting. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('KES_') && k !== 'NO_COLOR') env[k] = v
  }
  return { ...env, ...extra }
}

/** Runs `openkes <args>` to completion, with `input` on stdin (closed either way). */
export function run(args: readonly string[], env: NodeJS.ProcessEnv, input = ''): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUILT_MAIN, ...args], { env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(input)
  })
}

/** A long-running `openkes` process. */
export interface Started {
  stdout(): string
  stderr(): string
  /** Resolves once stdout matches `re` (rejects if the process exits first). */
  waitFor(re: RegExp): Promise<RegExpExecArray>
  /** Sends `signal` and resolves with the exit code. */
  stop(signal: NodeJS.Signals): Promise<number | null>
}

/** Starts `openkes <args>` and keeps it running. */
export function start(args: readonly string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, [BUILT_MAIN, ...args], { env })
  child.stdin.end()
  let out = ''
  let err = ''
  const waiters: Array<() => void> = []
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString()
    for (const w of waiters.splice(0)) w()
  })
  child.stderr.on('data', (c: Buffer) => (err += c.toString()))
  return {
    stdout: () => out,
    stderr: () => err,
    waitFor(re) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(out)
          if (m !== null) return resolve(m)
          waiters.push(check)
        }
        void exited.then((code) => reject(new Error(`exited with ${code}: ${err}`)))
        check()
      })
    },
    async stop(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

/** A client identity with its certificate and key written to files. */
export interface ClientFiles {
  readonly client: Client
  readonly cert: string
  readonly key: string
}

/** Writes `client`'s certificate and key into the test directory. */
export async function writeClient(env: TestEnv, client: Client): Promise<ClientFiles> {
  const cert = path.join(env.dir, `${client.name}.cert`)
  const key = path.join(env.dir, `${client.name}.key`)
  await writeFile(cert, client.cert.certPem)
  await writeFile(key, client.cert.keyPem, { mode: 0o600 })
  return { client, cert, key }
}

/** A server for CLI tests: root, a policy-bound `app` and an identity without policy. */
export interface CliServer {
  readonly env: TestEnv
  readonly url: string
  /** The server's certificate file (give it with --ca). */
  readonly ca: string
  readonly root: ClientFiles
  readonly app: ClientFiles
  readonly nopol: ClientFiles
  /** A child environment that authenticates as `who` to this server. */
  envFor(who: ClientFiles, extra?: Record<string, string>): NodeJS.ProcessEnv
}

/** Starts a server whose `app` identity may only use keys named `app-*`. */
export async function startCliServer(): Promise<CliServer> {
  const root = makeClient('root')
  const app = makeClient('app')
  const nopol = makeClient('nopol')
  const env = await TestEnv.create()
  await env.start(`admin:
  identity: ${root.identity}
policy:
  app:
    allow:
    - /v1/key/generate/app-*
    - /v1/key/decrypt/app-*
    identities:
    - ${app.identity}
keystore:
  fs:
    path: ./keys
`)
  const url = `https://127.0.0.1:${env.port}`
  const files = { root: await writeClient(env, root), app: await writeClient(env, app), nopol: await writeClient(env, nopol) }
  return {
    env,
    url,
    ca: path.join(env.dir, 'server.cert'),
    ...files,
    envFor: (who, extra = {}) => cleanEnv({ KES_SERVER: url, KES_CLIENT_CERT: who.cert, KES_CLIENT_KEY: who.key, ...extra }),
  }
}

/** A local port with nothing listening on it (bound, then released). */
export function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** Whether an output contains a JavaScript stack trace. */
export function hasStackTrace(text: string): boolean {
  return /\n\s+at .+:\d+:\d+/.test(text)
}
