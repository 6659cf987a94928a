import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseListenAddress } from './listen-address.js'

test('listen addresses: host:port, [v6]:port and :port', () => {
  const ok: Array<[string, string, number]> = [
    ['127.0.0.1:7373', '127.0.0.1', 7373],
    ['0.0.0.0:0', '0.0.0.0', 0],
    ['localhost:65535', 'localhost', 65535],
    ['[::1]:7373', '::1', 7373],
    ['[::]:7373', '::', 7373],
    ['[fe80::1:2]:1', 'fe80::1:2', 1],
    ['[::ffff:127.0.0.1]:80', '::ffff:127.0.0.1', 80],
    [':7373', '', 7373],
    [':0', '', 0],
  ]
  for (const [address, host, port] of ok) assert.deepEqual(parseListenAddress(address), { host, port }, address)
})

test('listen addresses that are refused, with the address in the message', () => {
  for (const address of ['', '7373', '127.0.0.1', '127.0.0.1:', ':65536', ':123456', '::1:7373', '[::1]', '[::1:7373', '[zz]:1', 'a:b', '127.0.0.1:-1', 'host:7373 ']) {
    assert.throws(() => parseListenAddress(address), (e) => e instanceof RangeError && e.message === `invalid address '${address}'`, address)
  }
})
