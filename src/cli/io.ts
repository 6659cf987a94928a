/** Where a command writes; tests pass their own. */
export interface CommandIO {
  stdout(text: string): void
  stderr(text: string): void
  /** Resolves relative file names (default: `process.cwd()`). */
  readonly cwd?: string
}

/** The process's own stdout and stderr. */
export const processIO: CommandIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
}

/** Exit codes of every command: 0 success, 1 failure, 2 usage error. */
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
