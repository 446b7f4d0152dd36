import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CommandContext } from '../context/command.js';
import { PlatformError, UserError } from '../errors.js';
import { atomicWrite, readRegularFile } from '../fsutil.js';
import { log } from '../log.js';
import { displayPath, secretsDir } from '../paths.js';
import { mergeKubeconfig } from '../secrets/kubeconfig-merge.js';
import {
  DEFAULT_LIFETIME_S,
  issueOperatorKubeconfig,
  operatorName,
  parseLifetimeS,
} from '../secrets/pki/operator.js';

/** Options of `export-kubeconfig`. */
export interface ExportKubeconfigOptions {
  env: string;
  local?: boolean;
  /** how long the certificate is valid (ssh time format) @default 18h */
  lifetime?: string;
  /** the API server URL @default https://<KUBEAPI public name>:443, as admin.conf */
  server?: string;
  /** the kubeconfig to merge into @default $KUBECONFIG's first file, else ~/.kube/config */
  kubeconfig?: string;
}

/**
 * `export-kubeconfig`: issues the operator a client certificate of their own — user name
 * from the AWS identity, group `kubeadm:cluster-admins`, valid for `--lifetime` (18 h) —
 * signed by the environment's Kubernetes CA from the local working copy
 * (`secrets/<env>/secure/pki/`, fetched with fetch-secrets), and merges it into the
 * kubeconfig as context `<env>` (other contexts untouched; file 0600). The shared
 * `locked/admin.conf` stays where it is, for break-glass. Nothing is written to AWS.
 * @returns 0
 * @throws UserError (2) for a bad --lifetime/--server, no CA in the working copy, or an
 *   identity without an operator name
 */
export async function exportKubeconfigCommand(
  o: ExportKubeconfigOptions,
  context: CommandContext,
): Promise<number> {
  const lifetimeS = o.lifetime === undefined ? DEFAULT_LIFETIME_S : parseLifetimeS(o.lifetime);
  if (o.server !== undefined && !/^https:\/\/[^\s/]+(:\d+)?\/?$/.test(o.server)) {
    throw new UserError(`--server ${o.server}: must be an https:// URL (TLS is always verified)`);
  }
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  try {
    const env = ctx.cfg.name;
    const name = operatorName(ctx.identity.arn);
    const pki = path.join(secretsDir(env), 'secure', 'pki');
    const read = async (f: string) =>
      (
        await readRegularFile(path.join(pki, f)).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
          throw new UserError(
            `${displayPath(path.join(pki, f))} is missing: the Kubernetes CA signs your certificate`,
            {
              hint: `fetch-secrets -e ${env} --layer secure`,
            },
          );
        })
      ).toString('utf8');
    const cred = await issueOperatorKubeconfig({
      environment: env,
      name,
      server: o.server ?? `https://${ctx.cfg.kubeapiPublicName}:443`,
      caCertPem: await read('ca.crt'),
      caKeyPem: await read('ca.key'),
      lifetimeS,
      caWhere: displayPath(pki),
    });
    const target =
      o.kubeconfig ??
      (process.env.KUBECONFIG?.split(path.delimiter)[0] || path.join(os.homedir(), '.kube', 'config'));
    const existing = await readFile(target, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw new PlatformError(`cannot read ${target}: ${e.message}`);
    });
    await atomicWrite(target, mergeKubeconfig(existing, cred.kubeconfig, env, target), 0o600, 0o700);
    const hours = ((cred.notAfter.getTime() - Date.now()) / 3_600_000).toFixed(1);
    log.info(
      `context ${env} in ${target}: user ${cred.user} (groups ${cred.groups.join(', ')}), valid until ${cred.notAfter.toISOString()} (${hours} h)`,
    );
    context.stdout.write(
      `${JSON.stringify({ context: env, user: cred.user, groups: cred.groups, notAfter: cred.notAfter.toISOString(), kubeconfig: target })}\n`,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
