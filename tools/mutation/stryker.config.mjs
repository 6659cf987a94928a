// Stryker mutation testing of the security core (see scripts/mutation.mjs,
// which installs Stryker from tools/mutation/package-lock.json and runs this).
// Stryker copies the repository into a sandbox, builds it once with every
// mutant compiled in (switched by an environment variable), and for each
// mutant reruns only the test files that executed the mutated code.
//
// OPENKES_MUTATE (comma-separated globs) narrows what is mutated, e.g. to one
// file for a quick run; OPENKES_MUTATION_TESTS=unit leaves out the integration
// tests (much faster, but those are what kill most mutants of access.ts).

import path from 'node:path'

const scope = [
  'src/auth/**/*.ts',
  'src/crypto/**/*.ts',
  'src/api/body.ts',
  'src/server/access.ts',
  'src/keystore/fs/**/*.ts',
]

const unitTests = [
  'dist/src/auth/*.test.js',
  'dist/src/crypto/*.test.js',
  'dist/src/api/body.test.js',
  'dist/src/server/access*.test.js',
  'dist/src/keystore/**/*.test.js',
]

// The integration tests that exercise the scope through the real server.
const integrationTests = [
  'dist/test/integration/admin-disabled.test.js',
  'dist/test/integration/api.test.js',
  'dist/test/integration/body.test.js',
  'dist/test/integration/malformed.test.js',
  'dist/test/integration/store-failure.test.js',
  'dist/test/integration/store.test.js',
  'dist/test/integration/tls.test.js',
]

const mutateOverride = process.env['OPENKES_MUTATE']
const mutate = (mutateOverride ? mutateOverride.split(',') : scope).concat(['!src/**/*.test.ts'])

export default {
  packageManager: 'npm',
  plugins: ['@stryker-mutator/tap-runner'],
  testRunner: 'tap',
  tap: {
    testFiles: process.env['OPENKES_MUTATION_TESTS'] === 'unit' ? unitTests : [...unitTests, ...integrationTests],
    nodeArgs: ['--test-reporter=tap', '--test-timeout=60000', '-r', '{{hookFile}}', '{{testFile}}'],
  },
  mutate,
  // The build runs before Stryker links node_modules into the sandbox, so the
  // project's compiler is named by its absolute path; the sandbox lies inside
  // the repository, so @types/node and yaml are found in its node_modules.
  buildCommand: `node ${path.resolve("node_modules/typescript/bin/tsc")} -p .`,
  // Stryker would rewrite tsconfig.json through TypeScript's JS API, which the
  // native TypeScript 7 compiler doesn't have; our tsconfig.json needs no
  // rewriting (no extends or references), so point Stryker at no file.
  tsconfigFile: 'tools/mutation/tsconfig.none.json',
  coverageAnalysis: 'perTest',
  ignorePatterns: ['dist', 'coverage', 'reports', 'tools/mutation/node_modules', 'openkes-dev', 'bench'],
  tempDirName: '.stryker-tmp',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // Two cores on the shared development machines.
  concurrency: 2,
  timeoutMS: 20_000,
  thresholds: { high: 90, low: 80, break: null },
}
