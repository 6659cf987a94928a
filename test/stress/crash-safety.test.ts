// Crash safety (issue 9): a child server is killed with SIGKILL at a random
// (seeded) moment during a storm of creates, imports, deletes, policy writes
// and assignments, 30 times over one key directory. After each kill, before
// and after the restart: every acknowledged write is there and intact, every
// acknowledged delete is gone, every file in the store parses whole (nothing
// torn, nothing half-present), and after the restart no temp file is left.
// STRESS_SEED=<n> replays a run; STRESS_ROUNDS=<n> changes the number of rounds.
// The server runs with its default worker processes; a kill is of all its processes at once
// (a power cut, or the OOM killer taking the service's whole cgroup).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { isRunning, processTree } from '../../bench/processes.js'
import { parseKeyFile } from '../../src/crypto/key-version.js'
import { startCli } from '../cli/run.js'
import type { Running } from '../cli/run.js'
import { TestEnv, makeClient } from '../integration/harness.js'

const root = makeClient('root')
const SEED = Number(process.env['STRESS_SEED'] ?? Date.now() % 1_000_000)
const ROUNDS = Number(process.env['STRESS_ROUNDS'] ?? 30)
const WORKERS = 6
// Each wait on the child has a bound, so a failure can't hang the run.
const START_TIMEOUT_MS = 20_000
const EXIT_TIMEOUT_MS = 10_000

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** What the store must hold, from the answers the clients got. */
class Model {
  /** Keys whose create/import was acknowledged and whose delete was not: they must exist (imports: with these bytes). */
  readonly mustExist = new Map<string, Buffer | undefined>()
  /** Keys whose delete was acknowledged: they must be gone. */
  readonly mustBeGone = new Set<string>()
  /** Keys with an operation in flight at the kill: either state is fine, but whole. */
  readonly uncertain = new Set<string>()
  readonly policies = new Map<string, string[]>()
  readonly identities = new Map<string, string>()
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)))
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

let env: TestEnv
let server: Running | undefined
after(async () => {
  if (server !== undefined) await withTimeout(server.stop('SIGKILL'), EXIT_TIMEOUT_MS, 'final kill').catch(() => {})
  await env?.dispose()
})

/** SIGKILLs the server and its workers together, and waits until every one of them is gone. */
async function killServer(running: Running): Promise<void> {
  const pids = await processTree(running.child.pid ?? -1)
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  await withTimeout(running.exited(), EXIT_TIMEOUT_MS, 'killed server exit')
  for (let waited = 0; pids.some(isRunning); waited += 20) {
    if (waited > EXIT_TIMEOUT_MS) assert.fail(`killed server processes still running: ${pids.filter(isRunning).join(', ')}`)
    await delay(20)
  }
}

async function startChild(config: string): Promise<Running> {
  const child = startCli(['server', '--config', config])
  const m = await withTimeout(child.waitFor(/listening on https:\/\/[^\s]+:(\d+)/), START_TIMEOUT_MS, 'server start')
  env.useExternalPort(Number(m[1]))
  env.resetConnections()
  return child
}

/** One client loop: operations on fresh names until `stopped()`; records what was acknowledged. */
async function worker(id: number, round: number, rand: () => number, model: Model, stopped: () => boolean): Promise<void> {
  for (let op = 0; !stopped(); op++) {
    const name = `r${round}-w${id}-${op}`
    const choice = rand()
    try {
      if (choice < 0.3) {
        model.uncertain.add(name)
        const res = await env.request(root, `/v1/key/create/${name}`, { method: 'POST' })
        if (res.status === 200) {
          model.mustExist.set(name, undefined)
          model.uncertain.delete(name)
        }
      } else if (choice < 0.55) {
        const bytes = randomBytes(32)
        model.uncertain.add(name)
        const res = await env.request(root, `/v1/key/import/${name}`, { method: 'POST', body: { key: bytes.toString('base64'), cipher: 'AES256' } })
        if (res.status === 200) {
          model.mustExist.set(name, bytes)
          model.uncertain.delete(name)
        }
      } else if (choice < 0.75) {
        model.uncertain.add(name)
        const created = await env.request(root, `/v1/key/create/${name}`, { method: 'POST' })
        if (created.status !== 200) continue
        const res = await env.request(root, `/v1/key/delete/${name}`, { method: 'DELETE' })
        if (res.status === 200) {
          model.mustBeGone.add(name)
          model.uncertain.delete(name)
        }
      } else if (choice < 0.9) {
        const allow = [`/v1/key/generate/${name}-*`]
        const res = await env.request(root, `/v1/policy/write/${name}`, { method: 'POST', body: { allow, deny: [] } })
        if (res.status === 200) model.policies.set(name, allow)
      } else {
        const policies = [...model.policies.keys()]
        const policy = policies[Math.floor(rand() * policies.length)]
        if (policy === undefined) continue
        const identity = randomBytes(32).toString('hex')
        const res = await env.request(root, `/v1/identity/assign/${policy}/${identity}`, { method: 'POST' })
        if (res.status === 200) model.identities.set(identity, policy)
      }
    } catch {
      // The server was killed with this request in flight: it stays uncertain.
      if (stopped()) return
    }
  }
}

