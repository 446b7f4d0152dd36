import { restoreDecision } from '../../src/changeset/restore.js';
import type { Layer } from '../../src/secrets/layers.js';
import type { IndexSnapshot } from '../../src/secrets/store.js';

/** restoreDecision: when `run` plans from the bucket, from the working copy, or refuses. */
const snap = (generation: number) => ({ index: { generation } }) as unknown as IndexSnapshot;
const bases = (g: Partial<Record<Layer, number | null>>) =>
  new Map(Object.entries(g).map(([l, n]) => [l as Layer, n === null ? null : snap(n!)]));

test.each([
  ['nothing published, empty copy', bases({ secure: null, locked: null }), {}, 0, 'in-step'],
  ['every generation seen', bases({ secure: 3, locked: 1 }), { secure: 3, locked: 1 }, 12, 'in-step'],
  [
    "seen newer than the bucket is checkSeen's (replay), not a restore",
    bases({ secure: 2 }),
    { secure: 3 },
    5,
    'in-step',
  ],
  ['fresh copy, bucket published', bases({ secure: 3, locked: 1 }), {}, 0, 'restore'],
  ['seen file kept but files deleted', bases({ secure: 3 }), { secure: 2 }, 0, 'restore'],
  ['files but never fetched', bases({ secure: 3 }), {}, 4, 'conflict'],
  ['files, one layer behind', bases({ secure: 3, locked: 1 }), { secure: 2, locked: 1 }, 9, 'conflict'],
] as const)('%s', (_name, b, seen, files, kind) => {
  const d = restoreDecision(b, seen, files);
  expect(d.kind).toBe(kind);
  if (d.kind === 'conflict')
    expect(d.behind.join('; ')).toMatch(/secure is at generation 3, this copy saw (none|2)/);
});
