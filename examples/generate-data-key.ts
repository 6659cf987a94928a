// Envelope encryption with OpenKES from TypeScript: a data key to encrypt with,
// its ciphertext to store, and the same data key back later.
//
// Run it with `npm run example` next to a running `npx openkes server --dev`.
// It talks to the server as the dev server's root identity (or as
// KES_CLIENT_CERT/KES_CLIENT_KEY), creates a key of its own and deletes it
// again, so it works whatever state the server is in.
import { randomUUID } from 'node:crypto'
import { KesClient, KesError, ErrKeyNotFound } from 'openkes'

const kes = new KesClient({
  endpoints: (process.env['KES_SERVER'] ?? 'https://127.0.0.1:7373').split(','), // several: failover
  certFile: process.env['KES_CLIENT_CERT'] ?? 'openkes-dev/root.cert',
  keyFile: process.env['KES_CLIENT_KEY'] ?? 'openkes-dev/root.key',
  caFile: 'openkes-dev/server.cert', // verify the dev server's certificate
})
const keyName = `example-${randomUUID()}`
try {
  await kes.createKey(keyName) // a master key: it never leaves the server
  try {
    const { plaintext, ciphertext } = await kes.generateKey(keyName) // encrypt with plaintext, store ciphertext
    const again = await kes.decrypt(keyName, ciphertext) // later: the same data key
    console.log(`data key recovered: ${again.equals(plaintext)}`) // true

    try {
      await kes.generateKey(`${keyName}-missing`)
    } catch (err) {
      // Compare with the canonical errors; anything else is not expected here.
      if (!(err instanceof KesError && err.message === ErrKeyNotFound.message)) throw err
      console.log(`a missing key is an error: ${err.status} ${err.message}`) // 404 key does not exist
    }
  } finally {
    await kes.deleteKey(keyName) // clean up: the example leaves the server as it found it
  }
} finally {
  await kes.close()
}
// Any other error (server not running, wrong certificate, no permission) is
// not caught: Node.js prints it and exits with code 1.
