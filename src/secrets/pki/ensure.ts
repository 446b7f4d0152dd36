import type { KeyObject } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { X509Certificate } from '@peculiar/x509';
import { IntegrityError, PlatformError, UserError } from '../../errors.js';
import { atomicWrite, readRegularFile } from '../../fsutil.js';
import { log, registerSecret } from '../../log.js';
import { displayPath } from '../../paths.js';
import { checkExpiry, DEFAULT_WARN_DAYS, type Expiring } from './expiry.js';
import { parseKubeconfig, renderKubeconfig } from './kubeconfig.js';
import {
  bootstrapKubeconfigs,
  CAS,
  type CaId,
  type CaSpec,
  type LeafSpec,
  leafSpecs,
  PATHS,
  sshPaths,
} from './layout.js';
import { type PkiPlan, validatePlan } from './plan.js';
import { derivePublicKey, generateSshKey } from './ssh.js';
import { BOOTSTRAP_TOKEN_RE, generateBootstrapToken, parseTokenAuthFile, tokenAuthFile } from './token.js';
import {
  certificatePem,
  createCaCertificate,
  describeCertificate,
  isIssuedBy,
  issueLeaf,
  keyMatchesCertificate,
  newEcKey,
  newRsaKey,
  parseCertificate,
  parsePrivateKey,
  privateKeyPem,
  profileDifferences,
  publicKeyPem,
  type Signer,
  validityFor,
} from './x509.js';

/** Outcome of {@link ensurePki}. */
export interface EnsureResult {
  /** paths written by this call (new files and derived files whose content changed), relative to the secrets root, in write order */
  created: string[];
  /** managed paths that existed and were left byte-identical, sorted */
  kept: string[];
  /** certificates expiring within the warning window, soonest first (see checkExpiry) */
  expiring: Expiring[];
  /**
   * existing certificates that no longer match the plan (e.g. a new public API name is
   * not in apiserver.crt's SANs). They are kept (never churned); delete the file to
   * have the next run reissue it.
   */
  outdated: { path: string; differences: string[] }[];
}

/** One file {@link applyPki} writes: why, and its content (secret: never logged or printed). */
export interface PkiWrite {
  /** path relative to the secrets root, e.g. `locked/pki/ca.key` */
  path: string;
  /** missing: the file does not exist; changed: a derived file whose content would differ */
  reason: 'missing' | 'changed';
  content: string;
}

/**
 * What {@link planPki} computed and {@link applyPki} writes: the change set of the PKI. It
 * holds new keys in memory; it is never serialised or printed (print `writes[].path` and
 * `reason` only).
 */
export interface PkiChanges {
  /** absolute secrets root */
  root: string;
  /** files to write, in write order (keys before certificates, sources before derived files) */
  writes: PkiWrite[];
  /** managed paths that exist with the right content, sorted */
  kept: string[];
  /** kept files whose mode is looser than 0600 (tightened by applyPki) */
  modeFixes: { path: string; mode: number }[];
  /** every managed path, for the directories applyPki creates or tightens */
  managed: string[];
  expiring: Expiring[];
  outdated: EnsureResult['outdated'];
  /** the SSH public key line the environment will have (`ssh-ed25519 … <env>\n`), not a secret */
  sshPublicKey: string;
  /**
   * each CA's certificate (PEM) as it will be after the apply: the one on disk, or the one
   * made in memory. Public, not a secret: the manifests embed the Kubernetes CA (the
   * metrics-server APIService's caBundle).
   */
  caCertificates: Record<CaId, string>;
  /** the planning time and warning window, for the expiry check after the writes */
  now: Date;
  warnDays: number;
}

