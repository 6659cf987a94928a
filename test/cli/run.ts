// Runs the built CLI as a child process.
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import path from 'node:path'

/** The built entry point of `openkes`. */
export const MAIN = path.resolve(process.cwd(), 'dist/src/main.js')

/** The outcome of a finished command. */
export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `openkes <args>` to completion. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd, env: opts.env ?? process.env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** A long-running `openkes` process and what it printed so far. */
export interface Running {
  readonly child: ChildProcessWithoutNullStreams
  stdout(): string
  stderr(): string
  /** Resolves with the first stdout match of `re` (rejects if the process exits first). */
  waitFor(re: RegExp): Promise<RegExpExecArray>
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  /** Resolves with the exit code once the process has exited by itself. */
  exited(): Promise<number | null>
}

/** Starts `openkes <args>` and keeps it running. */
export function startCli(args: string[], opts: { cwd?: string } = {}): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd })
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
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
}
