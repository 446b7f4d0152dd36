import { listInstances } from '../aws/inventory.js';
import type { CommandContext } from '../context/command.js';
import { secretStore } from '../context/environment.js';
import { TimeoutError } from '../errors.js';
import {
  type ConvergenceResult,
  checkConvergence,
  formatConvergence,
  instancesForLayer,
  layerNodesLabel,
  readLayerStatuses,
  waitForConvergence,
} from '../fleet/convergence.js';
import { log } from '../log.js';
import type { Layer } from '../secrets/layers.js';
import { statusProblem } from '../secrets/status.js';
import { renderTable } from '../table.js';

/** Options of `sync-status`. */
export interface SyncStatusOptions {
  env: string;
  local?: boolean;
  /** layers to report (commander checked the names) @default ['common', 'secure', 'compute'] */
  layer?: Layer[];
  /** print JSON on stdout instead of a table */
  json?: boolean;
  /** wait until every instance applied the current generation */
  wait?: boolean;
  /** seconds --wait waits before exit code 5 @default 120 */
  timeout: number;
}

/** One row of the report: an instance of a layer and what its agent applied. */
export interface SyncStatusRow {
  layer: string;
  instanceId: string;
  name: string;
  /** generation the agent applied; null when it never reported */
  generation: number | null;
  /** generation of the layer's index now */
  current: number;
  /** seconds since its last report (heartbeat or change); null when it never reported */
  ageS: number | null;
  /** the agent's error or refused files; null when converged or only behind */
  error: string | null;
  converged: boolean;
}

/**
 * `sync-status`: for each layer, every running instance that syncs it (from the inventory)
 * with the generation its manifest-sync agent applied, the age of its last report and its
 * error; with `--wait`, waits until every one applied the layer's current generation.
 * Table or JSON on stdout, progress and the summary lines on stderr.
 * @returns 0
 * @throws TimeoutError (exit 5) when a layer that has a generation has no running instance
 *   (zero instances is not success); TimeoutError (exit 5) when `--wait` ran out of
 *   time, naming each instance that did not converge and why
 */
export async function syncStatusCommand(o: SyncStatusOptions, context: CommandContext): Promise<number> {
  const layers = o.layer?.length ? o.layer : ['common', 'secure', 'compute'];
  const timeoutS = o.timeout;
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  try {
    const { store } = await secretStore(ctx);
    const inventory = await listInstances(ctx.aws, ctx.cfg.name);
    const rows: SyncStatusRow[] = [];
    const results: ConvergenceResult[] = [];
    const targets: { layer: string; current: number; instances: typeof inventory }[] = [];
    for (const layer of layers) {
      const snap = await store.readIndex(layer);
      const current = snap && snap !== 'not-modified' ? snap.index.generation : 0;
      const instances = instancesForLayer(inventory, layer);
      if (current === 0 && instances.length === 0) continue;
      targets.push({ layer, current, instances });
    }
    // --timeout is the total: every layer is waited for at once, against one deadline
    const waits = o.wait
      ? await Promise.all(
          targets.map((t) =>
            waitForConvergence({
              store,
              instances: t.instances,
              layer: t.layer,
              generation: t.current,
              timeoutS,
            }),
          ),
        )
      : undefined;
    for (const [i, { layer, current, instances }] of targets.entries()) {
      const waited = waits?.[i];
      const statuses = await readLayerStatuses(store, layer);
      const now = Date.now();
      const check = checkConvergence(instances, statuses, layer, current, now);
      results.push(waited ?? { ...check, elapsedS: 0 });
      const missing = new Set(check.missing.map((m) => m.instanceId));
      for (const i of instances) {
        const s = statuses.get(i.instanceId);
        rows.push({
          layer,
          instanceId: i.instanceId,
          name: i.name,
          generation: s?.generation ?? null,
          current,
          ageS: s ? Math.max(0, Math.round((now - Date.parse(s.heartbeatAt)) / 1000)) : null,
          error: (s && statusProblem(s)) ?? null,
          converged: !missing.has(i.instanceId),
        });
      }
    }
    if (o.json) {
      context.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    } else {
      context.stdout.write(
        `${await renderTable(
          ['Layer', 'Instance', 'Name', 'Generation', 'Age', 'Error'],
          rows.map((r) => [
            r.layer,
            r.instanceId,
            r.name,
            r.generation === null ? null : `${r.generation}/${r.current}`,
            r.ageS === null ? null : `${r.ageS} s`,
            r.error ?? (r.converged ? '' : r.generation === null ? 'no status reported' : 'behind'),
          ]),
        )}\n`,
      );
    }
    for (const r of results) {
      log.info(
        r.total === 0
          ? `${layerNodesLabel(r.layer)}: no running instances`
          : formatConvergence(r, Boolean(o.wait)),
      );
    }
    // zero instances is not convergence: after cleanup, "converged 0/0" would read as healthy
    const empty = results.filter((r) => r.total === 0);
    if (!results.length) {
      throw new TimeoutError(
        `no layer of ${ctx.cfg.name} has been published and no instance runs: nothing to report`,
      );
    }
    if (empty.length) {
      throw new TimeoutError(
        `no running instances for ${empty.map((r) => `${r.layer} (generation ${r.generation})`).join(', ')}: nothing has converged`,
        { hint: 'is the environment up? aws-instances lists its instances' },
      );
    }
    const late = results.filter((r) => r.converged < r.total);
    if (o.wait && late.length) throw new TimeoutError(late.map((r) => formatConvergence(r)).join('\n'));
    return 0;
  } finally {
    await ctx.close();
  }
}
