/**
 * The trace (-T FILE, -V): one line per request, reply and watch event, so
 * that what a client was sent can be read back in order.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { XsClient } from '../../src/client/index.js';
import { startDaemon, tearDownAfterEach } from '../helpers/in-process-daemon.js';
import { startSim } from '../../src/testing/start-sim.js';

tearDownAfterEach();

/** The lines of the trace without their time stamps. */
function untimed(text: string): string[] {
  return text.trimEnd().split('\n').map((l) => l.replace(/ \d{4}-\d\d-\d\dT[\d:.]+Z/, ''));
}

describe('the trace', () => {
  it('has requests, replies and the watch events each client is sent', async () => {
    const daemon = await startDaemon();
    const file = path.join(daemon.rundir, 'trace');
    daemon.setTraceFile(file);
    const client = await XsClient.connect(daemon.options.socketPath);
    await client.watch('/t', 'tok');
    await client.write('/t/a', 'v');
    await client.close();
    const lines = untimed(fs.readFileSync(file, 'latin1')).filter((l) => !l.includes('conn1 ')).map((l) => l.replace(/conn\d+/, 'connN'));
    expect(lines).toEqual([
      'IN  connN WATCH req 1 tx 0 (/t tok )',
      'OUT connN WATCH req 1 tx 0 (OK )',
      'EVT connN WATCH_EVENT (/t tok )', // the first event of a new watch follows its reply
      'IN  connN WRITE req 2 tx 0 (/t/a v)',
      'EVT connN WATCH_EVENT (/t/a tok )',
      'OUT connN WRITE req 2 tx 0 (OK )',
    ]);
  });

  it('goes to stderr too with -V', async () => {
    const logged: string[] = [];
    const sim = await startSim({ args: ['-V'], log: (l) => logged.push(l) });
    const client = await sim.client();
    await client.read('/tool').catch(() => undefined);
    await sim.stop();
    expect(untimed(logged.join('\n'))).toEqual([
      expect.stringMatching(/^IN  conn\d+ READ req 1 tx 0 \(\/tool \)$/),
      expect.stringMatching(/^OUT conn\d+ READ req 1 tx 0 \(\)$/),
    ]);
  });
});
