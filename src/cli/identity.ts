// `openkes identity new|of`: the counterpart of `kes tool identity new|of`.
import { open, readFile, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { isIP } from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { identityOfPem } from '../auth/identity.js'
import { createCertificate } from '../x509/certificate.js'
import type { IssuedCertificate } from '../x509/certificate.js'
import { runIdentityApiCommand } from './identity-api.js'
import { EXIT_FAILURE as EXIT_ERROR, EXIT_OK, EXIT_USAGE } from './io.js'
import type { CommandIO as CommandIo } from './io.js'
import { describeFsError, errorCode } from './fs-errors.js'


const USAGE = `usage: openkes identity new [options] NAME
       openkes identity of CERT
       openkes identity assign IDENTITY POLICY   (on a server; see --help of each)
       openkes identity list [PATTERN]
       openkes identity forget IDENTITY

Create a client identity (an Ed25519 private key and a self-signed certificate
with common name NAME), or print the identity of a certificate. An identity is
the hex SHA-256 of the certificate's public key (DER SubjectPublicKeyInfo); the
server's root identity and policy assignments use it.

options for new:
  --key FILE    private key file, written with mode 0600 (default NAME.key)
  --cert FILE   certificate file, written with mode 0644 (default NAME.cert)
  --ip IP       add an IP address to the certificate (repeatable)
  --dns NAME    add a DNS name to the certificate (repeatable)
  --force       overwrite existing files
  -h, --help    print this help

examples:
  openkes identity new --key=root.key --cert=root.cert root
  openkes identity new --ip 127.0.0.1 --dns localhost server
  openkes identity of root.cert
`

const KEY_FILE_MODE = 0o600
const CERT_FILE_MODE = 0o644

/** A bad command line: reported with a hint to `--help`, exit code 2. */
class UsageError extends Error {}

/**
 * Runs `openkes identity <args>` (`args` start after the word `identity`) and
 * resolves to the exit code: 0 ok, 1 error (files, certificates), 2 usage
 * error. Never throws for user errors; they are written to `io.stderr`.
 */
export async function runIdentityCommand(args: string[], io: CommandIo): Promise<number> {
  try {
    const [command, ...rest] = args
    switch (command) {
      case 'new':
        return await identityNew(rest, io)
      case 'of':
        return await identityOf(rest, io)
      case 'assign':
      case 'list':
      case 'forget':
        return await runIdentityApiCommand(args, io)
      case '-h':
      case '--help':
        io.stdout(USAGE)
        return EXIT_OK
      case undefined:
        throw new UsageError('missing command: want new, of, assign, list or forget')
      default:
        throw new UsageError(`unknown command '${command}': want new, of, assign, list or forget`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\nrun 'openkes identity --help' for usage\n`)
      return EXIT_USAGE
    }
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`)
    return EXIT_ERROR
  }
}

async function identityNew(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args, {
    key: { type: 'string' },
    cert: { type: 'string' },
    ip: { type: 'string', multiple: true },
    dns: { type: 'string', multiple: true },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help === true) {
    io.stdout(USAGE)
    return EXIT_OK
  }
  const [name, ...extra] = positionals
  if (name === undefined || name === '') throw new UsageError('missing identity name')
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0] ?? ''}'`)
  const keyFile = optionString(values.key) ?? defaultFileName(name, '.key')
  const certFile = optionString(values.cert) ?? defaultFileName(name, '.cert')
  const ipAddresses = optionStrings(values.ip)
  const dnsNames = optionStrings(values.dns)
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

  const force = values.force === true
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

async function identityOf(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args, { help: { type: 'boolean', short: 'h' } })
  if (values.help === true) {
    io.stdout(USAGE)
    return EXIT_OK
  }
  const [certFile, ...extra] = positionals
  if (certFile === undefined || certFile === '') throw new UsageError('missing certificate file')
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0] ?? ''}'`)

  let pem: Buffer
  try {
    pem = await readFile(path.resolve(io.cwd ?? process.cwd(), certFile))
  } catch (err) {
    throw new Error(`cannot read '${certFile}': ${describeFsError(err)}`)
  }
  let identity: string
  try {
    identity = identityOfPem(pem)
  } catch {
    throw new Error(`'${certFile}' is not a certificate`)
  }
  io.stdout(`${identity}\n`)
  return EXIT_OK
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>

function parse(args: string[], options: OptionSpec): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (err) {
    // parseArgs explains at length; its first sentence names the bad option
    const message = err instanceof Error ? (err.message.split('. ')[0] ?? err.message) : String(err)
    throw new UsageError(message.charAt(0).toLowerCase() + message.slice(1))
  }
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
