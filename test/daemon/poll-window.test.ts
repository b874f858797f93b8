/** The poll window: who makes the event loop poll instead of sleep, and for how long. */
import { describe, expect, it } from 'vitest';
import { PollWindow } from '../../src/daemon/poll-window.js';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('PollWindow', () => {
  it('polls after a second batch from the same client, and stops once it goes quiet', async () => {
    const window = new PollWindow(5);
    const client = {};
    window.activity(client);
    expect(window.isPolling).toBe(false); // one batch says nothing about a next one
    window.activity(client);
    expect(window.isPolling).toBe(true);
    await turn();
    expect(window.isPolling).toBe(true);
    await sleep(30);
    expect(window.isPolling).toBe(false);
  });

  it('keeps polling while the same client goes on sending', async () => {
    const window = new PollWindow(20);
    const client = {};
    window.activity(client);
    const until = Date.now() + 60;
    while (Date.now() < until) {
      window.activity(client);
      await turn();
      expect(window.isPolling).toBe(true);
    }
  });

  it('stops at the next turn when another client sends', async () => {
    const window = new PollWindow(1000);
    const [a, b] = [{}, {}];
    window.activity(a);
    window.activity(a);
    expect(window.isPolling).toBe(true);
    window.activity(b);
    await turn();
    await turn();
    expect(window.isPolling).toBe(false);
  });

  it('never polls with a window of 0', async () => {
    const window = new PollWindow(0);
    const client = {};
    for (let i = 0; i < 3; i++) window.activity(client);
    expect(window.isPolling).toBe(false);
    await turn();
    expect(window.isPolling).toBe(false);
  });
});
