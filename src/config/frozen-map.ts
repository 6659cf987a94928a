import { inspect } from 'node:util'
import type { InspectOptions } from 'node:util'

/**
 * A read-only map: unlike a frozen `Map`, it has no `set`/`delete`/`clear` at all, so nobody can
 * change it after construction, even with a cast. Values are not frozen here: freeze them first.
 */
export class FrozenMap<K, V> implements ReadonlyMap<K, V> {
  readonly #map: Map<K, V>

  /** Copies `entries`; later changes to the source do not show through. */
  constructor(entries: Iterable<readonly [K, V]>) {
    this.#map = new Map(entries)
    Object.freeze(this)
  }

  get size(): number {
    return this.#map.size
  }

  get(key: K): V | undefined {
    return this.#map.get(key)
  }

  has(key: K): boolean {
    return this.#map.has(key)
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    this.#map.forEach((value, key) => callback.call(thisArg, value, key, this))
  }

  entries(): MapIterator<[K, V]> {
    return this.#map.entries()
  }

  keys(): MapIterator<K> {
    return this.#map.keys()
  }

  values(): MapIterator<V> {
    return this.#map.values()
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#map.entries()
  }

  get [Symbol.toStringTag](): string {
    return 'FrozenMap'
  }

  [inspect.custom](_depth: number, options: InspectOptions): string {
    return `Frozen${inspect(this.#map, options)}`
  }
}
