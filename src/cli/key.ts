// `openkes key ...`: the counterpart of `kes key ...` (same argument order).
import { decodeBase64Strict, encodeBase64 } from '../crypto/base64.js'
import { requiredArg, UsageError } from './command-spec.js'
import type { ClientCommand, CommandGroup, Invocation } from './command-spec.js'
import { EXIT_OK } from './io.js'
import { createdText, fields, jsonLine, table } from './output.js'

const CIPHERS = ['AES256', 'ChaCha20'] as const
type Cipher = (typeof CIPHERS)[number]

// Arguments may hold key material or plaintext, so a bad one is named, never echoed.
function base64Arg(value: string | undefined, what: string): Buffer | undefined {
  if (value === undefined) return undefined
  const bytes = decodeBase64Strict(value)
  if (bytes === undefined) throw new UsageError(`the ${what} is not valid base64 (standard alphabet, padded)`)
  return bytes
}

// Validation decodes only to check; the bytes are wiped at once.
function checkBase64Args(args: readonly string[], whats: ReadonlyArray<readonly [number, string]>): void {
  for (const [index, what] of whats) base64Arg(args[index], what)?.fill(0)
}

function cipherOption(value: unknown): Cipher | undefined {
  if (value === undefined) return undefined
  const cipher = CIPHERS.find((c) => typeof value === 'string' && c.toLowerCase() === value.toLowerCase())
  if (cipher === undefined) throw new UsageError(`invalid cipher '${String(value)}': want AES256 or ChaCha20`)
  return cipher
}

async function importKey(inv: Invocation, name: string, encoded: string, cipher: Cipher | undefined): Promise<number> {
  const key = base64Arg(encoded, 'key') ?? Buffer.alloc(0)
  try {
    await inv.client().importKey(name, key, cipher)
  } finally {
    key.fill(0)
  }
  return EXIT_OK
}

const create: ClientCommand = {
  name: 'create',
  summary: 'create a key, or import one given in base64',
  args: ['name', 'base64 key?'],
  description: `Without a key, the server creates a random 256-bit key. With one (base64 of
exactly 32 bytes), the key is imported, like 'openkes key import'.`,
  examples: ['openkes key create my-key', 'openkes key create my-key "$(head -c 32 /dev/urandom | base64)"'],
  validate: (args) => checkBase64Args(args, [[1, 'key']]),
  async run(inv) {
    const name = requiredArg(inv, 0)
    const encoded = inv.args[1]
    if (encoded !== undefined) return importKey(inv, name, encoded, undefined)
    await inv.client().createKey(name)
    return EXIT_OK
  },
}

const importCommand: ClientCommand = {
  name: 'import',
  summary: 'import a key given in base64 (32 bytes)',
  args: ['name', 'base64 key'],
  options: {
    cipher: { type: 'string', value: 'NAME', help: 'the cipher the key is for: AES256 (default) or ChaCha20', complete: CIPHERS },
  },
  examples: ['openkes key import my-key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', 'openkes key import --cipher ChaCha20 my-key "$KEY"'],
  validate(args, options) {
    checkBase64Args(args, [[1, 'key']])
    cipherOption(options['cipher'])
  },
  async run(inv) {
    return importKey(inv, requiredArg(inv, 0), requiredArg(inv, 1), cipherOption(inv.options['cipher']))
  },
}

const deleteCommand: ClientCommand = {
  name: 'delete',
  aliases: ['rm'],
  summary: 'delete a key',
  args: ['name'],
  description: `Everything encrypted with the key can no longer be decrypted; on OpenKES the key
is kept for the server's retention period ('openkes key restore', 'openkes key purge').`,
  examples: ['openkes key delete my-key'],
  async run(inv) {
    await inv.client().deleteKey(requiredArg(inv, 0))
    return EXIT_OK
  },
}

const list: ClientCommand = {
  name: 'list',
  aliases: ['ls'],
  summary: 'list key names',
  args: ['pattern?'],
  description: `The pattern is a glob ('my-*') or a prefix ('my-'); without one, every key
the server shows you is listed. --json prints a JSON array of names.`,
  examples: ['openkes key list', "openkes key list 'my-*'", 'openkes key list --json'],
  async run(inv) {
    const names = await inv.client().listKeys(inv.args[0])
    inv.print(inv.json ? jsonLine(names) : table(['KEY'], names.map((n) => [n]), inv.out))
    return EXIT_OK
  },
}

