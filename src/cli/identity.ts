// `openkes identity new|of`: the counterpart of `kes identity new|of` (and of
// `kes tool identity new|of` before it). They work on local files only.
import { open, readFile, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { isIP } from 'node:net'
import path from 'node:path'
import { identityOfPem } from '../auth/identity.js'
import { createCertificate } from '../x509/certificate.js'
import type { IssuedCertificate } from '../x509/certificate.js'
import { UsageError } from './command-spec.js'
import type { LocalCommand, LocalInvocation } from './command-spec.js'
import { describeFsError, errorCode } from './fs-errors.js'
import { EXIT_OK } from './io.js'

const KEY_FILE_MODE = 0o600
const CERT_FILE_MODE = 0o644

/** `openkes identity new`: a private key and self-signed certificate for a client. */
export const identityNewCommand: LocalCommand = {
  kind: 'local',
  name: 'new',
  summary: 'create a client identity: an Ed25519 private key and a self-signed certificate',
  args: ['name'],
  description: `The certificate's common name is <name>. The identity is the hex SHA-256 of the
certificate's public key (DER SubjectPublicKeyInfo); the server's admin identity
and policy assignments use it.`,
  options: {
    key: { type: 'string', value: 'FILE', help: 'private key file, written with mode 0600 (default <name>.key)', complete: 'files' },
    cert: { type: 'string', value: 'FILE', help: 'certificate file, written with mode 0644 (default <name>.cert)', complete: 'files' },
    ip: { type: 'string', multiple: true, value: 'IP', help: 'add an IP address to the certificate (repeatable)' },
    dns: { type: 'string', multiple: true, value: 'NAME', help: 'add a DNS name to the certificate (repeatable)' },
    force: { type: 'boolean', help: 'overwrite existing files' },
  },
  examples: [
    'openkes identity new --key=root.key --cert=root.cert root',
    'openkes identity new --ip 127.0.0.1 --dns localhost server',
  ],
  run: identityNew,
}

/** `openkes identity of`: the identity of a certificate file. */
export const identityOfCommand: LocalCommand = {
  kind: 'local',
  name: 'of',
  summary: 'print the identity of a certificate',
  args: ['certificate'],
  completeArgs: 'files',
  description: `The identity is the hex SHA-256 of the certificate's public key (DER
SubjectPublicKeyInfo), for RSA, ECDSA and Ed25519 certificates alike.`,
  examples: ['openkes identity of root.cert'],
  run: identityOf,
}

async function identityNew(inv: LocalInvocation): Promise<number> {
  const { options: values, io } = inv
  const name = inv.args[0] ?? ''
  if (name === '') throw new UsageError('missing name')
  const keyFile = optionString(values['key']) ?? defaultFileName(name, '.key')
  const certFile = optionString(values['cert']) ?? defaultFileName(name, '.cert')
  const ipAddresses = optionStrings(values['ip'])
  const dnsNames = optionStrings(values['dns'])
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw new UsageError(`invalid ip address '${ip}'`)
  }

  const cwd = io.cwd ?? process.cwd()
  const keyPath = path.resolve(cwd, keyFile)
  const certPath = path.resolve(cwd, certFile)
  if (keyPath === certPath) throw new UsageError('--key and --cert name the same file')

  let issued: IssuedCertificate
  try {
    issued = createCertificate('ed25519', { commonName: name, dnsNames, ipAddresses })
  } catch (err) {
    // every failure here is a rejected name or address from the command line
    throw new UsageError(err instanceof Error ? err.message.replace(/^x509\/certificate: /, '') : String(err))
  }

  const force = values['force'] === true
  await writeNewFile(keyPath, keyFile, issued.keyPem, KEY_FILE_MODE, force)
  try {
    await writeNewFile(certPath, certFile, issued.certPem, CERT_FILE_MODE, force)
  } catch (err) {
    // don't leave a private key behind without its certificate
    await rm(keyPath, { force: true })
    throw err
  }
  io.stdout(`Private key:  ${keyFile}\nCertificate:  ${certFile}\nIdentity:     ${issued.identity}\n`)
  return EXIT_OK
}

async function identityOf(inv: LocalInvocation): Promise<number> {
  const certFile = inv.args[0] ?? ''
  if (certFile === '') throw new UsageError('missing certificate')
  let pem: Buffer
  try {
    pem = await readFile(path.resolve(inv.io.cwd ?? process.cwd(), certFile))
  } catch (err) {
    throw new Error(`cannot read '${certFile}': ${describeFsError(err)}`)
  }
  let identity: string
  try {
    identity = identityOfPem(pem)
  } catch {
    throw new Error(`'${certFile}' is not a certificate`)
  }
  inv.print(`${identity}\n`)
  return EXIT_OK
}

function optionString(value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '') throw new UsageError('file names must not be empty')
  return value
}

function optionStrings(value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) return []
  return value.filter((v): v is string => typeof v === 'string')
}

function defaultFileName(name: string, extension: string): string {
  // a name like '../x' must not pick where files land: that needs --key/--cert
  if (name.includes('/') || name.includes('\\') || name === '.' || name === '..') {
    throw new UsageError(`name '${name}' cannot be used as a file name: give --key and --cert`)
  }
  return name + extension
}

// 'wx' fails if anything exists at the path (even a dangling symlink), so the key
// is never written through someone else's file; the mode applies from creation.
async function writeNewFile(filePath: string, shownName: string, data: string, mode: number, force: boolean): Promise<void> {
  if (force) {
    try {
      await rm(filePath, { force: true })
    } catch (err) {
      throw new Error(`cannot replace '${shownName}': ${describeFsError(err)}`)
    }
  }
  let handle: FileHandle
  try {
    handle = await open(filePath, 'wx', mode)
  } catch (err) {
    if (errorCode(err) === 'EEXIST') throw new Error(`'${shownName}' already exists: use --force to overwrite it`)
    throw new Error(`cannot create '${shownName}': ${describeFsError(err)}`)
  }
  try {
    await handle.writeFile(data)
    // the umask may have narrowed the creation mode; set exactly what we promise
    await handle.chmod(mode)
  } catch (err) {
    await handle.close()
    await rm(filePath, { force: true })
    throw new Error(`cannot write '${shownName}': ${describeFsError(err)}`)
  }
  await handle.close()
}
