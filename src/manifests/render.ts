import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import { parseAllDocuments } from 'yaml';
import { type Problem, UserError, ValidationError } from '../errors.js';
import { displayPath } from '../paths.js';
import { registerHelpers, type SourceLocation, TemplateValueError } from './helpers.js';
import { describeProblem, staticPodProblems } from './static-pods.js';
import type { ManifestValues } from './values.js';

/**
 * Renders the template tree platform/manifests into the files of the secrets bucket layers.
 *
 * The tree mirrors the bucket (DESIGN.md §4): `secure/manifests/etcd.yaml.hbs` renders to the
 * layer-relative path `secure/manifests/etcd.yaml`, which the caller writes to
 * `secrets/secure/manifests/etcd.yaml` and manifest-sync installs on masters as
 * `/etc/kubernetes/manifests/etcd.yaml`, the kubelet's staticPodPath.
 *
 * Rules, all checked before anything is returned (every problem reported together):
 * - `*.hbs` files are Handlebars templates (strict mode, no HTML escaping, the helpers of
 *   ./helpers.ts) and lose the `.hbs`; any other file is copied verbatim.
 * - The top-level `_partials/` holds partials (`_partials/a/b.hbs` is `{{> a/b}}`); it is
 *   not rendered itself.
 * - Entries whose name starts with `.` are skipped (editor and VCS files; the kubelet
 *   ignores dot-files in its manifest directory too). Symbolic links are refused, so a link
 *   cannot pull a file from outside the tree (a key, say) into the bucket.
 * - The first path segment is a layer: common, secure, compute or locked.
 * - Every output ending in `.yaml`/`.yml` must parse as exactly one YAML document holding a
 *   Kubernetes object (apiVersion, kind, metadata.name); under `<layer>/manifests/` (the
 *   kubelet's manifest directory) every file must be such a YAML file and a `v1` Pod.
 */

import { LAYERS } from '../secrets/layers.js';

export { LAYERS, type Layer } from '../secrets/layers.js';

/** File mode of every rendered file: rendered manifests live in the secrets working copy. */
export const RENDERED_FILE_MODE = 0o600;

/** One rendered (or copied) file. */
export interface RenderedFile {
  /** layer-relative object path with `/` separators, e.g. `secure/manifests/etcd.yaml` */
  path: string;
  /** file contents (UTF-8 text) */
  content: string;
  /** POSIX file mode, always {@link RENDERED_FILE_MODE} (0o600) */
  mode: number;
}

const PARTIALS_DIR = '_partials';
const TEMPLATE_EXT = '.hbs';

/** One file found in the template tree. */
interface Source {
  /** path relative to the template directory, `/`-separated */
  rel: string;
  abs: string;
}

/** True when a layer-relative path is the kubelet's manifest directory of a layer (`<layer>/manifests/...`). */
export function isStaticPodPath(p: string): boolean {
  return p.split('/')[1] === 'manifests';
}

async function walk(root: string, rel: string, out: Source[], problems: Problem[]): Promise<void> {
  const dir = path.join(root, rel);
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
    const abs = path.join(root, childRel);
    if (e.isDirectory()) {
      await walk(root, childRel, out, problems);
    } else if (e.isFile()) {
      out.push({ rel: childRel, abs });
    } else {
      problems.push({
        file: displayPath(abs),
        message: e.isSymbolicLink()
          ? 'symbolic links are not allowed in the template tree'
          : 'not a regular file or directory',
      });
    }
  }
}

/** `secure/manifests/etcd.yaml.hbs` → `secure/manifests/etcd.yaml`. */
function outputPath(rel: string): string {
  return rel.endsWith(TEMPLATE_EXT) ? rel.slice(0, -TEMPLATE_EXT.length) : rel;
}

/**
 * Finds where a Handlebars (4.7) error happened and rewrites its message for an operator.
 *
 * Handlebars reports locations in three shapes, all handled: parse errors as
 * `Parse error on line N:\n<context>\n---^\nExpecting ..., got 'X'`; strict-mode lookups and
 * unknown helpers as an Exception `"name" not defined in [object Object] - L:C` (with
 * `lineNumber`); missing partials without a location (the first `{{> name}}` line is used).
 * {@link TemplateValueError}s from our helpers carry the call's `loc`.
 *
 * @param err what compiling or running the template threw
 * @param source the template text (to quote the failing `{{...}}`)
 * @returns the 1-based template line when known, and the message
 */
