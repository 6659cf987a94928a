// The repository's root directory, found from this file rather than from the
// working directory, for tests that run the repository's own scripts.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// Compiled to dist/test/support/repo-root.js.
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
