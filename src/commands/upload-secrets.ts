import type { CommandContext } from '../context/command.js';
import { secretStore } from '../context/environment.js';
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
  /**
   * recover layers named with --layer whose current index fails authentication: publish
   * the local copy over the newest authentic version, above every generation seen
   */
  recover?: boolean;
  /** with --recover: do not ask */
  yes?: boolean;
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
export async function uploadSecretsCommand(
  o: UploadSecretsOptions,
  context: CommandContext,
): Promise<number> {
  if (o.recover) return recoverCommand(o, context);
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
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
    // every index is read at once, then every layer is prepared (its files uploaded) at once,
    // sharing the store's requests in flight; no index is written before all are prepared
    const bases = await inLayerOrder(local.map(({ layer }) => readIndexForPublish(store, layer, seen)));
    const prepared: PreparedPublish[] = await inLayerOrder(
      local.map(({ layer, files }, i) =>
        store.prepare(layer, files, { dryRun: o.dryRun, base: bases[i] ?? null }),
      ),
    );
    const rows = prepared.map((p) => p.result);
    if (o.json) {
      context.stdout.write(
        `${JSON.stringify(
          rows.map((r) => ({ layer: r.layer, generation: r.generation, ...r.plan })),
          null,
          2,
        )}\n`,
      );
    } else {
      context.stdout.write(
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
          for (const p of list) context.stdout.write(`${what} ${r.layer}/${p}\n`);
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

/**
 * Waits for every promise (so nothing is still in flight when it returns or throws) and
 * returns their values in order.
 * @throws the error of the first promise, in array order, that was rejected: the error a
 *   one-after-another loop over the layers would have stopped at
 */
async function inLayerOrder<T>(work: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * `upload-secrets --recover --layer L...`: for each layer, shows which stored index versions
 * fail authentication, the newest authentic version that continues the generation chain
 * (the base) and what the local copy will publish on top of it, then — after confirmation,
 * or with --yes — publishes it as a generation above every one seen, written only over the
 * current (corrupt) index object (src/secrets/recover.ts). `--dry-run` stops after showing.
 * @returns 0
 * @throws UserError (2) without --layer, or without a TTY and without --yes (before any
 *   request); the local checks of a normal publish
 * @throws IntegrityError (4) when a layer's current index authenticates (nothing to
 *   recover) or no version continues the chain
 * @throws ConflictError (3) when the index changed while recovering
 */
async function recoverCommand(o: UploadSecretsOptions, context: CommandContext): Promise<number> {
  if (!o.layer?.length) {
    throw new UserError('--recover needs --layer: name the layers whose index is to be recovered');
  }
  if (!o.yes && !o.dryRun && !process.stdin.isTTY) {
    throw new UserError('upload-secrets --recover would ask before publishing, but stdin is not a terminal', {
      hint: `review with --recover --dry-run; publish non-interactively with --recover --yes`,
    });
  }
  const { judgeIndexVersions, planRecovery } = await import('../secrets/recover.js');
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  try {
    const dir = secretsDir(ctx.cfg.name);
    const local: { layer: Layer; files: Awaited<ReturnType<typeof readLayerDir>> }[] = [];
    for (const layer of o.layer) {
      const files = await readLayerDir(dir, layer);
      if (files.length === 0 && !o.allowEmpty) {
        throw new UserError(
          `${displayPath(`${dir}/${layer}`)} is missing or empty: nothing to recover from`,
          {
            hint: 'fetch-secrets cannot help while the index is corrupt: restore the working copy first',
          },
        );
      }
      local.push({ layer, files });
    }
    const { store } = await secretStore(ctx);
    const seen = await readSeen(dir);
    const prepared: PreparedPublish[] = [];
    for (const { layer, files } of local) {
      const plan = planRecovery(layer, await judgeIndexVersions(store, layer), seen[layer] ?? 0);
      for (const f of plan.failed) {
        context.stdout.write(
          `${layer}: index version ${f.versionId}${f.lastModified ? ` (${f.lastModified.toISOString()})` : ''} fails: ${f.error}\n`,
        );
      }
      const base = plan.base.snap;
      const p = await store.prepare(layer, files, { base, dryRun: true });
      context.stdout.write(
        `${layer}: base generation ${base.index.generation} (version ${plan.base.versionId}); will publish generation ${plan.generation}: ${p.result.plan.added.length + p.result.plan.modeChanged.length} added, ${p.result.plan.changed.length} changed, ${p.result.plan.removed.length} removed, ${p.result.plan.unchanged.length} unchanged\n`,
      );
      if (o.dryRun) continue;
      if (!o.yes) {
        const { confirmOrAbort } = await import('../prompt.js');
        await confirmOrAbort(
          `publish ${layer} generation ${plan.generation} from ${displayPath(dir)}?`,
          `non-interactively: upload-secrets -e ${ctx.cfg.name} --recover --layer ${layer} --yes`,
        );
      }
      prepared.push(
        await store.prepare(layer, files, { base, generation: plan.generation, ifMatch: plan.currentEtag }),
      );
    }
    if (o.dryRun) {
      log.info('dry run: nothing published');
      return 0;
    }
    for (const p of prepared) {
      const r = await store.commit(p);
      await recordSeen(dir, { [r.layer]: r.generation });
      log.info(`${r.layer}: recovered, generation ${r.generation} published`);
    }
    return 0;
  } finally {
    await ctx.close();
  }
}
