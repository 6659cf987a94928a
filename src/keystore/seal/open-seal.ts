// The one place a configured seal is applied to an opened key store (server and migrate).
import { readFile } from 'node:fs/promises'
import type { Config, SealConfig } from '../../config/validate.js'
import { describeLocation } from '../postgres/pg-options.js'
import type { KeyStore } from '../keystore.js'
import { openPkcs11Root } from './pkcs11-root.js'
import { MemoryRoot, decodeRootKey } from './root-key.js'
import type { SealRoot } from './root-key.js'
import { SealError, openSealedStore, refuseIfSealed } from './sealed-store.js'

/** The store a config names, for seal messages: `'/var/lib/openkes/keys'` or `postgres://...`. */
export function describeStore(keystore: Config['keystore']): string {
  return keystore.kind === 'fs' ? `'${keystore.path}'` : describeLocation(keystore)
}

/** Opens the root key a `seal:` section names. Errors name the setting. */
export async function openSealRoot(seal: SealConfig): Promise<SealRoot> {
  switch (seal.kind) {
    case 'key': {
      const key = decodeRootKey(seal.key, 'seal.key')
      try {
        return new MemoryRoot(key, 'the root key of seal.key')
      } finally {
        key.fill(0)
      }
    }
    case 'key_file': {
      let text: string
      try {
        text = await readFile(seal.file, 'utf8')
      } catch (err) {
        throw new SealError(`seal.key_file: cannot read '${seal.file}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err })
      }
      const key = decodeRootKey(text, `seal.key_file '${seal.file}'`)
      try {
        return new MemoryRoot(key, `the root key file '${seal.file}'`)
      } finally {
        key.fill(0)
      }
    }
    case 'pkcs11':
      return openPkcs11Root(seal)
  }
}

/**
 * Applies `seal` to an opened store: with a seal, the store's key tables are sealed (and a
 * wrong root key is refused now); without one, a sealed store is refused. On refusal the
 * store is left open: the caller closes what it opened. `where` names the store in messages.
 */
export async function applySeal(store: KeyStore, seal: SealConfig | undefined, where: string): Promise<KeyStore> {
  if (seal === undefined) {
    await refuseIfSealed(store, where)
    return store
  }
  const root = await openSealRoot(seal)
  try {
    return await openSealedStore(store, root, where)
  } catch (err) {
    await root.close()
    throw err
  }
}
