// TLS session resumption: on by default, a resumed session keeps exactly the
// identity of the certificate that first authenticated it, and a reload that
// changes tls.ca (or the server's certificate) makes old tickets useless.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadConfigFile } from '../../src/config/load.js'
import { createCertificate } from '../../src/x509/certificate.js'
import type { IssuedCertificate } from '../../src/x509/certificate.js'
import { TestEnv, makeClient } from './harness.js'
import { visit } from './tls-visit.js'
import type { TlsVersion, Visit } from './tls-visit.js'

/** Like visit, but a refused handshake counts as a visit that got no answer. */
function visitOrRefused(env: TestEnv, cert: IssuedCertificate, version: TlsVersion, session?: Buffer): Promise<Visit> {
  return visit(env, cert, version, session).catch(() => ({ reused: false, status: 0, identity: undefined, session: undefined }))
}

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  describe(`TLS session resumption (${version}), without tls.ca`, () => {
    let env: TestEnv
    const alice = makeClient('alice')
    const mallory = makeClient('mallory')
    before(async () => {
      env = await TestEnv.create()
      await env.start(`admin:\n  identity: ${alice.identity}\n`)
    })
    after(async () => {
      await env.dispose()
    })

    test('a reconnecting client resumes its session and keeps its identity', async () => {
      const first = await visit(env, alice.cert, version)
      assert.equal(first.status, 200)
      assert.equal(first.reused, false)
      assert.equal(first.identity, alice.identity)
      assert.ok(first.session !== undefined, 'the server issued a session ticket')
      const again = await visit(env, alice.cert, version, first.session)
      assert.equal(again.reused, true, 'the session was resumed')
      assert.equal(again.status, 200)
      assert.equal(again.identity, alice.identity)
    })

    test("a resumed session can't take another certificate's identity", async () => {
      const first = await visit(env, alice.cert, version)
      // Mallory offers Alice's ticket with her own certificate: a resumed session is
      // Alice's session, so it stays Alice's identity; Mallory's certificate plays no part.
      const stolen = await visit(env, mallory.cert, version, first.session)
      assert.equal(stolen.reused, true)
      assert.equal(stolen.identity, alice.identity)
      // And Mallory's own session is Mallory's, resumed or not.
      const own = await visit(env, mallory.cert, version)
      assert.equal(own.identity, mallory.identity)
      const ownAgain = await visit(env, mallory.cert, version, own.session)
      assert.equal(ownAgain.reused, true)
      assert.equal(ownAgain.identity, mallory.identity)
    })

    test('a reload that changes no TLS file keeps tickets valid', async () => {
      const first = await visit(env, alice.cert, version)
      await env.server?.reload(await loadConfigFile(path.join(env.dir, 'config.yml'), {}))
      const again = await visit(env, alice.cert, version, first.session)
      assert.equal(again.reused, true)
      assert.equal(again.identity, alice.identity)
    })
  })

  describe(`TLS session resumption (${version}) and a tls.ca change`, () => {
    let env: TestEnv
    const oldCa = createCertificate('ecdsa-p256', { commonName: 'old client CA', isCA: true })
    const newCa = createCertificate('ecdsa-p256', { commonName: 'new client CA', isCA: true })
    const issued = createCertificate('ed25519', { commonName: 'issued by the old CA', extKeyUsage: ['clientAuth'], issuer: oldCa })
    before(async () => {
      env = await TestEnv.create()
      await writeFile(path.join(env.dir, 'ca.cert'), oldCa.certPem)
      await env.start(`admin:\n  identity: ${issued.identity}\n`, {}, '  ca: ./ca.cert\n')
    })
    after(async () => {
      await env.dispose()
    })

    test("a session authenticated under the old CA can't be resumed after the CA changed", async () => {
      const first = await visit(env, issued, version)
      assert.equal(first.status, 200)
      const resumed = await visit(env, issued, version, first.session)
      assert.equal(resumed.reused, true, 'resumption works before the change')
      await writeFile(path.join(env.dir, 'ca.cert'), newCa.certPem)
      await env.server?.reload(await loadConfigFile(path.join(env.dir, 'config.yml'), {}))
      // The old ticket no longer opens: a full handshake follows, whose certificate
      // the new CA did not issue, so the connection is refused (or never answered).
      for (const ticket of [first.session, resumed.session]) {
        const after = await visitOrRefused(env, issued, version, ticket)
        assert.equal(after.reused, false)
        assert.equal(after.status, 0, 'no answer after the CA change')
        assert.equal(after.identity, undefined)
      }
    })
  })
}
