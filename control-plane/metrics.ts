import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The control plane's metrics, kept in a prom-client registry of their own (several control planes
 * share one process in the tests, so nothing goes into prom-client's global registry). Rooms add
 * counters with `inc`, scrape-time gauges with `gauge` and histograms with `histogram`/`observe`,
 * naming the metric where they use it; `render` is the Prometheus text of all of them plus Node's
 * process metrics.
 */
export type LabelSet = Record<string, string>;

const key = (labels: LabelSet): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(String(labels[k]))}`)
    .join(',');

type Sample = { labels: LabelSet; value: number };

/** Seconds. HTTP and MQTT handling: 0.5 ms .. 10 s. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds. Benchmarks and training phases: 0.1 s .. 4 h. */
export const LONG_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400];

export type HistogramHandle = {
  observe(labels: LabelSet, seconds: number): void;
  /** Starts a timer; the function it returns observes the seconds since, with these labels plus the ones given then. */
  startTimer(labels?: LabelSet): (more?: LabelSet) => number;
};

export class Metrics {
  /** The prom-client registry behind `render`; exposed for a room that brings its own prom-client metric. */
  readonly registry = new Registry();
  private readonly counters = new Map<string, { help: string; labelNames: string[]; counter: Counter<string>; values: Map<string, Sample> }>();
  private readonly histograms = new Map<string, { labelNames: string[]; h: Histogram<string> }>();
  private readonly gauges = new Set<string>();

  constructor(opts: { processMetrics?: boolean } = {}) {
    // process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_seconds, nodejs_heap_size_*...
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** A gauge read at scrape time (counts that live in the store); one whose read throws (a room not started) reports nothing. */
  gauge(name: string, help: string, read: () => Sample[]): void {
    if (this.gauges.has(name)) this.registry.removeSingleMetric(name);
    this.gauges.add(name);
    // a collector object in prom-client's metric shape: the label names are whatever the store has at scrape time
    const metric = {
      name,
      help,
      type: 'gauge',
      aggregator: 'sum',
      get: async () => {
        let values: Sample[] = [];
        try {
          values = read();
        } catch {
          values = [];
        }
        return { name, help, type: 'gauge', aggregator: 'sum', values };
      },
      reset: () => {},
    };
    this.registry.registerMetric(metric as unknown as Counter<string>);
  }

  /** Adds `by` to a counter, creating it on first use with these label names. */
  inc(name: string, help: string, labels: LabelSet = {}, by = 1): void {
    let c = this.counters.get(name);
    const names = Object.keys(labels);
    if (!c || names.some((n) => !c!.labelNames.includes(n))) c = this.createCounter(name, c?.help ?? help, [...new Set([...(c?.labelNames ?? []), ...names])], c?.values);
    c.counter.inc(labels, by);
    const k = key(labels);
    const cur = c.values.get(k);
    if (cur) cur.value += by;
    else c.values.set(k, { labels: { ...labels }, value: by });
  }

  get(name: string, labels: LabelSet = {}): number {
    return this.counters.get(name)?.values.get(key(labels))?.value ?? 0;
  }

  /** Sum over every label set of a counter. */
  total(name: string): number {
    let sum = 0;
    for (const v of this.counters.get(name)?.values.values() ?? []) sum += v.value;
    return sum;
  }

  /** A histogram (seconds), registered once; a second call with the same name returns the same one. */
  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[] = LATENCY_BUCKETS): HistogramHandle {
    let entry = this.histograms.get(name);
    if (!entry) {
      entry = { labelNames: [...labelNames], h: new Histogram({ name, help, labelNames: [...labelNames], buckets: [...buckets], registers: [this.registry] }) };
      this.histograms.set(name, entry);
    }
    const { h, labelNames: known } = entry;
    // labels the histogram was not declared with are dropped rather than thrown from a request handler
    const only = (l: LabelSet): LabelSet => Object.fromEntries(Object.entries(l).filter(([k]) => known.includes(k)));
    return {
      observe: (labels, seconds) => {
        if (Number.isFinite(seconds) && seconds >= 0) h.observe(only(labels), seconds);
      },
      startTimer: (labels = {}) => {
        const t0 = performance.now();
        return (more = {}) => {
          const s = (performance.now() - t0) / 1000;
          h.observe(only({ ...labels, ...more }), s);
          return s;
        };
      },
    };
  }

  /** One observation into a histogram, registering it on first use with the observation's label names. */
  observe(name: string, help: string, labels: LabelSet, seconds: number, buckets: readonly number[] = LATENCY_BUCKETS): void {
    this.histogram(name, help, Object.keys(labels), buckets).observe(labels, seconds);
  }

  /** Prometheus text format (0.0.4). */
  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private createCounter(name: string, help: string, labelNames: string[], carry?: Map<string, Sample>): { help: string; labelNames: string[]; counter: Counter<string>; values: Map<string, Sample> } {
    // a counter first used with fewer label names is re-registered with all of them, keeping its counts
    if (carry) this.registry.removeSingleMetric(name);
    const counter = new Counter({ name, help, labelNames, registers: [this.registry] });
    const values = carry ?? new Map<string, Sample>();
    for (const s of values.values()) counter.inc(s.labels, s.value);
    const entry = { help, labelNames, counter, values };
    this.counters.set(name, entry);
    return entry;
  }
}
