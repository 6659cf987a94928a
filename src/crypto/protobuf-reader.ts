import type { Buffer } from 'node:buffer'

/** A protobuf message could not be read (truncated, bad varint, bad wire type). */
export class ProtobufError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProtobufError'
  }
}

/** Protobuf wire types (https://protobuf.dev/programming-guides/encoding/). */
export const WireType = { Varint: 0, I64: 1, Len: 2, StartGroup: 3, EndGroup: 4, I32: 5 } as const

const MAX_GROUP_DEPTH = 32

/** One field tag: the field number and how its value is encoded. */
export interface FieldTag {
  readonly field: number
  readonly wireType: number
}

/**
 * Reads the fields of one protobuf message in order: enough for the few messages KES stores
 * (varints and length-delimited fields); everything else can be skipped.
 */
export class ProtobufReader {
  readonly #buf: Buffer
  #pos = 0

  constructor(buf: Buffer) {
    this.#buf = buf
  }

  /** Whether every byte has been read. */
  get done(): boolean {
    return this.#pos >= this.#buf.length
  }

  /** Reads a varint as an unsigned 64-bit value. Throws ProtobufError if it is truncated or too long. */
  readVarint(): bigint {
    let value = 0n
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = this.#buf[this.#pos++]
      if (byte === undefined) throw new ProtobufError('truncated varint')
      value |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, value)
    }
    throw new ProtobufError('varint too long')
  }

  /** Reads the next field tag. Throws ProtobufError if it is malformed. */
  readTag(): FieldTag {
    const tag = this.readVarint()
    const field = Number(tag >> 3n)
    if (field === 0 || field > 0x1fffffff) throw new ProtobufError('invalid field number')
    return { field, wireType: Number(tag & 7n) }
  }

  /** Reads a length-delimited value (a view, not a copy). Throws ProtobufError if it is truncated. */
  readBytes(): Buffer {
    const length = this.readVarint()
    if (length > BigInt(this.#buf.length - this.#pos)) throw new ProtobufError('truncated field')
    const start = this.#pos
    this.#pos += Number(length)
    return this.#buf.subarray(start, this.#pos)
  }

  /**
   * Skips the value of field `field` with `wireType`, groups included (nested at most 32 deep).
   * Throws ProtobufError if it is malformed.
   */
  skip(wireType: number, field: number, depth = 0): void {
    switch (wireType) {
      case WireType.Varint:
        this.readVarint()
        return
      case WireType.I64:
        this.#advance(8)
        return
      case WireType.Len:
        this.readBytes()
        return
      case WireType.I32:
        this.#advance(4)
        return
      case WireType.StartGroup:
        if (depth >= MAX_GROUP_DEPTH) throw new ProtobufError('groups nested too deep')
        for (;;) {
          if (this.done) throw new ProtobufError('unterminated group')
          const tag = this.readTag()
          if (tag.wireType === WireType.EndGroup) {
            if (tag.field !== field) throw new ProtobufError('mismatched group end')
            return
          }
          this.skip(tag.wireType, tag.field, depth + 1)
        }
      default:
        throw new ProtobufError('unexpected wire type')
    }
  }

  #advance(n: number): void {
    if (this.#pos + n > this.#buf.length) throw new ProtobufError('truncated field')
    this.#pos += n
  }
}
