import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where things live. The toolkit's own files (compiled code, templates it ships) are
 * found relative to this module; the operator's workspace (environments/, platform/,
 * secrets/) defaults to the same checkout and is overridden by PLATFORM_WORKDIR (the
 * build container mounts the operator's checkout there).
 */

/** Root of the toolkit checkout: dist/src/paths.js, or a chunk of the CLI bundle in dist/cli/ → ../.. */
export function toolkitRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Root of the operator's workspace (environments/, platform/, secrets/). */
export function workRoot(): string {
  return path.resolve(process.env.PLATFORM_WORKDIR ?? toolkitRoot());
}

export function environmentsDir(): string {
  return path.join(workRoot(), 'environments');
}

/**
 * Local working copy of an environment's secrets bucket: `secrets/<env>/` on the host, so
 * environments never mix; inside the build container the launcher mounts that directory
 * as the container's `secrets/` and sets PLATFORM_SECRETS_DIR (which also serves tests).
 * Layers are its subdirectories: `<secretsDir>/<layer>/<path>` ↔ object `<layer>/<path>`.
 */
export function secretsDir(environment: string): string {
  return path.resolve(process.env.PLATFORM_SECRETS_DIR ?? path.join(workRoot(), 'secrets', environment));
}

/** Per-environment working state of the toolkit (Terraform data dir, plan files): git-ignored. */
export function stateDir(environment: string): string {
  return path.join(workRoot(), '.platform', environment);
}

export function terraformDir(): string {
  return path.join(workRoot(), 'platform', 'terraform');
}

export function manifestsTemplateDir(): string {
  return path.join(workRoot(), 'platform', 'manifests');
}

/** Directory for the embedded local AWS's pid/port file and logs. */
export function localAwsDir(): string {
  return path.resolve(process.env.PLATFORM_LOCAL_AWS_DIR ?? path.join(workRoot(), '.local-aws'));
}

/** Shows a path relative to the working directory when it is inside it (for messages). */
export function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}
