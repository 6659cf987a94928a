// `npm run bench`: throughput of the hot path (generate, encrypt, decrypt)
// over real mutual TLS and HTTP/2, reported as ratios against baselines
// measured in the same run, because the machines are shared and noisy:
// - API calls against GET /version on the same connection (the fixed cost of
//   TLS, HTTP/2, routing and auditing, without key work);
// - SecretKey.encrypt/decrypt against one bare AES-256-GCM seal/open.
import { spawn } from 'node:child_process'
import { createCipheriv, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SecretKey } from '../src/crypto/secret-key.js'
import { createCertificate } from '../src/x509/certificate.js'

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3)
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 32)
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url))

/** Runs `op` as often as it can for SECONDS and returns operations per second. */
function cpuRate(op: () => void): number {
  const end = performance.now() + SECONDS * 1000
  let n = 0
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) op()
    n += 100
  }
  return n / SECONDS
}

/** Keeps CONCURRENCY requests in flight for SECONDS and returns completed requests per second. */
async function httpRate(session: http2.ClientHttp2Session, method: string, target: string, body: () => string | undefined): Promise<number> {
  const end = performance.now() + SECONDS * 1000
  let done = 0
  let failed = 0
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = session.request({ ':method': method, ':path': target })
      s.on('response', (h) => {
        if (h[':status'] !== 200) failed++
      })
      s.on('data', () => {})
      s.on('end', () => resolve())
      s.on('error', () => {
        failed++
        resolve()
      })
      s.end(body())
    })
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await one()
        done++
      }
    }),
  )
  if (failed > 0) throw new Error(`${method} ${target}: ${failed} requests failed`)
  return done / SECONDS
}

function row(name: string, rate: number, baseline: number): string {
  return `${name.padEnd(34)} ${rate.toFixed(0).padStart(9)} /s   ${(rate / baseline).toFixed(2)} × baseline`
}

async function main(): Promise<void> {
  console.log(`OpenKES hot-path benchmark (node ${process.version}, ${SECONDS}s per run, ${CONCURRENCY} streams)\n`)

  // 1. The crypto module alone.
  const key = SecretKey.generate('AES256')
  const dek = randomBytes(32)
  const sealed = key.encrypt(dek)
  const rawKey = randomBytes(32)
  const bare = cpuRate(() => {
    const c = createCipheriv('aes-256-gcm', rawKey, randomBytes(12))
    c.update(dek)
    c.final()
    c.getAuthTag()
  })
  console.log('crypto (baseline: one bare AES-256-GCM seal of 32 bytes)')
  console.log(row('  baseline', bare, bare))
  console.log(row('  SecretKey.encrypt (32 B)', cpuRate(() => key.encrypt(dek)), bare))
  console.log(row('  SecretKey.decrypt (32 B)', cpuRate(() => key.decrypt(sealed)), bare))

  // 2. The server, in its own process, over mutual TLS and HTTP/2.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openkes-bench-'))
  const server = createCertificate('ecdsa-p256', { commonName: 'localhost', ipAddresses: ['127.0.0.1'], extKeyUsage: ['serverAuth'] })
  const client = createCertificate('ed25519', { commonName: 'bench', extKeyUsage: ['clientAuth'] })
  await writeFile(path.join(dir, 'server.key'), server.keyPem)
  await writeFile(path.join(dir, 'server.cert'), server.certPem)
  await writeFile(
    path.join(dir, 'config.yml'),
    `address: 127.0.0.1:0\nadmin:\n  identity: ${client.identity}\ntls:\n  key: ./server.key\n  cert: ./server.cert\nlog:\n  error: on\nkeys:\n- name: bench-key\n`,
  )
  const child = spawn(process.execPath, [MAIN, 'server', '--config', path.join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString()
        const m = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        if (m !== null) resolve(Number(m[1]))
      })
      child.on('exit', (code) => reject(new Error(`server exited with ${code}`)))
    })
    const session = http2.connect(`https://127.0.0.1:${port}`, { cert: client.certPem, key: client.keyPem, ca: server.certPem, servername: 'localhost' })
    session.on('error', () => {})
    const gen = await new Promise<string>((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': '/v1/key/generate/bench-key' })
      let text = ''
      s.on('data', (c: Buffer) => (text += c.toString()))
      s.on('end', () => resolve((JSON.parse(text) as { ciphertext: string }).ciphertext))
      s.on('error', reject)
      s.end('{}')
    })
    const decryptBody = JSON.stringify({ ciphertext: gen })
    const encryptBody = JSON.stringify({ plaintext: randomBytes(1024).toString('base64') })
    const version = await httpRate(session, 'GET', '/version', () => undefined)
    console.log('\nserver over mTLS + HTTP/2 (baseline: GET /version on the same connection)')
    console.log(row('  baseline GET /version', version, version))
    console.log(row('  POST /v1/key/generate', await httpRate(session, 'POST', '/v1/key/generate/bench-key', () => '{}'), version))
    console.log(row('  POST /v1/key/decrypt', await httpRate(session, 'POST', '/v1/key/decrypt/bench-key', () => decryptBody), version))
    console.log(row('  POST /v1/key/encrypt (1 KiB)', await httpRate(session, 'POST', '/v1/key/encrypt/bench-key', () => encryptBody), version))
    session.destroy()
  } finally {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
