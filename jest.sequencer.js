// The order test files start in, for the two workers of a 2-core CI machine (jest.config.js):
// the long files first, so that neither worker is left with one of them at the end while the
// other idles. A fresh clone has no timings in jest's cache, and jest's own fallback (file size)
// starts run-e2e (about 5 min) twelfth. Files not named here follow, largest first.
// https://jestjs.io/docs/configuration#testsequencer-string
import { statSync } from 'node:fs';

/** Seconds each took in a serial CI run on 2 cores (`CI=true bash .ci/run`, 2026-12-03). */
const SLOW = {
  'integration/run-e2e': 311,
  'integration/terraform': 218,
  'integration/run-plan': 200,
  'integration/run-saved-plan': 178,
  'nodes/etcd-quorum': 160,
  'nodes/roll-secure': 121,
  'integration/sync-reliability': 51,
  'integration/hostile-input': 39,
  'integration/upgrade': 36,
  'integration/run-rollout': 35,
};

const seconds = (file) => {
  const m = /\/dist\/test\/(.+)\.test\.js$/.exec(file);
  return (m && SLOW[m[1]]) ?? 0;
};
const size = (file) => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

export default class SlowFirst {
  /** @param {{ path: string }[]} tests */
  sort(tests) {
    return [...tests].sort((a, b) => seconds(b.path) - seconds(a.path) || size(b.path) - size(a.path));
  }
  allFailedTests(tests) {
    return tests;
  }
  cacheResults() {}
  shard(tests, { shardIndex, shardCount }) {
    return tests.filter((_, i) => i % shardCount === shardIndex - 1);
  }
}
