import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { decodeBase64Strict } from './base64.js'
import { InvalidCiphertextError, NotAuthenticError, SecretKey } from './secret-key.js'
import type { Cipher } from './secret-key.js'
import { KES_VECTORS } from '../../test/support/fixtures.js'

interface Vector {
  id: string
  key: string
  cipher: Cipher
  context: string | null
  plaintext: string | null
  ciphertext: string
  expect: 'ok' | 'not-authentic' | 'invalid'
}

const vectors: Vector[] = JSON.parse(
  readFileSync(path.join(KES_VECTORS, 'ciphertexts.json'), 'utf8'),
) as Vector[]

// Decrypts as the API does: strict base64 first, so bad base64 is an invalid ciphertext.
function decryptLikeTheApi(v: Vector): Buffer {
  const key = new SecretKey(Buffer.from(v.key, 'base64'), v.cipher)
  const ciphertext = decodeBase64Strict(v.ciphertext)
  if (ciphertext === undefined) throw new InvalidCiphertextError()
  const context = v.context === null ? undefined : Buffer.from(v.context, 'base64')
  return key.decrypt(ciphertext, context)
}

test('all 84 golden vectors are present', () => assert.equal(vectors.length, 84))

for (const v of vectors) {
  test(v.id, () => {
    switch (v.expect) {
      case 'ok':
        assert.equal(decryptLikeTheApi(v).toString('base64'), v.plaintext)
        break
      case 'not-authentic':
        assert.throws(() => decryptLikeTheApi(v), NotAuthenticError)
        break
      case 'invalid':
        assert.throws(() => decryptLikeTheApi(v), InvalidCiphertextError)
        break
    }
  })
}
