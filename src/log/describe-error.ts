/** One line for the error log: the error's message and its causes, never a stack. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  let text = err.message
  let cause: unknown = err.cause
  for (let depth = 0; cause instanceof Error && depth < 4; depth++) {
    text += `: ${cause.message}`
    cause = cause.cause
  }
  return text
}
