import path from 'node:path';
import type * as x509 from '@peculiar/x509';
import { listFiles, readRegularFile } from '../../fsutil.js';
import { log } from '../../log.js';
import { parseKubeconfig } from './kubeconfig.js';
import { parseCertificate } from './x509.js';

/** A certificate that expires within the warning window (or has expired). */
export interface Expiring {
  /** path relative to the secrets root, `/`-separated; for a kubeconfig, the kubeconfig */
  path: string;
  notAfter: Date;
  /** whole days from `now` to notAfter, rounded down; negative once expired */
  daysLeft: number;
}

const DAY_MS = 86_400_000;

/**
 * Every certificate of a secrets tree: each `*.crt` file (PEM certificate) and the client
 * certificate embedded in each `*.conf` kubeconfig; dot-files (temporary files) are skipped,
 * a `*.conf` file that is not a kubeconfig is ignored. In listFiles order (sorted paths).
 * @returns `{ path (relative, /-separated), cert }`
 * @throws IntegrityError naming a `*.crt` file (or a kubeconfig's client-certificate-data)
 *   that is not a PEM certificate
 */
export async function listCertificates(
  secretsRoot: string,
): Promise<{ path: string; cert: x509.X509Certificate }[]> {
  const out: { path: string; cert: x509.X509Certificate }[] = [];
  for (const rel of await listFiles(secretsRoot)) {
    if (rel.endsWith('.crt')) {
      out.push({
        path: rel,
        cert: parseCertificate(await readRegularFile(path.join(secretsRoot, rel)), rel),
      });
    } else if (rel.endsWith('.conf')) {
      const text = (await readRegularFile(path.join(secretsRoot, rel))).toString('utf8');
      let pem: string | undefined;
      try {
        pem = parseKubeconfig(text, rel).clientCertPem;
      } catch (e) {
        log.debug(`certificates: skipping ${rel}: ${(e as Error).message}`);
      }
      if (pem) out.push({ path: rel, cert: parseCertificate(pem, `${rel} (client-certificate-data)`) });
    }
  }
  return out;
}

/** Default warning window, in days. */
export const DEFAULT_WARN_DAYS = 30;

/**
 * Lists the certificates under `secretsRoot` that expire within `warnDays` days of `now`
 * (expired ones included), soonest first. Looks at every `*.crt` file (PEM certificate)
 * and at the client certificate embedded in every `*.conf` kubeconfig; dot-files
 * (temporary files) are skipped. A `*.conf` file that is not a kubeconfig is ignored.
 *
 * @param now the reference time (tests pass a fake one)
 * @param warnDays warning window in days @default 30
 * @throws IntegrityError naming a `*.crt` file that is not a PEM certificate
 */
export async function checkExpiry(
  secretsRoot: string,
  now: Date = new Date(),
  warnDays: number = DEFAULT_WARN_DAYS,
): Promise<Expiring[]> {
  const limit = now.getTime() + warnDays * DAY_MS;
  const out: Expiring[] = [];
  for (const { path: rel, cert } of await listCertificates(secretsRoot)) {
    const notAfter = cert.notAfter;
    if (notAfter.getTime() <= limit) {
      out.push({ path: rel, notAfter, daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS) });
    }
  }
  return out.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime() || a.path.localeCompare(b.path));
}
