/** Command-line options: accepted spellings and refused values, as a table. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLL_WINDOW_US, parseOptions, DaemonUsageError, type DaemonOptions } from '../../src/daemon/options.js';

const parse = (...argv: string[]) => parseOptions(argv, { XENSTORED_RUNDIR: '/run/xs' });

describe('parseOptions', () => {
  it('defaults', () => {
    const o = parse();
    expect(o.socketPath).toBe('/run/xs/socket');
    expect(o.compat).toBe('master');
    expect(o.pollWindowUs).toBe(DEFAULT_POLL_WINDOW_US);
    expect(o.warmUp).toBe(false);
  });

  const accepted: [string[], Partial<DaemonOptions>][] = [
    [['--poll-window-us', '0'], { pollWindowUs: 0 }],
    [['--poll-window-us=200'], { pollWindowUs: 200 }],
    [['--guest-patience-ms', '60000'], { guestPatienceMs: 60000 }],
    [['--compat', '4.17'], { compat: '4.17' }],
    [['-E', '7'], { quotas: { nodes: 7 } }],
    [['--quota', 'watches=3'], { quotas: { watches: 3 } }],
    [['-q', 'memory=9'], { softMemory: 9 }],
    [['--socket', '/tmp/s'], { socketPath: '/tmp/s' }],
    [['--warm-up'], { warmUp: true }],
  ];
  it.each(accepted)('%j', (argv, expected) => {
    expect(parse(...argv)).toMatchObject(expected);
  });

  const refused: [string[], RegExp][] = [
    [['--poll-window-us', '-1'], /must not be negative/],
    [['--guest-patience-ms', '-5'], /must not be negative/],
    [['--poll-window-us', 'fast'], /needs a number/],
    [['--poll-window-us'], /needs a value/],
    [['--compat', '4.2'], /4.17 or master/],
    [['--quota', 'bogus=1'], /bad --quota/],
    [['--no-such-flag'], /unknown option/],
    [['stray'], /unknown argument/],
  ];
  it.each(refused)('%j', (argv, message) => {
    expect(() => parse(...argv)).toThrow(DaemonUsageError);
    expect(() => parse(...argv)).toThrow(message);
  });
});
