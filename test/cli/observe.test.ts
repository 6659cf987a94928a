// `openkes log trace`, `openkes metric` and `openkes status` against a real
// server, run as child processes.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { deadPort, run, start, startCliServer } from './client-env.js'
import type { CliServer } from './client-env.js'

describe('openkes log, metric and status', () => {
  let s: CliServer
  before(async () => {
    s = await startCliServer()
  })
  after(async () => {
    await s.env.dispose()
  })

  test('log trace --json prints the audit event of a request made while it runs; SIGINT ends it with exit 0', async (t) => {
    const trace = start(['log', 'trace', '--json', '--ca', s.ca], s.envFor(s.root))
    t.after(() => trace.stop('SIGKILL'))
    // the trace request itself is the first event: once it is there, the stream is open
    await trace.waitFor(/"path":"\/v1\/log\/audit"/)
    const created = await run(['key', 'create', 'traced-key', '--ca', s.ca], s.envFor(s.root))
    assert.equal(created.code, 0, created.stderr)
    const [line] = await trace.waitFor(/^.*\/v1\/key\/create\/traced-key.*$/m)
    const event = JSON.parse(line) as { time: string; request: { path: string; identity: string }; response: { code: number; time: number } }
    assert.equal(event.request.path, '/v1/key/create/traced-key')
    assert.equal(event.request.identity, s.root.client.identity)
    assert.equal(event.response.code, 200)
    assert.equal(typeof event.response.time, 'number')
    assert.equal(await trace.stop('SIGINT'), 0)
    assert.equal(trace.stderr(), '')
    for (const l of trace.stdout().trim().split('\n')) assert.doesNotThrow(() => JSON.parse(l), l)
  })

  test('log trace prints one readable line per event: time, short identity, method, path, status, latency', async (t) => {
    const trace = start(['log', 'trace', '--ca', s.ca], s.envFor(s.root))
    t.after(() => trace.stop('SIGKILL'))
    await trace.waitFor(/\/v1\/log\/audit /)
    await run(['key', 'generate', 'no-such-key', '--ca', s.ca], s.envFor(s.root))
    const [line] = await trace.waitFor(/^.*\/v1\/key\/generate\/no-such-key.*$/m)
    const short = s.root.client.identity.slice(0, 8)
    assert.match(line, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+ {2}${short} {2}(POST|PUT|-) +/v1/key/generate/no-such-key +404 {2}\\d+(\\.\\d+)?(ns|µs|ms|s)`))
    assert.doesNotMatch(trace.stdout(), /\x1b\[/)
    assert.equal(await trace.stop('SIGTERM'), 0)
  })

  test('log trace --type error streams the error log until interrupted', async (t) => {
    const audit = start(['log', 'trace', '--json', '--ca', s.ca], s.envFor(s.root))
    t.after(() => audit.stop('SIGKILL'))
    await audit.waitFor(/"path":"\/v1\/log\/audit"/)
    const errors = start(['log', 'trace', '--type', 'error', '--json', '--ca', s.ca], s.envFor(s.root))
    t.after(() => errors.stop('SIGKILL'))
    // the audit log shows the error trace request once its stream is open
    await audit.waitFor(/"path":"\/v1\/log\/error"/)
    assert.equal(await errors.stop('SIGINT'), 0)
    assert.equal(errors.stderr(), '')
    assert.equal(errors.stdout(), '')
    assert.equal(await audit.stop('SIGINT'), 0)
  })

  test('log trace by an identity without the permission fails with prohibited by policy', async () => {
    const res = await run(['log', 'trace', '--ca', s.ca], s.envFor(s.app))
    assert.equal(res.code, 1)
    assert.equal(res.stderr, 'openkes: prohibited by policy\n')
  })

  test('metric --count 2 --json prints two refreshes with rates and latency quantiles', async () => {
    const res = await run(['metric', '--count', '2', '--interval', '50ms', '--json', '--ca', s.ca], s.envFor(s.root))
    assert.equal(res.code, 0, res.stderr)
    const lines = res.stdout.trim().split('\n')
    assert.equal(lines.length, 2)
    for (const line of lines) {
      const view = JSON.parse(line) as Record<string, unknown>
      for (const field of ['requests_per_second', 'success_per_second', 'error_per_second', 'failure_per_second', 'interval_seconds']) {
        assert.equal(typeof view[field], 'number', field)
      }
      // each scrape is itself a successful request, so every interval saw one
      assert.ok((view['success_per_second'] as number) > 0)
      const latency = view['latency_seconds'] as Record<string, unknown>
      assert.equal(typeof latency['p50'], 'number')
      assert.ok((latency['p50'] as number) <= (latency['p99'] as number))
      const total = view['total'] as Record<string, unknown>
      assert.equal(typeof total['success'], 'number')
    }
  })

  test('metric --count 2 prints a header and two rows', async () => {
    const res = await run(['metric', '--count', '2', '--interval', '20ms', '--ca', s.ca], s.envFor(s.root))
    assert.equal(res.code, 0, res.stderr)
    const lines = res.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 3)
    assert.match(lines[0] ?? '', /^TIME +REQ\/S +SUCCESS\/S +ERROR\/S +FAILURE\/S +MEAN +P50 +P90 +P99$/)
    for (const row of lines.slice(1)) assert.match(row, /^\d\d:\d\d:\d\d +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d +\S+ +\S+ +\S+ +\S+$/)
  })

  test('status: a table of endpoints; --json; exit 1 only when none is reachable', async () => {
    const dead = `https://127.0.0.1:${await deadPort()}`
    const both = await run(['status', '--ca', s.ca, '-s', `${s.url},${dead}`], s.envFor(s.root))
    assert.equal(both.code, 0, both.stderr)
    assert.match(both.stdout, /^ENDPOINT +STATUS +VERSION +LATENCY +ERROR\n/)
    assert.match(both.stdout, new RegExp(`^${s.url} +online +\\d+\\.\\d+\\.\\d+\\S* +\\S+$`, 'm'))
    assert.match(both.stdout, new RegExp(`^${dead} +offline +- +- +cannot reach the server.*refused`, 'm'))

    const json = await run(['status', '--json', '--ca', s.ca], s.envFor(s.root))
    assert.equal(json.code, 0)
    const [status] = JSON.parse(json.stdout) as Array<Record<string, unknown>>
    assert.equal(status?.['endpoint'], s.url)
    assert.equal(status?.['reachable'], true)
    assert.match(String(status?.['version']), /^\d+\.\d+\.\d+/)
    assert.equal(typeof status?.['latency_ms'], 'number')
    assert.equal(status?.['error'], null)

    const none = await run(['status', '-k', '-s', dead], s.envFor(s.root))
    assert.equal(none.code, 1)
    assert.match(none.stdout, /offline/)
  })
})
