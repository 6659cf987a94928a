// The server processes of `npm run bench`: starting and stopping them, and what
// /proc says about them (their process tree, CPU time and resident memory).
// A server may be several processes (`openkes server --workers N`: a primary and
// its workers), so CPU and memory are read for the whole tree.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'

const CLOCK_TICKS_PER_SECOND = 100 // USER_HZ: 100 on every Linux architecture Node.js supports

/** A running server of the bench: its top process (a cluster's primary) and port. */
export interface ServerProcess {
  readonly id: string
  readonly child: ChildProcess
  readonly port: number
}

/** Why a server could not start, with the end of what it wrote to stderr. */
export class StartError extends Error {
  readonly stderr: string
  constructor(message: string, stderr: string) {
    super(message)
    this.stderr = stderr
  }
}

export function startProcess(
  id: string,
  args: readonly string[],
  listening: RegExp,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServerProcess> {
  // Every server is started exactly the same way (same session and process group
  // as the bench, no setsid): the scheduler must not treat them differently.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)))
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new StartError(`${id} did not start within 30 s: ${stderr}`, stderr))
    }, 30_000)
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const m = listening.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve({ id, child, port: Number(m[1]) })
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new StartError(`${id} exited with ${code}: ${stderr}`, stderr))
    })
  })
}

export async function stopProcess(p: ServerProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => p.child.once('exit', () => resolve()))
  p.child.kill('SIGTERM')
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

/** The fields of /proc/<pid>/stat after the command (which may hold spaces): field 3 onwards. */
async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/**
 * The process and all its descendants, the process first. This kernel may lack
 * /proc/<pid>/task/<tid>/children, so it reads every process's parent from
 * /proc/<pid>/stat. Call it outside a measured window: it reads all of /proc.
 */
export async function processTree(root: number): Promise<number[]> {
  const children = new Map<number, number[]>()
  const entries = await readdir('/proc')
  await Promise.all(
    entries.map(async (name) => {
      if (!/^\d+$/.test(name)) return
      try {
        const ppid = Number((await statFields(Number(name)))[1])
        const list = children.get(ppid)
        if (list === undefined) children.set(ppid, [Number(name)])
        else list.push(Number(name))
      } catch {
        // The process ended while we looked: not part of any tree we care about.
      }
    }),
  )
  const tree = [root]
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] as number) ?? []).sort((a, b) => a - b))
  return tree
}

/** Whether a process of this pid runs (signal 0 checks without sending anything). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * CPU time so far (user + system, every thread) of each of these processes, in µs.
 * Throws when one of them is gone: a process that ended mid-measurement (a crashed
 * worker) would make the figure meaningless.
 */
export async function cpuMicros(pids: readonly number[]): Promise<number[]> {
  const out: number[] = []
  for (const pid of pids) {
    let fields: string[]
    try {
      fields = await statFields(pid)
    } catch {
      throw new Error(`server process ${pid} ended during the measurement`)
    }
    const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15)
    out.push((ticks * 1e6) / CLOCK_TICKS_PER_SECOND)
  }
  return out
}

/** Resident memory of one process now and at its peak, in MB, from /proc/<pid>/status. */
export async function memoryMb(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN)
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 }
}
