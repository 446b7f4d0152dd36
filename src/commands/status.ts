import semver from 'semver';
import type { CommandContext } from '../context/command.js';
import { log } from '../log.js';
import { environmentState } from '../state/open.js';
import type { ClusterState } from '../state/schema.js';
import { renderTable } from '../table.js';
import { toolkitVersion } from '../version.js';

/** Options of `status`. */
export interface StatusOptions {
  env: string;
  local?: boolean;
  /** print the whole cluster-state document as JSON on stdout */
  json?: boolean;
}

const DAY_MS = 86_400_000;

/**
 * Renders the cluster state for a terminal: a header line, then one table per section
 * (generations, versions, etcd members, certificates, last validation/rollout/backup,
 * the operation in progress). Pure.
 * @param now reference time for the certificates' days left
 */
export async function formatState(s: ClusterState, where: string, now: Date): Promise<string> {
  const out: string[] = [];
  out.push(
    `cluster state ${where}: revision ${s.revision}, written by kube-platform ${s.toolkitVersion} at ${s.updatedAt}`,
  );
  const gens = Object.entries(s.generations);
  out.push(`generations: ${gens.length ? gens.map(([l, g]) => `${l} ${g}`).join(', ') : 'none recorded'}`);
  const versions = Object.entries(s.versions);
  if (versions.length) {
    out.push(
      await renderTable(
        ['Layer', 'Kubernetes desired', 'Kubernetes observed', 'etcd desired', 'etcd observed'],
        versions.map(([l, v]) => [
          l,
          v.desired.kubernetes,
          v.observed.kubernetes,
          v.desired.etcd,
          v.observed.etcd,
        ]),
      ),
    );
  }
  const members = Object.entries(s.etcdMembers);
  if (members.length) {
    out.push(
      await renderTable(
        ['etcd member', 'IP', 'ENI', 'Volume', 'Instance'],
        members.map(([m, r]) => [m, r.ip, r.eni, r.volume, r.instance]),
      ),
    );
  }
  if (s.pki.length) {
    out.push(
      await renderTable(
        ['Certificate', 'Not after', 'Days left', 'SHA-256'],
        s.pki.map((c) => [
          c.path,
          c.notAfter,
          Math.floor((Date.parse(c.notAfter) - now.getTime()) / DAY_MS),
          `${c.sha256.slice(0, 16)}…`,
        ]),
      ),
    );
  }
  const v = s.lastValidation;
  out.push(
    `last validation: ${v ? `${v.at} ${v.passed ? 'passed' : `failed (${v.failures.length}): ${v.failures.join('; ')}`}` : 'never'}`,
  );
  const r = s.lastRollout;
  out.push(
    `last rollout: ${r ? `${r.at} roll ${r.layer} ${r.result}, replaced ${r.replaced.length}${r.skipped.length ? `, skipped ${r.skipped.join(', ')}` : ''}` : 'never'}`,
  );
  out.push(`last backup: ${s.lastBackup ? `${s.lastBackup.at} ${s.lastBackup.key}` : 'never'}`);
  const op = s.operation;
  if (op) {
    out.push(
      `operation in progress: ${op.kind} ${op.layer} (${op.id}) by ${op.owner.arn} on ${op.owner.host}, started ${op.startedAt}, heartbeat ${op.heartbeatAt}${op.interruptedAt ? `, interrupted ${op.interruptedAt}` : ''}; ${op.steps.length} steps recorded`,
    );
  } else out.push('operation in progress: none');
  return out.join('\n');
}

/**
 * `status`: prints the environment's cluster state (the document in the state bucket),
 * as tables or, with `--json`, the document itself. Reads only. A state written by a newer
 * toolkit is shown with a warning (acting on it needs --allow-downgrade).
 * @returns 0 (also when no state has been written yet: the empty document, revision 0)
 * @throws IntegrityError (exit 4) when the document fails authentication; ValidationError
 *   (exit 2) when it does not match the schema, naming each key
 */
export async function statusCommand(o: StatusOptions, context: CommandContext): Promise<number> {
  const ctx = await context.openEnvironment({ env: o.env, local: o.local, quiet: Boolean(o.json) });
  try {
    const store = await environmentState(ctx.aws, ctx.cfg.name, ctx.names);
    const snap = await store.read();
    if (snap.state.revision === 0) log.info(`no cluster state written yet at ${store.where} (run writes it)`);
    const ours = toolkitVersion();
    if (semver.valid(snap.state.toolkitVersion) && semver.gt(snap.state.toolkitVersion, ours)) {
      log.warn(
        `written by kube-platform ${snap.state.toolkitVersion}, newer than this toolkit (${ours}): commands that change the cluster refuse without --allow-downgrade`,
      );
    }
    if (o.json) context.stdout.write(`${JSON.stringify(snap.state, null, 2)}\n`);
    else context.stdout.write(`${await formatState(snap.state, store.where, new Date())}\n`);
    return 0;
  } finally {
    await ctx.close();
  }
}
