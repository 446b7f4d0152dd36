import type { LayerIndex } from './index-format.js';

/**
 * Pure planning for fetch-secrets: how the local working copy of one layer compares with
 * its index.
 */
export interface FetchPlan {
  /** not present locally: write */
  add: string[];
  /** identical content; mode may need fixing */
  same: string[];
  /** present locally with other content: written only with --force */
  differ: string[];
}

/**
 * @param local plaintext SHA-256 of each local file of the layer (missing = absent)
 */
export function planFetch(index: LayerIndex, local: Record<string, string | undefined>): FetchPlan {
  const plan: FetchPlan = { add: [], same: [], differ: [] };
  for (const [p, e] of Object.entries(index.files).sort(([a], [b]) => a.localeCompare(b))) {
    const have = local[p];
    if (have === undefined) plan.add.push(p);
    else if (have === e.sha256) plan.same.push(p);
    else plan.differ.push(p);
  }
  return plan;
}
