import { type AgentConnection, type AgentOptions, connectNodeMode, runManifestSync } from '../agent/run.js';
import { ensureLocalAws } from '../aws/local.js';
import type { CommandContext } from '../context/command.js';
import { UserError } from '../errors.js';

/** Options of `manifest-sync` in the toolkit CLI: the agent's, plus the operator mode's. */
export interface ManifestSyncOptions extends AgentOptions {
  /** operator mode: environment file to derive bucket/region from */
  env?: string;
  /** use the embedded local AWS (starts or reuses a moto_server) */
  local?: boolean;
}

/**
 * `manifest-sync` from the toolkit: the node agent (src/agent/run.ts) against the bucket of
 * `-e ENV` (operator mode), or of `--bucket`/`--environment`/`--region` (node mode, as the
 * agent's bundle runs it), with the embedded local AWS when `--local` is given.
 * @returns exit code 0
 * @throws as {@link runManifestSync}; UserError (exit 2) when neither mode is given
 */
export async function manifestSyncCommand(o: ManifestSyncOptions, context: CommandContext): Promise<number> {
  return runManifestSync(o, async (): Promise<AgentConnection> => {
    if (o.bucket) {
      const environment = o.environment ?? o.env;
      if (!environment || !o.region) throw new UserError('--bucket needs --environment and --region');
      if (!o.local) return connectNodeMode({ ...o, environment });
      const local = await ensureLocalAws();
      const conn = await connectNodeMode({ ...o, environment }, local).catch(async (e: unknown) => {
        await local.stop();
        throw e;
      });
      return {
        ...conn,
        close: async () => {
          await conn.close();
          await local.stop();
        },
      };
    }
    if (!o.env) throw new UserError('give -e ENV (operator) or --environment, --bucket and --region (node)');
    const { secretStore } = await import('../context/environment.js');
    const ctx = await context.openEnvironment({ env: o.env, local: o.local });
    const { store } = await secretStore(ctx);
    return { store, nodeMode: false, close: ctx.close };
  });
}
