import { createHash } from 'node:crypto';
import { listCertificates } from '../secrets/pki/expiry.js';
import type { CertificateRecord, ClusterState } from './schema.js';

/**
 * The certificates of a secrets tree as cluster-state records (the files
 * {@link listCertificates} reads, as checkExpiry does), sorted by path.
 * @param secretsRoot `secrets/<env>/`
 * @returns `{ path, sha256 (hex of the DER, as openssl x509 -fingerprint -sha256), notAfter (ISO), subject }`
 * @throws IntegrityError naming a `*.crt` file that is not a PEM certificate
 */
export async function certificateRecords(secretsRoot: string): Promise<CertificateRecord[]> {
  return (await listCertificates(secretsRoot))
    .map(({ path, cert }) => ({
      path,
      sha256: createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex'),
      notAfter: cert.notAfter.toISOString(),
      subject: cert.subject,
    }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

/** What an applied `run` knows for the cluster state. */
export interface RunRecord {
  /** layer → generation published (or found unchanged) */
  generations: Record<string, number>;
  /** the certificates of the working copy after the PKI step */
  certificates: CertificateRecord[];
  /** the env file's desired versions; etcd is the masters' (the secure layer's) only */
  kubernetesVersion: string;
  etcdVersion: string;
  /** the newest etcd snapshot under backups/etcd/ when the run wrote the state (none: undefined) */
  lastBackup?: { at: string; key: string };
}

/**
 * Pure: the cluster state after an applied `run` — generations merged (layers not published
 * keep theirs), the certificate list replaced, desired versions of the secure and compute
 * layers set (observed versions kept: `validate` and `roll` observe them), the last backup
 * moved forward when the bucket holds a newer snapshot than recorded. Returns the same
 * content when nothing differs, so {@link ClusterStateStore.update} writes nothing.
 */
export function recordRun(s: ClusterState, r: RunRecord): ClusterState {
  const versions = { ...s.versions };
  for (const [layer, etcd] of [
    ['secure', r.etcdVersion],
    ['compute', null],
  ] as const) {
    versions[layer] = {
      desired: { kubernetes: r.kubernetesVersion, etcd },
      observed: versions[layer]?.observed ?? { kubernetes: null, etcd: null },
    };
  }
  return {
    ...s,
    generations: { ...s.generations, ...r.generations },
    pki: r.certificates,
    versions,
    // never older than what the state already records (another writer may have seen a newer one)
    lastBackup:
      r.lastBackup && (!s.lastBackup || Date.parse(r.lastBackup.at) > Date.parse(s.lastBackup.at))
        ? r.lastBackup
        : s.lastBackup,
  };
}
