import type Handlebars from 'handlebars';

/**
 * The template helpers of platform/manifests, registered on a private Handlebars
 * environment by {@link registerHelpers}. Every helper refuses an `undefined` argument:
 * Handlebars' strict mode checks `{{name}}` lookups but not helper arguments
 * (`{{quote name}}`, `{{#if name}}`, `{{#each name}}`), so without this a misspelt value
 * would silently render as an empty string or an empty list.
 */

/** Where a template construct starts and ends (Handlebars `loc`, 1-based lines, 0-based columns). */
export interface SourceLocation {
  start: { line: number; column: number };
  end: { line: number; column: number };
}

/** A helper refused its arguments; carries the location of the `{{...}}` that called it. */
export class TemplateValueError extends Error {
  readonly loc: SourceLocation | undefined;
  constructor(message: string, loc: SourceLocation | undefined) {
    super(message);
    this.name = 'TemplateValueError';
    this.loc = loc;
  }
}

/** The part of Handlebars' helper `options` argument we use. */
interface HelperOptions {
  /** where the calling `{{...}}` is in the template */
  loc?: SourceLocation;
  hash: Record<string, unknown>;
}

function isOptions(x: unknown): x is HelperOptions {
  return typeof x === 'object' && x !== null && 'hash' in x && 'data' in x;
}

/** Splits a helper's arguments into the positional ones and Handlebars' trailing options. */
function split(args: unknown[]): { params: unknown[]; options: HelperOptions } {
  const last = args[args.length - 1];
  if (!isOptions(last)) throw new TemplateValueError('helper called without Handlebars options', undefined);
  return { params: args.slice(0, -1), options: last };
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined (a missing value?)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function scalar(helper: string, v: unknown, options: HelperOptions): string {
  if (typeof v === 'string') return v;
  if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') return String(v);
  throw new TemplateValueError(
    `${helper}: expected a string, number or boolean, got ${describe(v)}`,
    options.loc,
  );
}

/**
 * Renders text as a YAML double-quoted scalar that reads back as exactly `text`, whatever it
 * holds (quotes, backslashes, `: `, `#`, newlines, `{`, leading `-`...).
 *
 * JSON strings are YAML 1.2 double-quoted scalars (YAML 1.2 spec §5.7, escape sequences are
 * a superset of JSON's); additionally C1 controls, U+2028/U+2029 and U+FEFF are escaped so
 * that no YAML 1.1 reader (the kubelet's sigs.k8s.io/yaml) sees a line break or BOM in them.
 */
export function yamlQuote(text: string): string {
  return escapeUnsafe(JSON.stringify(text));
}

/** Escapes C1 controls, U+2028/U+2029 and U+FEFF in JSON text (only ever inside its strings). */
function escapeUnsafe(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u2028\u2029\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Command-line flag names as Kubernetes components spell them: `--service-cluster-ip-range`. */
const FLAG_NAME_RE = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Registers the helpers on a Handlebars environment:
 * - `{{quote v}}`: a string, number or boolean as a YAML double-quoted string (see {@link yamlQuote}).
 * - `{{json v}}`: any JSON value as JSON (a YAML flow scalar, sequence or mapping); strings
 *   come out double-quoted exactly as with `quote`.
 * - `{{join list [sep]}}`: the items of a list of scalars joined by `sep` (default `,`), NOT
 *   quoted: use it inside `quote`, e.g. `{{quote (join etcdServers ",")}}`.
 * - `{{flag name value}}`: `"--name=value"` quoted as by `quote`; a list value is joined with
 *   `,` (the Kubernetes convention for list flags such as `--etcd-servers`).
 * - `if`, `unless`, `each`, `with`: Handlebars' built-ins, refusing an `undefined` argument.
 *
 * Every helper throws {@link TemplateValueError} (with the call's location) on a missing or
 * ill-typed argument.
 */
export function registerHelpers(hb: typeof Handlebars): void {
  hb.registerHelper('quote', (...args: unknown[]) => {
    const { params, options } = split(args);
    if (params.length !== 1) throw new TemplateValueError('quote: takes exactly one value', options.loc);
    return yamlQuote(scalar('quote', params[0], options));
  });

  hb.registerHelper('json', (...args: unknown[]) => {
    const { params, options } = split(args);
    if (params.length !== 1) throw new TemplateValueError('json: takes exactly one value', options.loc);
    const v = params[0];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
      throw new TemplateValueError(`json: cannot encode ${describe(v)}`, options.loc);
    }
    return escapeUnsafe(JSON.stringify(v));
  });

  hb.registerHelper('join', (...args: unknown[]) => {
    const { params, options } = split(args);
    const [list, sep = ','] = params;
    if (params.length < 1 || params.length > 2) {
      throw new TemplateValueError('join: takes a list and an optional separator', options.loc);
    }
    if (!Array.isArray(list))
      throw new TemplateValueError(`join: expected a list, got ${describe(list)}`, options.loc);
    if (typeof sep !== 'string')
      throw new TemplateValueError('join: the separator must be a string', options.loc);
    return list.map((item) => scalar('join', item, options)).join(sep);
  });

  hb.registerHelper('flag', (...args: unknown[]) => {
    const { params, options } = split(args);
    const [name, value] = params;
    if (params.length !== 2) throw new TemplateValueError('flag: takes a flag name and a value', options.loc);
    if (typeof name !== 'string' || !FLAG_NAME_RE.test(name)) {
      throw new TemplateValueError(`flag: bad flag name ${JSON.stringify(name)}`, options.loc);
    }
    const text = Array.isArray(value)
      ? value.map((item) => scalar(`flag ${name}`, item, options)).join(',')
      : scalar(`flag ${name}`, value, options);
    return yamlQuote(`--${name}=${text}`);
  });

  for (const builtin of ['if', 'unless', 'each', 'with'] as const) {
    const original = hb.helpers[builtin] as (this: unknown, ...args: unknown[]) => unknown;
    hb.registerHelper(builtin, function (this: unknown, ...args: unknown[]) {
      const { params, options } = split(args);
      if (params.length !== 1 || params[0] === undefined) {
        throw new TemplateValueError(`#${builtin}: argument is ${describe(params[0])}`, options.loc);
      }
      return original.apply(this, args);
    });
  }
}
