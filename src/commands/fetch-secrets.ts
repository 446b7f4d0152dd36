import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CommandContext } from '../context/command.js';
import { secretStore } from '../context/environment.js';
import { ConflictError, PlatformError, UserError } from '../errors.js';
import { atomicWrite, atomicWriteAll, listFiles } from '../fsutil.js';
import { log } from '../log.js';
import { displayPath, secretsDir } from '../paths.js';
import { sha256 } from '../secrets/envelope.js';
import { type FetchPlan, planFetch } from '../secrets/fetch-plan.js';
import { LAYERS, type Layer } from '../secrets/layers.js';
import { checkSeen, readSeen, recordSeen } from '../secrets/seen.js';
import type { IndexSnapshot } from '../secrets/store.js';

/** Options of `fetch-secrets`. */
export interface FetchSecretsOptions {
  env: string;
  local?: boolean;
  /** overwrite local files that differ from the bucket */
  force?: boolean;
  /** layers to fetch; default every layer the caller may read */
  layer?: Layer[];
  /**
   * also merge the shared one-year cluster-admin `locked/admin.conf` into ~/.kube/config, as
   * context `<env>-break-glass` (break-glass only; day to day use export-kubeconfig)
   */
  breakGlass?: boolean;
}

/**
 * True when S3 refused to let these credentials read a layer's index (the layer is not
 * theirs). A KMS refusal after the index was read is not this: it is reported
 * (DecryptDeniedError), never skipped.
 */
function denied(e: unknown): boolean {
  if (e instanceof PlatformError) return false;
  const name = (e as Error).name;
  const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return name === 'AccessDenied' || status === 403;
}

/**
 * Fetches the layers the caller may read into `secrets/<env>/` (directories 0700, files
 * with the index's mode), verifying every digest; refuses (exit 3, nothing written) when a
 * local file differs from the bucket unless --force; leaves the SSH key at
 * `secrets/<env>/locked/ssh/<env>` (0600) for agent-setup. ~/.kube/config is not touched
 * unless --break-glass (the shared admin.conf, as context `<env>-break-glass`); operators'
 * day-to-day credential is their own short-lived one from export-kubeconfig (issue 11 item 20).
 * @returns 0
 */
export async function fetchSecretsCommand(o: FetchSecretsOptions, context: CommandContext): Promise<number> {
  if (o.breakGlass && o.layer && !o.layer.includes('locked'))
    throw new UserError('--break-glass merges locked/admin.conf: add --layer locked');
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  try {
    const dir = secretsDir(ctx.cfg.name);
    const { store } = await secretStore(ctx);
    const seen = await readSeen(dir);
    const plans: { layer: Layer; snap: IndexSnapshot; plan: FetchPlan }[] = [];
    const layers = o.layer ?? LAYERS;
    // every index is read at once (reads only); each is then judged in layer order, so the
    // first error and the log lines are those of reading them one after another
    const reads = layers.map((layer) => store.readIndex(layer));
    for (const r of reads) r.catch(() => {}); // awaited below, in order
    for (const [i, layer] of layers.entries()) {
      let snap: IndexSnapshot | 'not-modified' | undefined;
      try {
        snap = await reads[i];
      } catch (e) {
        if (!o.layer && denied(e)) {
          log.info(`${layer}: not readable with these credentials, skipped`);
          continue;
        }
        throw e;
      }
      if (snap === 'not-modified') throw new Error('unreachable: unconditional read');
      checkSeen(layer, snap, seen);
      if (!snap) {
        log.info(`${layer}: nothing published`);
        continue;
      }
      const local: Record<string, string | undefined> = {};
      for (const p of await listFiles(path.join(dir, layer)))
        local[p] = sha256(await readFile(path.join(dir, layer, p)));
      plans.push({ layer, snap, plan: planFetch(snap.index, local) });
    }
    const differ = plans.flatMap((p) => p.plan.differ.map((f) => `${p.layer}/${f}`));
    if (differ.length && !o.force) {
      throw new ConflictError(
        `${differ.length} local file(s) differ from the bucket; nothing was written:\n${differ.map((f) => `  ${f}`).join('\n')}`,
        { hint: 'publish them with upload-secrets, or overwrite them with fetch-secrets --force' },
      );
    }
    // --break-glass needs admin.conf from the bucket's locked index: refused before any write
    if (o.breakGlass && !plans.some((p) => p.layer === 'locked' && p.snap.index.files['admin.conf']))
      throw new UserError(
        '--break-glass: the locked layer (with admin.conf) is not readable with these credentials; nothing was written',
      );
    // fetch and verify everything first, then write
    const fetched = await Promise.all(
      plans.map(async (p) => ({
        ...p,
        data: await store.fetchAll(
          p.layer,
          p.snap.index,
          (f) => p.plan.add.includes(f) || p.plan.differ.includes(f) || p.plan.same.includes(f),
        ),
      })),
    );
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // each file atomically, several at a time, each directory fsynced once
    await atomicWriteAll(
      fetched.flatMap((p) => {
        const same = new Set(p.plan.same);
        return [...p.data]
          .filter(([f]) => !same.has(f))
          .map(([f, data]) => ({
            file: path.join(dir, p.layer, f),
            data,
            mode: p.snap.index.files[f]!.mode,
          }));
      }),
      { dirMode: 0o700 },
    );
    for (const p of fetched) {
      log.info(
        `${p.layer}: generation ${p.snap.index.generation}: ${p.plan.add.length} added, ${p.plan.differ.length} overwritten, ${p.plan.same.length} up to date`,
      );
    }
    await recordSeen(dir, Object.fromEntries(fetched.map((p) => [p.layer, p.snap.index.generation])));
    if (o.breakGlass) await installKubeconfig(dir, ctx.cfg.name);
    else if (fetched.some((p) => p.layer === 'secure'))
      log.info(`for kubectl: export-kubeconfig -e ${ctx.cfg.name} (your own certificate, 18 h)`);
    const key = path.join(dir, 'locked', 'ssh', ctx.cfg.name);
    if (fetched.some((p) => p.layer === 'locked' && p.data.has(`ssh/${ctx.cfg.name}`))) {
      log.info(`SSH key at ${displayPath(key)} (agent-setup adds it to your agent)`);
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

/**
 * Merges `locked/admin.conf` into $KUBECONFIG's first file or ~/.kube/config (0600) as
 * context `<env>-break-glass` (the caller checked that admin.conf was fetched).
 */
async function installKubeconfig(dir: string, env: string): Promise<void> {
  const admin = path.join(dir, 'locked', 'admin.conf');
  const incoming = await readFile(admin, 'utf8');
  const name = `${env}-break-glass`;
  const target =
    process.env.KUBECONFIG?.split(path.delimiter)[0] || path.join(os.homedir(), '.kube', 'config');
  const existing = await readFile(target, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '';
    throw new PlatformError(`cannot read ${target}: ${e.message}`);
  });
  const { mergeKubeconfig } = await import('../secrets/kubeconfig-merge.js'); // yaml: only for --break-glass
  const merged = mergeKubeconfig(existing, incoming, name, target);
  if (merged !== existing) {
    await atomicWrite(target, merged, 0o600, 0o700);
    log.warn(`context ${name} (shared cluster-admin, break-glass) merged into ${target}`);
  }
}
