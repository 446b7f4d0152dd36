import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The repository root (tests run from dist/test/...). */
export const REPO = path.resolve(import.meta.dirname, '..', '..', '..');
export const CLI = path.join(REPO, 'scripts', 'kube-platform');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The env file of a shared (non-play) environment that passes the enforced policy:
 * environments/play.env with the SSH and API access lists narrowed to TEST-NET-3
 * (203.0.113.0/24, RFC 5737), the account pinned to moto's 123456789012, and the
 * documented control-plane waivers of environments/example-prod.env.
 */
export function sharedEnvFile(): string {
  const waivers = readFileSync(path.join(REPO, 'environments', 'example-prod.env'), 'utf8').match(
    /^POLICY_WAIVERS=.*$/m,
  )?.[0];
  if (!waivers) throw new Error('environments/example-prod.env has no POLICY_WAIVERS line');
  return readFileSync(path.join(REPO, 'environments', 'play.env'), 'utf8')
    .replace('SSH_ACCESS_LIST=0.0.0.0/0', 'SSH_ACCESS_LIST=203.0.113.0/24')
    .replace('KUBEAPI_ACCESS_LIST=0.0.0.0/0', 'KUBEAPI_ACCESS_LIST=203.0.113.0/24')
    .concat('AWS_ACCOUNT_ID=123456789012\n', `${waivers}\n`);
}

/**
 * A throw-away operator workspace: environments/ copied from the repo (plus extra env
 * files), platform/ linked to the repo's, its own secrets/ and HOME.
 */
export function workspace(extraEnvs: Record<string, string> = {}): { dir: string; home: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kp-ws-'));
  cpSync(path.join(REPO, 'environments'), path.join(dir, 'environments'), { recursive: true });
  cpSync(path.join(REPO, 'platform'), path.join(dir, 'platform'), { recursive: true });
  for (const [name, text] of Object.entries(extraEnvs)) {
    cpSync(path.join(REPO, 'environments', 'play.env'), path.join(dir, 'environments', `${name}.env`));
    if (text) writeFileSync(path.join(dir, 'environments', `${name}.env`), text);
  }
  const home = path.join(dir, 'home');
  mkdirSync(home);
  return { dir, home };
}

/** Runs the built CLI (`scripts/kube-platform ARGS`) with extra environment; never throws. */
export function cli(
  args: string[],
  env: Record<string, string | undefined>,
  input?: string,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}
