/**
 * Errors a client may see. The router turns every thrown KesError into
 * `{"message": "..."}` with its status; anything else becomes a generic 500.
 */
export class KesError extends Error {
  readonly status: number
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options)
    this.status = status
    this.name = 'KesError'
  }
}

// Canonical errors: KES clients compare status AND message, so these strings
// are API (docs/api.md, "Errors"). errors.test.ts pins every pair.
export const ErrKeyExists = new KesError(400, 'key does already exist')
export const ErrKeyNotFound = new KesError(404, 'key does not exist')
export const ErrNotAllowed = new KesError(403, 'prohibited by policy')
export const ErrDecrypt = new KesError(400, 'decryption failed: ciphertext is not authentic')
export const ErrInvalidCiphertext = new KesError(400, 'invalid ciphertext')
export const ErrInvalidKey = new KesError(400, 'invalid key')
export const ErrInvalidKeyName = new KesError(400, 'invalid key name')
export const ErrInvalidPolicyName = new KesError(400, 'invalid policy name')
export const ErrInvalidIdentity = new KesError(400, 'invalid identity')
export const ErrPolicyNotFound = new KesError(404, 'policy does not exist')
export const ErrIdentityNotFound = new KesError(404, 'identity does not exist')
export const ErrIdentityIsRoot = new KesError(400, 'identity is root')
export const ErrSelfAssign = new KesError(403, 'identity cannot assign policy to itself')
export const ErrStoreUnavailable = new KesError(503, 'key store is unavailable')

// Errors of the HTTP layer. Not pinned by KES clients, but kept stable.
export const ErrNotFound = new KesError(404, 'not found')
export const ErrMethodNotAllowed = new KesError(405, 'Method Not Allowed')
export const ErrInvalidPath = new KesError(400, 'invalid path')
export const ErrInvalidJson = new KesError(400, 'invalid json')
export const ErrInvalidPattern = new KesError(400, 'invalid pattern')
export const ErrBodyTooLarge = new KesError(413, 'request body too large')
export const ErrBodyTimeout = new KesError(408, 'request body not received in time')
export const ErrRequestTimeout = new KesError(503, 'request timed out')
export const ErrInternal = new KesError(500, 'internal server error')

/** 502 for a key store failure: `what` says which operation failed, never why (that goes to the error log). */
export function badGateway(what: string): KesError {
  return new KesError(502, `bad gateway: ${what}`)
}

/** 400 for a policy or identity that the server configuration defines and the API may not change. */
export function definedInConfig(kind: 'policy' | 'identity', name: string): KesError {
  return new KesError(400, `${kind} '${name}' is defined in the server configuration`)
}

/** 400 for a body field that is present but malformed: `invalid json: <why>`. */
export function invalidField(why: string): KesError {
  return new KesError(400, `invalid json: ${why}`)
}
