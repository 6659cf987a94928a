// `openkes server` prints its own PID, so it can be stopped with `kill PID`
// even when it was started through a wrapper such as npx, whose own PID
// would leave the server running.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { within } from '../support/within.js'
import { MAIN } from './run.js'

let dir: string
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-pid-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

test('the printed PID is the server\'s own: SIGTERM to it stops the server (and so the wrapper around it)', async () => {
  // A parent that runs the server as its child and exits with its code, as npx does.
  const wrapperSource = `const c = require('node:child_process').spawn(process.execPath, process.argv.slice(1), { stdio: 'inherit' }); c.on('exit', (code) => process.exit(code ?? 1))`
  const wrapper = spawn(process.execPath, ['-e', wrapperSource, MAIN, 'server', '--dev', '--addr', '127.0.0.1:0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => wrapper.on('close', (code) => resolve(code)))
  let stdout = ''
  let stderr = ''
  wrapper.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  let printed: number | undefined
  try {
    printed = await within(
      new Promise<number>((resolve, reject) => {
        wrapper.stdout.on('data', (c: Buffer) => {
          stdout += c.toString()
          const m = /^PID (\d+): stop with Ctrl-C or 'kill \1'$/m.exec(stdout)
          if (m !== null) resolve(Number(m[1]))
        })
        void exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)))
      }),
      30_000,
      'the PID line',
    )
    assert.match(stdout, /listening on https:\/\/127\.0\.0\.1:\d+\nPID /)
    assert.notEqual(printed, wrapper.pid, 'the wrapper\'s PID is not the server\'s')
    process.kill(printed, 'SIGTERM')
    assert.equal(await within(exited, 30_000, 'the server to exit'), 0, stderr)
    assert.match(stdout, /shutting down/)
  } finally {
    // On failure, stop both processes (the server first: it is not the wrapper's to stop).
    if (wrapper.exitCode === null && wrapper.signalCode === null) {
      if (printed !== undefined) process.kill(printed, 'SIGKILL')
      wrapper.kill('SIGKILL')
    }
  }
})
