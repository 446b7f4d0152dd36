import { openEnvironment, secretStore } from '../context/environment.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { displayPath, secretsDir } from '../paths.js';
import { isEmptyPlan } from '../secrets/index-format.js';
import { LAYERS, type Layer } from '../secrets/layers.js';
import { layerDirState, readLayerDir } from '../secrets/local.js';
import { readIndexForPublish, readSeen, recordSeen } from '../secrets/seen.js';
import type { PreparedPublish } from '../secrets/store.js';
import { renderTable } from '../table.js';

/** Options of `upload-secrets`. */
export interface UploadSecretsOptions {
  env: string;
  local?: boolean;
  /** print the plan (added, changed, removed per layer) and touch nothing */
  dryRun?: boolean;
  /** layers to publish; default every layer present locally */
  layer?: Layer[];
  json?: boolean;
  /**
   * publish a layer named with --layer even when its local directory is missing or empty:
   * the layer is emptied, and every node's agent removes its files
   */
  allowEmpty?: boolean;
}

/**
 * Publishes `secrets/<env>/` layer by layer. All layers are prepared (files uploaded)
 * before any index is written, so a conflict found on the first index write publishes
 * nothing; the index writes themselves are atomic per layer. Every local check (the layer
 * directories, file names and modes) and every index check comes before the first upload.
 * The generation written is recorded as seen (src/secrets/seen.ts).
 * @returns 0
 * @throws UserError (exit 2) for a layer named with --layer whose directory is missing or
 *   empty (without --allow-empty), a layer path that is a link or not a directory, a file
 *   mode that cannot be published
 * @throws IntegrityError (exit 4) when an index is older than the generation seen, or gone
 * @throws ConflictError (exit 3) when someone else published a layer meanwhile
 */
export async function uploadSecretsCommand(o: UploadSecretsOptions): Promise<number> {
  const ctx = await openEnvironment({ env: o.env, local: o.local });
  try {
    const dir = secretsDir(ctx.cfg.name);
    // read and check every layer first: a refusal comes before any request to the bucket
    const local: { layer: Layer; files: Awaited<ReturnType<typeof readLayerDir>> }[] = [];
    for (const layer of o.layer ?? LAYERS) {
      const missing = (await layerDirState(dir, layer)) === 'missing';
      const files = await readLayerDir(dir, layer);
      if (files.length === 0 && !o.layer) continue;
      if (files.length === 0 && !o.allowEmpty) {
        throw new UserError(
          `${displayPath(`${dir}/${layer}`)} is ${missing ? 'missing' : 'empty'}: publishing it would remove every file of layer ${layer} from every node; nothing was published`,
          { hint: `to empty the layer on purpose: upload-secrets --layer ${layer} --allow-empty` },
        );
      }
      local.push({ layer, files });
    }
    const { store, keys } = await secretStore(ctx);
    const seen = await readSeen(dir);
    const bases = new Map<Layer, Awaited<ReturnType<typeof readIndexForPublish>>>();
    for (const { layer } of local) bases.set(layer, await readIndexForPublish(store, layer, seen));
    const prepared: PreparedPublish[] = [];
    for (const { layer, files } of local) {
      prepared.push(await store.prepare(layer, files, { dryRun: o.dryRun, base: bases.get(layer) ?? null }));
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
      if (isEmptyPlan(p.result.plan)) {
        if (p.result.generation > 0) await recordSeen(dir, { [p.result.layer]: p.result.generation });
        continue;
      }
      const r = await store.commit(p);
      await recordSeen(dir, { [r.layer]: r.generation });
      log.info(`${r.layer}: published generation ${r.generation}`);
    }
    log.info(`${store.puts} PutObject, ${keys.requests} KMS requests`);
    return 0;
  } finally {
    await ctx.close();
  }
}
