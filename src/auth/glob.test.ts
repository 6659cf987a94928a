import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileGlob, GlobSyntaxError, hasGlobMeta, isValidGlob } from './glob.js'

const ERR = 'syntax error'
type Want = boolean | typeof ERR

// [pattern, input, want]. Every row was checked against Go's path.Match (go1.19, which has the
// current behaviour of reporting malformed patterns even when the match fails early). Groups:
// literals, stars (never crossing '/'), '?', classes, negation, escapes, unicode (code points;
// and Go's byte-level quirk that a star may stop inside a multi-byte character), the
// leftmost-chunk rule, then every malformed form.
const cases: ReadonlyArray<readonly [string, string, Want]> = [
  ['', '', true],
  ['', 'a', false],
  ['abc', 'abc', true],
  ['abc', 'abd', false],
  ['abc', 'ab', false],
  ['abc', 'abcd', false],
  ['*', '', true],
  ['*', 'abc', true],
  ['*', 'a/b', false],
  ['*', '/', false],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['*c', 'abc', true],
  ['*c', 'a/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['a**b', 'axyzb', true],
  ['a***', 'a/', false],
  ['*/*', 'a/b', true],
  ['*/*', 'a/b/c', false],
  ['/v1/*/*', '/v1/key/x', true],
  ['/v1/*/*', '/v1/key/', true],
  ['/v1/*/*', '/v1/key', false],
  ['?', 'a', true],
  ['?', '', false],
  ['?', 'ab', false],
  ['?', '/', false],
  ['a?c', 'abc', true],
  ['a?c', 'a/c', false],
  ['??', 'ab', true],
  ['?', 'é', true],
  ['??', 'é', false],
  ['?', '✓', true],
  ['?', '𝄞', true],
  ['??', '𝄞', false],
  ['a?b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['[abc]', 'b', true],
  ['[abc]', 'd', false],
  ['[abc]', '', false],
  ['[a-c]', 'b', true],
  ['[a-c]', 'd', false],
  ['[a-cx-z]', 'y', true],
  ['[a-cx-z]', 'm', false],
  ['[^a-c]', 'd', true],
  ['[^a-c]', 'b', false],
  ['[^a-c]', '/', true],
  ['[^a]', '/', true],
  ['[/]', '/', true],
  ['a[/]b', 'a/b', true],
  ['[!a]', '!', true],
  ['[!a]', 'b', false],
  ['[z-a]', 'm', false],
  ['[z-a]', 'z', false],
  ['[^z-a]', 'm', true],
  ['[\\]]', ']', true],
  ['[\\-]', '-', true],
  ['[\\^]', '^', true],
  ['[\\\\]', '\\', true],
  ['[a\\-z]', '-', true],
  ['[a\\-z]', 'b', false],
  ['[*]', '*', true],
  ['[*]', 'a', false],
  ['[?]', '?', true],
  ['[[]', '[', true],
  ['[a-]]', 'a]', ERR],
  ['[é]', 'é', true],
  ['[à-ü]', 'é', true],
  ['[à-ü]', 'a', false],
  ['[^é]', 'é', false],
  ['[^é]', 'e', true],
  ['[✓]', '✓', true],
  ['[𝄞]', '𝄞', true],
  ['\\*', '*', true],
  ['\\*', 'a', false],
  ['\\?', '?', true],
  ['\\[', '[', true],
  ['\\a', 'a', true],
  ['\\\\', '\\', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['é*', 'éa', true],
  ['*é', 'aé', true],
  ['*é', 'a/é', false],
  ['*??', '✓', true],
  ['*[^x][^x]', '✓', true],
  ['*[^x]*c', 'a/c', false],
  ['*[^x]c', 'a/c', true],
  ['*[/]c', 'a/c', true],
  ['*?', 'é', true],
  ['[', 'a', ERR],
  ['[a', 'a', ERR],
  ['[a-', 'a', ERR],
  ['[a-b', 'a', ERR],
  ['[]', 'a', ERR],
  ['[]a]', ']', ERR],
  ['[^]', 'a', ERR],
  ['[-a]', 'a', ERR],
  ['[a-]', 'a', ERR],
  ['[^-a]', 'a', ERR],
  ['[--a]', 'a', ERR],
  ['[\\', 'a', ERR],
  ['[a\\', 'a', ERR],
  ['[a-\\', 'a', ERR],
  ['\\', 'a', ERR],
  ['a\\', 'a', ERR],
  ['*\\', '', ERR],
  ['x[', 'a', ERR],
  ['x*[', 'abc', ERR],
  ['a*[', 'a', ERR],
  ['*x\\', 'bbb', ERR],
  ['a[', 'a', ERR],
  ['[x]*\\', 'y', ERR],
  ['ab[', 'a', ERR],
  ['a*b[', 'ab', ERR],
  [']', ']', true],
  ['-', '-', true],
  ['^', '^', true],
  ['a]', 'a]', true],
]

for (const [pattern, input, want] of cases) {
  test(`glob '${pattern}' on '${input}' → ${String(want)}`, () => {
    if (want === ERR) {
      assert.equal(isValidGlob(pattern), false)
      assert.throws(() => compileGlob(pattern), GlobSyntaxError)
      return
    }
    assert.equal(isValidGlob(pattern), true)
    assert.equal(compileGlob(pattern).matches(input), want)
  })
}

test('a star chunk is matched at its leftmost position without backtracking (as in Go)', () => {
  // Full backtracking would let '[^x]' take the '/' and match; Go takes 'a' first and fails.
  assert.equal(compileGlob('*[^x]*c').matches('a/c'), false)
  // Only the last chunk is retried until it ends exactly at the end of the input.
  assert.equal(compileGlob('*a').matches('banana'), true)
  assert.equal(compileGlob('*an*a').matches('banana'), true)
})

test('a compiled glob gives the same answer every time and is frozen', () => {
  const g = compileGlob('/v1/key/generate/my-*')
  for (let i = 0; i < 3; i++) {
    assert.equal(g.matches('/v1/key/generate/my-key'), true)
    assert.equal(g.matches('/v1/key/generate/other'), false)
  }
  assert.equal(g.pattern, '/v1/key/generate/my-*')
  assert.equal(Object.isFrozen(g), true)
})

test('a malformed pattern throws GlobSyntaxError naming the pattern', () => {
  assert.throws(() => compileGlob('/v1/['), (err: unknown) => {
    assert.ok(err instanceof GlobSyntaxError)
    assert.equal(err.message, "syntax error in pattern '/v1/['")
    assert.equal(err.pattern, '/v1/[')
    return true
  })
})

test('compileGlob rejects a non-string with TypeError', () => {
  assert.throws(() => compileGlob(42 as unknown as string), TypeError)
  assert.equal(isValidGlob(null as unknown as string), false)
})

const metaCases: ReadonlyArray<readonly [string, boolean]> = [
  ['', false],
  ['my-key', false],
  ['a.b_c-d', false],
  ['a]b', false],
  ['*', true],
  ['my-*', true],
  ['ke?', true],
  ['[ab]', true],
  ['a\\b', true],
  ['ünïcödé', false],
]
for (const [s, want] of metaCases) {
  test(`hasGlobMeta('${s}') → ${want}`, () => assert.equal(hasGlobMeta(s), want))
}
