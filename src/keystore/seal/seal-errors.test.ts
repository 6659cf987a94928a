// The seal's refusals that the store and server tests don't reach: a damaged seal entry, a
// check that unseals to something else, a sealed value with a broken IV, a root key of the
// wrong size or a key file that can't be read. Each is refused saying what is wrong, and no
// message quotes key material.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { tempDirPerSuite } from '../../../test/support/temp-dir.js'
import { createMemStore } from '../mem/mem-store.js'
import { StoreError } from '../keystore.js'
import { openSealRoot } from './open-seal.js'
import { MemoryRoot, SEAL_IV_BYTES } from './root-key.js'
import { SEAL_CHECK_NAME, SealError, openSealedStore } from './sealed-store.js'

const ROOT_KEY = randomBytes(32)
const root = (): MemoryRoot => new MemoryRoot(ROOT_KEY, 'the test root key')

const dir = tempDirPerSuite('seal')

test('a damaged seal entry is refused as malformed, whatever part is damaged', async () => {
  const sealed = createMemStore()
  await openSealedStore(sealed, root(), "'mem'")
  const good = JSON.parse(((await sealed.keys.get(SEAL_CHECK_NAME)) ?? Buffer.alloc(0)).toString()) as Record<string, unknown>
  const damaged: Array<[string, string]> = [
    ['not JSON', '{"openkes_seal":1,'],
    ['null', 'null'],
    ['another version', JSON.stringify({ ...good, openkes_seal: 2 })],
    ['a store id that is not 32 hex digits', JSON.stringify({ ...good, store: 'ABC' })],
    ['a store id that is a number', JSON.stringify({ ...good, store: 7 })],
    ['no check', JSON.stringify({ ...good, check: null })],
  ]
  for (const [what, text] of damaged) {
    const store = createMemStore()
    await store.keys.create(SEAL_CHECK_NAME, Buffer.from(text))
    await assert.rejects(openSealedStore(store, root(), "'mem'"), (e: unknown) => {
      assert.ok(e instanceof SealError, what)
      assert.equal(e.message, "seal: the seal entry '~openkes-seal' of the key store is malformed", what)
      return true
    })
  }
})

test('a seal entry without the root it names is reported as sealed by an unknown root; a check that opens to other text is refused', async () => {
  const store = createMemStore()
  await openSealedStore(store, root(), "'mem'")
  const entry = JSON.parse(((await store.keys.get(SEAL_CHECK_NAME)) ?? Buffer.alloc(0)).toString()) as Record<string, unknown>
  const storeId = String(entry['store'])
  const { root: _named, ...withoutRoot } = entry
  await store.keys.put(SEAL_CHECK_NAME, Buffer.from(JSON.stringify(withoutRoot)))
  const other = new MemoryRoot(randomBytes(32), 'another root key')
  await assert.rejects(openSealedStore(store, other, "'mem'"), { message: "seal: another root key does not open the key store 'mem': it was sealed by unknown; wrong root key, token or key label?" })

  // A check sealed correctly (right root, store and name) but holding other text.
  const iv = randomBytes(SEAL_IV_BYTES)
  const aad = Buffer.from(`openkes-seal-v1\0${storeId}\0keys\0${SEAL_CHECK_NAME}`, 'utf8')
  const data = await root().encrypt(iv, Buffer.from('something else'), aad)
  const forged = { ...entry, check: { openkes_sealed: 1, iv: iv.toString('base64'), data: data.toString('base64') } }
  await store.keys.put(SEAL_CHECK_NAME, Buffer.from(JSON.stringify(forged)))
  await assert.rejects(openSealedStore(store, root(), "'mem'"), { message: "seal: the seal check of the key store 'mem' is wrong" })
})

test('a sealed value with a broken IV or no data is refused when read, naming the entry', async () => {
  const raw = createMemStore()
  const sealed = await openSealedStore(raw, root(), "'mem'")
  await sealed.keys.create('k', Buffer.from('{"bytes":"x"}'))
  const stored = JSON.parse(((await raw.keys.get('k')) ?? Buffer.alloc(0)).toString()) as Record<string, unknown>
  const cases: Array<[string, object, RegExp]> = [
    ['a short IV', { ...stored, iv: 'AAAA' }, /^seal: keys entry 'k' refused: its IV is malformed$/],
    ['no data', { ...stored, data: 5 }, /^seal: keys entry 'k' refused: it is not sealed/],
    ['another seal version', { ...stored, openkes_sealed: 2 }, /^seal: keys entry 'k' refused: it is not sealed/],
  ]
  for (const [what, value, message] of cases) {
    await raw.keys.put('k', Buffer.from(JSON.stringify(value)))
    const err = await sealed.keys.get('k').then(
      () => assert.fail(`${what}: read`),
      (e: unknown) => e,
    )
    assert.ok(err instanceof StoreError, what)
    assert.equal(err.op, 'failed to read key', what)
    assert.match(err.message, message, what)
  }
})

test('a store with many unsealed entries is refused naming the first three and how many', async () => {
  const plain = createMemStore()
  for (const name of ['a', 'b', 'c', 'd']) await plain.keys.create(name, Buffer.from('{}'))
  await plain.deleted.create('e', Buffer.from('{}'))
  await assert.rejects(openSealedStore(plain, root(), "'plain'"), {
    message: "seal: the key store 'plain' holds 5 unsealed entries (keys/a, keys/b, keys/c, ...); seal them by moving them with openkes migrate into a new store configured with seal:",
  })
})

test('root keys: the wrong size and unreadable or malformed key files are refused, never quoting the key', async () => {
  assert.throws(() => new MemoryRoot(randomBytes(16), 'seal.key'), { message: 'seal.key: the root key must be 32 bytes, not 16' })
  const r = root()
  await assert.rejects(r.decrypt(randomBytes(SEAL_IV_BYTES), randomBytes(SEAL_IV_BYTES), Buffer.alloc(0)), { message: 'sealed value too short' })

  const missing = path.join(dir(), 'missing.key')
  await assert.rejects(openSealRoot({ kind: 'key_file', file: missing }), (e: unknown) => {
    assert.ok(e instanceof SealError)
    assert.equal(e.message, `seal.key_file: cannot read '${missing}': ENOENT`)
    return true
  })
  const wrong = path.join(dir(), 'wrong.key')
  const secretish = randomBytes(24).toString('base64')
  await writeFile(wrong, `${secretish}\n`)
  await assert.rejects(openSealRoot({ kind: 'key_file', file: wrong }), (e: unknown) => {
    assert.ok(e instanceof Error)
    assert.equal(e.message, `seal.key_file '${wrong}': expected 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits`)
    assert.ok(!e.message.includes(secretish))
    return true
  })
  const good = path.join(dir(), 'good.key')
  await writeFile(good, `${ROOT_KEY.toString('hex')}\n`)
  const fromFile = await openSealRoot({ kind: 'key_file', file: good })
  const fromEnv = await openSealRoot({ kind: 'key', key: ROOT_KEY.toString('base64') })
  try {
    assert.equal(fromFile.description, `the root key file '${good}'`)
    assert.equal(fromEnv.description, 'the root key of seal.key')
    // Both are the same key: what one seals, the other opens.
    const iv = randomBytes(SEAL_IV_BYTES)
    assert.deepEqual(await fromEnv.decrypt(iv, await fromFile.encrypt(iv, Buffer.from('same'), Buffer.alloc(0)), Buffer.alloc(0)), Buffer.from('same'))
  } finally {
    await fromFile.close()
    await fromEnv.close()
  }
})
