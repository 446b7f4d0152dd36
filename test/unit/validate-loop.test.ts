import type { Failure } from '../../src/validate/checks.js';
import { validateLoop } from '../../src/validate/run.js';

/** validateLoop with an injected clock: consecutive passes, resets, timeouts, one-shot. */

const bad: Failure = { check: 'node-ready', subject: 'w1', message: 'node w1 is NotReady (x)' };

function clock() {
  let t = 0;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
  };
}

test('--wait needs --count consecutive passes; a failure resets the count', async () => {
  const seq = [[bad], [], [bad], [], [], []];
  const c = clock();
  const r = await validateLoop({
    attempt: async () => seq.shift()!,
    wait: true,
    count: 2,
    intervalS: 10,
    timeoutS: 900,
    ...c,
  });
  expect(r).toMatchObject({ passed: true, attempts: 5, timedOut: false });
  expect(c.now()).toBe(40_000);
});

test('without --wait: one validation, whatever --count says', async () => {
  const ok = await validateLoop({
    attempt: async () => [],
    wait: false,
    count: 2,
    intervalS: 10,
    timeoutS: 900,
    ...clock(),
  });
  expect(ok).toMatchObject({ passed: true, attempts: 1 });
  const ko = await validateLoop({
    attempt: async () => [bad],
    wait: false,
    count: 2,
    intervalS: 10,
    timeoutS: 900,
    ...clock(),
  });
  expect(ko).toMatchObject({ passed: false, attempts: 1, timedOut: false, failures: [bad] });
});

test('--wait gives up at --timeout with the last failures', async () => {
  const c = clock();
  const r = await validateLoop({
    attempt: async () => [bad],
    wait: true,
    count: 2,
    intervalS: 10,
    timeoutS: 35,
    ...c,
  });
  expect(r).toMatchObject({ passed: false, timedOut: true, attempts: 4, failures: [bad] });
  expect(c.now()).toBeLessThanOrEqual(35_000);
});
