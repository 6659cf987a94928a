// The modern-api suite again, every server on a PostgreSQL key store (started for this file).
import { after } from 'node:test'
import { TestPostgres } from '../../support/postgres.js'
import { usePostgres } from '../harness.js'

const db = await TestPostgres.start()
after(() => db.stop())
usePostgres(db)
await import('../modern-api.test.js')
