// The bench's arithmetic: ratios pair servers by round, the ladder subtracts per
// round, targets say met / not met / not measured. No timing is asserted: these
// are made-up measurements.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { distributionRows, formatTable, formatTargets, ladderRows, mainRows, targets, workersRows } from './report.js'
import type { Measurement } from './report.js'
import { scenarios, selected, storeScenarios } from './scenarios.js'
import type { ServerId } from './scenarios.js'

function m(server: ServerId, scenario: string, round: number, rps: number, cpu: number, p99 = 1000, primary = NaN): Measurement {
  return {
    server,
    scenario,
    round,
    requests: rps,
    errors: 0,
    errorKinds: {},
    resumed: 0,
    rps,
    p50Us: p99 / 2,
    p90Us: p99 / 1.5,
    p99Us: p99,
    maxUs: p99 * 2,
    cpuUsPerRequest: cpu,
    primaryCpuUsPerRequest: primary,
    processes: server.startsWith('openkes-w2') ? 3 : 1,
  }
}

const all = scenarios()

describe('bench report', () => {
  it('divides by the reference measured in the same round, then takes the median', () => {
    const s = 'generate h1 c=16'
    const ms = [
      // Round 2's machine was twice as fast for both: its ratio is still 0.5.
      m('openkes', s, 1, 100, 60, 2000),
      m('baseline', s, 1, 200, 40, 1000),
      m('openkes', s, 2, 200, 60, 2000),
      m('baseline', s, 2, 400, 40, 1000),
      m('openkes', s, 3, 300, 30, 1000),
      m('baseline', s, 3, 300, 30, 1000),
    ]
    const [row] = mainRows(ms, all.filter((x) => x.name === s))
    assert.equal(row?.server, 'openkes')
    assert.equal(row?.vs, 'baseline')
    assert.equal(row?.ratio?.rps, 0.5)
    assert.equal(row?.ratio?.cpuPerRequest, 1.5)
    assert.equal(row?.ratio?.p99, 2)
    assert.equal(row?.measured.rps, 200)
    assert.equal(row?.reference?.rps, 300)
  })

  it('gives the store rows no reference', () => {
    const [small] = storeScenarios(1000, ['a'], ['b'])
    const [row] = mainRows([m('openkes', small.name, 1, 100, 50)], [small])
    assert.equal(row?.vs, undefined)
    assert.equal(row?.ratio, undefined)
  })

  it('compares each --workers 2 variant with one process, and rr with none', () => {
    const s = 'workers: decrypt h1 c=64'
    const ms = [m('openkes', s, 1, 100, 50), m('openkes-w2-rr', s, 1, 150, 55, 1000, 5), m('openkes-w2-none', s, 1, 120, 60)]
    const list = all.filter((x) => x.name === s)
    const rows = workersRows(ms, list)
    assert.deepEqual(
      rows.map((r) => [r.server, r.vs, r.ratio?.rps, r.ratio?.cpuPerRequest]),
      [
        ['openkes', undefined, undefined, undefined],
        ['openkes-w2-rr', 'openkes', 1.5, 1.1],
        ['openkes-w2-none', 'openkes', 1.2, 1.2],
      ],
    )
    assert.equal(rows[1]?.measured.primaryCpuUsPerRequest, 5)
    const [d] = distributionRows(ms, list)
    assert.equal(d?.rrOverNone.rps, 1.25)
    assert.ok(Math.abs((d?.rrOverNone.cpuPerRequest ?? NaN) - 55 / 60) < 1e-12)
    assert.match(formatTable(rows, '1 proc', true), /openkes --workers 2, rr .* 1\.50 +1\.10/)
  })

  it('subtracts the ladder levels per round', () => {
    const s = 'ladder: decrypt h1 c=16'
    const ms = [
      m('baseline-tls-http', s, 1, 300, 30),
      m('baseline', s, 1, 200, 50),
      m('openkes', s, 1, 150, 80),
      m('baseline-tls-http', s, 2, 300, 40),
      m('baseline', s, 2, 200, 60),
      m('openkes', s, 2, 150, 90),
    ]
    const [row] = ladderRows(ms, all.filter((x) => x.name === s))
    assert.deepEqual(row?.extraCpuUs, { cryptoOverTlsHttp: 20, openkesOverCrypto: 30, openkesOverTlsHttp: 50 })
    assert.deepEqual(row?.cpuUsPerRequest, { tlsHttp: 35, crypto: 55, openkes: 85 })
  })

  it('says which targets are met, not met, or not measured', () => {
    const c16 = 'generate h1 c=16'
    const w = 'workers: generate h1 c=64'
    const ms = [
      m('openkes', c16, 1, 110, 39, 1300),
      m('baseline', c16, 1, 100, 40, 1000),
      m('openkes', w, 1, 100, 50),
      m('openkes-w2-rr', w, 1, 99, 55),
      m('openkes-w2-none', w, 1, 120, 56),
    ]
    const list = all.filter((x) => x.name === c16 || x.name === w)
    const goals = targets(mainRows(ms, list), workersRows(ms, list), { openkes: 70, 'openkes-w2-rr': 81 })
    const verdict = (target: string, scenario: string): boolean | null | undefined => goals.find((g) => g.target === target && g.scenario === scenario)?.met
    assert.equal(verdict('1 process req/s ÷ baseline', c16), true)
    assert.equal(verdict('1 process CPU/req ÷ baseline', c16), true)
    assert.equal(verdict('1 process p99 ÷ baseline', c16), true) // 1.30 is within 1.3 ×
    assert.equal(verdict('1 process HTTP/2 req/s ÷ baseline', 'generate h2 64 streams/1 conn'), null)
    assert.equal(verdict('openkes --workers 2, rr req/s ÷ 1 process', w), false)
    assert.equal(verdict('openkes --workers 2, rr CPU/req ÷ 1 process', w), true) // 1.10 is within + 10 %
    assert.equal(verdict('openkes --workers 2, none req/s ÷ 1 process', w), true)
    assert.equal(verdict('openkes --workers 2, none CPU/req ÷ 1 process', w), false)
    assert.equal(verdict('idle RSS of any one process, MB', 'openkes, 1 process'), true)
    assert.equal(verdict('idle RSS of any one process, MB', 'openkes --workers 2, rr'), false)
    const text = formatTargets(goals)
    assert.match(text, /rr req\/s ÷ 1 process >= 1\.00 +workers: generate h1 c=64 +0\.99 +NOT MET/)
    assert.doesNotMatch(text, /generate h2/)
    assert.match(text, /target\(s\) not measured/)
  })

  it('selects scenario sets by name with --only, and scenarios by part of their name', () => {
    const names = (only: string[]): string[] => all.filter((s) => selected(s, only)).map((s) => s.name)
    assert.deepEqual(names(['ladder']), ['ladder: generate h1 c=16', 'ladder: decrypt h1 c=16'])
    assert.equal(names(['workers']).length, 4)
    assert.ok(names(['workers']).every((n) => n.startsWith('workers: ')))
    assert.deepEqual(names(['version h2']), ['version h2 64 streams/1 conn'])
    // Every scenario name is unique: the report finds rows by name.
    assert.equal(new Set(all.map((s) => s.name)).size, all.length)
  })
})