const generate: ClientCommand = {
  name: 'generate',
  aliases: ['derive', 'dek'],
  summary: 'generate a data key: a new plaintext key and its ciphertext',
  args: ['name', 'base64 context?'],
  description: `Use the plaintext key, store the ciphertext; 'openkes key decrypt' turns the
ciphertext back into the plaintext given the same context.`,
  examples: ['openkes key generate my-key', 'openkes key generate my-key "$(printf bucket/object | base64)" --json'],
  validate: (args) => checkBase64Args(args, [[1, 'context']]),
  async run(inv) {
    const name = requiredArg(inv, 0)
    const context = base64Arg(inv.args[1], 'context')
    const dataKey = await inv.client().generateKey(name, context)
    try {
      const plaintext = encodeBase64(dataKey.plaintext)
      const ciphertext = encodeBase64(dataKey.ciphertext)
      inv.print(
        inv.json
          ? jsonLine({ plaintext, ciphertext })
          : `${inv.out.paint('bold', 'plaintext:')}  ${plaintext}\n${inv.out.paint('bold', 'ciphertext:')} ${ciphertext}\n`,
      )
    } finally {
      dataKey.plaintext.fill(0)
    }
    return EXIT_OK
  },
}

const encrypt: ClientCommand = {
  name: 'encrypt',
  summary: 'encrypt a small message (base64) with a key',
  args: ['name', 'base64 plaintext', 'base64 context?'],
  description: 'Prints the ciphertext in base64 (--json: {"ciphertext":...}).',
  examples: ['openkes key encrypt my-key "$(printf secret | base64)"'],
  validate: (args) => checkBase64Args(args, [[1, 'plaintext'], [2, 'context']]),
  async run(inv) {
    const name = requiredArg(inv, 0)
    const plaintext = base64Arg(requiredArg(inv, 1), 'plaintext') ?? Buffer.alloc(0)
    const context = base64Arg(inv.args[2], 'context')
    let ciphertext: Buffer
    try {
      ciphertext = await inv.client().encrypt(name, plaintext, context)
    } finally {
      plaintext.fill(0)
    }
    const encoded = encodeBase64(ciphertext)
    inv.print(inv.json ? jsonLine({ ciphertext: encoded }) : `${encoded}\n`)
    return EXIT_OK
  },
}

const decrypt: ClientCommand = {
  name: 'decrypt',
  summary: 'decrypt a ciphertext (base64) with a key',
  args: ['name', 'base64 ciphertext', 'base64 context?'],
  description: 'Prints the plaintext in base64 (--json: {"plaintext":...}). The context must be\nthe one given when the ciphertext was made.',
  examples: ['openkes key decrypt my-key "$CIPHERTEXT"', 'openkes key decrypt my-key "$CIPHERTEXT" "$(printf bucket/object | base64)"'],
  validate: (args) => checkBase64Args(args, [[1, 'ciphertext'], [2, 'context']]),
  async run(inv) {
    const name = requiredArg(inv, 0)
    const ciphertext = base64Arg(requiredArg(inv, 1), 'ciphertext') ?? Buffer.alloc(0)
    const context = base64Arg(inv.args[2], 'context')
    const plaintext = await inv.client().decrypt(name, ciphertext, context)
    try {
      const encoded = encodeBase64(plaintext)
      inv.print(inv.json ? jsonLine({ plaintext: encoded }) : `${encoded}\n`)
    } finally {
      plaintext.fill(0)
    }
    return EXIT_OK
  },
}

const describe: ClientCommand = {
  name: 'describe',
  aliases: ['info'],
  summary: 'show what the server knows of a key: its id, algorithm, creation',
  args: ['name'],
  description: `The id is the one the key's ciphertexts carry. --json prints the server's
{"name","id","algorithm","created_at","created_by"} (times and creator when known).`,
  examples: ['openkes key describe my-key', 'openkes key info my-key --json'],
  async run(inv) {
    const key = await inv.client().describeKey(requiredArg(inv, 0))
    if (inv.json) {
      inv.print(jsonLine(key))
      return EXIT_OK
    }
    const rows: Array<[string, string]> = [
      ['name', key.name],
      ['id', key.id === '' ? '-' : key.id],
      ['algorithm', key.algorithm === '' ? '-' : key.algorithm],
      ['created', createdText(key)],
    ]
    inv.print(fields(rows, inv.out))
    return EXIT_OK
  },
}

