import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { KES_KEY_FILES_EXPECTED, parseKesKeyFileVectors, readKesKeyFileVectors } from './kes-key-files.js'

const text = await readFile(KES_KEY_FILES_EXPECTED, 'utf8')

test('the loader gives exactly what expected.json holds', async () => {
  const vectors = await readKesKeyFileVectors()
  assert.equal(vectors.length, 17)
  assert.deepStrictEqual(vectors, JSON.parse(text))
})

// A fixture edited by mistake must stop every test that reads it, naming the file and the entry.
const broken: ReadonlyArray<{ what: string; json: string; error: RegExp }> = [
  { what: 'not JSON', json: text.slice(0, -3), error: /^F: not JSON: / },
  { what: 'not an array', json: '{}', error: /^F: expected a JSON array/ },
  { what: 'an entry not an object', json: '[1]', error: /^F: entry 0: expected an object/ },
  { what: 'a missing name', json: text.replace('"name":"ks-imported-seq",', ''), error: /^F: entry 0: "name" must be a string/ },
  { what: 'a misspelt field', json: text.replace('"hmac_key"', '"hmac-key"'), error: /^F: entry 16: unknown field "hmac-key"/ },
  { what: 'an unknown cipher', json: text.replace('"cipher":"AES256"', '"cipher":"AES128"'), error: /^F: entry 0: "cipher" must be one of AES256, ChaCha20, not "AES128"/ },
  { what: 'a key neither string nor null', json: text.replace('"key":null', '"key":0'), error: /^F: entry 2: "key" must be a string/ },
  { what: 'a file not under its version', json: text.replace('"file":"v0.7.2/ks-imported-seq"', '"file":"v0.17.6/ks-imported-seq"'), error: /^F: entry 0: "file" must be "v0.7.2\/ks-imported-seq"/ },
  { what: 'a missing raw_sample', json: text.replace(/,"raw_sample":\{[^}]*\}/, ''), error: /^F: entry 0: "raw_sample" must be an object/ },
  { what: 'a sample field mistyped', json: text.replace('"context":"a2V5c3RvcmUtZnM="', '"context":null'), error: /^F: entry 0: "sample.context" must be a string/ },
]

for (const { what, json, error } of broken) {
  test(`a fixture with ${what} is refused`, () => {
    assert.notEqual(json, text, 'the case changed the fixture text')
    assert.throws(() => parseKesKeyFileVectors(json, 'F'), { message: error })
  })
}
