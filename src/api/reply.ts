/** What a handler answers; the router writes it. */
export interface Reply {
  readonly status: number
  readonly contentType?: string
  readonly body?: string | Buffer
}

const OK_EMPTY: Reply = Object.freeze({ status: 200 })

/** 200 with an empty body: create, import, delete, write, assign, forget. */
export function ok(): Reply {
  return OK_EMPTY
}

/** A JSON reply. */
export function json(status: number, value: unknown): Reply {
  return { status, contentType: 'application/json', body: JSON.stringify(value) }
}

/** An nd-json reply: one compact JSON value per line; current KES clients switch on this content type. */
export function ndjson(values: Iterable<unknown>): Reply {
  let body = ''
  for (const v of values) body += JSON.stringify(v) + '\n'
  return { status: 200, contentType: 'application/x-ndjson', body }
}
