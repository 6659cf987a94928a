import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { identityOfPem } from '../auth/identity.js'
import { createCertificate } from '../x509/certificate.js'
import type { KeyType } from '../x509/certificate.js'
import { runOpenkes } from './commands.js'
import { processContext } from './connect.js'

interface Run {
  code: number
  stdout: string
  stderr: string
}

async function run(args: string[], cwd: string): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io = { stdout: (s: string) => void (stdout += s), stderr: (s: string) => void (stderr += s), cwd }
  const code = await runOpenkes(['identity', ...args], processContext(io))
  return { code, stdout, stderr }
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'openkes-identity-cli-'))
  t.after(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

function printedIdentity(stdout: string): string {
  const match = /^Identity: +([0-9a-f]{64})$/m.exec(stdout)
  assert.ok(match, `no identity line in ${JSON.stringify(stdout)}`)
  return match[1] ?? ''
}

async function mode(file: string): Promise<number> {
  return (await fs.stat(file)).mode & 0o777
}

test('new writes NAME.key (0600) and NAME.cert (0644) and prints the identity', async (t) => {
  const dir = await tempDir(t)
  const r = await run(['new', 'root'], dir)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr, '')
  const keyFile = path.join(dir, 'root.key')
  const certFile = path.join(dir, 'root.cert')
  assert.equal(await mode(keyFile), 0o600)
  assert.equal(await mode(certFile), 0o644)
  const certPem = await fs.readFile(certFile)
  assert.equal(printedIdentity(r.stdout), identityOfPem(certPem))
  assert.match(r.stdout, /Private key: +root\.key/)
  assert.match(r.stdout, /Certificate: +root\.cert/)

  const cert = new X509Certificate(certPem)
  assert.equal(cert.subject, 'CN=root')
  assert.equal(cert.publicKey.asymmetricKeyType, 'ed25519')
  assert.equal(cert.verify(cert.publicKey), true)
  const key = createPrivateKey(await fs.readFile(keyFile))
  assert.ok(createPublicKey(key).equals(cert.publicKey))
})

test('new honours --key=FILE, --cert FILE and repeated --ip/--dns', async (t) => {
  const dir = await tempDir(t)
  const r = await run(
    ['new', '--key=c.key', '--cert', 'sub/../c.pem', '--ip', '127.0.0.1', '--ip=::1', '--dns', 'localhost', '--dns', 'kes.example', 'client'],
    dir,
  )
  assert.equal(r.code, 0, r.stderr)
  const cert = new X509Certificate(await fs.readFile(path.join(dir, 'c.pem')))
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
  assert.equal(cert.checkIP('::1'), '::1')
  assert.equal(cert.checkHost('localhost'), 'localhost')
  assert.equal(cert.checkHost('kes.example'), 'kes.example')
  assert.equal(await mode(path.join(dir, 'c.key')), 0o600)
  assert.equal(printedIdentity(r.stdout), identityOfPem(cert.raw))
})

test('new refuses to overwrite an existing key file and names it', async (t) => {
  const dir = await tempDir(t)
  assert.equal((await run(['new', 'root'], dir)).code, 0)
  const before = await fs.readFile(path.join(dir, 'root.cert'), 'utf8')
  const r = await run(['new', 'root'], dir)
  assert.equal(r.code, 1)
  assert.equal(r.stdout, '')
  assert.match(r.stderr, /'root\.key' already exists/)
  assert.equal(await fs.readFile(path.join(dir, 'root.cert'), 'utf8'), before)
})

test('new refuses to overwrite an existing certificate and leaves no new key behind', async (t) => {
  const dir = await tempDir(t)
  await fs.writeFile(path.join(dir, 'root.cert'), 'keep me')
  const r = await run(['new', 'root'], dir)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /'root\.cert' already exists/)
  assert.equal(await fs.readFile(path.join(dir, 'root.cert'), 'utf8'), 'keep me')
  await assert.rejects(fs.stat(path.join(dir, 'root.key')), { code: 'ENOENT' })
})

test('new --force replaces existing files and keeps the key private', async (t) => {
  const dir = await tempDir(t)
  const keyFile = path.join(dir, 'root.key')
  await fs.writeFile(keyFile, 'old', { mode: 0o644 })
  await fs.writeFile(path.join(dir, 'root.cert'), 'old')
  const r = await run(['new', '--force', 'root'], dir)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(await mode(keyFile), 0o600)
  assert.equal(printedIdentity(r.stdout), identityOfPem(await fs.readFile(path.join(dir, 'root.cert'))))
})

