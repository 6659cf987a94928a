#!/usr/bin/env node
// `openkes <command>`: runs the command table (cli/commands.ts).
import { runOpenkes } from './cli/commands.js'
import { processContext } from './cli/connect.js'
import { EXIT_OK } from './cli/io.js'

// A reader that goes away (`openkes log | head`) is a normal way to stop,
// not a crash.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK)
  throw err
})

process.exitCode = await runOpenkes(process.argv.slice(2), processContext())
