// Helpers for the client-command tests: a real server from the integration
// harness, client certificate files for it, and the built CLI run as a child
// process with its own environment and stdin.
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { makeClient, TestEnv } from '../integration/harness.js'
import type { Client } from '../integration/harness.js'
import { runCli, startCli } from './run.js'
import type { Finished, Running } from './run.js'

/** The outcome of a finished command. */
export type Result = Finished

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
  return runCli(args, { env, input })
}

/** A long-running `openkes` process. */
export type Started = Running

/** Starts `openkes <args>` and keeps it running. */
export function start(args: readonly string[], env: NodeJS.ProcessEnv): Started {
  return startCli(args, { env })
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
