import { Buffer } from 'node:buffer'
import { randomFillSync } from 'node:crypto'

/** Fills a buffer with cryptographically secure random bytes. */
export type RandomFill = (buffer: Buffer) => void

const DEFAULT_POOL_BYTES = 64 * 1024

function fillFromCsprng(buffer: Buffer): void {
  randomFillSync(buffer)
}

/**
 * Hands out fresh random bytes from a pooled buffer, so that the hot path (an iv and a nonce per
 * encryption) does not enter the CSPRNG once per request. Every byte is handed out at most once:
 * it is zeroed in the pool as soon as it has been copied out.
 */
export class RandomPool {
  readonly #pool: Buffer
  readonly #fill: RandomFill
  #offset: number

  /**
   * Creates a pool of `poolBytes` bytes (64 KiB by default), filled lazily by `fill`
   * (`randomFillSync` by default; tests may observe the pool through their own fill function).
   * Throws a RangeError if `poolBytes` is not a positive integer.
   */
  constructor(poolBytes: number = DEFAULT_POOL_BYTES, fill: RandomFill = fillFromCsprng) {
    if (!Number.isSafeInteger(poolBytes) || poolBytes <= 0) throw new RangeError('random pool size must be a positive integer')
    this.#pool = Buffer.alloc(poolBytes)
    this.#fill = fill
    // nothing handed out yet: the first take fills the pool
    this.#offset = poolBytes
  }

  /**
   * Returns `n` fresh random bytes in a new zero-initialised buffer. Requests larger than the
   * pool are filled directly from the CSPRNG. Throws a RangeError if `n` is not a non-negative integer.
   */
  take(n: number): Buffer {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('random byte count must be a non-negative integer')
    const out = Buffer.alloc(n)
    this.#copyOut(out, 0, n)
    return out
  }

  /**
   * Writes `n` fresh random bytes into `target` at `offset`, for values that go straight into a
   * buffer of the caller's (an iv and a nonce), saving a buffer per call. Throws a RangeError if
   * they don't fit.
   */
  takeInto(target: Buffer, offset: number, n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || !Number.isSafeInteger(offset) || offset < 0 || offset + n > target.length) {
      throw new RangeError('random bytes do not fit the target')
    }
    this.#copyOut(target, offset, n)
  }

  #copyOut(target: Buffer, offset: number, n: number): void {
    if (n > this.#pool.length) {
      this.#fill(target.subarray(offset, offset + n))
      return
    }
    if (this.#pool.length - this.#offset < n) {
      // The unused tail is overwritten, never handed out: no byte can be returned twice.
      this.#fill(this.#pool)
      this.#offset = 0
    }
    const end = this.#offset + n
    this.#pool.copy(target, offset, this.#offset, end)
    this.#pool.fill(0, this.#offset, end)
    this.#offset = end
  }
}

/** The process-wide pool used for ivs and nonces. */
export const randomPool = new RandomPool()