export function templateErrorLocation(err: unknown, source: string): { line?: number; message: string } {
  if (err instanceof TemplateValueError) {
    const loc = err.loc;
    if (!loc) return { message: err.message };
    return { line: loc.start.line, message: `${err.message}, in ${snippet(source, loc)}` };
  }
  const raw = err instanceof Error ? err.message : String(err);
  // Parser: "Parse error on line 4:\n<context>\n----^\nExpecting ..., got 'EOF'"
  const parse = /^Parse error on line (\d+):\n(.*)\n.*\n.*got '([^']*)'$/.exec(raw);
  if (parse) {
    const [, line, context, got] = parse;
    const what =
      got === 'EOF' ? 'unexpected end of file (a block not closed with {{/...}}?)' : `unexpected ${got}`;
    return { line: Number(line), message: `syntax error after ${JSON.stringify(context!.trim())}: ${what}` };
  }
  if (raw.startsWith('Parse error')) return { message: `syntax error: ${raw}` };
  // Strict-mode lookup or unknown helper (a Handlebars Exception): '"x" not defined in [object Object] - 3:7'
  const lineNumber = (err as { lineNumber?: unknown }).lineNumber;
  const strict = /^(.*?) not defined in .* - (\d+):(\d+)$/s.exec(raw);
  if (strict)
    return { line: Number(strict[2]), message: `${strict[1]} is not defined (no such value or helper)` };
  if (typeof lineNumber === 'number') return { line: lineNumber, message: raw.replace(/ - \d+:\d+$/, '') };
  // Runtime: "The partial x could not be found" carries no location; find the first call.
  const partial = /^The partial (\S+) could not be found$/.exec(raw);
  if (partial) {
    const name = partial[1]!;
    const idx = source.split('\n').findIndex((l) => new RegExp(`{{~?>\\s*${escapeRe(name)}\\b`).test(l));
    return {
      ...(idx >= 0 ? { line: idx + 1 } : {}),
      message: `partial "${name}" not found under ${PARTIALS_DIR}/`,
    };
  }
  return { message: raw };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The template text a location covers, e.g. `{{quote nodeName}}` (first line only, ≤ 80 chars). */
