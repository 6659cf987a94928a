/**
 * Errors a client may see. KES clients compare the status AND the message of
 * the canonical errors below, so these strings are API (API-CONTRACT.md §2).
 */
export class KesError extends Error {
  readonly status: number
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options)
    this.status = status
    this.name = 'KesError'
  }
}
