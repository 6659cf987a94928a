// X.509 v3 certificates (RFC 5280) built with the DER writer and signed with
// node:crypto, so the server and CLI need no certificate library.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { isIPv4, isIPv6 } from 'node:net'
import { identityOfCertificate } from '../auth/identity.js'
import {
  bitString,
  boolean,
  explicit,
  implicit,
  integer,
  namedBitString,
  nullValue,
  objectIdentifier,
  octetString,
  readChildren,
  readElement,
  sequence,
  set,
  Tag,
  utf8String,
  x509Time,
} from './der.js'

/** Key algorithms `createCertificate` can generate. */
export type KeyType = 'ed25519' | 'ecdsa-p256' | 'rsa-2048'

/** What the new certificate says about its subject, and who signs it. */
export interface CertificateRequest {
  /** Subject common name (1–64 characters). */
  commonName: string
  /** subjectAltName dNSName entries (`*.` wildcard prefix allowed). */
  dnsNames?: string[]
  /** subjectAltName iPAddress entries, IPv4 or IPv6. */
  ipAddresses?: string[]
  /** Validity in days from now; default 365. notBefore is one minute ago, for clock skew. */
  validDays?: number
  /** Marks a CA: basicConstraints CA:TRUE and keyUsage keyCertSign + cRLSign. */
  isCA?: boolean
  /** extKeyUsage purposes. */
  extKeyUsage?: ('serverAuth' | 'clientAuth')[]
  /** Sign with this CA (PEM certificate and private key) instead of self-signing. */
  issuer?: { certPem: string; keyPem: string }
}

/** A new certificate, its private key (PKCS#8 PEM) and the identity of its public key. */
export interface IssuedCertificate {
  certPem: string
  keyPem: string
  identity: string
}

const Oid = {
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  ed25519: '1.3.101.112',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
} as const

const EXT_KEY_USAGE_OIDS: Record<string, string> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
}

// keyUsage bit numbers from RFC 5280 §4.2.1.3
const KeyUsageBit = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const

// ECDSA signs with the hash that matches the curve size (RFC 5480 §4);
// the AlgorithmIdentifier has no parameters (RFC 5758 §3.2).
const ECDSA_BY_CURVE: Record<string, { hash: string; oid: string }> = {
  prime256v1: { hash: 'sha256', oid: '1.2.840.10045.4.3.2' },
  secp384r1: { hash: 'sha384', oid: '1.2.840.10045.4.3.3' },
  secp521r1: { hash: 'sha512', oid: '1.2.840.10045.4.3.4' },
}

