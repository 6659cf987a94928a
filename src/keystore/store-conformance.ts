/**
 * Test support, not runtime code: the behaviour every KeyStore backend must show, as a
 * node:test suite. Each backend's test file calls `testStoreConformance` with a factory.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { inspect } from 'node:util'
import { EntryExistsError, InvalidNameError, MAX_VALUE_BYTES, PING_OP, StoreError, TABLE_NAMES, StoreUnavailableError } from './keystore.js'
import type { KeyStore, Table, TableName } from './keystore.js'

/** Opens a fresh, empty store for one test and registers its cleanup with `t.after`. */
export type OpenStore = (t: TestContext) => Promise<KeyStore>

const tableNames: readonly TableName[] = TABLE_NAMES

const invalidNames: ReadonlyArray<[string, string]> = [
  ['empty', ''],
  ['dot', '.'],
  ['dot dot', '..'],
  ['leading dot', '.hidden'],
  ['temp file name', '.tmp-0123'],
  ['slash', 'a/b'],
  ['parent path', '../x'],
  ['backslash', 'a\\b'],
  ['NUL', 'a\0b'],
  ['lone surrogate', 'a\uD800'],
  ['256 bytes', 'x'.repeat(256)],
  ['256 bytes in two-byte characters', 'é'.repeat(128)],
]

function bytes(text: string): Buffer {
  return Buffer.from(text, 'utf8')
}

/**
 * Registers the conformance suite for a backend. Every test opens its own store through `open`.
 * Backends must not reorder or alter values, and must sort names in UTF-8 byte order.
 * `maxValueBytes` lowers the value limit of some tables (sealed tables take less).
 */
