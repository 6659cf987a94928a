/**
 * The ciphertext is not in any accepted format (not base64, too short, ...).
 * The API answers it with 400 `invalid ciphertext`.
 */
export class InvalidCiphertextError extends Error {
  constructor() {
    super('invalid ciphertext')
    this.name = 'InvalidCiphertextError'
  }
}

/**
 * The ciphertext is well-formed but does not open under this key and context (wrong key, wrong
 * context, tampered bytes or a foreign key id). The API answers it with
 * 400 `decryption failed: ciphertext is not authentic`.
 */
export class NotAuthenticError extends Error {
  constructor() {
    super('decryption failed: ciphertext is not authentic')
    this.name = 'NotAuthenticError'
  }
}
