// A SoftHSM2 token in a temp directory, for the PKCS#11 seal tests. SoftHSM2 comes from
// Debian's softhsm2 package (.ci/run installs it). Keys are generated on the token by a
// child process, so this test process never loads the PKCS#11 module itself.
import { execFile } from 'node:child_process'
import { access, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './repo-root.js'

const run = promisify(execFile)

// Where Debian (and Ubuntu, Fedora) put the module.
const LIBRARIES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib64/pkcs11/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so']

/** The SoftHSM2 module, or why the PKCS#11 tests can't run. */
export async function findSoftHsm(): Promise<{ library: string } | { missing: string }> {
  for (const library of LIBRARIES) {
    try {
      await access(library)
      await run('softhsm2-util', ['--version'], { timeout: 10_000 })
      return { library }
    } catch {
      // next
    }
  }
  return { missing: 'softhsm2 is not installed (apt-get install -y softhsm2; .ci/run installs it)' }
}

/** A token of its own: the environment to pass (SOFTHSM2_CONF) and its settings. */
export interface SoftToken {
  readonly env: NodeJS.ProcessEnv
  readonly library: string
  readonly label: string
  readonly pin: string
}

/** Creates a token labelled `label` in `dir` with user PIN `pin`. */
export async function createSoftToken(dir: string, library: string, label: string, pin: string): Promise<SoftToken> {
  const tokens = path.join(dir, 'tokens')
  await mkdir(tokens, { recursive: true })
  const conf = path.join(dir, 'softhsm2.conf')
  await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`)
  const env = { ...process.env, SOFTHSM2_CONF: conf }
  await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', `so-${pin}`, '--pin', pin], { env, timeout: 30_000 })
  return { env, library, label, pin }
}

const GENERATE = `
import p11 from 'pkcs11js'
const [library, tokenLabel, pin, keyLabel] = process.argv.slice(1)
const m = new p11.PKCS11()
m.load(library)
m.C_Initialize()
const slot = m.C_GetSlotList(true).find((s) => m.C_GetTokenInfo(s).label.trim() === tokenLabel)
const session = m.C_OpenSession(slot, p11.CKF_SERIAL_SESSION | p11.CKF_RW_SESSION)
m.C_Login(session, p11.CKU_USER, pin)
m.C_GenerateKey(session, { mechanism: p11.CKM_AES_KEY_GEN }, [
  { type: p11.CKA_CLASS, value: p11.CKO_SECRET_KEY },
  { type: p11.CKA_KEY_TYPE, value: p11.CKK_AES },
  { type: p11.CKA_TOKEN, value: true },
  { type: p11.CKA_LABEL, value: keyLabel },
  { type: p11.CKA_VALUE_LEN, value: 32 },
  { type: p11.CKA_ENCRYPT, value: true },
  { type: p11.CKA_DECRYPT, value: true },
  { type: p11.CKA_SENSITIVE, value: true },
  { type: p11.CKA_EXTRACTABLE, value: false },
])
m.C_Logout(session)
m.C_Finalize()
`

/** Generates a non-extractable AES-256 key labelled `keyLabel` on the token. */
export async function generateTokenKey(token: SoftToken, keyLabel: string): Promise<void> {
  await run(process.execPath, ['--input-type=module', '-e', GENERATE, token.library, token.label, token.pin, keyLabel], { env: token.env, cwd: REPO_ROOT, timeout: 30_000 })
}