export function testStoreConformance(backend: string, open: OpenStore, maxValueBytes: Partial<Record<TableName, number>> = {}): void {
  const table = (s: KeyStore, name: TableName): Table => s[name]
  describe(`${backend} store conformance`, () => {
    for (const tableName of tableNames) {
      const table = (s: KeyStore): Table => s[tableName]

      test(`${tableName}: create twice fails with EntryExistsError and keeps the first value`, async (t) => {
        const s = await open(t)
        await table(s).create('k1', bytes('first'))
        await assert.rejects(table(s).create('k1', bytes('second')), EntryExistsError)
        assert.deepEqual(await table(s).get('k1'), bytes('first'))
      })

      test(`${tableName}: put creates and overwrites`, async (t) => {
        const s = await open(t)
        await table(s).put('k1', bytes('one'))
        assert.deepEqual(await table(s).get('k1'), bytes('one'))
        await table(s).put('k1', bytes('a longer second value'))
        assert.deepEqual(await table(s).get('k1'), bytes('a longer second value'))
        await table(s).put('k1', bytes('3'))
        assert.deepEqual(await table(s).get('k1'), bytes('3'))
        assert.deepEqual(await table(s).list(), ['k1'])
      })

      test(`${tableName}: get of a missing name is undefined`, async (t) => {
        const s = await open(t)
        assert.equal(await table(s).get('missing'), undefined)
      })

      test(`${tableName}: delete returns true once, then false`, async (t) => {
        const s = await open(t)
        await table(s).create('k1', bytes('v'))
        assert.equal(await table(s).delete('k1'), true)
        assert.equal(await table(s).get('k1'), undefined)
        assert.equal(await table(s).delete('k1'), false)
        assert.deepEqual(await table(s).list(), [])
        await table(s).create('k1', bytes('again'))
        assert.deepEqual(await table(s).get('k1'), bytes('again'))
      })

      test(`${tableName}: list is sorted in UTF-8 byte order`, async (t) => {
        const s = await open(t)
        // UTF-16 order would put the emoji (surrogates) before U+FFEE; byte order puts it after.
        const names = ['b', '\u{1F600}', 'a-1', '\uFFEE', 'A', 'é', '_x', 'a', '0', 'a.b']
        for (const name of names) await table(s).create(name, bytes(name))
        assert.deepEqual(await table(s).list(), ['0', 'A', '_x', 'a', 'a-1', 'a.b', 'b', 'é', '\uFFEE', '\u{1F600}'])
      })

      test(`${tableName}: an empty value is stored as empty, not as missing`, async (t) => {
        const s = await open(t)
        await table(s).create('empty', new Uint8Array(0))
        assert.deepEqual(await table(s).get('empty'), Buffer.alloc(0))
        assert.deepEqual(await table(s).list(), ['empty'])
      })

      test(`${tableName}: a name of exactly 255 bytes works`, async (t) => {
        const s = await open(t)
        const name = 'x'.repeat(255)
        await table(s).create(name, bytes('v'))
        assert.deepEqual(await table(s).get(name), bytes('v'))
        assert.deepEqual(await table(s).list(), [name])
      })

      for (const [label, name] of invalidNames) {
        test(`${tableName}: invalid name (${label}) is refused by every operation`, async (t) => {
          const s = await open(t)
          await assert.rejects(table(s).create(name, bytes('v')), InvalidNameError)
          await assert.rejects(table(s).put(name, bytes('v')), InvalidNameError)
          await assert.rejects(table(s).get(name), InvalidNameError)
          await assert.rejects(table(s).delete(name), InvalidNameError)
          assert.deepEqual(await table(s).list(), [])
        })
      }

      test(`${tableName}: values are copied in and out`, async (t) => {
        const s = await open(t)
        const input = Buffer.from([1, 2, 3, 4])
        await table(s).create('k1', input)
        input.fill(9)
        const first = await table(s).get('k1')
        assert.deepEqual(first, Buffer.from([1, 2, 3, 4]))
        first?.fill(7)
        assert.deepEqual(await table(s).get('k1'), Buffer.from([1, 2, 3, 4]))
        const viaPut = new Uint8Array([5, 6])
        await table(s).put('k2', viaPut)
        viaPut.fill(0)
        assert.deepEqual(await table(s).get('k2'), Buffer.from([5, 6]))
      })

      test(`${tableName}: a value larger than MAX_VALUE_BYTES is refused with StoreError`, async (t) => {
        const s = await open(t)
        const max = maxValueBytes[tableName] ?? MAX_VALUE_BYTES
        const big = new Uint8Array(max + 1)
        await assert.rejects(table(s).create('big', big), (err) => err instanceof StoreError)
        await assert.rejects(table(s).put('big', big), (err) => err instanceof StoreError)
        assert.equal(await table(s).get('big'), undefined)
        await table(s).put('max', new Uint8Array(max))
        assert.equal((await table(s).get('max'))?.length, max)
      })

      test(`${tableName}: 20 concurrent creates of one name: exactly one succeeds`, async (t) => {
        const s = await open(t)
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => table(s).create('race', bytes(`value-${i}`))),
        )
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []))
        assert.equal(won.length, 1)
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(r.reason instanceof EntryExistsError, String(r.reason))
        }
        assert.deepEqual(await table(s).get('race'), bytes(`value-${won[0]}`))
        assert.deepEqual(await table(s).list(), ['race'])
      })
    }

    test('replace is a compare-and-swap on every table', async (t) => {
      const s = await open(t)
      for (const tableName of tableNames) {
        const tb = table(s, tableName)
        // missing: false, and still missing
        assert.equal(await tb.replace('k', bytes('a'), bytes('b')), false, tableName)
        assert.equal(await tb.get('k'), undefined, tableName)
        await tb.create('k', bytes('first'))
        // another value: false, unchanged (also a prefix and a longer value)
        assert.equal(await tb.replace('k', bytes('firs'), bytes('x')), false, tableName)
        assert.equal(await tb.replace('k', bytes('first!'), bytes('x')), false, tableName)
        assert.deepEqual(await tb.get('k'), bytes('first'), tableName)
        // the current value: true, swapped
        assert.equal(await tb.replace('k', bytes('first'), bytes('a longer second value')), true, tableName)
        assert.deepEqual(await tb.get('k'), bytes('a longer second value'), tableName)
        // the value it had: false now
        assert.equal(await tb.replace('k', bytes('first'), bytes('third')), false, tableName)
        assert.equal(await tb.replace('k', bytes('a longer second value'), new Uint8Array(0)), true, tableName)
        assert.deepEqual(await tb.get('k'), Buffer.alloc(0), tableName)
        assert.equal(await tb.replace('k', new Uint8Array(0), bytes('4')), true, tableName)
        assert.deepEqual(await tb.list(), ['k'], tableName)
        // a deleted entry is not brought back
        assert.equal(await tb.delete('k'), true)
        assert.equal(await tb.replace('k', bytes('4'), bytes('5')), false, tableName)
        assert.equal(await tb.get('k'), undefined, tableName)
      }
    })

    test('replace refuses invalid names and oversized values, and copies the value in', async (t) => {
      const s = await open(t)
      for (const [label, name] of invalidNames) {
        await assert.rejects(s.keys.replace(name, bytes('a'), bytes('b')), InvalidNameError, label)
      }
      await s.keys.create('k', bytes('v'))
      await assert.rejects(s.keys.replace('k', bytes('v'), new Uint8Array(MAX_VALUE_BYTES + 1)), (err) => err instanceof StoreError)
      assert.deepEqual(await s.keys.get('k'), bytes('v'))
      const input = Buffer.from('new')
      assert.equal(await s.keys.replace('k', bytes('v'), input), true)
      input.fill(0)
      assert.deepEqual(await s.keys.get('k'), bytes('new'))
    })

    test('20 concurrent replaces from one value: exactly one wins', async (t) => {
      const s = await open(t)
      await s.keys.create('race', bytes('start'))
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.keys.replace('race', bytes('start'), bytes(`value-${i}`))))
      const won = results.flatMap((ok, i) => (ok ? [i] : []))
      assert.equal(won.length, 1)
      assert.deepEqual(await s.keys.get('race'), bytes(`value-${won[0]}`))
    })

    test('concurrent read-modify-replace loops lose no update', async (t) => {
      const s = await open(t)
      await s.keys.create('counter', bytes('0'))
      const increment = async (): Promise<void> => {
        for (;;) {
          const current = await s.keys.get('counter')
          assert.ok(current !== undefined)
          if (await s.keys.replace('counter', current, bytes(String(Number(current.toString()) + 1)))) return
        }
      }
      await Promise.all(Array.from({ length: 10 }, () => Promise.all([increment(), increment(), increment()])))
      assert.deepEqual(await s.keys.get('counter'), bytes('30'))
    })

    test('a replace racing a delete never brings the entry back', async (t) => {
      const s = await open(t)
      for (let i = 0; i < 10; i++) {
        await s.keys.put('k', bytes('v'))
        const [replaced, deleted] = await Promise.all([s.keys.replace('k', bytes('v'), bytes('w')), s.keys.delete('k')])
        assert.equal(deleted, true)
        assert.equal(await s.keys.get('k'), undefined, `round ${i}: replaced=${replaced}`)
      }
    })

    test('deleteIf is a compare-and-delete on every table', async (t) => {
      const s = await open(t)
      for (const tableName of tableNames) {
        const tb = table(s, tableName)
        // missing: false, and nothing appears
        assert.equal(await tb.deleteIf('k', bytes('a')), false, tableName)
        assert.equal(await tb.get('k'), undefined, tableName)
        await tb.create('k', bytes('first'))
        await tb.create('other', bytes('first'))
        // another value: false, unchanged (also a prefix, a longer value and the empty value)
        assert.equal(await tb.deleteIf('k', bytes('firs')), false, tableName)
        assert.equal(await tb.deleteIf('k', bytes('first!')), false, tableName)
        assert.equal(await tb.deleteIf('k', new Uint8Array(0)), false, tableName)
        assert.deepEqual(await tb.get('k'), bytes('first'), tableName)
        // the current value: true, gone; other names untouched
        assert.equal(await tb.deleteIf('k', bytes('first')), true, tableName)
        assert.equal(await tb.get('k'), undefined, tableName)
        assert.deepEqual(await tb.list(), ['other'], tableName)
        // a second time: false
        assert.equal(await tb.deleteIf('k', bytes('first')), false, tableName)
        // a value replaced meanwhile is kept
        await tb.create('k', bytes('v1'))
        assert.equal(await tb.replace('k', bytes('v1'), bytes('v2')), true, tableName)
        assert.equal(await tb.deleteIf('k', bytes('v1')), false, tableName)
        assert.deepEqual(await tb.get('k'), bytes('v2'), tableName)
        // the empty value is a value
        await tb.put('empty', new Uint8Array(0))
        assert.equal(await tb.deleteIf('empty', new Uint8Array(0)), true, tableName)
        assert.deepEqual(await tb.list(), ['k', 'other'], tableName)
      }
    })

    test('deleteIf refuses invalid names and does not keep a reference to expected', async (t) => {
      const s = await open(t)
      for (const [label, name] of invalidNames) {
        await assert.rejects(s.keys.deleteIf(name, bytes('a')), InvalidNameError, label)
      }
      await s.keys.create('k', bytes('v'))
      const expected = Buffer.from('v')
      assert.equal(await s.keys.deleteIf('k', expected), true)
      expected.fill(0)
      assert.equal(await s.keys.get('k'), undefined)
    })

    test('deleteIf racing replaces: the entry is removed only while it holds the expected value', async (t) => {
      const s = await open(t)
      for (let i = 0; i < 10; i++) {
        await s.keys.put('k', bytes('v'))
        const [replaced, deleted] = await Promise.all([s.keys.replace('k', bytes('v'), bytes('w')), s.keys.deleteIf('k', bytes('v'))])
        // Exactly one of them saw 'v'; the other found it changed or gone.
        assert.notEqual(replaced, deleted, `round ${i}`)
        assert.deepEqual(await s.keys.get('k'), replaced ? bytes('w') : undefined, `round ${i}`)
      }
    })

    test('20 concurrent deleteIfs of one value: exactly one wins', async (t) => {
      const s = await open(t)
      await s.keys.create('race', bytes('start'))
      const results = await Promise.all(Array.from({ length: 20 }, () => s.keys.deleteIf('race', bytes('start'))))
      assert.equal(results.filter((ok) => ok).length, 1)
      assert.equal(await s.keys.get('race'), undefined)
    })

    test('the tables are separate namespaces', async (t) => {
      const s = await open(t)
      await s.keys.create('same', bytes('key'))
      await s.policies.create('same', bytes('policy'))
      await s.identities.create('same', bytes('identity'))
      await s.deleted.create('same', bytes('deleted'))
      await s.policies.put('only-policy', bytes('p'))
      await s.identities.put('a'.repeat(64), bytes('only-identity'))
      assert.deepEqual(await s.keys.list(), ['same'])
      assert.deepEqual(await s.policies.list(), ['only-policy', 'same'])
      assert.deepEqual(await s.identities.list(), ['a'.repeat(64), 'same'])
      assert.deepEqual(await s.keys.get('same'), bytes('key'))
      assert.deepEqual(await s.policies.get('same'), bytes('policy'))
      assert.deepEqual(await s.identities.get('same'), bytes('identity'))
      assert.deepEqual(await s.deleted.get('same'), bytes('deleted'))
      assert.equal(await s.keys.delete('same'), true)
      assert.deepEqual(await s.policies.get('same'), bytes('policy'))
    })

    test('after close every operation fails with StoreUnavailableError', async (t) => {
      const s = await open(t)
      await s.keys.create('k1', bytes('v'))
      await s.close()
      await s.close()
      const isUnavailable = (op: string) => (err: unknown) => err instanceof StoreUnavailableError && err.op === op
      await assert.rejects(s.keys.create('k2', bytes('v')), isUnavailable('failed to create key'))
      await assert.rejects(s.keys.put('k1', bytes('v')), isUnavailable('failed to write key'))
      await assert.rejects(s.keys.replace('k1', bytes('v'), bytes('w')), isUnavailable('failed to write key'))
      await assert.rejects(s.deleted.list(), isUnavailable('failed to list deleted keys'))
      await assert.rejects(s.keys.get('k1'), isUnavailable('failed to read key'))
      await assert.rejects(s.keys.delete('k1'), isUnavailable('failed to delete key'))
      await assert.rejects(s.keys.deleteIf('k1', bytes('v')), isUnavailable('failed to delete key'))
      await assert.rejects(s.keys.list(), isUnavailable('failed to list keys'))
      await assert.rejects(s.policies.list(), isUnavailable('failed to list policies'))
      await assert.rejects(s.identities.get('i'), isUnavailable('failed to read identity'))
    })

    test('ping succeeds on an open store and fails with StoreUnavailableError after close', async (t) => {
      const s = await open(t)
      await s.ping()
      await s.keys.create('k1', bytes('v'))
      await s.ping()
      await s.close()
      await assert.rejects(s.ping(), (err: unknown) => err instanceof StoreUnavailableError && err.op === PING_OP)
    })

    test('printing or serializing the store shows no stored bytes', async (t) => {
      const s = await open(t)
      const secret = 'c2VjcmV0LWtleS1tYXRlcmlhbA'
      await s.keys.create('k1', bytes(secret))
      const printed = inspect(s, { depth: 10, showHidden: true }) + JSON.stringify(s)
      assert.ok(!printed.includes(secret))
      assert.ok(!printed.includes(bytes(secret).toString('hex')))
      // as inspect prints a Buffer: '<Buffer 63 32 56 ...>'
      const spacedHex = [...bytes(secret).subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ')
      assert.ok(!printed.includes(spacedHex))
    })

    test('kind names the backend', async (t) => {
      const s = await open(t)
      assert.equal(s.kind, backend)
    })
  })
}
