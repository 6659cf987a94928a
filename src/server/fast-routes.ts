// The requests both fast paths (./http1-fast-path.ts, ./http2-fast-path.ts) serve themselves:
// the calls a storage server makes for every object it writes or reads, and the health checks
// it polls. Every other request goes through Node's HTTP servers as before.

/** The targets served on the fast path: their method, and the prefix of their request target. */
const FAST_ROUTES: ReadonlyArray<{ readonly prefix: string; readonly methods: readonly string[] }> = [
  { prefix: '/v1/key/generate/', methods: ['POST', 'PUT'] },
  { prefix: '/v1/key/encrypt/', methods: ['POST', 'PUT'] },
  { prefix: '/v1/key/decrypt/', methods: ['POST', 'PUT'] },
  { prefix: '/version', methods: ['GET'] },
  { prefix: '/v1/status', methods: ['GET'] },
  { prefix: '/v1/ready', methods: ['GET'] },
]

// The request target: origin-form, visible ASCII only.
const TARGET = /^\/[\x21-\x7e]*$/

/** Whether `method` on `url` is served on a fast path (the router still checks everything else). */
export function isFastTarget(method: string, url: string): boolean {
  for (const r of FAST_ROUTES) {
    if (!url.startsWith(r.prefix)) continue
    // '/version' must not take '/versions' too; a prefix that ends in '/' takes any name after it.
    const whole = url.length === r.prefix.length || r.prefix.endsWith('/') || url[r.prefix.length] === '?'
    return whole && r.methods.includes(method) && TARGET.test(url)
  }
  return false
}
