// The identities and server configuration most integration tests share:
// the admin, an application bound to `my-*` keys, a policy/identity
// operator, an identity without a policy, and one for API assignments.
import { makeClient } from './harness.js'

export const root = makeClient('root')
export const app = makeClient('app')
export const ops = makeClient('ops')
export const nopol = makeClient('nopol')
export const other = makeClient('other')

/** The config of the reference transcripts: policies `my-app` (for app) and `ops` (for ops). */
export const SEED_CONFIG = `admin:
  identity: ${root.identity}
policy:
  my-app:
    allow:
    - /v1/key/create/my-*
    - /v1/key/generate/my-*
    - /v1/key/encrypt/my-*
    - /v1/key/decrypt/my-*
    - /v1/key/list/*
    deny:
    - /v1/key/generate/my-secret*
    identities:
    - ${app.identity}
  ops:
    allow:
    - /v1/policy/write/*
    - /v1/policy/read/*
    - /v1/policy/list/*
    - /v1/policy/delete/*
    - /v1/identity/assign/*/*
    - /v1/identity/list/*
    - /v1/identity/forget/*
    - /v1/key/delete/*
    identities:
    - ${ops.identity}
keystore:
  fs:
    path: ./keys
`
