import assert from 'node:assert/strict'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { InvalidCiphertextError, NotAuthenticError, SecretKey, keyIdOf } from './secret-key.js'
import type { Cipher } from './secret-key.js'

const ciphers: Cipher[] = ['AES256', 'ChaCha20']
const AEAD_NAME: Record<Cipher, string> = { AES256: 'AES-256-GCM-HMAC-SHA-256', ChaCha20: 'ChaCha20Poly1305' }
const keyBytes = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex')

for (const cipher of ciphers) {
  for (const context of [undefined, Buffer.from('my-bucket/my-object')]) {
    const label = `${cipher} ${context === undefined ? 'without' : 'with'} context`
    for (const size of [0, 1, 32, 65536]) {
      test(`${label}: a ${size}-byte plaintext round-trips`, () => {
        const key = SecretKey.generate(cipher)
        const plaintext = randomBytes(size)
        const ciphertext = key.encrypt(plaintext, context)
        const opened = key.decrypt(ciphertext, context)
        assert.ok(Buffer.isBuffer(opened))
        assert.deepEqual(opened, plaintext)
      })
    }

    test(`${label}: decrypt with a different context fails with NotAuthenticError`, () => {
      const key = new SecretKey(keyBytes, cipher)
      const ciphertext = key.encrypt(Buffer.from('secret'), context)
      assert.throws(() => key.decrypt(ciphertext, Buffer.from('other')), NotAuthenticError)
    })
  }

  test(`${cipher}: the ciphertext is compact JSON in KES field order with the right sizes`, () => {
    const key = new SecretKey(keyBytes, cipher)
    const plaintext = Buffer.from('hello world')
    const text = key.encrypt(plaintext).toString('utf8')
    assert.match(text, /^\{"aead":"[^"]+","id":"[0-9a-f]{32}","iv":"[A-Za-z0-9+/]{22}==","nonce":"[A-Za-z0-9+/]{16}","bytes":"[A-Za-z0-9+/=]+"\}$/)
    const parsed = JSON.parse(text) as Record<string, string>
    assert.deepEqual(Object.keys(parsed), ['aead', 'id', 'iv', 'nonce', 'bytes'])
    assert.equal(parsed['aead'], AEAD_NAME[cipher])
    assert.equal(parsed['id'], key.id)
    assert.equal(Buffer.from(parsed['iv'] ?? '', 'base64').length, 16)
    assert.equal(Buffer.from(parsed['nonce'] ?? '', 'base64').length, 12)
    assert.equal(Buffer.from(parsed['bytes'] ?? '', 'base64').length, plaintext.length + 16)
  })

  test(`${cipher}: an empty context is the same as no context`, () => {
    const key = new SecretKey(keyBytes, cipher)
    assert.equal(key.decrypt(key.encrypt(Buffer.from('x')), Buffer.alloc(0)).toString(), 'x')
    assert.equal(key.decrypt(key.encrypt(Buffer.from('y'), new Uint8Array(0))).toString(), 'y')
  })

  test(`${cipher}: a ciphertext under another key fails with NotAuthenticError`, () => {
    const ciphertext = SecretKey.generate(cipher).encrypt(Buffer.from('secret'))
    assert.throws(() => SecretKey.generate(cipher).decrypt(ciphertext), NotAuthenticError)
  })

  test(`${cipher}: two encryptions of the same plaintext differ`, () => {
    const key = new SecretKey(keyBytes, cipher)
    assert.notDeepEqual(key.encrypt(Buffer.from('same')), key.encrypt(Buffer.from('same')))
  })
}

test('the algorithm named in a JSON ciphertext decides, not the key type', () => {
  const sealedAsChaCha = new SecretKey(keyBytes, 'ChaCha20').encrypt(Buffer.from('data'))
  assert.equal(new SecretKey(keyBytes, 'AES256').decrypt(sealedAsChaCha).toString(), 'data')
})

test('plain Uint8Array inputs work like Buffers', () => {
  const key = new SecretKey(new Uint8Array(keyBytes), 'AES256')
  const ciphertext = new Uint8Array(key.encrypt(new Uint8Array([1, 2, 3]), new Uint8Array([9])))
  assert.deepEqual(key.decrypt(ciphertext, new Uint8Array([9])), Buffer.from([1, 2, 3]))
})

test('the id is the hex of the first 16 bytes of SHA-256(key)', () => {
  const want = createHash('sha256').update(keyBytes).digest('hex').slice(0, 32)
  assert.equal(new SecretKey(keyBytes, 'AES256').id, want)
  assert.equal(keyIdOf(keyBytes), want)
})

test('the constructor copies the key bytes', () => {
  const bytes = Buffer.from(keyBytes)
  const key = new SecretKey(bytes, 'AES256')
  bytes.fill(0)
  assert.deepEqual(key.exportBytesForStorage(), keyBytes)
})

test('keys that are not 32 bytes are refused without echoing them', () => {
  for (const n of [0, 16, 31, 33, 64]) {
    const bytes = Buffer.alloc(n, 0x5a)
    assert.throws(
      () => new SecretKey(bytes, 'AES256'),
      (err: unknown) => err instanceof RangeError && err.message === 'invalid key length',
    )
  }
  assert.throws(() => new SecretKey(keyBytes, 'AES256', { hmacKey: Buffer.alloc(16) }), RangeError)
  assert.throws(() => new SecretKey(keyBytes, 'AES128' as Cipher), TypeError)
})

test('generate makes distinct 32-byte keys of the requested type', () => {
  const a = SecretKey.generate('ChaCha20')
  const b = SecretKey.generate('ChaCha20')
  assert.equal(a.cipher, 'ChaCha20')
  assert.equal(a.exportBytesForStorage().length, 32)
  assert.notEqual(a.id, b.id)
})

test('metadata is kept as given', () => {
  const key = new SecretKey(keyBytes, 'AES256', { createdAt: '2024-01-12T10:39:20Z', createdBy: 'ab'.repeat(32) })
  assert.equal(key.createdAt, '2024-01-12T10:39:20Z')
  assert.equal(key.createdBy, 'ab'.repeat(32))
  assert.equal(key.hasStoredHmacKey, false)
  const bare = new SecretKey(keyBytes, 'AES256')
  assert.equal(bare.createdAt, undefined)
  assert.equal(bare.createdBy, undefined)
})

test('hmac uses the stored HMAC key when there is one', () => {
  const hmacKey = Buffer.alloc(32, 0x42)
  const key = new SecretKey(keyBytes, 'AES256', { hmacKey })
  assert.equal(key.hasStoredHmacKey, true)
  const want = createHmac('sha256', hmacKey).update('message').digest()
  assert.deepEqual(key.hmac(Buffer.from('message')), want)
  assert.deepEqual(key.exportHmacKeyForStorage(), hmacKey)
})

// Pinned vector: computed once with an independent RFC 5869 implementation (Python hmac/hashlib),
// master key 00 01 .. 1f. If this changes, every MAC a client stored would change with it.
const DERIVED_HMAC_KEY = '8d4d3777e5bef61cf80bc07c3e532c3b4a7a4883518e8247b2794dd0162719b0'
const HMAC_OF_HELLO = '036755b456433f40d7acf5482f5630a4b9567fe64508bb3bdda97aec47cbe95c'

test('hmac without a stored key uses HKDF-SHA256(master, "", "OpenKES HMAC-SHA256 key v1") (fixed vector)', () => {
  for (const cipher of ['AES256', 'ChaCha20'] as const) {
    const key = new SecretKey(keyBytes, cipher)
    assert.equal(key.hmac(Buffer.from('hello')).toString('hex'), HMAC_OF_HELLO)
    // Same key and message, same MAC, also on a second instance (another server).
    assert.equal(key.hmac(Buffer.from('hello')).toString('hex'), HMAC_OF_HELLO)
    assert.equal(new SecretKey(keyBytes, cipher).hmac(Buffer.from('hello')).toString('hex'), HMAC_OF_HELLO)
    assert.notEqual(key.hmac(Buffer.from('hellO')).toString('hex'), HMAC_OF_HELLO)
    assert.equal(key.exportHmacKeyForStorage(), undefined)
  }
  const want = createHmac('sha256', Buffer.from(DERIVED_HMAC_KEY, 'hex')).update('hello').digest('hex')
  assert.equal(want, HMAC_OF_HELLO)
  // The derivation is not the master key itself nor the old HMAC(master, label) construction.
  assert.notEqual(createHmac('sha256', keyBytes).update('hello').digest('hex'), HMAC_OF_HELLO)
  assert.equal(new SecretKey(Buffer.alloc(32, 7), 'AES256').hmac(Buffer.from('hello')).toString('hex') === HMAC_OF_HELLO, false)
})

test('hmac of an empty message is defined', () => {
  const key = new SecretKey(keyBytes, 'AES256')
  const want = createHmac('sha256', Buffer.from(DERIVED_HMAC_KEY, 'hex')).update(Buffer.alloc(0)).digest()
  assert.deepEqual(key.hmac(Buffer.alloc(0)), want)
})

test('JSON.stringify, util.inspect and String never show key bytes', () => {
  const hmacKey = Buffer.alloc(32, 0x42)
  const key = new SecretKey(keyBytes, 'AES256', { hmacKey })
  const outputs = [
    JSON.stringify(key),
    JSON.stringify({ key }),
    inspect(key),
    inspect({ nested: { key } }, { depth: 10, showHidden: true }),
    String(key),
    `${key}`,
  ]
  for (const out of outputs) {
    assert.ok(out.includes('SecretKey(redacted)'))
    for (const secret of [keyBytes, hmacKey]) {
      assert.equal(out.includes(secret.toString('hex')), false)
      assert.equal(out.includes(secret.toString('base64')), false)
    }
  }
})

test('random and mangled input only ever throws the two decryption errors', () => {
  const seeds = [
    new SecretKey(keyBytes, 'AES256').encrypt(Buffer.from('fuzz me'), Buffer.from('ctx')),
    new SecretKey(keyBytes, 'ChaCha20').encrypt(Buffer.alloc(300, 1)),
    Buffer.from('95a6414553323536d920' + '61'.repeat(32) + 'c410' + '00'.repeat(16) + 'c40c' + '00'.repeat(12) + 'c410' + '00'.repeat(16), 'hex'),
    Buffer.concat([randomBytes(40), randomBytes(28)]),
  ]
  const inputs: Buffer[] = []
  for (let n = 0; n < 200; n++) inputs.push(randomBytes(n))
  for (const first of [0x7b, 0x95]) for (let n = 1; n < 120; n++) inputs.push(Buffer.concat([Buffer.from([first]), randomBytes(n)]))
  for (const seed of seeds) {
    for (let n = 0; n <= seed.length; n++) inputs.push(seed.subarray(0, n))
    for (let i = 0; i < seed.length; i++) {
      const flipped = Buffer.from(seed)
      flipped[i] = (flipped[i] ?? 0) ^ (1 << (i % 8))
      inputs.push(flipped)
    }
  }
  inputs.push(Buffer.from('{"aead":"AES-256-GCM","iv":null,"nonce":7,"bytes":[1,2,3],"padding":"........................"}'))
  inputs.push(Buffer.from('{"aead":"ChaCha20Poly1305","id":42,"iv":"AAAAAAAAAAAAAAAAAAAAAA==","nonce":"AAAAAAAAAAAAAAAA","bytes":"AAAAAAAAAAAAAAAAAAAAAA=="}'))
  inputs.push(Buffer.from('{' + '['.repeat(100_000)))
  const keys = [new SecretKey(keyBytes, 'AES256'), new SecretKey(keyBytes, 'ChaCha20')]
  let opened = 0
  for (const input of inputs) {
    for (const key of keys) {
      try {
        // Only the first seed can open. Some mangled copies of it still do, because field names
        // match case-insensitively (as in Go) or an unknown field replaced "id"; neither
        // changes the sealed bytes.
        assert.equal(key.decrypt(input, Buffer.from('ctx')).toString(), 'fuzz me')
        opened++
      } catch (err) {
        assert.ok(err instanceof InvalidCiphertextError || err instanceof NotAuthenticError, `unexpected ${String(err)}`)
      }
    }
  }
  assert.ok(opened >= 2)
})

for (const cipher of ciphers) {
  for (const size of [0, 32, 1024, 1025, 65536]) {
    test(`${cipher}: encryptToBase64 of a ${size}-byte plaintext is the base64 of a JSON ciphertext that opens`, () => {
      const key = SecretKey.generate(cipher)
      const plaintext = randomBytes(size)
      const context = Buffer.from('bucket/object')
      const text = key.encryptToBase64(plaintext, context)
      const ciphertext = Buffer.from(text, 'base64')
      assert.equal(ciphertext.toString('base64'), text, 'strict, padded base64')
      const fields = JSON.parse(ciphertext.toString('utf8')) as Record<string, string>
      assert.deepEqual(Object.keys(fields), ['aead', 'id', 'iv', 'nonce', 'bytes'])
      assert.equal(fields['aead'], AEAD_NAME[cipher])
      assert.equal(fields['id'], key.id)
      assert.equal(Buffer.from(fields['iv'] as string, 'base64').length, 16)
      assert.equal(Buffer.from(fields['nonce'] as string, 'base64').length, 12)
      assert.equal(Buffer.from(fields['bytes'] as string, 'base64').length, size + 16)
      assert.ok(key.decrypt(ciphertext, context).equals(plaintext))
      assert.throws(() => key.decrypt(ciphertext), NotAuthenticError, 'the context is bound')
    })
  }
  test(`${cipher}: encryptToBase64 uses a fresh iv and nonce every time (the scratch buffer is not reused stale)`, () => {
    const key = SecretKey.generate(cipher)
    const seen = new Set<string>()
    for (let i = 0; i < 100; i++) {
      const fields = JSON.parse(Buffer.from(key.encryptToBase64(Buffer.alloc(32)), 'base64').toString('utf8')) as Record<string, string>
      const ivNonce = `${fields['iv']}/${fields['nonce']}`
      assert.equal(seen.has(ivNonce), false)
      seen.add(ivNonce)
    }
  })
}
