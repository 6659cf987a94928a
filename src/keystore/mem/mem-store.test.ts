import { createMemStore } from './mem-store.js'
import { testStoreConformance } from '../store-conformance.js'

testStoreConformance('mem', async (t) => {
  const store = createMemStore()
  t.after(() => store.close())
  return store
})
