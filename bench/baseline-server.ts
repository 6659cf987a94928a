// The baseline of `npm run bench`: the smallest Node.js mutual-TLS server that
// does the same work per request as OpenKES — KES-format crypto through
// src/crypto with pooled randomness, the same JSON answers — and nothing else:
// no routing table, authorization, audit, metrics, limits or timeouts. OpenKES's
// figures are reported as ratios to this server's, measured in the same run.
//
// It runs at one of two levels, the rungs of the bench's decomposition ladder:
// `crypto` (the default) as above, and `tls+http`, which answers every call with
// a fixed JSON of the same shape and size and does no crypto and no JSON parsing
// (the request body is still read): what TLS and HTTP alone cost per request.
// The fixed answers pass the load generator's checks: a generate answer holds a
// 32-byte base64 plaintext, and decrypt gives back that same plaintext.
//
// Usage: node baseline-server.js <server.key> <server.cert> [crypto|tls+http]  (prints "listening <port>")
import { readFileSync } from 'node:fs'
import { createSecureServer } from 'node:http2'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { TLSSocket } from 'node:tls'
import { decodeBase64Strict } from '../src/crypto/base64.js'
import { randomPool } from '../src/crypto/random-pool.js'
import { SecretKey } from '../src/crypto/secret-key.js'

const [keyFile, certFile, level = 'crypto'] = process.argv.slice(2)
if (keyFile === undefined || certFile === undefined || (level !== 'crypto' && level !== 'tls+http')) {
  throw new Error('usage: baseline-server <key> <cert> [crypto|tls+http]')
}

const key = SecretKey.generate('AES256')
const VERSION = JSON.stringify({ version: '0.0.0-baseline', commit: '' })

function reply(res: Http2ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

// The tls+http level's answers, built once: the same shapes and sizes as the crypto level's.
const FIXED_PLAINTEXT = randomPool.take(32).toString('base64')
const FIXED_CIPHERTEXT = key.encrypt(Buffer.from(FIXED_PLAINTEXT, 'base64')).toString('base64')
const FIXED_GENERATE = JSON.stringify({ plaintext: FIXED_PLAINTEXT, ciphertext: FIXED_CIPHERTEXT })
const FIXED_ENCRYPT = JSON.stringify({ ciphertext: FIXED_CIPHERTEXT })
const FIXED_DECRYPT = JSON.stringify({ plaintext: FIXED_PLAINTEXT })

function handleFixed(req: Http2ServerRequest, res: Http2ServerResponse): void {
  const url = req.url
  if (url.startsWith('/v1/key/generate/')) reply(res, 200, FIXED_GENERATE)
  else if (url.startsWith('/v1/key/encrypt/')) reply(res, 200, FIXED_ENCRYPT)
  else if (url.startsWith('/v1/key/decrypt/')) reply(res, 200, FIXED_DECRYPT)
  else if (url === '/version') reply(res, 200, VERSION)
  else reply(res, 404, '{"message":"not found"}')
}

function handle(req: Http2ServerRequest, res: Http2ServerResponse, body: Buffer): void {
  const url = req.url
  try {
    if (url.startsWith('/v1/key/generate/')) {
      const plaintext = randomPool.take(32)
      const ciphertext = key.encrypt(plaintext)
      reply(res, 200, JSON.stringify({ plaintext: plaintext.toString('base64'), ciphertext: ciphertext.toString('base64') }))
    } else if (url.startsWith('/v1/key/encrypt/')) {
      const { plaintext } = JSON.parse(body.toString()) as { plaintext: string }
      const pt = decodeBase64Strict(plaintext)
      if (pt === undefined) return reply(res, 400, '{"message":"invalid plaintext"}')
      reply(res, 200, JSON.stringify({ ciphertext: key.encrypt(pt).toString('base64') }))
    } else if (url.startsWith('/v1/key/decrypt/')) {
      const { ciphertext } = JSON.parse(body.toString()) as { ciphertext: string }
      const ct = decodeBase64Strict(ciphertext)
      if (ct === undefined) return reply(res, 400, '{"message":"invalid ciphertext"}')
      reply(res, 200, JSON.stringify({ plaintext: key.decrypt(ct).toString('base64') }))
    } else if (url === '/version') {
      reply(res, 200, VERSION)
    } else {
      reply(res, 404, '{"message":"not found"}')
    }
  } catch {
    reply(res, 400, '{"message":"bad request"}')
  }
}

const server = createSecureServer(
  {
    allowHTTP1: true,
    key: readFileSync(keyFile),
    cert: readFileSync(certFile),
    requestCert: true,
    rejectUnauthorized: false,
    // The same TLS settings as OpenKES, so both do the same record work.
    minVersion: 'TLSv1.2',
    ciphers: [
      'TLS_AES_128_GCM_SHA256',
      'TLS_AES_256_GCM_SHA384',
      'TLS_CHACHA20_POLY1305_SHA256',
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES256-GCM-SHA384',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
    ].join(':'),
    honorCipherOrder: true,
  },
  (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    if (level === 'tls+http') req.on('end', () => handleFixed(req, res))
    else req.on('end', () => handle(req, res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)))
  },
)
// A connection without a client certificate is dropped before any request (once per connection).
server.on('secureConnection', (socket: TLSSocket) => {
  if (socket.getPeerX509Certificate() === undefined) socket.destroy()
})
server.listen(0, '127.0.0.1', () => {
  const a = server.address()
  process.stdout.write(`listening ${typeof a === 'object' && a !== null ? a.port : 0}\n`)
})
process.on('SIGTERM', () => process.exit(0))
