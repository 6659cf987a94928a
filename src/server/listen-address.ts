/** A parsed `host:port` listen address; an empty host means every interface. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/** Parses `host:port`, `[v6]:port` or `:port`. Throws RangeError on anything else. */
export function parseListenAddress(address: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address)
  const port = m === null ? NaN : Number(m[3])
  if (m === null || !(port >= 0 && port <= 65535)) throw new RangeError(`invalid address '${address}'`)
  return { host: m[1] ?? m[2] ?? '', port }
}
