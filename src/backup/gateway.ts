import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { IntegrityError, PlatformError } from '../errors.js';
import type { EtcdEndpoint } from './endpoint.js';

/**
 * etcd's Maintenance.Snapshot over its JSON gRPC gateway (`POST /v3/maintenance/snapshot`,
 * etcd.io "gRPC gateway"), without etcdctl: what the masters' timer uses, because the node
 * agent's bundle carries no subprocess wrapper (test/unit/layout.test.ts). The server
 * streams the backend database in chunks (`{"result":{"header":{…,"revision"},"blob":…}}`,
 * one JSON object per line) and ends with the SHA-256 of everything before it
 * (etcd server/etcdserver/api/v3rpc/maintenance.go) — the same bytes `etcdctl snapshot save`
 * writes, so `snapshot status` and `snapshot restore` accept the file and check that hash.
 * TLS: the member's client URL with the CA and a client certificate, verified.
 */

/**
 * Streams a snapshot of `endpoint` into `file` (mode 0600).
 * @returns the revision of the response header; 0 when the server sends none (etcd 3.4)
 */
export async function gatewaySnapshot(endpoint: EtcdEndpoint, file: string, timeoutS = 300): Promise<number> {
  const url = new URL('/v3/maintenance/snapshot', endpoint.url);
  const tls = endpoint.tls
    ? {
        ca: await readFile(endpoint.tls.caFile),
        cert: await readFile(endpoint.tls.certFile),
        key: await readFile(endpoint.tls.keyFile),
      }
    : {};
  const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const out = createWriteStream(file, { mode: 0o600 });
  let revision = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const req = mod.request(
        url,
        { method: 'POST', headers: { 'content-type': 'application/json' }, timeout: timeoutS * 1000, ...tls },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new PlatformError(`etcd snapshot: HTTP ${res.statusCode} from ${url.origin}`));
            res.resume();
            return;
          }
          let buf = '';
          const line = (l: string) => {
            if (!l.trim()) return;
            const m = JSON.parse(l) as {
              result?: { header?: { revision?: string }; blob?: string };
              error?: { message?: string };
            };
            if (m.error) throw new PlatformError(`etcd snapshot: ${m.error.message ?? 'error'}`);
            if (m.result?.header?.revision && !revision) revision = Number(m.result.header.revision);
            if (m.result?.blob) out.write(Buffer.from(m.result.blob, 'base64'));
          };
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let i = buf.indexOf('\n');
            try {
              while (i >= 0) {
                line(buf.slice(0, i));
                buf = buf.slice(i + 1);
                i = buf.indexOf('\n');
              }
            } catch (e) {
              req.destroy(e as Error);
            }
          });
          res.on('end', () => {
            try {
              line(buf);
              resolve();
            } catch (e) {
              reject(e);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new PlatformError(`etcd snapshot: no answer within ${timeoutS} s`)),
      );
      req.on('error', (e) =>
        reject(
          e instanceof PlatformError
            ? e
            : new PlatformError(`etcd snapshot from ${url.origin}: ${e.message}`),
        ),
      );
      req.end('{}');
    });
  } finally {
    await new Promise<void>((r) => out.end(r));
  }
  return revision;
}

/**
 * Checks the SHA-256 etcd appends to a snapshot (the last 32 bytes are the digest of the
 * database before them), as `snapshot restore` does.
 * @throws IntegrityError when it does not match or the file is too short
 */
export function checkSnapshotHash(snapshot: Buffer): void {
  if (snapshot.length <= 32) throw new IntegrityError('the snapshot is empty or truncated');
  const db = snapshot.subarray(0, snapshot.length - 32);
  const want = snapshot.subarray(snapshot.length - 32);
  if (!createHash('sha256').update(db).digest().equals(want)) {
    throw new IntegrityError('the snapshot fails etcd’s own SHA-256 (corrupted or truncated)');
  }
}
