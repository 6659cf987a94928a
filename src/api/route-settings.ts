import type { ApiSetting } from '../config/validate.js'
import type { Route } from './routes.js'

/** A route's timeout in ms after the config's `api:` section; 0 means none (log streams). */
export function timeoutOf(route: Route, api: ReadonlyMap<string, ApiSetting>): number {
  return api.get(route.path)?.timeoutMs ?? route.timeoutMs
}

/**
 * Whether a route is served without a policy: open by design (`/version`, self-describe), or
 * opened by `skip_auth` in the config (which only probe and introspection APIs accept).
 */
export function isOpen(route: Route, api: ReadonlyMap<string, ApiSetting>): boolean {
  return route.auth === 'none' || api.get(route.path)?.skipAuth === true
}
