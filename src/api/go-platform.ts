/**
 * The names Go gives operating systems and CPU architectures (GOOS / GOARCH). KES reports its
 * platform in `/v1/status` in Go's spelling, and clients may compare against it, so Node's
 * names (`win32`, `x64`, ...) are translated.
 */

const GO_OS: ReadonlyMap<string, string> = new Map([
  ['win32', 'windows'],
  ['sunos', 'solaris'],
  ['cygwin', 'windows'],
])

const GO_ARCH: ReadonlyMap<string, string> = new Map([
  ['x64', 'amd64'],
  ['ia32', '386'],
  // Node's ppc64 is the little-endian port on every platform it ships for.
  ['ppc64', 'ppc64le'],
  ['mipsel', 'mipsle'],
])

/** Go's GOOS for a Node `process.platform` (linux, darwin, freebsd, ... keep their names). */
export function goOs(platform: string): string {
  return GO_OS.get(platform) ?? platform
}

/** Go's GOARCH for a Node `process.arch` (arm64, arm, s390x, riscv64, ... keep their names). */
export function goArch(arch: string): string {
  return GO_ARCH.get(arch) ?? arch
}