export interface EnsureOptions {
  /** the current time: validity of new certificates and the expiry check @default new Date() */
  now?: Date;
  /** warn about certificates expiring within this many days @default 30 */
  warnDays?: number;
}

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/** A CA once assessed: able to sign (key known) or not (certificate only, key kept offline). */
interface CaState {
  spec: CaSpec;
  cert: X509Certificate;
  certPem: string;
  key?: KeyObject;
  /** PEM text of the key, as on disk or as generated */
  keyPem?: string;
  /** true when this run created the key and certificate */
  fresh: boolean;
}

/** Existing credentials of a leaf, when complete and readable. */
interface LeafState {
  spec: LeafSpec;
  /** the certificate and key as found, undefined when (part of) it is missing */
  existing?: { certPem: string; keyPem: string; cert: X509Certificate };
  /** some file of the leaf exists (complete or not) */
  present: boolean;
}

/** Read-through view of the secrets root. */
class Tree {
  private readonly cache = new Map<string, Buffer | undefined>();
  constructor(readonly root: string) {}
  abs(rel: string): string {
    return path.join(this.root, ...rel.split('/'));
  }
  async read(rel: string): Promise<Buffer | undefined> {
    if (this.cache.has(rel)) return this.cache.get(rel);
    let data: Buffer | undefined;
    try {
      data = await readRegularFile(this.abs(rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.cache.set(rel, data);
    return data;
  }
  async text(rel: string): Promise<string | undefined> {
    return (await this.read(rel))?.toString('utf8');
  }
}

/**
 * Makes sure the environment's PKI, kubeconfigs, bootstrap token and SSH key pair exist
 * under `secretsRoot` (the local working copy of the secrets bucket, `secrets/`), creating
 * only what is missing. Layout, layers and certificate profiles: see layout.ts and the
 * README beside this file.
 *
 * Rules:
 * - a CA, a leaf (certificate + key), sa.key, the bootstrap token and the SSH private key
 *   are generated only when missing, never regenerated; a leaf with one half missing is
 *   reissued as a whole;
 * - derived files (common/pki/ca.crt, sa.pub, the kubeconfigs, the token file, the SSH
 *   public key) are rewritten only when their content would differ;
 * - inconsistent states are refused before anything is written: a leaf (or a copy of the
 *   CA) present while its CA is missing (a new CA would silently mix trust roots), a leaf
 *   not issued by the CA on disk, a key not matching its certificate, a public half without
 *   its private half (sa.pub, the SSH .pub), a leaf to issue while its CA key is absent;
 * - files are written atomically (temp + fsync + rename) with mode 0600, directories 0700
 *   (existing ones are tightened); a second run leaves every file byte-identical;
 * - no key, token or certificate content ever reaches a log line or an error message.
 *
 * @param secretsRoot directory holding `common/ secure/ compute/ locked/` (created if missing)
 * @param plan names, addresses and lifetimes; see pkiPlanFor()
 * @returns what was written and kept, what expires soon, what no longer matches the plan
 * @throws ValidationError (UserError, exit 2) for a bad plan or option
 * @throws IntegrityError (exit 4) for an inconsistent or unreadable existing PKI (nothing written)
 * @throws ExecError / PlatformError when ssh-keygen fails or is missing
 */
export async function ensurePki(
  secretsRoot: string,
  plan: PkiPlan,
  opts: EnsureOptions = {},
): Promise<EnsureResult> {
  return applyPki(await planPki(secretsRoot, plan, opts));
}

/**
 * The plan half of {@link ensurePki}: reads `secretsRoot`, checks it and computes every file
 * that is missing or would change — new keys and certificates are generated in memory (the
 * SSH key by ssh-keygen in a private temporary directory outside `secretsRoot`) — and writes
 * nothing: no file, no directory, no mode change under `secretsRoot`.
 *
 * @returns the change set for {@link applyPki}; `writes` empty when the PKI is complete
 * @throws as ensurePki (ValidationError, IntegrityError, ExecError)
 */
export async function planPki(
  secretsRoot: string,
  plan: PkiPlan,
  opts: EnsureOptions = {},
): Promise<PkiChanges> {
  const { caDays, leafDays } = validatePlan(plan);
  const now = opts.now ?? new Date();
  const warnDays = opts.warnDays ?? DEFAULT_WARN_DAYS;
  if (Number.isNaN(now.getTime())) throw new UserError('ensurePki: now is not a valid date');
  if (!Number.isFinite(warnDays) || warnDays < 0)
    throw new UserError(`ensurePki: warnDays ${warnDays} must be ≥ 0`);

  const root = path.resolve(secretsRoot);
  const tree = new Tree(root);
  const problems: string[] = [];
  const desired = new Map<string, string>();

  // 1. The CAs. New ones are made in memory only; nothing is written before every check passed.
  const cas = {} as Record<CaId, CaState | { spec: CaSpec; cert?: undefined; key?: undefined; fresh: false }>;
  for (const spec of Object.values(CAS)) {
    cas[spec.id] = await assessCa(tree, spec, now, caDays, problems);
  }

  // 2. Leaves: existing ones must belong to their CA; missing ones need the CA key.
  const leaves: LeafState[] = [];
  const outdated: EnsureResult['outdated'] = [];
  for (const spec of leafSpecs(plan)) {
    const ca = cas[spec.ca];
    const state = await assessLeaf(tree, spec, problems);
    leaves.push(state);
    const where = spec.kind === 'pair' ? spec.cert : spec.path;
    if (!ca.cert) continue; // the CA itself is broken: already reported
    if (ca.fresh && state.present) {
      problems.push(
        `${where} exists but its CA (${ca.spec.cert}, ${ca.spec.key}) is missing: a new CA would not have issued it`,
      );
    } else if (state.existing) {
      if (!(await isIssuedBy(state.existing.cert, ca.cert))) {
        problems.push(`${where} was not issued by ${ca.spec.cert}`);
      }
      const diff = profileDifferences(describeCertificate(state.existing.cert), spec.profile);
      if (diff.length) outdated.push({ path: where, differences: diff });
    } else if (!ca.key) {
      problems.push(`${where} must be issued but the CA key ${ca.spec.key} is missing`);
    }
  }

  // 3. Files that embed the Kubernetes CA: present while that CA is new = inconsistent.
  const k8s = cas.kubernetes;
  if (k8s.fresh) {
    for (const rel of [PATHS.commonCa, ...bootstrapKubeconfigs(plan).map((b) => b.path)]) {
      if (await tree.read(rel)) problems.push(`${rel} exists but its CA (${k8s.spec.cert}) is missing`);
    }
  }

  // 4. Service-account key pair, bootstrap token, SSH key pair.
  const saKeyBuf = await tree.read(PATHS.saKey);
  let saKey: KeyObject | undefined;
  if (saKeyBuf) saKey = tryParse(() => parsePrivateKey(saKeyBuf, PATHS.saKey), problems);
  else if (await tree.read(PATHS.saPub)) {
    problems.push(
      `${PATHS.saPub} exists but ${PATHS.saKey} is missing: a new key would invalidate every service-account token`,
    );
  }
  const token = await assessToken(tree, plan, problems);
  const ssh = sshPaths(plan.environment);
  let sshPub: string | undefined;
  if (await tree.read(ssh.privateKey)) {
    // ssh-keygen refuses a readable private key: derive from a 0600 copy in a private
    // temporary directory, so that planning changes no mode under the secrets root
    sshPub = await withPrivateTemp(async (dir) => {
      const copy = path.join(dir, 'key');
      await copyFile(tree.abs(ssh.privateKey), copy);
      await chmod(copy, FILE_MODE);
      return derivePublicKey(copy);
    }).catch(() => {
      problems.push(`${ssh.privateKey}: not an unencrypted OpenSSH private key`);
      return undefined;
    });
  } else if (await tree.read(ssh.publicKey)) {
    problems.push(`${ssh.publicKey} exists but ${ssh.privateKey} is missing`);
  }

  if (problems.length) {
    throw new IntegrityError(
      `${displayPath(root)}: the PKI is inconsistent, nothing was written:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      {
        hint: 'restore the missing files from the secrets bucket (fetch-secrets), or move the affected CA and everything it issued aside to start that CA over',
      },
    );
  }
  const ready = cas as Record<CaId, CaState>;

  // 5. Desired content of every managed file, in write order (keys before certificates,
  //    CAs before leaves, sources before derived files), so that an interrupted run
  //    leaves a state the next run can complete.
  for (const ca of Object.values(ready)) {
    if (ca.keyPem) desired.set(ca.spec.key, ca.keyPem);
    desired.set(ca.spec.cert, ca.certPem);
  }
  for (const leaf of leaves) {
    const ca = ready[leaf.spec.ca];
    let certPem: string;
    let keyPem: string;
    if (leaf.existing) {
      ({ certPem, keyPem } = leaf.existing);
    } else {
      const key = await newEcKey();
      const signer: Signer = { cert: ca.cert, key: ca.key!, where: ca.spec.key };
      const cert = await issueLeaf(
        signer,
        key,
        leaf.spec.profile,
        validityFor(now, leafDays, ca.cert.notAfter),
      );
      certPem = certificatePem(cert);
      keyPem = privateKeyPem(key);
    }
    if (leaf.spec.kind === 'pair') {
      desired.set(leaf.spec.key, keyPem);
      desired.set(leaf.spec.cert, certPem);
    } else {
      desired.set(
        leaf.spec.path,
        renderKubeconfig({
          environment: plan.environment,
          server: leaf.spec.server,
          caPem: ready.kubernetes.certPem,
          user: `${leaf.spec.profile.cn}@${plan.environment}`,
          auth: { clientCertPem: certPem, clientKeyPem: keyPem },
        }),
      );
    }
  }
  desired.set(PATHS.commonCa, ready.kubernetes.certPem);
  saKey ??= await newRsaKey();
  desired.set(PATHS.saKey, saKeyBuf ? saKeyBuf.toString('utf8') : privateKeyPem(saKey));
  desired.set(PATHS.saPub, publicKeyPem(saKey));
  desired.set(PATHS.bootstrapTokenCsv, tokenAuthFile(token));
  for (const b of bootstrapKubeconfigs(plan)) {
    desired.set(
      b.path,
      renderKubeconfig({
        environment: plan.environment,
        server: b.server,
        caPem: ready.kubernetes.certPem,
        user: `kubelet-bootstrap@${plan.environment}`,
        auth: { token },
      }),
    );
  }
  if (sshPub === undefined) {
    const pair = await withPrivateTemp((dir) => generateSshKey(dir, plan.environment));
    desired.set(ssh.privateKey, pair.privateKey);
    sshPub = pair.publicKey;
  } else {
    desired.set(ssh.privateKey, (await tree.text(ssh.privateKey))!);
  }
  desired.set(ssh.publicKey, sshPub);

  // 6. Compare with what is on disk: what to write, what is kept, which modes to tighten.
  const writes: PkiWrite[] = [];
  const kept: string[] = [];
  const modeFixes: { path: string; mode: number }[] = [];
  for (const [rel, content] of desired) {
    const current = await tree.read(rel);
    if (current?.equals(Buffer.from(content, 'utf8'))) {
      kept.push(rel);
      const mode = (await stat(tree.abs(rel))).mode & 0o777;
      if (mode !== FILE_MODE) modeFixes.push({ path: rel, mode });
      continue;
    }
    writes.push({ path: rel, reason: current === undefined ? 'missing' : 'changed', content });
  }
  kept.sort();
  const expiring = await checkExpiry(root, now, warnDays);
  // outdated certificates are warned about here because nothing else knows about them
  for (const o of outdated) {
    log.warn(
      `${o.path} does not match the plan (${o.differences.join('; ')}); delete it to have it reissued`,
    );
  }
  return {
    root,
    writes,
    kept,
    modeFixes,
    managed: [...desired.keys()],
    expiring,
    outdated,
    sshPublicKey: sshPub,
    caCertificates: {
      kubernetes: ready.kubernetes.certPem,
      etcd: ready.etcd.certPem,
      'front-proxy': ready['front-proxy'].certPem,
    },
    now,
    warnDays,
  };
}

/**
 * The apply half of {@link ensurePki}: creates (or tightens to 0700) the directories,
 * writes each file of `changes.writes` atomically with mode 0600, in order, and tightens
 * the modes of kept files to 0600.
 * @returns what was written and kept, what expires soon, what no longer matches the plan
 */
export async function applyPki(changes: PkiChanges): Promise<EnsureResult> {
  const { root } = changes;
  const dirs = new Set(changes.managed.map((rel) => path.posix.dirname(rel)));
  for (const d of dirs) await ensureDirs(root, d);
  for (const f of changes.modeFixes) {
    log.warn(`${f.path} had mode ${f.mode.toString(8)}; set to 600`);
    await chmod(path.join(root, ...f.path.split('/')), FILE_MODE);
  }
  const created: string[] = [];
  for (const w of changes.writes) {
    await atomicWrite(path.join(root, ...w.path.split('/')), w.content, FILE_MODE, DIR_MODE);
    created.push(w.path);
    log.debug(`pki: wrote ${w.path}`);
  }
  // the caller presents created/kept/expiring (run prints them)
  const expiring = created.length ? await checkExpiry(root, changes.now, changes.warnDays) : changes.expiring;
  log.debug(
    `pki: ${created.length} file(s) written, ${changes.kept.length} kept, ${expiring.length} expiring`,
  );
  return { created, kept: changes.kept, expiring, outdated: changes.outdated };
}

/** Runs `fn` with a fresh 0700 directory under the OS temp dir, removed afterwards. */
async function withPrivateTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kp-pki-'));
  try {
    await chmod(dir, DIR_MODE);
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a parse that throws PlatformError; records its message as a problem instead. */
function tryParse<T>(fn: () => T, problems: string[]): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof PlatformError)) throw e;
    problems.push(e.message);
    return undefined;
  }
}

/**
 * Reads one CA. Both files: checked to match. Key only: the certificate is reissued
 * from the key (same subject and key, so what it issued still verifies; this completes a
 * run interrupted between the two writes). Certificate only: usable as a trust anchor
 * but unable to sign (its key may be kept offline). Neither: a new CA, made in memory.
 */
async function assessCa(
  tree: Tree,
  spec: CaSpec,
  now: Date,
  caDays: number,
  problems: string[],
): Promise<CaState | { spec: CaSpec; fresh: false }> {
  const certBuf = await tree.read(spec.cert);
  const keyBuf = await tree.read(spec.key);
  const key = keyBuf && tryParse(() => parsePrivateKey(keyBuf, spec.key), problems);
  if (certBuf) {
    const cert = tryParse(() => parseCertificate(certBuf, spec.cert), problems);
    if (!cert || (keyBuf && !key)) return { spec, fresh: false };
    if (key && !keyMatchesCertificate(key, cert)) {
      problems.push(`${spec.key} is not the key of ${spec.cert}`);
      return { spec, fresh: false };
    }
    const signing = key ? { key, keyPem: keyBuf!.toString('utf8') } : {};
    return { spec, cert, certPem: certBuf.toString('utf8'), ...signing, fresh: false };
  }
  if (keyBuf && !key) return { spec, fresh: false };
  if (key) log.warn(`${spec.cert} is missing; reissuing it from ${spec.key}`);
  const caKey = key ?? (await newEcKey());
  const cert = await createCaCertificate(spec.cn, caKey, validityFor(now, caDays), spec.key);
  const keyPem = keyBuf ? keyBuf.toString('utf8') : privateKeyPem(caKey);
  return { spec, cert, certPem: certificatePem(cert), key: caKey, keyPem, fresh: !key };
}

/** Reads a leaf's files; a complete leaf must have a key matching its certificate. */
async function assessLeaf(tree: Tree, spec: LeafSpec, problems: string[]): Promise<LeafState> {
  if (spec.kind === 'pair') {
    const certBuf = await tree.read(spec.cert);
    const keyBuf = await tree.read(spec.key);
    const present = Boolean(certBuf || keyBuf);
    if (!certBuf || !keyBuf) return { spec, present };
    const cert = tryParse(() => parseCertificate(certBuf, spec.cert), problems);
    const key = tryParse(() => parsePrivateKey(keyBuf, spec.key), problems);
    if (!cert || !key) return { spec, present };
    if (!keyMatchesCertificate(key, cert)) {
      problems.push(`${spec.key} is not the key of ${spec.cert}`);
      return { spec, present };
    }
    return {
      spec,
      present,
      existing: { certPem: certBuf.toString('utf8'), keyPem: keyBuf.toString('utf8'), cert },
    };
  }
  const text = await tree.text(spec.path);
  if (text === undefined) return { spec, present: false };
  const parsed = tryParse(() => parseKubeconfig(text, spec.path), problems);
  if (!parsed) return { spec, present: true };
  if (!parsed.clientCertPem || !parsed.clientKeyPem) {
    problems.push(`${spec.path} holds no client-certificate-data/client-key-data`);
    return { spec, present: true };
  }
  const certPem = parsed.clientCertPem;
  const keyPem = parsed.clientKeyPem;
  const cert = tryParse(() => parseCertificate(certPem, `${spec.path} (client-certificate-data)`), problems);
  const key = tryParse(() => parsePrivateKey(keyPem, `${spec.path} (client-key-data)`), problems);
  if (!cert || !key) return { spec, present: true };
  if (!keyMatchesCertificate(key, cert)) {
    problems.push(`${spec.path}: client-key-data is not the key of client-certificate-data`);
    return { spec, present: true };
  }
  return { spec, present: true, existing: { certPem, keyPem, cert } };
}

/**
 * The bootstrap token: from the apiserver's token file when present, else adopted from an
 * existing bootstrap kubeconfig, else a new one. Registered as a secret with the logger.
 */
async function assessToken(tree: Tree, plan: PkiPlan, problems: string[]): Promise<string> {
  let token: string | undefined;
  const csv = await tree.text(PATHS.bootstrapTokenCsv);
  if (csv !== undefined) token = tryParse(() => parseTokenAuthFile(csv, PATHS.bootstrapTokenCsv), problems);
  else {
    for (const b of bootstrapKubeconfigs(plan)) {
      const text = await tree.text(b.path);
      if (text === undefined) continue;
      const found = tryParse(() => parseKubeconfig(text, b.path), problems)?.token;
      if (found && BOOTSTRAP_TOKEN_RE.test(found)) {
        token = found;
        break;
      }
      problems.push(`${b.path}: token is not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})`);
    }
  }
  token ??= generateBootstrapToken();
  registerSecret(token);
  registerSecret(token.slice(7));
  return token;
}

/** Creates `rel` (a directory under root) and its parents, and sets root and all of them to 0700. */
async function ensureDirs(root: string, rel: string): Promise<void> {
  const parts = rel === '.' ? [] : rel.split('/');
  let dir = root;
  for (const part of ['', ...parts]) {
    dir = part ? path.join(dir, part) : dir;
    let mode: number | undefined;
    try {
      mode = (await stat(dir)).mode & 0o777;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // the root's own parents (e.g. secrets/ of a fresh workspace) are created too
      await mkdir(dir, { mode: DIR_MODE, recursive: dir === root });
    }
    if (mode !== DIR_MODE) await chmod(dir, DIR_MODE);
  }
}
