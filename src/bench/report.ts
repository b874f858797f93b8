/**
 * Collects samples per measure and daemon, and renders the results as the
 * Markdown of BENCHMARKS.md. Every ratio reads the same way: at least 1
 * means xenstored-sim does better than C xenstored.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export type Daemon = 'sim' | 'C';

export interface MeasureSpec {
  label: string;
  unit: string;
  /** Throughput: higher is better (ratio sim/C). Time or memory: lower is better (ratio C/sim). */
  better: 'higher' | 'lower';
  /** Least acceptable ratio, if the issue sets one. */
  target?: number;
  digits?: number;
}

interface Measure extends MeasureSpec {
  samples: Record<Daemon, number[]>;
  note?: string;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export class Results {
  private readonly measures = new Map<string, Measure>();
  /** Free-form sections appended after the main table. */
  readonly sections: string[] = [];

  define(key: string, spec: MeasureSpec): void {
    this.measures.set(key, { ...spec, samples: { sim: [], C: [] } });
  }

  add(key: string, daemon: Daemon, value: number): void {
    const m = this.measures.get(key);
    if (!m) throw new Error(`undefined measure ${key}`);
    m.samples[daemon].push(value);
  }

  note(key: string, note: string): void {
    this.measures.get(key)!.note = note;
  }

  /** One daemon's median for a measure, if it was measured. */
  median(key: string, daemon: Daemon): number | undefined {
    const samples = this.measures.get(key)!.samples[daemon];
    return samples.length ? median(samples) : undefined;
  }

  target(key: string): number | undefined {
    return this.measures.get(key)!.target;
  }

  ratio(key: string): number | undefined {
    const m = this.measures.get(key)!;
    if (m.samples.sim.length === 0 || m.samples.C.length === 0) return undefined;
    const sim = median(m.samples.sim);
    const c = median(m.samples.C);
    return m.better === 'higher' ? sim / c : c / sim;
  }

  /** The main table: medians, ratio, target and verdict per measure. */
  table(): string {
    const rows = ['| measure | unit | sim (median) | C 4.17 (median) | runs | ratio | target | met |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | :---: |'];
    for (const [key, m] of this.measures) {
      const fmt = (v: number[]) => (v.length ? format(median(v), m.digits) : '—');
      const ratio = this.ratio(key);
      const verdict = ratio === undefined || m.target === undefined ? '' : ratio >= m.target ? 'yes' : '**no**';
      const runs = `${m.samples.sim.length}/${m.samples.C.length}`;
      const label = m.note ? `${m.label} (${m.note})` : m.label;
      rows.push(`| ${label} | ${m.unit} | ${fmt(m.samples.sim)} | ${fmt(m.samples.C)} | ${runs} | ${ratio === undefined ? '—' : ratio.toFixed(2)} | ${m.target === undefined ? '' : `≥ ${m.target}`} | ${verdict} |`);
    }
    return rows.join('\n');
  }

  /** One line per measure for the console. */
  summary(): string {
    return [...this.measures].map(([key, m]) => {
      const sim = m.samples.sim.length ? format(median(m.samples.sim), m.digits) : '—';
      const c = m.samples.C.length ? format(median(m.samples.C), m.digits) : '—';
      const ratio = this.ratio(key);
      return `${m.label.padEnd(58)} sim ${sim.padStart(10)}  C ${c.padStart(10)} ${m.unit.padEnd(8)} ratio ${ratio === undefined ? '—' : ratio.toFixed(2)}`;
    }).join('\n');
  }
}

export function format(value: number, digits?: number): string {
  if (digits !== undefined) return value.toFixed(digits);
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** CPU model, cores and memory of this machine. */
export function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, Linux ${os.release()}`;
}

/** `git describe` of the checkout, if it is one. */
export function revision(repo: string): string {
  try {
    return execFileSync('git', ['-C', repo, 'describe', '--always', '--dirty'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown revision';
  }
}

export function writeReport(file: string, header: string[], results: Results): void {
  fs.writeFileSync(file, [...header, '', results.table(), '', ...results.sections].join('\n'));
}
