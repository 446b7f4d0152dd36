/**
 * Layers are trust boundaries (DESIGN.md §4): who may read what.
 * - common: every node; secure: masters/etcd; compute: workers; locked: operators only.
 */
export const LAYERS = ['common', 'secure', 'compute', 'locked'] as const;
export type Layer = (typeof LAYERS)[number];

export function isLayer(s: string): s is Layer {
  return (LAYERS as readonly string[]).includes(s);
}

/**
 * A safe layer-relative path: segments of [A-Za-z0-9._-], no empty, `.` or `..` segment,
 * not absolute. Anything else in an index is hostile (it could escape the destination).
 */
export const SAFE_PATH_RE = /^(?!.*(^|\/)\.{1,2}(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export function isSafePath(p: string): boolean {
  return p.length <= 512 && SAFE_PATH_RE.test(p);
}
