import { constants as fsc } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { displayPath } from '../paths.js';

/**
 * The Terraform/OpenTofu CLI configuration the driver hands to the binary (TF_CLI_CONFIG_FILE):
 * where providers are installed from. The template is `platform/terraform/cli.tfrc.tmpl`;
 * `{{MIRROR}}` is replaced by the mirror directory as an HCL string literal.
 * https://developer.hashicorp.com/terraform/cli/config/config-file#provider-installation
 */

/** Where the build container (and this machine) keep the provider mirror. */
export const DEFAULT_MIRROR = '/opt/tf-plugins';

/** File name of the template inside the root module directory. */
export const CLI_CONFIG_TEMPLATE = 'cli.tfrc.tmpl';

const PLACEHOLDER = '{{MIRROR}}';

/**
 * An HCL quoted string literal for `value`. JSON's escapes are valid HCL escapes; HCL also
 * treats `${` and `%{` as template sequences, which are escaped as `$${` and `%%{`.
 * https://developer.hashicorp.com/terraform/language/expressions/strings#escape-sequences
 */
export function hclString(value: string): string {
  // (replacement functions: in a replacement string, `$$` would mean a single `$`)
  return JSON.stringify(value)
    .replaceAll('${', () => '$${')
    .replaceAll('%{', () => '%%{');
}

/**
 * Decides the provider mirror:
 * - `PLATFORM_TF_MIRROR` set and non-empty: that directory (it must exist);
 * - `PLATFORM_TF_MIRROR` set to the empty string: no mirror (force the registry);
 * - else {@link DEFAULT_MIRROR} when it holds `registry.terraform.io/hashicorp/aws`;
 * - else no mirror: providers come from the registry (operators' own containers).
 *
 * @param env the environment to read (default process.env)
 * @param fallback the default mirror to probe
 * @returns an absolute directory, or undefined for "no mirror"
 * @throws UserError when PLATFORM_TF_MIRROR names something that is not a directory
 */
export async function resolveMirror(
  env: NodeJS.ProcessEnv = process.env,
  fallback: string = DEFAULT_MIRROR,
): Promise<string | undefined> {
  const given = env.PLATFORM_TF_MIRROR;
  if (given !== undefined) {
    if (given === '') return undefined;
    const dir = path.resolve(given);
    const isDir = await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) {
      throw new UserError(`PLATFORM_TF_MIRROR=${given}: not a directory`, {
        hint: 'point it at a provider mirror (<host>/hashicorp/aws/<version>/<os>_<arch>/), or set it empty to use the registry',
      });
    }
    return dir;
  }
  const probe = path.join(fallback, 'registry.terraform.io', 'hashicorp', 'aws');
  const present = await access(probe, fsc.R_OK).then(
    () => true,
    () => false,
  );
  return present ? path.resolve(fallback) : undefined;
}

/**
 * Renders the CLI configuration. Pure.
 *
 * @param template the text of `cli.tfrc.tmpl` (must contain `{{MIRROR}}`)
 * @param mirror the mirror directory, or undefined for none: then only a comment is
 *   produced and the binary uses its registries as usual
 * @param templateFile shown in the error message
 * @throws UserError when the template lacks the placeholder
 */
export function renderCliConfig(template: string, mirror: string | undefined, templateFile: string): string {
  if (!template.includes(PLACEHOLDER)) {
    throw new UserError(`${displayPath(templateFile)}: the template has no ${PLACEHOLDER} placeholder`);
  }
  if (mirror === undefined) {
    return '# kube-platform: no provider mirror; providers are installed from their registries.\n';
  }
  return template.replaceAll(PLACEHOLDER, hclString(mirror));
}

/**
 * Reads the template of the root module `dir` and renders it for `mirror`.
 * @throws UserError when the template is missing or invalid
 */
export async function cliConfigFor(dir: string, mirror: string | undefined): Promise<string> {
  const file = path.join(dir, CLI_CONFIG_TEMPLATE);
  let template: string;
  try {
    template = await readFile(file, 'utf8');
  } catch {
    throw new UserError(`${displayPath(file)} is missing: the Terraform CLI configuration template`);
  }
  return renderCliConfig(template, mirror, file);
}
