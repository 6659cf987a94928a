import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_RESTART_RULES, RestartPolicy } from './restart-policy.js'

const RULES = { quickExitMs: 1_000, maxQuickExits: 4, firstDelayMs: 100, maxDelayMs: 300 }

test('a worker that served a while is replaced at once, however often', () => {
  const p = new RestartPolicy(RULES)
  for (let i = 0; i < 10; i++) assert.deepEqual(p.exited(5_000), { restart: true, delayMs: 0 })
})

test('quick exits (or never serving) back off, capped, and give up after maxQuickExits in a row', () => {
  const p = new RestartPolicy(RULES)
  assert.deepEqual(p.exited(undefined), { restart: true, delayMs: 100 })
  assert.deepEqual(p.exited(999), { restart: true, delayMs: 200 })
  assert.deepEqual(p.exited(0), { restart: true, delayMs: 300 })
  assert.deepEqual(p.exited(undefined), { restart: false, quickExits: 4 })
})

test('a healthy run in between starts the count again', () => {
  const p = new RestartPolicy(RULES)
  p.exited(undefined)
  p.exited(undefined)
  p.exited(1_000)
  assert.deepEqual(p.exited(undefined), { restart: true, delayMs: 100 })
})

test('the default rules give up within a few seconds of a crash loop', () => {
  const p = new RestartPolicy()
  let waited = 0
  let decision = p.exited(undefined)
  while (decision.restart) {
    waited += decision.delayMs
    decision = p.exited(undefined)
  }
  assert.equal(decision.quickExits, DEFAULT_RESTART_RULES.maxQuickExits)
  assert.ok(waited <= 10_000, `waited ${waited} ms`)
})
