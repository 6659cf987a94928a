// Where the test fixtures live, found from the repository root rather than
// from the working directory, so tests pass wherever the repository was cloned.
import path from 'node:path'
import { REPO_ROOT } from './repo-root.js'

/** The repository's examples/ directory (the sources, not the build). */
export const EXAMPLES_DIR = path.join(REPO_ROOT, 'examples')

/** The golden KES ciphertexts and key directories (test/fixtures/kes-vectors, see its README). */
export const KES_VECTORS = path.join(REPO_ROOT, 'test', 'fixtures', 'kes-vectors')

/** KES server config files in every layout KES read (test/fixtures/kes-configs, see its README). */
export const KES_CONFIGS = path.join(REPO_ROOT, 'test', 'fixtures', 'kes-configs')
