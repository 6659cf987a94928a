// What the bench reads from /proc about a server: its whole process tree, and a
// CPU reading that refuses a process that has gone (a worker that crashed).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { after, describe, it } from 'node:test'
import { cpuMicros, memoryMb, processTree } from './processes.js'

// A parent that starts two children and prints their PIDs, then waits to be killed.
const PARENT = `
const { spawn } = require('node:child_process')
const kids = [0, 1].map(() => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }))
process.stdout.write(kids.map((k) => k.pid).join(' ') + '\\n')
process.on('SIGTERM', () => { for (const k of kids) k.kill('SIGKILL'); process.exit(0) })
setInterval(() => {}, 1000)
`

describe('bench processes', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  const started: Array<ReturnType<typeof spawn>> = []
  after(() => {
    for (const p of started) if (p.exitCode === null) p.kill('SIGTERM')
  })

  it('lists a process and its children, and refuses a CPU reading once one has ended', async () => {
    const parent = spawn(process.execPath, ['-e', PARENT], { stdio: ['ignore', 'pipe', 'inherit'] })
    started.push(parent)
    const timeout = AbortSignal.timeout(10_000)
    const [line] = (await once(parent.stdout, 'data', { signal: timeout })) as [Buffer]
    const kids = line.toString().trim().split(' ').map(Number).sort((a, b) => a - b)
    const pid = parent.pid as number

    assert.deepEqual(await processTree(pid), [pid, ...kids])
    const cpu = await cpuMicros([pid, ...kids])
    assert.equal(cpu.length, 3)
    assert.ok(cpu.every((c) => Number.isFinite(c) && c >= 0))
    assert.ok((await memoryMb(pid)).rss > 0)

    process.kill(kids[0] as number, 'SIGKILL')
    // Until the parent reaps it, the child is a zombie that still has a stat file; wait for it to go.
    const deadline = Date.now() + 10_000
    while ((await processTree(pid)).length === 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.deepEqual(await processTree(pid), [pid, kids[1]])
    await assert.rejects(cpuMicros([pid, ...kids]), /ended during the measurement/)
  })
})
