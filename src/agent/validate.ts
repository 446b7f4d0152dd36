import type { ErrorObject } from 'ajv';
import { isMap, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import { IntegrityError } from '../errors.js';
import { validate as podSchemaValidate } from '../generated/pod-v1.34.validate.js';
import { POD_SCHEMA_VERSION } from './schema/pod-v1.34.js';

/**
 * Validation of a static pod manifest before manifest-sync writes it into kubelet's
 * staticPodPath: exactly one YAML document (no duplicate keys), a core/v1 Pod valid against
 * the strict JSON Schema of the pinned Kubernetes release (src/agent/schema/pod-v1.34.ts:
 * unknown fields, wrong types and missing required fields are errors, as with kubectl's
 * strict field validation), with `metadata.name` set (kubelet names the mirror pod after it).
 * Sources: Kubernetes docs "Create static Pods", "Field validation" (server-side strict),
 * API reference core/v1 Pod v1.34.
 */

/** The Kubernetes release manifests are validated against, e.g. `v1.34.0`. */
export const KUBERNETES_SCHEMA_VERSION = POD_SCHEMA_VERSION;

/** One thing wrong with a manifest. */
export interface ManifestProblem {
  /** 1-based line in the manifest, when the problem can be placed */
  line?: number;
  /** field path, e.g. `spec.containers[0].imagePullPolicy`; empty for the document itself */
  field: string;
  message: string;
}

/** A manifest that is not a valid static pod. Exit code 4 (the data failed verification). */
export class ManifestError extends IntegrityError {
  readonly problems: ManifestProblem[];
  constructor(what: string, problems: ManifestProblem[]) {
    const shown = problems.slice(0, 5).map((p) => formatManifestProblem(what, p));
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    super(`${shown.join('; ')}${more}`);
    this.problems = problems;
  }
}

/** `what:line: field: message`, the shape editors and CI annotate. */
export function formatManifestProblem(what: string, p: ManifestProblem): string {
  const where = p.line === undefined ? what : `${what}:${p.line}`;
  return p.field ? `${where}: ${p.field}: ${p.message}` : `${where}: ${p.message}`;
}

/**
 * The schema's validator: POD_SCHEMA compiled ahead of time by Ajv into standalone code
 * (tools/generate-pod-schema.ts), so the agent neither ships Ajv nor compiles at run time.
 */
const podValidator = podSchemaValidate as unknown as ((data: unknown) => boolean) & {
  errors?: ErrorObject[] | null;
};

/**
 * Drops object properties whose value is null, recursively: the Kubernetes JSON decoder
 * treats `field: null` as "unset" (e.g. `creationTimestamp: null`, which kubeadm writes into
 * static pod manifests). Array elements are kept (a null element stays an error).
 */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNulls(x);
    return out;
  }
  return v;
}

/** JSON pointer segments (`/spec/containers/0`) → `spec.containers[0]`. */
function fieldPath(segments: string[]): string {
  let out = '';
  for (const s of segments) out += /^\d+$/.test(s) ? `[${s}]` : out ? `.${s}` : s;
  return out;
}

function describe(e: ErrorObject): { segments: string[]; message: string } {
  const segments = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return {
        segments: [...segments, String(p.additionalProperty)],
        message: `unknown field (not in core/v1 Pod ${POD_SCHEMA_VERSION})`,
      };
    case 'required':
      return { segments, message: `missing required field "${String(p.missingProperty)}"` };
    case 'const':
      return { segments, message: `must be ${JSON.stringify(p.allowedValue)}` };
    default:
      return { segments, message: e.message ?? e.keyword };
  }
}

/**
 * Checks that `data` is a valid static pod manifest.
 *
 * @param data the manifest's bytes (UTF-8 YAML or JSON)
 * @param what how to name it in messages, e.g. `secure/manifests/etcd.yaml`
 * @throws ManifestError (an IntegrityError, exit 4) listing every problem with its line and
 *   field: invalid YAML, duplicate keys, not exactly one document, not a v1 Pod, unknown
 *   fields, wrong types, missing required fields, no metadata.name
 */
export function validateStaticPod(data: Buffer, what: string): void {
  const lines = new LineCounter();
  const docs = parseAllDocuments(data.toString('utf8'), { lineCounter: lines, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? undefined : lines.linePos(offset).line;
  if (list.length !== 1) {
    throw new ManifestError(what, [
      { field: '', message: `expected one YAML document, found ${list.length}` },
    ]);
  }
  const doc = list[0]!;
  if (doc.errors.length) {
    throw new ManifestError(
      what,
      doc.errors.map((e) => ({
        line: e.linePos?.[0]?.line,
        field: '',
        message: `invalid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
    );
  }
  const pod = dropNulls(doc.toJS({ maxAliasCount: 100 })) as { metadata?: { name?: unknown } } | null;
  const problems: ManifestProblem[] = [];
  if (!podValidator(pod)) {
    for (const e of podValidator.errors ?? []) {
      const { segments, message } = describe(e);
      // the closest YAML node to the problem gives its line
      let node: unknown = doc.contents;
      let line = lineOf((node as Node | null)?.range?.[0]);
      for (const s of segments) {
        if (isMap(node)) {
          const pair = node.items.find((i) => (i.key as { value?: unknown } | null)?.value === s);
          if (!pair) break;
          line = lineOf((pair.key as Node | null)?.range?.[0]) ?? line;
          node = pair.value;
        } else if (isSeq(node)) {
          node = node.items[Number(s)];
          line = lineOf((node as Node | null)?.range?.[0]) ?? line;
        } else break;
      }
      problems.push({ line, field: fieldPath(segments), message });
    }
  }
  if (problems.length === 0 && (typeof pod?.metadata?.name !== 'string' || pod.metadata.name === '')) {
    problems.push({ field: 'metadata.name', message: 'a static pod needs a name' });
  }
  if (problems.length) {
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ManifestError(what, problems);
  }
}
