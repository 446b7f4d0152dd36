import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { parseAllDocuments } from 'yaml';
import { toolkitRoot } from '../../src/paths.js';

/**
 * Checks rendered Kubernetes manifests and component configuration files against the
 * flag and field lists of a Kubernetes release kept in test/reference/<release>/
 * (test/reference/k8s-v1.34/README.md says where each list comes from).
 *
 * The reference folder is read generically, so a new list is checked without code changes:
 * - `<binary>.tsv` or `<binary>-flags.tsv`: the command-line flags of the binary a container
 *   runs (the basename of `command[0]`; for a container with only `args`, which runs its
 *   image's entrypoint, the container's name). Columns: name, pflag registration (`BoolVar`,
 *   `IntVar`, `DurationVar`, `IPVar`, ... or `-` when read by hand), source, `DEPRECATED`.
 * - a file whose first line reads `# <Kind> (<apiVersion>) field paths ...`: the field
 *   paths of that configuration document (`authentication.x509.clientCAFile`; the elements
 *   of a list share its path). Columns: path, Go type, `DEPRECATED`.
 *
 * A deprecated flag or field is an error unless the file states why it stays, in a comment
 * line `# kp-allow-deprecated: <flag or field path>: <reason>`.
 */

/** One reference entry: a flag name or a field path, with how its value is typed. */
export interface ReferenceEntry {
  name: string;
  /** pflag registration (`BoolVar`...) for flags, the Go type for fields; `-` when unknown */
  type: string;
  deprecated: boolean;
}

export interface Reference {
  /** release folder, e.g. test/reference/k8s-v1.34 */
  dir: string;
  /** binary name → flag name → entry */
  flags: Map<string, Map<string, ReferenceEntry>>;
  /** `<apiVersion> <Kind>` → field path → entry */
  configs: Map<string, Map<string, ReferenceEntry>>;
}

/** A problem found, named by file and flag or field path. */
export interface Finding {
  file: string;
  /** `kube-scheduler --kubeconfig` or `KubeletConfiguration authentication.x509.clientCAFile` */
  where: string;
  problem: string;
}

export function formatFinding(f: Finding): string {
  return `${f.file}: ${f.where}: ${f.problem}`;
}

/** The reference folder of a release, in this checkout. */
export function referenceDir(release = 'k8s-v1.34'): string {
  return path.join(toolkitRoot(), 'test', 'reference', release);
}

const CONFIG_HEADER = /^# (\w+) \(([\w.-]+\/[\w.-]+)\) field paths/;

/**
 * Reads every `*.tsv` of a release folder. Throws naming the file and line of a malformed
 * row (fewer than two tab-separated columns) or a duplicated name.
 */
export function loadReference(dir = referenceDir()): Reference {
  const ref: Reference = { dir, flags: new Map(), configs: new Map() };
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.tsv'))
    .sort()) {
    const lines = readFileSync(path.join(dir, file), 'utf8').split('\n');
    const header = CONFIG_HEADER.exec(lines[0] ?? '');
    const entries = new Map<string, ReferenceEntry>();
    lines.forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const cols = line.split('\t');
      if (cols.length < 2 || !cols[0]) throw new Error(`${file}:${i + 1}: expected <name>\\t<type>...`);
      if (entries.has(cols[0])) throw new Error(`${file}:${i + 1}: ${cols[0]} is listed twice`);
      entries.set(cols[0], { name: cols[0], type: cols[1]!, deprecated: cols.includes('DEPRECATED') });
    });
    if (header) ref.configs.set(`${header[2]} ${header[1]}`, entries);
    else {
      const binary = file.replace(/\.tsv$/, '').replace(/-flags$/, '');
      const merged = ref.flags.get(binary) ?? new Map<string, ReferenceEntry>();
      for (const [k, v] of entries) merged.set(k, v);
      ref.flags.set(binary, merged);
    }
  }
  return ref;
}

/** Names whose deprecation a file explains: `# kp-allow-deprecated: <name>: <reason>`. */
export function allowedDeprecated(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^\s*# kp-allow-deprecated: (\S+?): \S.*$/gm))
    out.add(m[1]!.replace(/^--/, ''));
  return out;
}

