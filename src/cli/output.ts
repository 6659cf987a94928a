// How client commands print: aligned tables, optional colour, JSON lines.

/** The colours and styles the CLI uses. */
export type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan'

const SGR: Readonly<Record<Style, string>> = {
  bold: '1',
  dim: '2',
  red: '31',
  green: '32',
  yellow: '33',
  cyan: '36',
}

// CSI ... m sequences: the only escapes `paint` writes.
const ANSI_SGR = /\x1b\[[0-9;]*m/g

/**
 * Whether to colour output: only on a terminal, and never when `NO_COLOR` is
 * set to anything non-empty (https://no-color.org).
 */
export function shouldColor(isTTY: boolean, env: Readonly<Record<string, string | undefined>>): boolean {
  const noColor = env['NO_COLOR']
  return isTTY && (noColor === undefined || noColor === '')
}

/** A printer bound to one colour decision. */
export interface Painter {
  readonly color: boolean
  /** `text` in `style` when colouring, else `text` unchanged. */
  paint(style: Style, text: string): string
}

/** Makes a painter that colours only when `color` is true. */
export function painter(color: boolean): Painter {
  return {
    color,
    paint: (style, text) => (color && text !== '' ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text),
  }
}

/** The number of terminal columns `text` takes, ignoring colour escapes. */
export function visibleLength(text: string): number {
  // Array.from counts code points, so 'µ' or '…' count once
  return Array.from(text.replace(ANSI_SGR, '')).length
}

/**
 * Renders rows under a header as left-aligned columns separated by two spaces,
 * one line each, ending with a newline; the header is bold when colouring.
 * An empty `rows` renders as the empty string (no lone header).
 */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, p: Painter): string {
  if (rows.length === 0) return ''
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))))
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell))))
      .join('  ')
      .trimEnd()
  return [p.paint('bold', line(header)), ...rows.map(line)].join('\n') + '\n'
}

/** One value as a single JSON line (with the newline). */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value) + '\n'
}

/**
 * Label–value lines, the labels bold (when colouring) and padded to one
 * column: `name       my-key`; a value of several lines continues in its column.
 */
export function fields(rows: ReadonlyArray<readonly [string, string]>, p: Painter): string {
  const width = Math.max(...rows.map(([label]) => label.length))
  const indent = ' '.repeat(width + 2)
  return rows.map(([label, value]) => `${p.paint('bold', label.padEnd(width))}  ${value.replaceAll('\n', `\n${indent}`)}`).join('\n') + '\n'
}

/** When and by whom something was created, as far as the server said: `2024-01-02T03:04:05Z by 3ecfcdf3…`, or `-`. */
export function createdText(c: { readonly created_at?: string; readonly created_by?: string }): string {
  if (c.created_at === undefined && c.created_by === undefined) return '-'
  return [c.created_at ?? 'at an unknown time', ...(c.created_by !== undefined ? [`by ${c.created_by}`] : [])].join(' ')
}

/** A nanosecond duration in the unit that keeps it short: `850ns`, `102µs`, `3.2ms`, `1.50s`. */
export function formatNanos(ns: number): string {
  if (!Number.isFinite(ns) || ns < 0) return '-'
  if (ns < 1e3) return `${Math.round(ns)}ns`
  if (ns < 1e6) return `${trimNumber(ns / 1e3)}µs`
  if (ns < 1e9) return `${trimNumber(ns / 1e6)}ms`
  return `${(ns / 1e9).toFixed(2)}s`
}

/** A duration in seconds, formatted like `formatNanos`; `null` prints as `-`. */
export function formatSeconds(seconds: number | null): string {
  return seconds === null ? '-' : formatNanos(seconds * 1e9)
}

// Three significant digits at most: 102, 31.2, 3.25.
function trimNumber(n: number): string {
  if (n >= 100) return String(Math.round(n))
  if (n >= 10) return n.toFixed(1).replace(/\.0$/, '')
  return n.toFixed(2).replace(/\.?0+$/, '')
}

/** A rate with one decimal place: `0.0`, `12.5`. */
export function formatRate(perSecond: number): string {
  return perSecond.toFixed(1)
}

/** The colour of an HTTP status: green 2xx, yellow 4xx, red 5xx, plain otherwise. */
export function statusStyle(code: number): Style | undefined {
  if (code >= 200 && code < 300) return 'green'
  if (code >= 400 && code < 500) return 'yellow'
  if (code >= 500) return 'red'
  return undefined
}
