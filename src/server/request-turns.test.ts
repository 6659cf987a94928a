// RequestTurns on a hand-driven scheduler: which requests start now, which wait, in what order,
// and what a gone request costs.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { RequestTurns } from './request-turns.js'

interface Task {
  readonly id: number
  gone: boolean
}

/** A RequestTurns whose turns run only when the test says so. */
function turnsOf(perTurn: number, opts: { throwOn?: number } = {}): {
  turns: RequestTurns<Task>
  started: number[]
  /** Turns scheduled and not yet run. */
  scheduled: Array<() => void>
  /** Runs the next scheduled turn. */
  runTurn(): void
  tasks(ids: readonly number[]): Task[]
} {
  const started: number[] = []
  const scheduled: Array<() => void> = []
  const turns = new RequestTurns<Task>(
    perTurn,
    (t) => {
      if (t.id === opts.throwOn) throw new Error(`task ${t.id} failed to start`)
      started.push(t.id)
    },
    (t) => t.gone,
    (next) => scheduled.push(next),
  )
  return {
    turns,
    started,
    scheduled,
    runTurn() {
      const next = scheduled.shift()
      assert.ok(next !== undefined, 'a turn is scheduled')
      next()
    },
    tasks: (ids) => ids.map((id) => ({ id, gone: false })),
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

describe('RequestTurns', () => {
  test('up to perTurn requests start at once and nothing is scheduled', () => {
    const t = turnsOf(4)
    for (const task of t.tasks([1, 2, 3, 4])) t.turns.admit(task)
    assert.deepEqual(t.started, [1, 2, 3, 4])
    assert.equal(t.scheduled.length, 0, 'no turn scheduled for a server that gets no burst')
    assert.equal(t.turns.waiting, 0)
  })

  test('a burst starts perTurn at a time, in arrival order, one group per turn', () => {
    const t = turnsOf(4)
    for (const task of t.tasks(range(0, 10))) t.turns.admit(task)
    assert.deepEqual(t.started, [0, 1, 2, 3])
    assert.equal(t.turns.waiting, 6)
    assert.equal(t.scheduled.length, 1, 'one turn scheduled, however many wait')
    t.runTurn()
    assert.deepEqual(t.started, range(0, 8))
    assert.equal(t.scheduled.length, 1)
    t.runTurn()
    assert.deepEqual(t.started, range(0, 10))
    assert.equal(t.turns.waiting, 0)
    assert.equal(t.scheduled.length, 0, 'nothing left: no more turns')
  })

  test('a request that comes while others wait goes behind them, even when its turn has room', () => {
    const t = turnsOf(4)
    for (const task of t.tasks(range(0, 6))) t.turns.admit(task)
    t.runTurn()
    assert.deepEqual(t.started, range(0, 6))
    // That turn started 2: the counter says there is room, and nothing waits: 6 and 7 start now.
    for (const task of t.tasks([6, 7])) t.turns.admit(task)
    assert.deepEqual(t.started, range(0, 8))
    // Now the turn is full: 8 waits, and 9 goes behind it.
    for (const task of t.tasks([8, 9])) t.turns.admit(task)
    assert.deepEqual(t.started, range(0, 8))
    t.runTurn()
    assert.deepEqual(t.started, range(0, 10))
  })

  test('a request gone while it waited is dropped at its turn and does not count against it', () => {
    const t = turnsOf(2)
    const tasks = t.tasks(range(0, 7))
    for (const task of tasks) t.turns.admit(task)
    for (const id of [2, 3, 5]) (tasks[id] as Task).gone = true
    t.runTurn()
    assert.deepEqual(t.started, [0, 1, 4, 6], 'the turn took 4 and 6 in place of the gone 2, 3 and 5')
    assert.equal(t.turns.waiting, 0)
    assert.equal(t.scheduled.length, 0)
  })

  test('a turn of only gone requests starts nothing and schedules nothing more', () => {
    const t = turnsOf(1)
    const tasks = t.tasks(range(0, 100))
    for (const task of tasks) t.turns.admit(task)
    for (const task of tasks.slice(1)) task.gone = true
    t.runTurn()
    assert.deepEqual(t.started, [0])
    assert.equal(t.turns.waiting, 0)
    assert.equal(t.scheduled.length, 0)
  })

  test('a start that throws reaches the caller of admit; one that throws in a turn still leaves a turn for the rest', () => {
    const t = turnsOf(2, { throwOn: 1 })
    t.turns.admit({ id: 0, gone: false })
    assert.throws(() => t.turns.admit({ id: 1, gone: false }), /task 1 failed to start/)
    const u = turnsOf(2, { throwOn: 3 })
    for (const task of u.tasks(range(0, 6))) u.turns.admit(task)
    assert.throws(() => u.runTurn(), /task 3 failed to start/)
    assert.deepEqual(u.started, [0, 1, 2])
    assert.equal(u.scheduled.length, 1, 'the rest still get their turn')
    u.runTurn()
    assert.deepEqual(u.started, [0, 1, 2, 4, 5])
  })

  test('a queue that never empties is compacted: every request still starts once, in order', () => {
    const t = turnsOf(16)
    let next = 0
    // Each turn 20 arrive and 16 start: the queue grows and its front is cut off as it goes.
    for (let turn = 0; turn < 400; turn++) {
      for (const task of t.tasks(range(next, next + 20))) t.turns.admit(task)
      next += 20
      t.runTurn()
    }
    while (t.scheduled.length > 0) t.runTurn()
    assert.deepEqual(t.started, range(0, next))
  })

  test('perTurn must be a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new RequestTurns<Task>(bad, () => {}, () => false), /positive integer/)
    }
  })
})
