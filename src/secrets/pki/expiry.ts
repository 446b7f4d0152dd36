import path from 'node:path';
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
  const out: Expiring[] = [];
  const limit = now.getTime() + warnDays * DAY_MS;
  for (const rel of await listFiles(secretsRoot)) {
    let notAfter: Date | undefined;
    if (rel.endsWith('.crt')) {
      notAfter = parseCertificate(await readRegularFile(path.join(secretsRoot, rel)), rel).notAfter;
    } else if (rel.endsWith('.conf')) {
      const text = (await readRegularFile(path.join(secretsRoot, rel))).toString('utf8');
      try {
        const pem = parseKubeconfig(text, rel).clientCertPem;
        if (pem) notAfter = parseCertificate(pem, `${rel} (client-certificate-data)`).notAfter;
      } catch (e) {
        log.debug(`expiry: skipping ${rel}: ${(e as Error).message}`);
      }
    }
    if (notAfter && notAfter.getTime() <= limit) {
      out.push({ path: rel, notAfter, daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS) });
    }
  }
  return out.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime() || a.path.localeCompare(b.path));
}