for (const keyType of ['rsa-2048', 'ecdsa-p256', 'ed25519'] as KeyType[]) {
  test(`of prints the identity of a ${keyType} certificate`, async (t) => {
    const dir = await tempDir(t)
    const issued = createCertificate(keyType, { commonName: keyType })
    await fs.writeFile(path.join(dir, 'x.cert'), issued.certPem)
    const r = await run(['of', 'x.cert'], dir)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `${issued.identity}\n`)
    assert.equal(r.stderr, '')
  })
}

test('of a missing file fails with exit code 1', async (t) => {
  const dir = await tempDir(t)
  const r = await run(['of', 'missing.cert'], dir)
  assert.equal(r.code, 1)
  assert.equal(r.stdout, '')
  assert.equal(r.stderr, "openkes: cannot read 'missing.cert': no such file or directory\n")
})

test('of a private key fails with exit code 1 and does not print the key', async (t) => {
  const dir = await tempDir(t)
  const { keyPem } = createCertificate('ed25519', { commonName: 'k' })
  await fs.writeFile(path.join(dir, 'k.key'), keyPem)
  const r = await run(['of', 'k.key'], dir)
  assert.equal(r.code, 1)
  assert.equal(r.stderr, "openkes: 'k.key' is not a certificate\n")
  assert.ok(!r.stderr.includes(keyPem.split('\n')[1] ?? 'unreachable'))
})

test('of a directory fails with exit code 1', async (t) => {
  const dir = await tempDir(t)
  const r = await run(['of', '.'], dir)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /cannot read '\.'/)
})

const usageErrors: { args: string[]; stderr: RegExp }[] = [
  { args: [], stderr: /missing command/ },
  { args: ['bogus'], stderr: /unknown command 'bogus'/ },
  { args: ['new'], stderr: /missing name/ },
  { args: ['new', 'a', 'b'], stderr: /unexpected argument 'b'/ },
  { args: ['new', '--bogus', 'a'], stderr: /unknown option '--bogus'/ },
  { args: ['new', 'a', '--key'], stderr: /--key/ },
  { args: ['new', '--ip', '1.2.3', 'a'], stderr: /invalid ip address '1\.2\.3'/ },
  { args: ['new', '--dns', 'bad name', 'a'], stderr: /invalid dns name 'bad name'/ },
  { args: ['new', '--key', 'same', '--cert', 'same', 'a'], stderr: /same file/ },
  { args: ['new', '../escape'], stderr: /cannot be used as a file name/ },
  { args: ['new', 'x'.repeat(65)], stderr: /common name/ },
  { args: ['of'], stderr: /missing certificate/ },
  { args: ['of', 'a', 'b'], stderr: /unexpected argument 'b'/ },
  { args: ['of', '--force', 'a'], stderr: /unknown option '--force'/ },
]
for (const c of usageErrors) {
  test(`usage error: identity ${c.args.join(' ')} exits with 2`, async (t) => {
    const dir = await tempDir(t)
    const r = await run(c.args, dir)
    assert.equal(r.code, 2)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, c.stderr)
    // one style for every usage error: what is wrong, then where the help is
    assert.match(r.stderr, /^openkes identity( new| of)?: .+\nRun 'openkes identity( new| of)? --help' for usage\.\n$/)
    assert.deepEqual(await fs.readdir(dir), [])
  })
}

const helps: { args: string[]; usage: RegExp; example: RegExp }[] = [
  { args: ['--help'], usage: /^Usage: openkes identity <command> \[options\]\n/, example: /\n {2}new +create a client identity/ },
  { args: ['-h'], usage: /^Usage: openkes identity <command> \[options\]\n/, example: /\n {2}of +print the identity of a certificate/ },
  { args: ['new', '--help'], usage: /^Usage: openkes identity new <name> \[options\]\n/, example: /openkes identity new --key=root\.key --cert=root\.cert root/ },
  { args: ['of', '-h'], usage: /^Usage: openkes identity of <certificate> \[options\]\n/, example: /\n {2}openkes identity of root\.cert\n/ },
]
for (const h of helps) {
  test(`identity ${h.args.join(' ')} prints its own usage with an example`, async (t) => {
    const dir = await tempDir(t)
    const r = await run(h.args, dir)
    assert.equal(r.code, 0)
    assert.equal(r.stderr, '')
    assert.match(r.stdout, h.usage)
    assert.match(r.stdout, h.example)
    assert.deepEqual(await fs.readdir(dir), [])
  })
}
