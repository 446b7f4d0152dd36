import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../src/errors.js';

/**
 * The systemd unit template that runs manifest-sync on nodes,
 * platform/terraform/templates/manifest-sync@.service, rendered here exactly as Terraform's
 * templatefile() renders it for cloud-init, so tests can check the unit nodes get.
 *
 * The template uses only the part of the Terraform template language a unit needs: `${name}`
 * interpolations of string variables and the `$${` escape (a literal `${`); a directive
 * (`%{ ... }`) or an expression other than a bare name is refused, so this renderer and
 * templatefile() cannot disagree. Source: Terraform docs, "Strings and Templates"
 * (interpolation, escape sequences) and "templatefile Function".
 */

/** Variables of the unit template (the same map platform/terraform passes to templatefile()). */
export interface UnitVars {
  /** environment name (KMS encryption context), e.g. `prod` */
  environment: string;
  /** the environment's secrets bucket */
  bucket: string;
  /** AWS region, e.g. `eu-west-1` */
  region: string;
}

/** Values reach ExecStart= unquoted: only characters that need no quoting in a unit file. */
const SAFE_VALUE = /^[A-Za-z0-9._-]{1,255}$/;

/** Path of the unit template in a workspace or toolkit checkout. */
export function unitTemplatePath(root: string): string {
  return path.join(root, 'platform', 'terraform', 'templates', 'manifest-sync@.service');
}

/**
 * Renders a template with templatefile() semantics (the subset above).
 *
 * @param template the template text
 * @param vars every variable the template names
 * @param what the template's name for messages
 * @throws UserError naming the line when a variable is missing or unsafe, or the template uses
 *   syntax outside the subset
 */
export function renderTemplate(template: string, vars: Record<string, string>, what = 'template'): string {
  const lines = template.split('\n');
  return lines
    .map((line, i) => {
      const at = `${what}:${i + 1}`;
      if (/(^|[^%])%\{/.test(line))
        throw new UserError(`${at}: template directives (%{ }) are not supported here`);
      return line.replace(/\$(\$?)\{([^}]*)\}/g, (_m, escaped: string, expr: string) => {
        if (escaped) return `\${${expr}}`;
        const name = expr.trim();
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
          throw new UserError(`${at}: \${${expr}}: only a variable name is supported`);
        const value = vars[name];
        if (value === undefined) throw new UserError(`${at}: vars map does not contain key "${name}"`);
        if (!SAFE_VALUE.test(value))
          throw new UserError(`${at}: ${name}=${JSON.stringify(value)}: must match ${SAFE_VALUE}`);
        return value;
      });
    })
    .join('\n')
    .replace(/%%\{/g, '%{');
}

/**
 * Reads and renders the manifest-sync unit template.
 * @param root workspace root holding platform/terraform/templates/
 * @returns the unit file text cloud-init installs as /etc/systemd/system/manifest-sync@.service
 * @throws UserError as {@link renderTemplate}
 */
export async function renderUnit(root: string, vars: UnitVars): Promise<string> {
  const file = unitTemplatePath(root);
  return renderTemplate(await readFile(file, 'utf8'), { ...vars }, file);
}

/**
 * The options the unit passes to node itself (before the agent's script), so benchmarks run
 * the agent exactly as nodes do.
 * @param unit a rendered unit ({@link renderUnit})
 * @throws UserError when the unit has no `ExecStart=<node> ... <script>.mjs` line
 */
export function agentNodeFlags(unit: string): string[] {
  const line = unit.split('\n').find((l) => l.startsWith('ExecStart='));
  const words = line?.slice('ExecStart='.length).split(/\s+/) ?? [];
  const script = words.findIndex((w) => w.endsWith('.mjs'));
  if (script < 1)
    throw new UserError('the manifest-sync unit has no "ExecStart=<node> [flags] <script>.mjs" line');
  return words.slice(1, script);
}
