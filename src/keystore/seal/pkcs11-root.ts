/**
 * A root key on a PKCS#11 token (an HSM, SoftHSM2): the token does AES-256-GCM with a key
 * that never leaves it (CKM_AES_GCM with the caller's IV and associated data). One session,
 * logged in once; one operation at a time on it (PKCS#11 sessions are not concurrent), each
 * run by pkcs11js on a worker thread so the event loop never waits for the token.
 *
 * pkcs11js is an optional dependency (a native module): it is loaded only when a config has
 * `seal.pkcs11`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { Pkcs11Settings } from '../../config/validate.js'
import { SEAL_TAG_BYTES } from './root-key.js'
import type { SealRoot } from './root-key.js'

// The validated `seal.pkcs11` section is what opens a root.
export type { Pkcs11Settings } from '../../config/validate.js'

/**
 * The roots of this process open on each PKCS#11 module (by library path). Login state and
 * C_Finalize are per process, not per root: logging out, or finalizing, as one root closes
 * would cut off every other root on the same token (a migration between two sealed stores).
 * So a root closes only its own session, and the last root of a module finalizes it when one
 * of them initialized it (the token logs the process out once its last session is closed).
 */
const openRoots = new Map<string, { count: number; finalize: boolean }>()

/**
 * The PIN that logged each token in (by library and slot), as a SHA-256 digest. A token that a
 * root of this process already logged in answers any later C_Login with
 * CKR_USER_ALREADY_LOGGED_IN without looking at the PIN, so a second root is checked against
 * the PIN of the first: a wrong PIN is refused whether or not the token is logged in already.
 * Forgotten when the module's last root closes (the token then logs the process out).
 */
const loginPins = new Map<string, Buffer>()

function pinDigest(pin: string): Buffer {
  return createHash('sha256').update(pin, 'utf8').digest()
}

type Pkcs11Module = typeof import('pkcs11js')
type Pkcs11 = InstanceType<Pkcs11Module['PKCS11']>
type Handle = Buffer

async function loadBinding(): Promise<Pkcs11Module> {
  try {
    const m = (await import('pkcs11js')) as Pkcs11Module & { default?: Pkcs11Module }
    return m.default ?? m
  } catch (err) {
    throw new Error(`seal.pkcs11: the PKCS#11 binding (npm package pkcs11js, an optional dependency) is not installed or failed to build: ${(err as Error).message}`, { cause: err })
  }
}

/** The name of a PKCS#11 error (CKR_PIN_INCORRECT), or the message. */
function reason(err: unknown): string {
  return err instanceof Error ? err.message.split(/[\s:]/)[0] || err.message : String(err)
}

