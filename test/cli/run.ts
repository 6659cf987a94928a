// Runs the built CLI as a child process: the one place tests spawn `openkes`.
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * The built `openkes` entry point next to this compiled file, so the tests
 * run the CLI of the same build (whatever its output directory).
 */
export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url))

/** How to run a command. */
export interface RunOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** Written to stdin, which is closed either way. */
  readonly input?: string
}

/** The outcome of a finished command. */
export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `openkes <args>` to completion. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd, env: opts.env ?? process.env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(opts.input ?? '')
  })
}

/** A long-running `openkes` process and what it printed so far. */
export interface Running {
  readonly child: ChildProcessWithoutNullStreams
  stdout(): string
  stderr(): string
  /** Resolves with the first stdout match of `re` (rejects if the process exits first). */
  waitFor(re: RegExp): Promise<RegExpExecArray>
  /** Sends a signal (unless the process already ended) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  /** Resolves with the exit code once the process has exited by itself. */
  exited(): Promise<number | null>
}

/** Starts `openkes <args>` and keeps it running. */
export function startCli(args: readonly string[], opts: Omit<RunOptions, 'input'> = {}): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd, env: opts.env ?? process.env })
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
    child,
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
    exited: () => exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}
