// The package entry point: the KES client library, its types and the canonical API errors.
export { KesClient } from './client/kes-client.js'
export type * from './client/api.js'
export {
  KesError,
  ErrKeyExists,
  ErrKeyNotFound,
  ErrNotAllowed,
  ErrDecrypt,
  ErrInvalidCiphertext,
  ErrInvalidKey,
  ErrInvalidKeyName,
  ErrInvalidPolicyName,
  ErrInvalidIdentity,
  ErrPolicyNotFound,
  ErrIdentityNotFound,
  ErrIdentityIsRoot,
  ErrSelfAssign,
  ErrStoreUnavailable,
  ErrNotFound,
  ErrMethodNotAllowed,
  ErrInvalidPath,
  ErrInvalidJson,
  ErrInvalidPattern,
  ErrBodyTooLarge,
  ErrInternal,
} from './api/errors.js'
