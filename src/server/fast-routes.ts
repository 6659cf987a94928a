// The requests both fast paths (./http1-fast-path.ts, ./http2-fast-path.ts) serve themselves:
// the calls a storage server makes for every object it writes or reads, and the health checks
// it polls. Every other request goes through Node's HTTP servers as before.
import { routes } from '../api/routes.js'

/** A fast route: the methods it is served for, and the prefix of its request targets. */
interface FastRoute {
  readonly prefix: string
  readonly methods: ReadonlySet<string>
  /** True when a key name follows the prefix; else the target is the prefix, or it and a query. */
  readonly takesName: boolean
}

const FAST_PATHS: readonly string[] = ['/v1/key/generate', '/v1/key/encrypt', '/v1/key/decrypt', '/version', '/v1/status', '/v1/ready']

// Their methods and parameters are the route table's (src/api/routes.ts), so the two never disagree.
const FAST_ROUTES: readonly FastRoute[] = FAST_PATHS.map((path) => {
  const route = routes.find((r) => r.path === path)
  if (route === undefined) throw new Error(`fast route ${path} is not in the route table`)
  const takesName = route.params.length > 0
  // HEAD is never served here: its answer has no body, and the fast paths always send one.
  return { prefix: takesName ? path + '/' : path, methods: new Set(route.methods.filter((m) => m !== 'HEAD')), takesName }
})

const QUESTION_MARK = 0x3f

/** Origin-form targets of visible ASCII only: anything else is left to Node's parser. */
function isVisibleAscii(url: string): boolean {
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i)
    if (c < 0x21 || c > 0x7e) return false
  }
  return true
}

/** Whether `method` on `url` is served on a fast path (the router still checks everything else). */
export function isFastTarget(method: string, url: string): boolean {
  for (const r of FAST_ROUTES) {
    if (!url.startsWith(r.prefix)) continue
    if (!r.methods.has(method)) return false
    // '/version' must not take '/versions' too.
    if (!r.takesName && url.length !== r.prefix.length && url.charCodeAt(r.prefix.length) !== QUESTION_MARK) return false
    return isVisibleAscii(url)
  }
  return false
}
