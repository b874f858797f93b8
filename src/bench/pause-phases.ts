/**
 * Where a live update's pause goes: the bench starts xenstored-sim with
 * XENSTORED_SIM_LU_TRACE (src/liveupdate/pause-trace.ts), and after each
 * measured update turns the marks both images wrote into phase durations,
 * for a table of medians next to the pause figures.
 */
import fs from 'node:fs';
import { median } from './report.js';

/** The mark that opens the pause; earlier marks (the dry run's start) are not in it. */
const PAUSE_BEGINS = 'pause begins';
/** The mark that opens each update in the trace. */
const UPDATE_REQUESTED = 'update requested';

/** One update's phases in order: each named by the mark that ends it, in ms since the mark before. */
export type PausePhases = [phase: string, ms: number][];

/** The updates recorded in `file` since the last call, as phases; empties the file. */
export function takePausePhases(file: string): PausePhases[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  fs.writeFileSync(file, '');
  const updates: [string, number][][] = [];
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(' ');
    if (at <= 0) continue;
    const mark: [string, number] = [line.slice(0, at), Number(line.slice(at + 1))];
    if (mark[0] === UPDATE_REQUESTED) updates.push([]);
    updates.at(-1)?.push(mark);
  }
  return updates.map((marks) => {
    const begins = marks.findIndex(([name]) => name === PAUSE_BEGINS);
    if (begins < 0) return [];
    const inPause = marks.slice(begins);
    return inPause.slice(1).map(([name, ms], i) => [name, ms - inPause[i]![1]]);
  });
}

/** Phase medians per measure (a column each), in the order the phases came. */
export class PhaseTable {
  private readonly columns = new Map<string, Map<string, number[]>>();

  add(column: string, updates: PausePhases[]): void {
    let phases = this.columns.get(column);
    if (!phases) this.columns.set(column, (phases = new Map()));
    for (const update of updates) {
      for (const [name, ms] of update) {
        const samples = phases.get(name) ?? [];
        samples.push(ms);
        phases.set(name, samples);
      }
    }
  }

  section(): string {
    const columns = [...this.columns];
    const names = [...new Set(columns.flatMap(([, phases]) => [...phases.keys()]))];
    const cell = (samples: number[] | undefined) => (samples?.length ? median(samples).toFixed(1) : '—');
    return [
      '## Live update: where xenstored-sim\'s pause goes',
      '',
      'Each phase of the pause, named by the mark that ends it, in ms since the mark before (median over the updates',
      'measured above, from `XENSTORED_SIM_LU_TRACE`). The old image dumps and execs; `node started` is the new process',
      'image (its exec through the guard wrapper); `modules loaded` is Node loading the daemon\'s modules; the last row is',
      'the end of the restore, before the first reply.',
      '',
      `| phase | ${columns.map(([c]) => c).join(' | ')} |`,
      `| --- | ${columns.map(() => '---:').join(' | ')} |`,
      ...names.map((name) => `| ${name} | ${columns.map(([, phases]) => cell(phases.get(name))).join(' | ')} |`),
    ].join('\n');
  }
}
