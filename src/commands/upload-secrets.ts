import { log } from '../log.js';
import { displayPath, secretsDir } from '../paths.js';
import { isEmptyPlan } from '../secrets/index-format.js';
import { LAYERS, type Layer } from '../secrets/layers.js';
import { readLayerDir } from '../secrets/local.js';
import type { PreparedPublish } from '../secrets/store.js';
import { renderTable } from '../table.js';
import { openEnvironment, secretStore } from './context.js';

/** Options of `upload-secrets`. */
export interface UploadSecretsOptions {
  env: string;
  local?: boolean;
  /** print the plan (added, changed, removed per layer) and touch nothing */
  dryRun?: boolean;
  /** layers to publish; default every layer present locally */
  layer?: Layer[];
  json?: boolean;
}

/**
 * Publishes `secrets/<env>/` layer by layer. All layers are prepared (files uploaded)
 * before any index is written, so a conflict found on the first index write publishes
 * nothing; the index writes themselves are atomic per layer.
 * @returns 0
 * @throws ConflictError (exit 3) when someone else published a layer meanwhile
 */
export async function uploadSecretsCommand(o: UploadSecretsOptions): Promise<number> {
  const ctx = await openEnvironment({ env: o.env, local: o.local });
  try {
    const dir = secretsDir(ctx.cfg.name);
    const { store, keys } = await secretStore(ctx);
    const prepared: PreparedPublish[] = [];
    for (const layer of o.layer ?? LAYERS) {
      const files = await readLayerDir(dir, layer);
      if (files.length === 0 && !o.layer) continue;
      prepared.push(await store.prepare(layer, files, { dryRun: o.dryRun }));
    }
    const rows = prepared.map((p) => p.result);
    if (o.json) {
      process.stdout.write(
        `${JSON.stringify(
          rows.map((r) => ({ layer: r.layer, generation: r.generation, ...r.plan })),
          null,
          2,
        )}\n`,
      );
    } else {
      process.stdout.write(
        `${await renderTable(
          ['Layer', 'Generation', 'Added', 'Changed', 'Removed', 'Unchanged'],
          rows.map((r) => [
            r.layer,
            r.generation,
            r.plan.added.length + r.plan.modeChanged.length,
            r.plan.changed.length,
            r.plan.removed.length,
            r.plan.unchanged.length,
          ]),
        )}\n`,
      );
      for (const r of rows) {
        for (const [what, list] of [
          ['+', r.plan.added],
          ['~', [...r.plan.changed, ...r.plan.modeChanged]],
          ['-', r.plan.removed],
        ] as const) {
          for (const p of list) process.stdout.write(`${what} ${r.layer}/${p}\n`);
        }
      }
    }
    if (o.dryRun) {
      log.info(`dry run: nothing uploaded (${displayPath(dir)})`);
      return 0;
    }
    for (const p of prepared) {
      if (isEmptyPlan(p.result.plan)) continue;
      const r = await store.commit(p);
      log.info(`${r.layer}: published generation ${r.generation}`);
    }
    log.info(`${store.puts} PutObject, ${keys.requests} KMS requests`);
    return 0;
  } finally {
    await ctx.close();
  }
}
