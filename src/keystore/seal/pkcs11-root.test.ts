// The PKCS#11 root key in this process, against a real SoftHSM2 token: every wrong setting is
// refused naming the setting, a value the token did not seal is refused, a closed session is
// refused, and two users of the module in one process share it. (The server tests run the
// token in child processes; these reach the error paths directly.)
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { createSoftToken, findSoftHsm, generateTokenKey } from '../../../test/support/softhsm.js'
import type { SoftToken } from '../../../test/support/softhsm.js'
import { openPkcs11Root } from './pkcs11-root.js'
import type { Pkcs11Settings } from './pkcs11-root.js'
import { SEAL_IV_BYTES, SEAL_TAG_BYTES } from './root-key.js'

let dir: string
let token: SoftToken | undefined
let missing: string | undefined

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-pkcs11-'))
  const found = await findSoftHsm()
  if ('missing' in found) {
    missing = found.missing
    return
  }
  token = await createSoftToken(dir, found.library, 'unit-token', '4321')
  await generateTokenKey(token, 'root')
  await generateTokenKey(token, 'twin')
  await generateTokenKey(token, 'twin')
  // The module reads its configuration when it is initialized, in this process.
  process.env['SOFTHSM2_CONF'] = token.env['SOFTHSM2_CONF']
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The token, or undefined after skipping the test (CI never skips: there it fails). */
function needToken(t: TestContext): SoftToken | undefined {
  if (token !== undefined) return token
  if (process.env['CI'] === 'true') assert.fail(`the PKCS#11 tests must run in CI: ${missing ?? 'no token'}`)
  t.skip(missing)
  return undefined
}

function settings(tok: SoftToken, over: Partial<Pkcs11Settings> = {}): Pkcs11Settings {
  return { library: tok.library, slot: undefined, tokenLabel: tok.label, pin: tok.pin, pinFile: undefined, keyLabel: 'root', ...over }
}

/** Asserts that opening with `s` is refused with exactly `message` (a RegExp for the variable part). */
async function refused(s: Pkcs11Settings, message: string | RegExp): Promise<void> {
  await assert.rejects(openPkcs11Root(s), (err: unknown) => {
    assert.ok(err instanceof Error)
    if (typeof message === 'string') assert.equal(err.message, message)
    else assert.match(err.message, message)
    // The PIN is never part of an error.
    assert.ok(!err.message.includes('4321'), err.message)
    return true
  })
}