function snippet(source: string, loc: SourceLocation): string {
  const line = source.split('\n')[loc.start.line - 1] ?? '';
  const end = loc.end.line === loc.start.line ? loc.end.column : line.length;
  const text = line.slice(loc.start.column, end).trim();
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** An error raised inside a partial, attributed to the partial's own file and line. */
class PartialError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly detail: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${detail}`);
  }
}

const COMPILE_OPTIONS = { strict: true, noEscape: true } as const;

/**
 * Checks one rendered YAML file: exactly one document, no YAML errors or warnings (duplicate
 * keys included), a Kubernetes object with apiVersion, kind and metadata.name; under
 * `<layer>/manifests/` a v1 Pod with at least one container.
 * @returns problem messages (empty when valid)
 */
export function validateYaml(outPath: string, content: string): string[] {
  const docs = parseAllDocuments(content, { uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(docs)) return ['renders no YAML document'];
  const issues = docs.flatMap((d) => [...d.errors, ...d.warnings]);
  if (issues.length > 0) {
    return issues.map((e) => {
      const at = e.linePos?.[0];
      const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      return `${at ? `rendered YAML line ${at.line}: ` : ''}${first}`;
    });
  }
  if (docs.length !== 1) return [`renders ${docs.length} YAML documents; one object per file`];
  const obj: unknown = docs[0]!.toJS();
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return ['does not render a Kubernetes object (a YAML mapping)'];
  }
  const o = obj as Record<string, unknown>;
  const metadata = o.metadata as Record<string, unknown> | undefined;
  const problems: string[] = [];
  for (const [key, v] of [
    ['apiVersion', o.apiVersion],
    ['kind', o.kind],
    ['metadata.name', typeof metadata === 'object' && metadata !== null ? metadata.name : undefined],
  ] as const) {
    if (typeof v !== 'string' || v === '') problems.push(`${key} is missing or not a string`);
  }
  if (problems.length === 0 && isStaticPodPath(outPath) && (o.apiVersion !== 'v1' || o.kind !== 'Pod')) {
    problems.push(
      `is a ${String(o.apiVersion)} ${String(o.kind)}, but files under ${outPath.split('/').slice(0, 2).join('/')}/ ` +
        'are static pods: apiVersion v1, kind Pod',
    );
  } else if (problems.length === 0 && isStaticPodPath(outPath)) {
    const containers = (o.spec as { containers?: unknown } | undefined)?.containers;
    if (!Array.isArray(containers) || containers.length === 0) problems.push('spec.containers is empty');
    // the node agent's own check (src/agent/validate.ts): a pod every agent would refuse
    // fails here, before anything is published
    else
      for (const p of staticPodProblems(content))
        problems.push(`${p.line ? `rendered YAML line ${p.line}: ` : ''}${describeProblem(p)}`);
  }
  return problems;
}

/**
 * Renders every file of a template tree.
 *
 * @param templateDir root of the tree (platform/manifests, see paths.manifestsTemplateDir())
 * @param values the template values ({@link ManifestValues}, from manifestValues())
 * @returns the files, sorted by path (code-point order); the same input gives the same bytes
 * @throws ValidationError (a UserError, exit 2) listing every problem, each naming the
 *   template file (relative to the working directory) and, where known, its line: a missing
 *   value, an unknown helper or partial, a syntax error, invalid YAML, a file that is not one
 *   Kubernetes object, a non-Pod under `<layer>/manifests/`, a first path segment that is not
 *   a layer, two sources with the same output path, a symbolic link
 * @throws UserError (exit 2) when templateDir does not exist or is not a directory
 */
export async function renderTree(templateDir: string, values: ManifestValues): Promise<RenderedFile[]> {
  const problems: Problem[] = [];
  const sources: Source[] = [];
  const rootStat = await stat(templateDir).catch(() => undefined);
  if (!rootStat?.isDirectory()) {
    throw new UserError(
      `template directory ${displayPath(templateDir)} does not exist or is not a directory`,
    );
  }
  await walk(templateDir, '', sources, problems);

  const hb = Handlebars.create();
  registerHelpers(hb);

  const templates: Source[] = [];
  for (const s of sources) {
    if (s.rel.startsWith(`${PARTIALS_DIR}/`)) {
      await registerPartial(hb, s, problems);
      continue;
    }
    const layer = s.rel.split('/')[0]!;
    if (!s.rel.includes('/') || !(LAYERS as readonly string[]).includes(layer)) {
      problems.push({
        file: displayPath(s.abs),
        message: `"${s.rel.includes('/') ? layer : s.rel}" is not a layer: the first path segment must be one of ${LAYERS.join(', ')}`,
      });
      continue;
    }
    templates.push(s);
  }

  const byOutput = new Map<string, Source>();
  const files: RenderedFile[] = [];
  for (const s of templates) {
    const out = outputPath(s.rel);
    const file = displayPath(s.abs);
    const other = byOutput.get(out);
    if (other) {
      problems.push({ file, message: `renders to ${out}, as ${displayPath(other.abs)} does` });
      continue;
    }
    byOutput.set(out, s);
    if (isStaticPodPath(out) && !/\.ya?ml$/.test(out)) {
      problems.push({
        file,
        message: "only .yaml files belong in the kubelet's manifest directory (it reads every file there)",
      });
      continue;
    }
    const source = await readFile(s.abs, 'utf8');
    let content: string;
    if (s.rel.endsWith(TEMPLATE_EXT)) {
      try {
        content = hb.compile(source, COMPILE_OPTIONS)(values);
      } catch (err) {
        if (err instanceof PartialError) {
          problems.push({ file, message: `in partial ${err.message}` });
        } else {
          const { line, message } = templateErrorLocation(err, source);
          problems.push({ file, ...(line === undefined ? {} : { line }), message });
        }
        continue;
      }
    } else {
      content = source;
    }
    if (/\.ya?ml$/.test(out)) {
      for (const message of validateYaml(out, content)) problems.push({ file, message });
    }
    files.push({ path: out, content, mode: RENDERED_FILE_MODE });
  }

  if (problems.length > 0) {
    throw new ValidationError(
      `${displayPath(templateDir)}: ${problems.length} problem(s) in the manifest templates; nothing was rendered`,
      problems,
    );
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Registers `_partials/<name>.hbs` as `{{> <name>}}`. Parsed eagerly so that a syntax error
 * names the partial's own file; wrapped so that a runtime error inside it does too.
 */
async function registerPartial(hb: typeof Handlebars, s: Source, problems: Problem[]): Promise<void> {
  const file = displayPath(s.abs);
  const name = outputPath(s.rel.slice(PARTIALS_DIR.length + 1));
  if (!s.rel.endsWith(TEMPLATE_EXT)) {
    problems.push({ file, message: `partials must be Handlebars templates named *${TEMPLATE_EXT}` });
    return;
  }
  const source = await readFile(s.abs, 'utf8');
  try {
    hb.parse(source);
  } catch (err) {
    const { line, message } = templateErrorLocation(err, source);
    problems.push({ file, ...(line === undefined ? {} : { line }), message });
    return;
  }
  const compiled = hb.compile(source, COMPILE_OPTIONS);
  hb.registerPartial(name, ((context: unknown, options: Handlebars.RuntimeOptions) => {
    try {
      return compiled(context, options);
    } catch (err) {
      if (err instanceof PartialError) throw err;
      const { line, message } = templateErrorLocation(err, source);
      throw new PartialError(file, line, message);
    }
  }) as unknown as Handlebars.Template);
}
