// Where the test fixtures live, found from this file rather than from the
// working directory, so tests pass wherever the repository was cloned.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// Compiled to dist/test/support/fixtures.js; the fixtures are not compiled.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

/** The repository's examples/ directory (the sources, not the build). */
export const EXAMPLES_DIR = path.join(repoRoot, 'examples')

/** The golden KES ciphertexts and key directories (test/fixtures/kes-vectors, see its README). */
export const KES_VECTORS = path.join(repoRoot, 'test', 'fixtures', 'kes-vectors')
