// Runs the built CLI as a child process: the one place tests spawn `openkes`.
import { spawn } from 'node:child_process'
import type { ChildProcess, ChildProcessWithoutNullStreams } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * The built `openkes` entry point next to this compiled file, so the tests
 * run the CLI of the same build (whatever its output directory).
 */
export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url))

/** How long a wait on a child process may take before it fails the test (generous: a loaded 2-core machine). */
export const WAIT_MS = 30_000

/** How to run a command. */
export interface RunOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** Written to stdin, which is closed either way. */
  readonly input?: string
  /** How long the command may run before it is killed and the call fails (default WAIT_MS). */
  readonly timeoutMs?: number
}

// Every child still running when the test process exits (after a failed test
// that never stopped its server) is killed, so a failure never leaves an
// openkes server behind.
const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

function track(child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

/** Rejects with a message saying what was awaited if `promise` does not settle within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The outcome of a finished command. */
export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `openkes <args>` to completion; kills it and rejects after `timeoutMs`. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<Finished> {
  const timeoutMs = opts.timeoutMs ?? WAIT_MS
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd, env: opts.env ?? process.env })
    track(child)
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`openkes ${args.join(' ')}: still running after ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.on('close', () => clearTimeout(timer))
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
  /** Resolves with the first stdout match of `re`; rejects if the process exits first or after `timeoutMs` (default WAIT_MS). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  /** As waitFor, on stderr. */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  /**
   * Sends a signal (unless the process already ended) and resolves with the exit code;
   * a process still running after WAIT_MS is killed and the call rejects.
   */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  /** Resolves with the exit code once the process has exited by itself; rejects after `timeoutMs` (default WAIT_MS). */
  exited(timeoutMs?: number): Promise<number | null>
}

/** Starts `openkes <args>` and keeps it running. */
export function startCli(args: readonly string[], opts: Omit<RunOptions, 'input'> = {}): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd, env: opts.env ?? process.env })
  track(child)
  child.stdin.end()
  let out = ''
  let err = ''
  const waiters: Array<() => void> = []
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const notify = (): void => {
    for (const w of waiters.splice(0)) w()
  }
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString()
    notify()
  })
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString()
    notify()
  })
  const waitOn = (stream: () => string, name: string, re: RegExp, timeoutMs = WAIT_MS): Promise<RegExpExecArray> => {
    const found = new Promise<RegExpExecArray>((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(stream())
        if (m !== null) return resolve(m)
        waiters.push(check)
      }
      void exited.then((code) => reject(new Error(`exited with ${code} before ${name} matched ${re}: ${err}`)))
      check()
    })
    return within(found, timeoutMs, `${name} to match ${re}; stdout: ${out}; stderr: ${err}`)
  }
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re, timeoutMs) => waitOn(() => out, 'stdout', re, timeoutMs),
    waitForStderr: (re, timeoutMs) => waitOn(() => err, 'stderr', re, timeoutMs),
    exited: (timeoutMs = WAIT_MS) => within(exited, timeoutMs, `openkes ${args.join(' ')} to exit`),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      try {
        return await within(exited, WAIT_MS, `openkes ${args.join(' ')} to exit after ${signal}`)
      } catch (e) {
        child.kill('SIGKILL')
        throw e
      }
    },
  }
}
