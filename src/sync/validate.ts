import { parseAllDocuments } from 'yaml';
import { IntegrityError } from '../errors.js';

/**
 * Checks that bytes are one YAML document describing a Pod (a static pod for kubelet:
 * apiVersion v1, kind Pod, metadata.name, spec.containers non-empty) before the agent
 * writes it into kubelet's staticPodPath.
 * Source: Kubernetes docs, "Create static Pods"; core/v1 Pod.
 * @throws IntegrityError naming the object
 */
export function validateStaticPod(data: Buffer, what: string): void {
  const docs = parseAllDocuments(data.toString('utf8'));
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length !== 1) throw new IntegrityError(`${what}: expected one YAML document, found ${list.length}`);
  const doc = list[0]!;
  if (doc.errors.length) throw new IntegrityError(`${what}: invalid YAML: ${doc.errors[0]!.message}`);
  const pod = doc.toJS() as {
    apiVersion?: unknown;
    kind?: unknown;
    metadata?: { name?: unknown };
    spec?: { containers?: unknown };
  };
  if (pod?.apiVersion !== 'v1' || pod.kind !== 'Pod') {
    throw new IntegrityError(`${what}: not a v1 Pod (static pods must be kind: Pod)`);
  }
  if (typeof pod.metadata?.name !== 'string' || !pod.metadata.name) {
    throw new IntegrityError(`${what}: metadata.name is missing`);
  }
  if (!Array.isArray(pod.spec?.containers) || pod.spec.containers.length === 0) {
    throw new IntegrityError(`${what}: spec.containers is empty`);
  }
}