/** Checks the files in the store directory against the model (the server is down). */
async function checkFiles(dir: string, model: Model, expectNoTemp: boolean, round: number): Promise<void> {
  const at = `round ${round} (seed ${SEED})`
  const names = await readdir(dir)
  const present = new Set(names.filter((n) => !n.startsWith('.')))
  for (const name of present) {
    // Whole: every key file that exists parses, acknowledged or not.
    const key = parseKeyFile(await readFile(path.join(dir, name)))
    const want = model.mustExist.get(name)
    if (want !== undefined) assert.ok(key.exportBytesForStorage().equals(want), `${at}: imported key '${name}' changed`)
    assert.ok(!model.mustBeGone.has(name), `${at}: deleted key '${name}' is back`)
  }
  for (const name of model.mustExist.keys()) assert.ok(present.has(name), `${at}: acknowledged key '${name}' is missing`)
  const policyDir = path.join(dir, '.openkes', 'policies')
  const identityDir = path.join(dir, '.openkes', 'identities')
  const policyFiles = await readdir(policyDir).catch(() => [] as string[])
  const identityFiles = await readdir(identityDir).catch(() => [] as string[])
  for (const [name, allow] of model.policies) {
    const stored = JSON.parse(await readFile(path.join(policyDir, name), 'utf8')) as { allow: string[] }
    assert.deepEqual(stored.allow, allow, `${at}: policy '${name}'`)
  }
  for (const f of policyFiles.filter((n) => !n.startsWith('.'))) JSON.parse(await readFile(path.join(policyDir, f), 'utf8'))
  for (const [identity, policy] of model.identities) {
    const stored = JSON.parse(await readFile(path.join(identityDir, identity), 'utf8')) as { policy: string }
    assert.equal(stored.policy, policy, `${at}: identity '${identity}'`)
  }
  for (const f of identityFiles.filter((n) => !n.startsWith('.'))) JSON.parse(await readFile(path.join(identityDir, f), 'utf8'))
  if (expectNoTemp) {
    const temps = [...names, ...policyFiles, ...identityFiles].filter((n) => n.startsWith('.tmp-'))
    assert.deepEqual(temps, [], `${at}: temp files survived the restart`)
  }
}

test(`acknowledged writes survive SIGKILL at random moments (${ROUNDS} rounds)`, { timeout: 240_000 }, async (t) => {
  t.diagnostic(`seed ${SEED} (STRESS_SEED=${SEED} replays this run)`)
  const rand = prng(SEED)
  env = await TestEnv.create()
  const config = await env.writeConfig(`admin:\n  identity: ${root.identity}\nkeystore:\n  fs:\n    path: ./keys\n`)
  const dir = path.join(env.dir, 'keys')
  const model = new Model()
  let tempSeen = 0
  server = await startChild(config)
  for (let round = 1; round <= ROUNDS; round++) {
    let stopped = false
    const workers = Array.from({ length: WORKERS }, (_, i) => worker(i, round, rand, model, () => stopped))
    const killAfterMs = 30 + Math.floor(rand() * 400)
    await new Promise((r) => setTimeout(r, killAfterMs))
    await killServer(server)
    stopped = true
    env.resetConnections()
    await withTimeout(Promise.all(workers), EXIT_TIMEOUT_MS, 'workers')
    const before = await readdir(dir)
    tempSeen += before.filter((n) => n.startsWith('.tmp-')).length
    await checkFiles(dir, model, false, round)
    server = await startChild(config)
    await checkFiles(dir, model, true, round)
    // The restarted server serves what must exist.
    const sample = [...model.mustExist.keys()].slice(-5)
    for (const name of sample) assert.equal((await env.request(root, `/v1/key/describe/${name}`)).status, 200, `round ${round}: describe '${name}'`)
  }
  t.diagnostic(`${model.mustExist.size} keys, ${model.mustBeGone.size} deletes, ${model.policies.size} policies, ${model.identities.size} assignments acknowledged; ${tempSeen} temp files left by kills, all removed`)
  assert.ok(model.mustExist.size > ROUNDS, 'the storm acknowledged too few writes to prove anything')
})
