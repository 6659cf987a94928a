// Gives every `bin` entry of package.json its run bit. tsc writes
// dist/src/main.js as a plain file (mode 0644), and `npm run build`, `npm test`
// and `prepare` all recreate dist/, so without this `npx openkes` fails with
// "Permission denied" after any of them (npm sets the bit only on packages it
// installs, never on the project itself). Run after tsc by `npm run build`,
// which the other two scripts call: this is the one place it happens.
//
// Usage: node scripts/make-bin-executable.mjs [PACKAGE_DIR]   (default: the repository)
import { chmodSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const packageDir = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'))
const pkg = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8'))
const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {})
for (const bin of bins) {
  const file = path.join(packageDir, bin)
  // Add the x bit wherever the r bit is (0644 becomes 0755, 0600 becomes 0700).
  const mode = statSync(file).mode & 0o777
  chmodSync(file, mode | ((mode & 0o444) >> 2))
}
