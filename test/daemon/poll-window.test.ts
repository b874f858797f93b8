/**
 * The poll window: who makes the event loop poll instead of sleep, and for
 * how long. A fake clock stands in for time and the event loop, so the
 * outcome cannot depend on how fast the machine is.
 */
import { describe, expect, it } from 'vitest';
import { PollWindow, type PollClock } from '../../src/daemon/poll-window.js';

/** Time moves only when told; a turn runs what was scheduled for it. */
class FakeClock implements PollClock {
  time = 0;
  private scheduled: (() => void)[] = [];
  now(): number {
    return this.time;
  }
  nextTurn(f: () => void): void {
    this.scheduled.push(f);
  }
  /** One turn of the loop, `ms` after the previous one. */
  turn(ms = 0): void {
    this.time += ms;
    const due = this.scheduled;
    this.scheduled = [];
    due.forEach((f) => f());
  }
  get pending(): number {
    return this.scheduled.length;
  }
}

describe('PollWindow', () => {
  it('polls after a second batch from the same client, and stops once it goes quiet', () => {
    const clock = new FakeClock();
    const window = new PollWindow(5, clock);
    const client = {};
    window.activity(client);
    expect(window.isPolling).toBe(false); // one batch says nothing about a next one
    window.activity(client);
    expect(window.isPolling).toBe(true);
    clock.turn(4);
    expect(window.isPolling).toBe(true);
    clock.turn(1);
    expect(window.isPolling).toBe(false);
    expect(clock.pending).toBe(0); // nothing left to keep the loop awake
  });

  it('keeps polling while the same client goes on sending', () => {
    const clock = new FakeClock();
    const window = new PollWindow(20, clock);
    const client = {};
    window.activity(client);
    for (let t = 0; t < 60; t += 5) {
      window.activity(client);
      clock.turn(5);
      expect(window.isPolling).toBe(true);
    }
    clock.turn(20);
    expect(window.isPolling).toBe(false);
  });

  it('stops at the next turn when another client sends', () => {
    const clock = new FakeClock();
    const window = new PollWindow(1000, clock);
    const [a, b] = [{}, {}];
    window.activity(a);
    window.activity(a);
    expect(window.isPolling).toBe(true);
    window.activity(b);
    clock.turn();
    expect(window.isPolling).toBe(false);
  });

  it('never polls with a window of 0', () => {
    const clock = new FakeClock();
    const window = new PollWindow(0, clock);
    const client = {};
    for (let i = 0; i < 3; i++) window.activity(client);
    expect(window.isPolling).toBe(false);
    expect(clock.pending).toBe(0);
  });
});
