import { Buffer } from 'node:buffer'

function rotl(v: number, n: number): number {
  return (v << n) | (v >>> (32 - n))
}

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha-03, section 2.2): derives a 32-byte subkey from a 32-byte
 * key and a 16-byte input. It is the ChaCha20 block function without the final addition,
 * returning state words 0-3 and 12-15.
 * Throws a RangeError if the key is not 32 bytes or the input is not 16 bytes.
 */
export function hchacha20(key: Buffer, input: Buffer): Buffer {
  if (key.length !== 32) throw new RangeError('hchacha20: key must be 32 bytes')
  if (input.length !== 16) throw new RangeError('hchacha20: input must be 16 bytes')
  // "expand 32-byte k" as little-endian words
  let x0 = 0x61707865
  let x1 = 0x3320646e
  let x2 = 0x79622d32
  let x3 = 0x6b206574
  let x4 = key.readInt32LE(0)
  let x5 = key.readInt32LE(4)
  let x6 = key.readInt32LE(8)
  let x7 = key.readInt32LE(12)
  let x8 = key.readInt32LE(16)
  let x9 = key.readInt32LE(20)
  let x10 = key.readInt32LE(24)
  let x11 = key.readInt32LE(28)
  let x12 = input.readInt32LE(0)
  let x13 = input.readInt32LE(4)
  let x14 = input.readInt32LE(8)
  let x15 = input.readInt32LE(12)

  // 20 rounds = 10 double rounds; each line is one quarter round (a, b, c, d).
  for (let i = 0; i < 10; i++) {
    // column rounds
    x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 16); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 12); x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 8); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 7)
    x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 16); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 12); x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 8); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 7)
    x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 16); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 12); x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 8); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 7)
    x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 16); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 12); x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 8); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 7)
    // diagonal rounds
    x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 16); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 12); x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 8); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 7)
    x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 16); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 12); x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 8); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 7)
    x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 16); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 12); x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 8); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 7)
    x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 16); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 12); x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 8); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 7)
  }

  const out = Buffer.alloc(32)
  out.writeInt32LE(x0, 0)
  out.writeInt32LE(x1, 4)
  out.writeInt32LE(x2, 8)
  out.writeInt32LE(x3, 12)
  out.writeInt32LE(x12, 16)
  out.writeInt32LE(x13, 20)
  out.writeInt32LE(x14, 24)
  out.writeInt32LE(x15, 28)
  return out
}
