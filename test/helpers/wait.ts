/**
 * Waiting for a condition instead of sleeping: a test goes on as soon as
 * what it needs has happened, and fails (saying what it waited for) when it
 * does not happen in time, never passing with the state not reached.
 */

/** The event loop's timers: the only way to let other processes run. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `condition()` is true (checked every `everyMs`); rejects naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
