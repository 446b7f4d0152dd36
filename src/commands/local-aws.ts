import { ensureLocalAws, stopLocalAws } from '../aws/local.js';
import type { CommandContext } from '../context/command.js';
import { log } from '../log.js';

/** Options of `local-aws`. */
export interface LocalAwsOptions {
  action: 'start' | 'stop' | 'env';
}

/**
 * `local-aws start|stop|env`: the persistent embedded local AWS that `make local` and the
 * launchers' `--local` use, so that state survives between commands.
 * - start: start one (or reuse the running one) and leave it running
 * - env: like start, then print `export` lines for a shell (`eval "$(local-aws env)"`)
 * - stop: stop the recorded one
 * @returns 0
 */
export async function localAwsCommand(o: LocalAwsOptions, context: CommandContext): Promise<number> {
  const { action } = o;
  switch (action) {
    case 'start':
    case 'env': {
      const saved = process.env.AWS_ENDPOINT_URL;
      const local = await ensureLocalAws({ persistent: true });
      if (action === 'start') log.info(`local AWS at ${local.endpoint}`);
      else {
        for (const [k, v] of Object.entries(local.env)) context.stdout.write(`export ${k}=${v}\n`);
        // the SDK prefers a profile over exported keys: no real profile against the local AWS
        context.stdout.write('unset AWS_PROFILE\n');
      }
      if (saved) log.debug('AWS_ENDPOINT_URL was set: used as-is');
      return 0;
    }
    case 'stop':
      log.info((await stopLocalAws()) ? 'local AWS stopped' : 'no local AWS was running');
      return 0;
  }
}