describe('a PKCS#11 root key', () => {
  test('seals and unseals on the token; a changed value, IV or associated data is refused', async (t) => {
    const tok = needToken(t)
    if (tok === undefined) return
    const root = await openPkcs11Root(settings(tok))
    try {
      assert.equal(root.description, "PKCS#11 token 'unit-token' key 'root'")
      const iv = randomBytes(SEAL_IV_BYTES)
      const secret = randomBytes(32)
      const sealed = await root.encrypt(iv, secret, Buffer.from('keys/k'))
      assert.equal(sealed.length, secret.length + SEAL_TAG_BYTES)
      assert.ok(!sealed.includes(secret), 'the sealed value holds the secret')
      assert.deepEqual(await root.decrypt(iv, sealed, Buffer.from('keys/k')), secret)
      const flipped = Buffer.from(sealed)
      flipped[0] = (flipped[0] ?? 0) ^ 1
      for (const [what, run] of [
        ['a changed value', () => root.decrypt(iv, flipped, Buffer.from('keys/k'))],
        ['other associated data', () => root.decrypt(iv, sealed, Buffer.from('keys/other'))],
        ['another IV', () => root.decrypt(randomBytes(SEAL_IV_BYTES), sealed, Buffer.from('keys/k'))],
      ] as const) {
        await assert.rejects(run(), /^Error: the token refused to unseal \(CKR_\w+\)$/, what)
      }
      // The session is still good after a refusal.
      assert.deepEqual(await root.decrypt(iv, sealed, Buffer.from('keys/k')), secret)
    } finally {
      await root.close()
    }
  })

  test('after close every operation is refused, and close again is harmless', async (t) => {
    const tok = needToken(t)
    if (tok === undefined) return
    const root = await openPkcs11Root(settings(tok))
    await root.close()
    await assert.rejects(root.encrypt(randomBytes(SEAL_IV_BYTES), Buffer.from('x'), Buffer.alloc(0)), /^Error: seal: the token session is closed$/)
    await assert.rejects(root.decrypt(randomBytes(SEAL_IV_BYTES), randomBytes(17), Buffer.alloc(0)), /^Error: seal: the token session is closed$/)
    await root.close()
  })

  test('the first slot with a token by default, the PIN from a file, and two users of the module at once', async (t) => {
    const tok = needToken(t)
    if (tok === undefined) return
    const pinFile = path.join(dir, 'pin')
    await writeFile(pinFile, `${tok.pin}\n`, { mode: 0o600 })
    const first = await openPkcs11Root(settings(tok, { tokenLabel: undefined, pin: undefined, pinFile }))
    // The second shares the initialized module and the logged-in token; closing either one
    // leaves the other working (migrate holds a source and a destination root at once).
    const second = await openPkcs11Root(settings(tok))
    try {
      assert.equal(first.description, "PKCS#11 token in slot 0 key 'root'")
      const iv = randomBytes(SEAL_IV_BYTES)
      const sealed = await first.encrypt(iv, Buffer.from('shared'), Buffer.alloc(0))
      assert.deepEqual(await second.decrypt(iv, sealed, Buffer.alloc(0)), Buffer.from('shared'))
      // A root that fails to open meanwhile takes nothing of theirs with it.
      await refused(settings(tok, { keyLabel: 'no-such-key' }), "seal.pkcs11.key_label: no secret key labelled 'no-such-key' on the token 'unit-token'")
      // The token is logged in already and would take any PIN: a wrong one is still refused.
      await refused(settings(tok, { pin: '0000' }), "seal.pkcs11: cannot log in to the token 'unit-token': wrong PIN")
      assert.deepEqual(await second.decrypt(iv, sealed, Buffer.alloc(0)), Buffer.from('shared'))
      await second.close()
      assert.deepEqual(await first.decrypt(iv, sealed, Buffer.alloc(0)), Buffer.from('shared'))
      // The other way round: the root that initialized the module closes first.
      const third = await openPkcs11Root(settings(tok))
      await first.close()
      assert.deepEqual(await third.decrypt(iv, sealed, Buffer.alloc(0)), Buffer.from('shared'))
      await third.close()
    } finally {
      await second.close()
      await first.close()
    }
  })

  test('each wrong setting is refused naming the setting, never quoting the PIN', async (t) => {
    const tok = needToken(t)
    if (tok === undefined) return
    const missingPin = path.join(dir, 'no-such-pin')
    await refused(settings(tok, { pinFile: missingPin }), `seal.pkcs11.pin_file: cannot read '${missingPin}': ENOENT`)
    await refused(settings(tok, { library: path.join(dir, 'no-such-module.so') }), new RegExp(`^seal\\.pkcs11\\.library: cannot load '${dir}/no-such-module\\.so': \\S+`))
    await refused(settings(tok, { tokenLabel: 'no-such-token' }), "seal.pkcs11.token_label: no token labelled 'no-such-token' (is it plugged in and initialized?)")
    // SoftHSM2 lists its initialized tokens and one free slot.
    await refused(settings(tok, { tokenLabel: undefined, slot: 7 }), /^seal\.pkcs11\.slot: there is no slot 7 with a token \(2 found\)$/)
    await refused(settings(tok, { pin: '0000' }), "seal.pkcs11: cannot log in to the token 'unit-token': wrong PIN")
    await refused(settings(tok, { keyLabel: 'no-such-key' }), "seal.pkcs11.key_label: no secret key labelled 'no-such-key' on the token 'unit-token'")
    await refused(settings(tok, { keyLabel: 'twin' }), "seal.pkcs11.key_label: more than one secret key labelled 'twin' on the token 'unit-token'")
    // After all these refusals the token still opens: nothing was left initialized or locked.
    const root = await openPkcs11Root(settings(tok))
    try {
      const iv = randomBytes(SEAL_IV_BYTES)
      assert.deepEqual(await root.decrypt(iv, await root.encrypt(iv, Buffer.from('again'), Buffer.alloc(0)), Buffer.alloc(0)), Buffer.from('again'))
    } finally {
      await root.close()
    }
  })
})
