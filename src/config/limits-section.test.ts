import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError } from './config-error.js'
import { DEFAULT_LIMITS, limitsSection } from './limits-section.js'

type Raw = Parameters<typeof limitsSection>[0]
const map = (entries: Record<string, string>): Raw => new Map(Object.entries(entries))

test('limits: absent or null gives the defaults', () => {
  assert.equal(limitsSection(undefined, {}), DEFAULT_LIMITS)
  assert.equal(limitsSection(null, {}), DEFAULT_LIMITS)
  assert.deepEqual(DEFAULT_LIMITS, {
    connections: 512,
    connectionsPerAddress: 64,
    handshakeTimeoutMs: 10_000,
    idleTimeoutMs: 30_000,
    bodyBytesPerConnection: 4 << 20,
    bodyBytesTotal: 64 << 20,
  })
})

test('limits: every field, with units and ${VAR}', () => {
  const l = limitsSection(
    map({
      connections: '100',
      connections_per_address: '${PER}',
      handshake_timeout: '2s',
      idle_timeout: '1m30s',
      body_bytes_per_connection: '2MiB',
      body_bytes_total: '1GiB',
    }),
    { PER: '10' },
  )
  assert.deepEqual(l, {
    connections: 100,
    connectionsPerAddress: 10,
    handshakeTimeoutMs: 2000,
    idleTimeoutMs: 90_000,
    bodyBytesPerConnection: 2 << 20,
    bodyBytesTotal: 1 << 30,
  })
  // Fields left out keep their defaults.
  assert.equal(limitsSection(map({ connections: '1000' }), {}).idleTimeoutMs, DEFAULT_LIMITS.idleTimeoutMs)
})

const BAD: Array<[string, Raw, RegExp]> = [
  ['not a mapping', 'x', /^config: limits: expected a mapping$/],
  ['unknown field', map({ conections: '1' }), /^config: limits\.conections: unknown field$/],
  ['zero connections', map({ connections: '0' }), /^config: limits\.connections: expected a positive whole number/],
  ['negative', map({ connections: '-5' }), /limits\.connections: expected a positive whole number/],
  ['fraction', map({ connections_per_address: '1.5' }), /limits\.connections_per_address: expected a positive whole number/],
  ['per address over total', map({ connections: '10', connections_per_address: '11' }), /limits\.connections_per_address: must not exceed limits\.connections \(10\)/],
  ['zero timeout', map({ idle_timeout: '0s' }), /limits\.idle_timeout: must be greater than 0/],
  ['bad duration', map({ handshake_timeout: '10' }), /limits\.handshake_timeout: invalid duration/],
  ['bad size unit', map({ body_bytes_total: '64MB' }), /limits\.body_bytes_total: expected a size such as 4MiB/],
  ['per connection below 1MiB', map({ body_bytes_per_connection: '512KiB' }), /limits\.body_bytes_per_connection: must be at least 1MiB/],
  ['total below per connection', map({ body_bytes_per_connection: '8MiB', body_bytes_total: '4MiB' }), /limits\.body_bytes_total: must not be less than/],
  ['list value', new Map([['connections', ['1']]]), /limits\.connections: expected a scalar value/],
  ['unset variable', map({ connections: '${NOPE}' }), /limits\.connections: environment variable 'NOPE' is not set/],
]
for (const [name, raw, message] of BAD) {
  test(`limits error: ${name}`, () => {
    assert.throws(() => limitsSection(raw, {}), (e) => e instanceof ConfigError && message.test(e.message))
  })
}
