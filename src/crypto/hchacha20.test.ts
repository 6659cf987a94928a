import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hchacha20 } from './hchacha20.js'

test('hchacha20 matches the draft-irtf-cfrg-xchacha section 2.2.1 test vector', () => {
  const key = Buffer.alloc(32)
  for (let i = 0; i < 32; i++) key[i] = i
  const input = Buffer.from('000000090000004a0000000031415927', 'hex')
  assert.equal(hchacha20(key, input).toString('hex'), '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc')
})

test('hchacha20 rejects wrong key and input lengths', () => {
  assert.throws(() => hchacha20(Buffer.alloc(31), Buffer.alloc(16)), RangeError)
  assert.throws(() => hchacha20(Buffer.alloc(32), Buffer.alloc(12)), RangeError)
})