/** Opens the token, logs in and finds the key. Every failure says which setting is wrong. */
export async function openPkcs11Root(s: Pkcs11Settings): Promise<SealRoot> {
  const p11 = await loadBinding()
  let pin = s.pin
  if (s.pinFile !== undefined) {
    try {
      pin = (await readFile(s.pinFile, 'utf8')).trim()
    } catch (err) {
      throw new Error(`seal.pkcs11.pin_file: cannot read '${s.pinFile}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err })
    }
  }
  const mod: Pkcs11 = new p11.PKCS11()
  try {
    mod.load(s.library)
  } catch (err) {
    throw new Error(`seal.pkcs11.library: cannot load '${s.library}': ${reason(err)}`, { cause: err })
  }
  let initialized = false
  let session: Handle | undefined
  try {
    try {
      mod.C_Initialize()
      initialized = true
    } catch (err) {
      // Another user of the module in this process initialized it: share it, don't finalize it.
      if (reason(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw err
    }
    const slots = mod.C_GetSlotList(true)
    let slot: Handle | undefined
    let tokenName: string
    if (s.tokenLabel !== undefined) {
      slot = slots.find((h) => mod.C_GetTokenInfo(h).label.trim() === s.tokenLabel)
      if (slot === undefined) throw new Error(`seal.pkcs11.token_label: no token labelled '${s.tokenLabel}' (is it plugged in and initialized?)`)
      tokenName = `'${s.tokenLabel}'`
    } else {
      const index = s.slot ?? 0
      slot = slots[index]
      if (slot === undefined) throw new Error(`seal.pkcs11.slot: there is no slot ${index} with a token (${slots.length} found)`)
      tokenName = `in slot ${index}`
    }
    session = mod.C_OpenSession(slot, p11.CKF_SERIAL_SESSION | p11.CKF_RW_SESSION)
    const login = `${s.library}\0${slot.toString('hex')}`
    const digest = pinDigest(pin ?? '')
    try {
      mod.C_Login(session, p11.CKU_USER, pin ?? '')
      loginPins.set(login, digest)
    } catch (err) {
      const r = reason(err)
      if (r !== 'CKR_USER_ALREADY_LOGGED_IN') {
        const hint = r === 'CKR_PIN_INCORRECT' ? 'wrong PIN' : r === 'CKR_PIN_LOCKED' ? 'the PIN is locked' : r
        throw new Error(`seal.pkcs11: cannot log in to the token ${tokenName}: ${hint}`, { cause: err })
      }
      const first = loginPins.get(login)
      if (first !== undefined && !timingSafeEqual(first, digest)) {
        throw new Error(`seal.pkcs11: cannot log in to the token ${tokenName}: wrong PIN`)
      }
    }
    mod.C_FindObjectsInit(session, [
      { type: p11.CKA_CLASS, value: p11.CKO_SECRET_KEY },
      { type: p11.CKA_LABEL, value: s.keyLabel },
    ])
    const found = mod.C_FindObjects(session, 2)
    mod.C_FindObjectsFinal(session)
    const key = found[0]
    if (key === undefined) throw new Error(`seal.pkcs11.key_label: no secret key labelled '${s.keyLabel}' on the token ${tokenName}`)
    if (found.length > 1) throw new Error(`seal.pkcs11.key_label: more than one secret key labelled '${s.keyLabel}' on the token ${tokenName}`)
    const users = openRoots.get(s.library) ?? { count: 0, finalize: false }
    users.count++
    users.finalize ||= initialized
    openRoots.set(s.library, users)
    return new Pkcs11Root(p11, mod, session, key, `PKCS#11 token ${tokenName} key '${s.keyLabel}'`, s.library)
  } catch (err) {
    if (session !== undefined && !initialized) {
      // The module stays with the roots that use it: only this attempt's session goes.
      try {
        mod.C_CloseSession(session)
      } catch {
        // Already failing: the first error is the one to report.
      }
    }
    if (initialized) {
      try {
        mod.C_Finalize()
      } catch {
        // Already failing: the first error is the one to report.
      }
    }
    if (err instanceof Error && err.message.startsWith('seal.')) throw err
    throw new Error(`seal.pkcs11: ${reason(err)}`, { cause: err })
  }
}

class Pkcs11Root implements SealRoot {
  readonly description: string
  readonly #p11: Pkcs11Module
  readonly #mod: Pkcs11
  readonly #session: Handle
  readonly #key: Handle
  // Operations on one session run one after the other.
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false
  readonly #library: string

  constructor(p11: Pkcs11Module, mod: Pkcs11, session: Handle, key: Handle, description: string, library: string) {
    this.#library = library
    this.#p11 = p11
    this.#mod = mod
    this.#session = session
    this.#key = key
    this.description = description
  }

  #serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(() => {
      if (this.#closed) throw new Error('seal: the token session is closed')
      return run()
    })
    this.#queue = next.catch(() => {})
    return next
  }

  #mechanism(iv: Buffer, aad: Buffer): { mechanism: number; parameter: { type: number; iv: Buffer; aad: Buffer; ivBits: number; tagBits: number } } {
    return { mechanism: this.#p11.CKM_AES_GCM, parameter: { type: this.#p11.CK_PARAMS_AES_GCM, iv, aad, ivBits: iv.length * 8, tagBits: SEAL_TAG_BYTES * 8 } }
  }

  encrypt(iv: Buffer, plaintext: Buffer, aad: Buffer): Promise<Buffer> {
    return this.#serial(async () => {
      this.#mod.C_EncryptInit(this.#session, this.#mechanism(iv, aad), this.#key)
      return Buffer.from(await this.#mod.C_EncryptAsync(this.#session, plaintext, Buffer.alloc(plaintext.length + SEAL_TAG_BYTES)))
    })
  }

  decrypt(iv: Buffer, sealed: Buffer, aad: Buffer): Promise<Buffer> {
    return this.#serial(async () => {
      this.#mod.C_DecryptInit(this.#session, this.#mechanism(iv, aad), this.#key)
      try {
        return Buffer.from(await this.#mod.C_DecryptAsync(this.#session, sealed, Buffer.alloc(sealed.length)))
      } catch (err) {
        throw new Error(`the token refused to unseal (${reason(err)})`, { cause: err })
      }
    })
  }

  async close(): Promise<void> {
    await this.#serial(async () => {
      this.#closed = true
      const users = openRoots.get(this.#library)
      const last = users === undefined || --users.count === 0
      if (last) {
        openRoots.delete(this.#library)
        for (const login of loginPins.keys()) if (login.startsWith(`${this.#library}\0`)) loginPins.delete(login)
      }
      try {
        this.#mod.C_CloseSession(this.#session)
      } finally {
        if (last && users?.finalize === true) this.#mod.C_Finalize()
      }
    }).catch(() => {})
  }
}