const hmac: ClientCommand = {
  name: 'hmac',
  summary: 'compute the HMAC-SHA256 of a message (base64) under a key',
  args: ['name', 'base64 message'],
  description: `The same key and message always give the same MAC (base64; --json:
{"hmac":...}), so it can name or check data without revealing it.`,
  examples: ['openkes key hmac my-key "$(printf bucket/object | base64)"'],
  validate: (args) => checkBase64Args(args, [[1, 'message']]),
  async run(inv) {
    const name = requiredArg(inv, 0)
    const message = base64Arg(requiredArg(inv, 1), 'message') ?? Buffer.alloc(0)
    let mac: Buffer
    try {
      mac = await inv.client().hmac(name, message)
    } finally {
      message.fill(0)
    }
    const encoded = encodeBase64(mac)
    inv.print(inv.json ? jsonLine({ hmac: encoded }) : `${encoded}\n`)
    return EXIT_OK
  },
}

const rotate: ClientCommand = {
  name: 'rotate',
  summary: 'add a new version to a key (OpenKES)',
  args: ['name'],
  description: `New ciphertexts use the new version; ciphertexts of older versions still decrypt.
Prints the new version's key id.`,
  examples: ['openkes key rotate my-key'],
  async run(inv) {
    const id = await inv.client().rotateKey(requiredArg(inv, 0))
    inv.print(inv.json ? jsonLine({ id }) : `${id}\n`)
    return EXIT_OK
  },
}

const rewrap: ClientCommand = {
  name: 'rewrap',
  summary: "re-seal a ciphertext (base64) under the key's newest version (OpenKES)",
  args: ['name', 'base64 ciphertext', 'base64 context?'],
  description: 'Prints the new ciphertext in base64 (--json: {"ciphertext":...}); the plaintext never leaves the server.',
  examples: ['openkes key rewrap my-key "$CIPHERTEXT"'],
  validate: (args) => checkBase64Args(args, [[1, 'ciphertext'], [2, 'context']]),
  async run(inv) {
    const name = requiredArg(inv, 0)
    const ciphertext = base64Arg(requiredArg(inv, 1), 'ciphertext') ?? Buffer.alloc(0)
    const context = base64Arg(inv.args[2], 'context')
    const encoded = encodeBase64(await inv.client().rewrap(name, ciphertext, context))
    inv.print(inv.json ? jsonLine({ ciphertext: encoded }) : `${encoded}\n`)
    return EXIT_OK
  },
}

const versions: ClientCommand = {
  name: 'versions',
  summary: 'list the versions of a key, oldest first (never key bytes)',
  args: ['name'],
  examples: ['openkes key versions my-key', 'openkes key versions my-key --json'],
  async run(inv) {
    const list = await inv.client().keyVersions(requiredArg(inv, 0))
    const rows = list.map((v) => [v.id, v.createdAt ?? '', v.createdBy ?? ''])
    inv.print(inv.json ? jsonLine(list.map((v) => ({ id: v.id, created_at: v.createdAt, created_by: v.createdBy }))) : table(['ID', 'CREATED', 'BY'], rows, inv.out))
    return EXIT_OK
  },
}

const deleted: ClientCommand = {
  name: 'deleted',
  summary: 'list deleted keys that can still be restored (OpenKES)',
  args: ['pattern?'],
  examples: ['openkes key deleted', "openkes key deleted 'my-*' --json"],
  async run(inv) {
    const list = await inv.client().listDeletedKeys(inv.args[0])
    const rows = list.map((d) => [d.name, d.deletedAt, d.deletedBy ?? ''])
    inv.print(inv.json ? jsonLine(list.map((d) => ({ name: d.name, deleted_at: d.deletedAt, deleted_by: d.deletedBy }))) : table(['KEY', 'DELETED', 'BY'], rows, inv.out))
    return EXIT_OK
  },
}

const restore: ClientCommand = {
  name: 'restore',
  summary: 'undo the most recent delete of a key (OpenKES)',
  args: ['name'],
  examples: ['openkes key restore my-key'],
  async run(inv) {
    await inv.client().restoreKey(requiredArg(inv, 0))
    return EXIT_OK
  },
}

const purge: ClientCommand = {
  name: 'purge',
  summary: 'destroy the kept deletions of a key now (OpenKES)',
  args: ['name'],
  description: 'Everything encrypted with the key can never be decrypted again.',
  examples: ['openkes key purge my-key'],
  async run(inv) {
    await inv.client().purgeKey(requiredArg(inv, 0))
    return EXIT_OK
  },
}

/** `openkes key`: its subcommands, as data. */
export const keyCommands: CommandGroup = {
  name: 'key',
  summary: 'manage keys and use them: create, import, describe, delete, list, generate, encrypt, decrypt, hmac, rotate, rewrap, versions, deleted, restore, purge',
  commands: [create, importCommand, describe, deleteCommand, list, generate, encrypt, decrypt, hmac, rotate, rewrap, versions, deleted, restore, purge],
}

