import { availableParallelism, cpus } from 'node:os'
import type { ServerState } from '../../server/state.js'
import { ErrStoreUnavailable } from '../errors.js'
import { goArch, goOs } from '../go-platform.js'
import type { Reply } from '../reply.js'
import { json, ok } from '../reply.js'
import { timeoutOf } from '../route-settings.js'
import type { ApiRequest } from '../routes.js'
import type { ApiDescription, StatusResponse } from '../wire.js'

/** GET /version: `{"version":"<semver>"}`, open to every identity with a certificate. */
export async function version(_req: ApiRequest, s: ServerState): Promise<Reply> {
  return json(200, { version: s.version })
}

/** GET /v1/ready — 200 empty while the key store can be reached, else 503 `key store is unavailable`. */
export async function ready(_req: ApiRequest, s: ServerState): Promise<Reply> {
  if ((await s.keys.ping()) === undefined) throw ErrStoreUnavailable
  return ok()
}

// Fixed for the life of the process.
const OS = goOs(process.platform)
const ARCH = goArch(process.arch)
const NUM_CPU = cpus().length || availableParallelism()

/**
 * GET /v1/status — what the server runs on and whether its key store answers. An unreachable
 * store is reported, not failed: the answer is still 200, without `keystore_latency` and with
 * `keystore_unavailable` and `keystore_unreachable` (kes-go v0.1 refuses one without the other).
 */
export async function status(_req: ApiRequest, s: ServerState): Promise<Reply> {
  const latencyMs = await s.keys.ping()
  const memory = process.memoryUsage()
  const body: StatusResponse = {
    version: s.version,
    os: OS,
    arch: ARCH,
    uptime: Math.round((performance.now() - s.startedAtMs) / 1000),
    num_cpu: NUM_CPU,
    num_cpu_used: availableParallelism(),
    mem_heap_used: memory.heapUsed,
    // V8 does not report stack use; KES reports Go's stack memory. 0 says "none known".
    mem_stack_used: 0,
    // As KES: a store that answers in under 1 ms shows 1, since clients read 0 as "absent".
    ...(latencyMs === undefined
      ? { keystore_unavailable: true, keystore_unreachable: true }
      : { keystore_latency: Math.max(1, Math.round(latencyMs)) }),
  }
  return json(200, body)
}

/** GET /v1/api — the router's own route table, with the config's timeouts applied. */
export async function listApis(req: ApiRequest, s: ServerState): Promise<Reply> {
  const apis: ApiDescription[] = req.routes.map((route) => ({
    method: route.methods[0] ?? 'GET',
    path: route.params.length > 0 ? `${route.path}/` : route.path,
    max_body: route.maxBodyBytes,
    timeout: Math.floor(timeoutOf(route, s.api) / 1000),
  }))
  return json(200, apis)
}
