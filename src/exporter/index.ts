/**
 * The exporter layer: Prometheus metrics from a census taken at scrape time (prom-client), and the
 * bounded HTTP server that serves them (`twlab exporter`).
 */
export { createExporterRegistry, DEFAULT_TOP } from './metrics.js';
export type { ExporterMetricsOptions, Snapshot } from './metrics.js';
export { foldOther, foldNamespaces, OTHER } from './sample.js';
export type { NamespaceSample } from './sample.js';
export { scrapeHost, netnsLabels, DEFAULT_MAX_NAMESPACES } from './host-scrape.js';
export type { HostScrape, HostScrapeOptions } from './host-scrape.js';
export { startExporter, isLoopback, DEFAULT_EXPORTER_LISTEN } from './server.js';
export type { ExporterOptions, ExporterHandle } from './server.js';
export { histogramOf, bucketize, TIME_WAIT_BUCKETS_SEC } from './time-wait-histogram.js';
export type { BucketCounts } from './time-wait-histogram.js';
