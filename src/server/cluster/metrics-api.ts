// The metrics API the cluster uses (src/metrics/snapshot.ts), in one place.
export { mergeSnapshots, renderSnapshot } from '../../metrics/snapshot.js'
export type { MetricsSnapshot } from '../../metrics/snapshot.js'
