import { ManifestError, type ManifestProblem, validateStaticPod } from '../agent/validate.js';

/**
 * The operator side of static pod validation: the same check the node agent applies
 * before it writes a manifest into kubelet's staticPodPath (src/agent/validate.ts: one
 * YAML document, a core/v1 Pod valid against the pinned Kubernetes schema, unknown fields
 * refused), run before anything is published, so a manifest every agent would refuse is
 * never published at all.
 */

export { isManifestFile } from './manifest-path.js';

/**
 * Problems of one static pod manifest, as the agent would report them.
 * @returns each problem with its 1-based line (where known) and field; empty when the
 *   agent would accept the manifest
 */
export function staticPodProblems(content: Buffer | string): ManifestProblem[] {
  try {
    validateStaticPod(Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8'), 'manifest');
    return [];
  } catch (e) {
    if (!(e instanceof ManifestError)) throw e;
    return e.problems;
  }
}

/** `field: message` of a problem (the line is reported separately). */
export function describeProblem(p: ManifestProblem): string {
  return p.field ? `${p.field}: ${p.message}` : p.message;
}
