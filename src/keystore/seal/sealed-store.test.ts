import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { createMemStore } from '../mem/mem-store.js'
import { StoreError } from '../keystore.js'
import type { KeyStore, Table } from '../keystore.js'
import { testStoreConformance } from '../store-conformance.js'
import { MemoryRoot, decodeRootKey } from './root-key.js'
import { SEALED_MAX_VALUE_BYTES, SEAL_CHECK_NAME, SealError, openSealedStore, refuseIfSealed } from './sealed-store.js'

const ROOT_KEY = randomBytes(32)
const root = (key: Uint8Array = ROOT_KEY): MemoryRoot => new MemoryRoot(key, 'the test root key')

// A sealed store is a store: the backend contract holds through the wrapper (kind is the
// backend's), with the smaller value limit of sealed tables.
testStoreConformance(
  'mem',
  async (t) => {
    const store = await openSealedStore(createMemStore(), root(), 'mem')
    t.after(() => store.close())
    return store
  },
  { keys: SEALED_MAX_VALUE_BYTES, deleted: SEALED_MAX_VALUE_BYTES },
)

async function sealedPair(): Promise<{ raw: KeyStore; sealed: KeyStore }> {
  const raw = createMemStore()
  return { raw, sealed: await openSealedStore(raw, root(), 'mem') }
}

test('sealed values: the backend holds no plaintext, reads give it back, policies stay as they are', async () => {
  const { raw, sealed } = await sealedPair()
  const secret = randomBytes(32)
  const value = Buffer.from(`{"bytes":"${secret.toString('base64')}","hex":"${secret.toString('hex')}"}`)
  await sealed.keys.create('k1', value)
  await sealed.policies.put('p', Buffer.from('{"allow":[]}'))
  const stored = (await raw.keys.get('k1')) ?? Buffer.alloc(0)
  assert.match(stored.toString(), /^\{"openkes_sealed":1,"iv":"[A-Za-z0-9+/=]{16}","data":"[A-Za-z0-9+/=]+"\}$/)
  for (const needle of [secret, Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('hex'))]) assert.equal(stored.includes(needle), false)
  assert.deepEqual(await sealed.keys.get('k1'), value)
  assert.deepEqual(await raw.policies.get('p'), Buffer.from('{"allow":[]}'))
  // Two seals of one value differ (fresh IV).
  await sealed.keys.put('k1', value)
  assert.notDeepEqual(await raw.keys.get('k1'), stored)
  // The seal entry is no key.
  assert.deepEqual(await sealed.keys.list(), ['k1'])
  await assert.rejects(sealed.keys.get(SEAL_CHECK_NAME), /reserved for the seal/)
  await assert.rejects(sealed.keys.delete(SEAL_CHECK_NAME), /reserved for the seal/)
})

test('a sealed blob copied over another key is refused, so is an unsealed value written around OpenKES', async () => {
  const { raw, sealed } = await sealedPair()
  await sealed.keys.create('a', Buffer.from('key a'))
  await sealed.keys.create('b', Buffer.from('key b'))
  await raw.keys.put('b', (await raw.keys.get('a')) ?? Buffer.alloc(0))
  const err = await sealed.keys.get('b').then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof StoreError)
  assert.equal(err.op, 'failed to read key')
  assert.match(err.message, /seal: keys entry 'b' refused: it does not unseal: it was sealed under another name/)
  await raw.keys.put('c', Buffer.from('{"bytes":"plain"}'))
  await assert.rejects(sealed.keys.get('c'), /it is not sealed/)
})

test('opening: a wrong root key is refused at once; no seal on a sealed store, or a seal on unsealed keys, is refused', async () => {
  const raw = createMemStore()
  await openSealedStore(raw, root(), "'mem'")
  await assert.rejects(openSealedStore(raw, root(randomBytes(32)), "'mem'"), (e: unknown) => e instanceof SealError && /does not open the key store 'mem': it was sealed by the test root key; wrong root key/.test(e.message))
  await assert.rejects(refuseIfSealed(raw, "'mem'"), /the key store 'mem' is sealed; configure the seal: section/)
  // The same store opens again with the right key, and its store id stays.
  const again = await openSealedStore(raw, root(), "'mem'")
  await again.keys.create('x', Buffer.from('x'))
  assert.deepEqual(await (await openSealedStore(raw, root(), "'mem'")).keys.get('x'), Buffer.from('x'))

  const plain = createMemStore()
  await plain.keys.create('old', Buffer.from('{}'))
  await assert.rejects(openSealedStore(plain, root(), "'plain'"), /holds 1 unsealed entry \(keys\/old\); seal them by moving them with openkes migrate/)
  await refuseIfSealed(plain, "'plain'")

  const lostEntry = createMemStore()
  const s = await openSealedStore(lostEntry, root(), "'x'")
  await s.keys.create('k', Buffer.from('k'))
  await lostEntry.keys.delete(SEAL_CHECK_NAME)
  await assert.rejects(openSealedStore(lostEntry, root(), "'x'"), /holds sealed entries but its seal entry '~openkes-seal' is missing/)
})

test('replace on a sealed table compares unsealed values and swaps the sealed bytes it read; deleted is sealed too', async () => {
  const raw = createMemStore()
  const sealed = await openSealedStore(raw, root(), 'mem')
  const keys = sealed.keys
  await keys.create('k', Buffer.from('v1'))
  assert.equal(await keys.replace('k', Buffer.from('other'), Buffer.from('v2')), false)
  assert.equal(await keys.replace('missing', Buffer.from('v1'), Buffer.from('v2')), false)
  assert.equal(await keys.replace('k', Buffer.from('v1'), Buffer.from('v2')), true)
  assert.deepEqual(await keys.get('k'), Buffer.from('v2'))
  // Every seal of one value differs (fresh IV), so the backend's swap of the bytes read fails
  // when another writer sealed anything in between.
  const sealedV2 = await raw.keys.get('k')
  await keys.put('k', Buffer.from('v2'))
  assert.notDeepEqual(await raw.keys.get('k'), sealedV2)
  assert.equal(await keys.deleteIf('k', Buffer.from('v1')), false)
  assert.equal(await keys.deleteIf('k', Buffer.from('v2')), true)
  assert.equal(await keys.get('k'), undefined)
  await sealed.deleted.put('gone', Buffer.from('deleted key material'))
  assert.match((await raw.deleted.get('gone'))?.toString() ?? '', /^\{"openkes_sealed":1,/)
  assert.deepEqual(await sealed.deleted.get('gone'), Buffer.from('deleted key material'))
})

test('root keys are read as base64 or hex of 32 bytes, and nothing else', () => {
  const key = randomBytes(32)
  assert.deepEqual(decodeRootKey(key.toString('base64') + '\n', 'k'), key)
  assert.deepEqual(decodeRootKey(key.toString('hex'), 'k'), key)
  for (const bad of ['', 'short', randomBytes(31).toString('base64'), randomBytes(33).toString('hex')]) {
    assert.throws(() => decodeRootKey(bad, 'seal.key'), /^Error: seal\.key: expected 32 bytes/)
  }
})