const MAX_COMMON_NAME_CHARS = 64 // ub-common-name, RFC 5280 appendix A
const DEFAULT_VALID_DAYS = 365
const CLOCK_SKEW_MS = 60_000
const DAY_MS = 86_400_000
const SERIAL_BYTES = 16
const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
const DNS_NAME_PATTERN = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`)

interface Signer {
  readonly key: KeyObject
  readonly algorithm: Buffer
  readonly hash: string | null
}

interface Issuer {
  readonly signer: Signer
  readonly subject: Buffer
  readonly keyIdentifier: Buffer
}

/**
 * Generates a key pair of `keyType` and a certificate for it: self-signed, or
 * signed by `req.issuer`. The serial is 16 random bytes, positive.
 * Throws an Error (messages start with `x509/certificate:`) for an invalid
 * request: bad common name, DNS name or IP address, non-positive validity, or
 * an issuer whose certificate is not a CA, cannot be parsed, or does not match
 * its key.
 */
export function createCertificate(keyType: KeyType, req: CertificateRequest): IssuedCertificate {
  const subject = distinguishedName(req.commonName)
  const sans = subjectAltNames(req.dnsNames ?? [], req.ipAddresses ?? [])
  const { notBefore, notAfter } = validity(req.validDays ?? DEFAULT_VALID_DAYS)
  // check the issuer before spending time on a key pair
  const caIssuer = req.issuer ? loadIssuer(req.issuer.certPem, req.issuer.keyPem) : undefined
  const { publicKey, privateKey } = generateKeyPair(keyType)
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const keyIdentifier = subjectKeyIdentifier(spki)

  const issuer: Issuer = caIssuer ?? { signer: signerFor(privateKey), subject, keyIdentifier }

  const extensions = [
    extension(Oid.basicConstraints, true, sequence(req.isCA ? [boolean(true)] : [])),
    extension(Oid.keyUsage, true, keyUsage(keyType, req.isCA === true)),
  ]
  if (req.extKeyUsage && req.extKeyUsage.length > 0) {
    extensions.push(extension(Oid.extKeyUsage, false, extKeyUsage(req.extKeyUsage)))
  }
  if (sans.length > 0) extensions.push(extension(Oid.subjectAltName, false, sequence(sans)))
  extensions.push(extension(Oid.subjectKeyIdentifier, false, octetString(keyIdentifier)))
  if (caIssuer) {
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
    extensions.push(extension(Oid.authorityKeyIdentifier, false, sequence([implicit(0, issuer.keyIdentifier)])))
  }

  const tbs = sequence([
    explicit(0, integer(2n)), // v3
    integer(serialNumber()),
    issuer.signer.algorithm,
    issuer.subject,
    sequence([x509Time(notBefore), x509Time(notAfter)]),
    subject,
    spki,
    explicit(3, sequence(extensions)),
  ])
  const signature = sign(issuer.signer.hash, tbs, issuer.signer.key)
  const der = sequence([tbs, issuer.signer.algorithm, bitString(signature)])

  const certPem = toPem('CERTIFICATE', der)
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  return { certPem, keyPem, identity: identityOfCertificate(new X509Certificate(certPem)) }
}

function generateKeyPair(keyType: KeyType): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (keyType) {
    case 'ed25519':
      return generateKeyPairSync('ed25519')
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' })
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 })
    default:
      throw new Error(`x509/certificate: unsupported key type '${String(keyType)}'`)
  }
}

function signerFor(key: KeyObject): Signer {
  if (key.asymmetricKeyType === 'ed25519') {
    return { key, algorithm: sequence([objectIdentifier(Oid.ed25519)]), hash: null }
  }
  if (key.asymmetricKeyType === 'rsa') {
    return { key, algorithm: sequence([objectIdentifier(Oid.sha256WithRSAEncryption), nullValue()]), hash: 'sha256' }
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? ''
    const ecdsa = ECDSA_BY_CURVE[curve]
    if (ecdsa) return { key, algorithm: sequence([objectIdentifier(ecdsa.oid)]), hash: ecdsa.hash }
  }
  throw new Error('x509/certificate: unsupported issuer key type (want ed25519, rsa or ecdsa p-256/p-384/p-521)')
}

// Name ::= SEQUENCE OF RelativeDistinguishedName, here the single CN attribute.
function distinguishedName(commonName: string): Buffer {
  const chars = [...commonName].length
  if (chars === 0 || chars > MAX_COMMON_NAME_CHARS) {
    throw new Error(`x509/certificate: common name must have 1 to ${MAX_COMMON_NAME_CHARS} characters`)
  }
  return sequence([set([sequence([objectIdentifier(Oid.commonName), utf8String(commonName)])])])
}

function subjectAltNames(dnsNames: readonly string[], ipAddresses: readonly string[]): Buffer[] {
  const names: Buffer[] = []
  for (const dns of dnsNames) {
    if (dns.length > 253 || !DNS_NAME_PATTERN.test(dns)) {
      throw new Error(`x509/certificate: invalid dns name '${dns}'`)
    }
    // dNSName [2] IMPLICIT IA5String; the pattern above admits only ASCII
    names.push(implicit(2, Buffer.from(dns, 'ascii')))
  }
  for (const ip of ipAddresses) names.push(implicit(7, ipAddressBytes(ip)))
  return names
}

/**
 * The 4 (IPv4) or 16 (IPv6) network-order bytes of an IP address, as an
 * iPAddress SAN holds them. Throws an Error for anything else, including IPv6
 * zone ids, which a certificate cannot hold.
 */
export function ipAddressBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number))
  if (!isIPv6(ip) || ip.includes('%')) throw new Error(`x509/certificate: invalid ip address '${ip}'`)
  let text = ip
  const tailBytes: number[] = []
  const lastColon = text.lastIndexOf(':')
  const last = text.slice(lastColon + 1)
  if (last.includes('.')) {
    // an embedded IPv4 suffix (::ffff:192.0.2.1) fills the last 32 bits
    tailBytes.push(...last.split('.').map(Number))
    text = text.slice(0, lastColon + 1) + '0:0'
  }
  const [head = '', tail] = text.split('::')
  const groupsOf = (part: string): string[] => (part === '' ? [] : part.split(':'))
  const headGroups = groupsOf(head)
  const tailGroups = tail === undefined ? [] : groupsOf(tail)
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups]
  const bytes = Buffer.alloc(16)
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2))
  if (tailBytes.length === 4) Buffer.from(tailBytes).copy(bytes, 12)
  return bytes
}

function validity(validDays: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(validDays) || validDays <= 0) {
    throw new Error('x509/certificate: validity must be a positive number of days')
  }
  const now = Date.now()
  const notAfter = new Date(now + validDays * DAY_MS)
  if (notAfter.getUTCFullYear() > 9999) throw new Error('x509/certificate: validity ends after the year 9999')
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter }
}

// Leaves sign handshakes (digitalSignature); RSA leaves may also be used for
// RSA key transport in TLS 1.2 (keyEncipherment). CAs only sign certificates and CRLs.
function keyUsage(keyType: KeyType, isCA: boolean): Buffer {
  if (isCA) return namedBitString([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign])
  if (keyType === 'rsa-2048') return namedBitString([KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment])
  return namedBitString([KeyUsageBit.digitalSignature])
}

function extKeyUsage(purposes: readonly string[]): Buffer {
  const oids = [...new Set(purposes)].map((p) => {
    const oid = EXT_KEY_USAGE_OIDS[p]
    if (oid === undefined) throw new Error(`x509/certificate: unknown extended key usage '${p}'`)
    return objectIdentifier(oid)
  })
  return sequence(oids)
}

// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING };
// DER leaves out a BOOLEAN that equals its default.
function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence([objectIdentifier(oid), ...(critical ? [boolean(true)] : []), octetString(value)])
}

// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value.
// SHA-1 is fine here: the identifier only helps chain building and proves nothing.
function subjectKeyIdentifier(spki: Buffer): Buffer {
  const [, publicKeyBits] = readChildren(spki, readElement(spki, 0))
  if (publicKeyBits?.tag !== Tag.BitString) throw new Error('x509/certificate: malformed subject public key info')
  return createHash('sha1')
    .update(spki.subarray(publicKeyBits.contentStart + 1, publicKeyBits.end))
    .digest()
}

function serialNumber(): Buffer {
  const serial = randomBytes(SERIAL_BYTES)
  // clear the sign bit and set the next one: positive, non-zero and exactly 16 bytes
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40
  return serial
}

function loadIssuer(certPem: string, keyPem: string): Issuer {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch (cause) {
    throw new Error('x509/certificate: issuer certificate is not a valid certificate', { cause })
  }
  if (!cert.ca) throw new Error('x509/certificate: issuer certificate is not a CA')
  let key: KeyObject
  try {
    key = createPrivateKey(keyPem)
  } catch {
    // no cause attached: the parser's error could echo parts of the key
    throw new Error('x509/certificate: issuer key is not a valid private key')
  }
  const certSpki = cert.publicKey.export({ type: 'spki', format: 'der' })
  const keySpki = createPublicKey(key).export({ type: 'spki', format: 'der' })
  if (!certSpki.equals(keySpki)) throw new Error('x509/certificate: issuer key does not match issuer certificate')
  const fields = issuerFields(cert.raw)
  return { signer: signerFor(key), subject: fields.subject, keyIdentifier: fields.keyIdentifier ?? subjectKeyIdentifier(certSpki) }
}

// Walks just enough of the CA's TBSCertificate to copy its subject Name byte
// for byte (so name matching cannot fail on string types) and to reuse its
// subjectKeyIdentifier (the AKI of the leaf must equal it, however it was computed).
function issuerFields(der: Buffer): { subject: Buffer; keyIdentifier: Buffer | undefined } {
  const [tbsElement] = readChildren(der, readElement(der, 0))
  if (tbsElement?.tag !== Tag.Sequence) throw new Error('x509/certificate: malformed issuer certificate')
  const tbs = readChildren(der, tbsElement)
  const hasVersion = tbs[0]?.tag === 0xa0
  // serial, signature, issuer, validity, subject
  const subject = tbs[(hasVersion ? 1 : 0) + 4]
  if (subject?.tag !== Tag.Sequence) throw new Error('x509/certificate: malformed issuer certificate')
  const skiOid = objectIdentifier(Oid.subjectKeyIdentifier)
  let keyIdentifier: Buffer | undefined
  const extensionsWrapper = tbs.find((e) => e.tag === 0xa3)
  if (extensionsWrapper) {
    const [list] = readChildren(der, extensionsWrapper)
    for (const ext of list ? readChildren(der, list) : []) {
      const parts = readChildren(der, ext)
      const oid = parts[0]
      const value = parts[parts.length - 1]
      if (!oid || !value || !der.subarray(oid.start, oid.end).equals(skiOid)) continue
      const inner = readElement(der, value.contentStart, value.end)
      if (inner.tag === Tag.OctetString) keyIdentifier = Buffer.from(der.subarray(inner.contentStart, inner.end))
    }
  }
  return { subject: Buffer.from(der.subarray(subject.start, subject.end)), keyIdentifier }
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
