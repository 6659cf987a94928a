import { KesClient, KesError, ErrKeyNotFound } from 'openkes'

const kes = new KesClient({
  endpoints: (process.env['KES_SERVER'] ?? 'https://127.0.0.1:7373').split(','), // several: failover
  certFile: 'app.cert', keyFile: 'app.key', caFile: 'openkes-dev/server.cert',
})
const { plaintext, ciphertext } = await kes.generateKey('my-key') // encrypt with plaintext, store ciphertext
const again = await kes.decrypt('my-key', ciphertext) // later: the same data key
console.log(again.equals(plaintext)) // true
try { await kes.generateKey('missing') } catch (err) { if (err instanceof KesError && err.message === ErrKeyNotFound.message) console.log('no such key') }
await kes.close()