// Go's time.ParseDuration syntax (https://pkg.go.dev/time#ParseDuration)
const GO_DURATION = /^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+)$/;
// strconv.ParseBool, which pflag's bool flags use
const GO_BOOL = new Set(['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Why a flag value does not parse as its pflag registration, or undefined when it does. */
function flagValueProblem(type: string, value: string): string | undefined {
  const kind = type.replace(/Var$/, '');
  switch (kind) {
    case 'Bool':
      return GO_BOOL.has(value) ? undefined : `"${value}" is not a bool`;
    case 'Int':
    case 'Int32':
    case 'Int64':
    case 'Uint':
    case 'Uint32':
      return /^[-+]?\d+$/.test(value) ? undefined : `"${value}" is not an integer`;
    case 'Float32':
    case 'Float64':
      return value.trim() !== '' && Number.isFinite(Number(value)) ? undefined : `"${value}" is not a number`;
    case 'Duration':
      return GO_DURATION.test(value) ? undefined : `"${value}" is not a Go duration (e.g. 30s, 1m30s)`;
    case 'IP':
      return ipaddr.isValid(value) ? undefined : `"${value}" is not an IP address`;
    default:
      return undefined; // String, StringSlice, Var (custom), '-': any text parses
  }
}

/**
 * Checks one container's command line (`command` then `args`, Kubernetes semantics) against
 * the flags of `binary`. Flags are `--name=value` or `--name` (a bool set to true); a flag
 * given twice, a positional argument, an unknown or deprecated flag, or a value that does
 * not parse as the flag's type is a finding.
 */
export function checkCommandLine(
  ref: Reference,
  file: string,
  binary: string,
  argv: string[],
  allowed: Set<string> = new Set(),
): Finding[] {
  const flags = ref.flags.get(binary);
  if (!flags) return [{ file, where: binary, problem: `no flag list for ${binary} in ${ref.dir}` }];
  const out: Finding[] = [];
  const seen = new Set<string>();
  // A binary with subcommands (`aws-ebs-csi-driver controller ...`) lists them with the
  // registration `subcommand`; one may come first, before the flags.
  const sub = argv[0] === undefined ? undefined : flags.get(argv[0]);
  const words = sub?.type === 'subcommand' ? argv.slice(1) : argv;
  for (const arg of words) {
    const m = /^--([A-Za-z0-9][A-Za-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      out.push({ file, where: `${binary} ${arg}`, problem: 'not a --flag=value argument' });
      continue;
    }
    const [, name, value] = m as unknown as [string, string, string | undefined];
    const where = `${binary} --${name}`;
    if (seen.has(name)) out.push({ file, where, problem: 'given more than once' });
    seen.add(name);
    const entry = flags.get(name);
    if (entry?.type === 'subcommand') {
      out.push({ file, where, problem: 'a subcommand, given as a flag (it comes first, without --)' });
      continue;
    }
    if (!entry) {
      out.push({ file, where, problem: `unknown flag (not in ${path.basename(ref.dir)} ${binary} flags)` });
      continue;
    }
    if (entry.deprecated && !allowed.has(name))
      out.push({ file, where, problem: 'deprecated (say why it stays with "# kp-allow-deprecated: ...")' });
    const problem =
      value === undefined
        ? /^Bool/.test(entry.type) || entry.type === '-'
          ? undefined
          : 'needs a value (--name=value)'
        : flagValueProblem(entry.type, value);
    if (problem) out.push({ file, where, problem: `${problem} (${entry.type})` });
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why a field value does not fit its Go type, or undefined when it does. */
function fieldValueProblem(type: string, value: unknown, hasChildren: boolean): string | undefined {
  const t = type.replace(/^\*/, '');
  const want = (ok: boolean, what: string) => (ok ? undefined : `${JSON.stringify(value)} is not ${what}`);
  if (value === null) return type.startsWith('*') ? undefined : `null for a non-pointer ${type}`;
  if (t === 'bool') return want(typeof value === 'boolean', 'a boolean');
  if (/^u?int(8|16|32|64)?$/.test(t)) return want(Number.isInteger(value), 'an integer');
  if (/^float(32|64)$/.test(t)) return want(typeof value === 'number', 'a number');
  if (t === 'string') return want(typeof value === 'string', 'a string');
  if (t === 'metav1.Duration')
    return want(typeof value === 'string' && GO_DURATION.test(value), 'a Go duration string (e.g. 30s)');
  if (t.startsWith('[]')) return want(Array.isArray(value), 'a list');
  if (t.startsWith('map[') || t === 'v1.ResourceList') return want(isObject(value), 'a map');
  // a named type: a struct when the list has its fields, else (e.g. KubeletAuthorizationMode,
  // logsapi.LoggingConfiguration) a string or a struct whose fields are not listed
  if (hasChildren) return want(isObject(value), `an object (${type})`);
  return want(typeof value === 'string' || isObject(value), `a string or an object (${type})`);
}

/**
 * Checks one configuration document (e.g. a KubeletConfiguration) against the field paths
 * of its `<apiVersion> <Kind>` list: every key must be a listed path, with a value of the
 * listed Go type; deprecated fields are findings unless `allowed`. A map's keys and the
 * fields of a struct whose fields are not listed are not descended into.
 */
export function checkConfigDocument(
  ref: Reference,
  file: string,
  doc: Record<string, unknown>,
  allowed: Set<string> = new Set(),
): Finding[] {
  const kind = `${String(doc.kind)}`;
  const fields = ref.configs.get(`${String(doc.apiVersion)} ${kind}`);
  if (!fields)
    return [
      { file, where: kind, problem: `no field list for ${String(doc.apiVersion)} ${kind} in ${ref.dir}` },
    ];
  const out: Finding[] = [];
  const childrenOf = (p: string) => [...fields.keys()].some((k) => k.startsWith(`${p}.`));
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(obj)) {
      const p = prefix ? `${prefix}.${key}` : key;
      const where = `${kind} ${p}`;
      const entry = fields.get(p);
      if (!entry) {
        out.push({ file, where, problem: `unknown field (not in ${path.basename(ref.dir)} ${kind} fields)` });
        continue;
      }
      if (entry.deprecated && !allowed.has(p))
        out.push({ file, where, problem: 'deprecated (say why it stays with "# kp-allow-deprecated: ...")' });
      const children = childrenOf(p);
      const problem = fieldValueProblem(entry.type, value, children);
      if (problem) {
        out.push({ file, where, problem });
        continue;
      }
      if (!children || entry.type.startsWith('map[')) continue;
      if (Array.isArray(value)) for (const el of value) if (isObject(el)) walk(el, p);
      if (isObject(value)) walk(value, p);
    }
  };
  walk(doc, '');
  return out;
}

interface ContainerLike {
  name?: string;
  command?: string[];
  args?: string[];
}

/** The containers of a Pod, or of a workload's pod template (DaemonSet, Deployment, ...). */
function containersOf(doc: Record<string, unknown>): ContainerLike[] {
  const spec = doc.spec as Record<string, unknown> | undefined;
  const podSpec = (doc.kind === 'Pod' ? spec : (spec?.template as Record<string, unknown>)?.spec) as
    | { containers?: ContainerLike[]; initContainers?: ContainerLike[] }
    | undefined;
  return [...(podSpec?.initContainers ?? []), ...(podSpec?.containers ?? [])];
}

export interface FileCheck {
  findings: Finding[];
  /** what was checked: `kube-apiserver` (flags) or `KubeletConfiguration` (fields) */
  checked: string[];
  /** containers run by a binary without a flag list (reported, not checked) */
  unchecked: string[];
}

/**
 * Checks every YAML document of a file: the command line of each container whose binary
 * has a flag list, each document whose `<apiVersion> <Kind>` has a field list, and the
 * same inside ConfigMap values that parse as such documents. A document that matches
 * neither is left alone (listed in `unchecked` when it runs a container).
 */
export function checkFile(ref: Reference, file: string, text: string): FileCheck {
  const allowed = allowedDeprecated(text);
  const result: FileCheck = { findings: [], checked: [], unchecked: [] };
  const visit = (doc: unknown, where: string) => {
    if (!isObject(doc)) return;
    if (ref.configs.has(`${String(doc.apiVersion)} ${String(doc.kind)}`)) {
      result.checked.push(String(doc.kind));
      result.findings.push(...checkConfigDocument(ref, where, doc, allowed));
      return;
    }
    for (const c of containersOf(doc)) {
      // with `command`, its first word is the binary; with only `args` (the image's
      // entrypoint runs), the container's name stands for the binary
      const binary = c.command?.length ? path.basename(c.command[0]!) : String(c.name ?? '');
      const flags = c.command?.length ? [...c.command.slice(1), ...(c.args ?? [])] : (c.args ?? []);
      if (!ref.flags.has(binary)) {
        result.unchecked.push(`${where}: container ${c.name} (${binary})`);
        continue;
      }
      result.checked.push(binary);
      result.findings.push(...checkCommandLine(ref, where, binary, flags, allowed));
    }
    if (doc.kind === 'ConfigMap' && isObject(doc.data)) {
      for (const [key, value] of Object.entries(doc.data)) {
        if (typeof value !== 'string') continue;
        try {
          for (const d of parseAllDocuments(value)) visit(d.toJS(), `${where} data.${key}`);
        } catch {
          // not YAML: not a configuration document
        }
      }
    }
  };
  for (const d of parseAllDocuments(text)) {
    if (d.errors.length > 0) {
      result.findings.push({ file, where: 'YAML', problem: d.errors[0]!.message });
      continue;
    }
    visit(d.toJS(), file);
  }
  return result;
}
