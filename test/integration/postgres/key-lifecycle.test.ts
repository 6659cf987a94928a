// The key lifecycle suite (versions, rotation, rewrap, deletes that can be undone, two servers
// on one store) again, every server on a PostgreSQL key store (one database for this file).
import { after } from 'node:test'
import { TestPostgres } from '../../support/postgres.js'
import { usePostgres } from '../harness.js'

const db = await TestPostgres.start()
after(() => db.stop())
usePostgres(db)
await import('../key-lifecycle.test.js')
