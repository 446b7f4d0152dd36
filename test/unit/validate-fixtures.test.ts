import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { toolkitRoot } from '../../src/paths.js';
import { type ClusterSnapshot, validateSnapshot } from '../../src/validate/checks.js';

/**
 * Fixture cases for `validate`'s checks: every folder under test/fixtures/validate/ is a
 * test. A case holds `snapshot.json` (a {@link ClusterSnapshot}: ASGs, instances, Nodes,
 * Pods, the masters' status records with their health, the secure generation, the
 * certificates) and `expect.json` ({ failures: [messages] }): exactly these failure
 * messages, in this order; `healthy` expects none.
 */

const dir = path.join(toolkitRoot(), 'test', 'fixtures', 'validate');
const cases = readdirSync(dir, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

function load(name: string): { snapshot: ClusterSnapshot; failures: string[] } {
  const raw = JSON.parse(readFileSync(path.join(dir, name, 'snapshot.json'), 'utf8')) as ClusterSnapshot & {
    now: string;
  };
  const { failures } = JSON.parse(readFileSync(path.join(dir, name, 'expect.json'), 'utf8')) as {
    failures: string[];
  };
  return { snapshot: { ...raw, now: new Date(raw.now) }, failures };
}

test('the fixtures hold a healthy cluster and the broken ones the issue names', () => {
  expect(cases).toEqual(
    expect.arrayContaining([
      'healthy',
      'not-ready-node',
      'missing-scheduler-pod',
      'pending-critical-pod',
      'unhealthy-member',
      'stale-generation',
      'expiring-certificate',
    ]),
  );
});

describe.each(cases)('fixture %s', (name) => {
  test('validate reports exactly the expected failures', () => {
    const { snapshot, failures } = load(name);
    expect(validateSnapshot(snapshot).map((f) => f.message)).toEqual(failures);
  });
});

test('every broken fixture differs from the healthy one in one failure only', () => {
  for (const c of cases.filter((x) => x !== 'healthy')) expect(load(c).failures).toHaveLength(1);
});
