/** In-process counters rendered as Prometheus text. Gauges that live in the store are passed in at render time. */
type LabelSet = Record<string, string>;

const key = (labels: LabelSet): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');

type GaugeSpec = { name: string; help: string; samples: { labels: LabelSet; value: number }[] };

export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly gauges = new Map<string, { help: string; read: () => { labels: LabelSet; value: number }[] }>();

  /** A gauge read at scrape time (counts that live in the store). */
  gauge(name: string, help: string, read: () => { labels: LabelSet; value: number }[]): void {
    this.gauges.set(name, { help, read });
  }

  inc(name: string, help: string, labels: LabelSet = {}, by = 1): void {
    let c = this.counters.get(name);
    if (!c) {
      c = { help, values: new Map() };
      this.counters.set(name, c);
    }
    const k = key(labels);
    c.values.set(k, (c.values.get(k) ?? 0) + by);
  }

  get(name: string, labels: LabelSet = {}): number {
    return this.counters.get(name)?.values.get(key(labels)) ?? 0;
  }

  /** Sum over every label set of a counter. */
  total(name: string): number {
    let sum = 0;
    for (const v of this.counters.get(name)?.values.values() ?? []) sum += v;
    return sum;
  }

  render(): string {
    const gauges: GaugeSpec[] = [];
    for (const [name, g] of this.gauges) {
      try {
        gauges.push({ name, help: g.help, samples: g.read() });
      } catch {
        // a room that is not started has nothing to report
      }
    }
    const out: string[] = [];
    for (const [name, c] of [...this.counters].sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [k, v] of c.values) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
    }
    for (const g of gauges) {
      out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
      for (const s of g.samples) {
        const k = key(s.labels);
        out.push(`${g.name}${k ? `{${k}}` : ''} ${s.value}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
