import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ManifestPki } from '../../src/manifests/index.js';
import { toolkitRoot } from '../../src/paths.js';

/**
 * The PKI input of manifestValues() for tests that render the manifests without running the
 * PKI step: a stand-in Kubernetes CA certificate (test/fixtures/pki/kubernetes-ca.crt, no key
 * exists; see the README beside it).
 */
export const FIXTURE_PKI: ManifestPki = {
  kubernetesCaPem: readFileSync(
    path.join(toolkitRoot(), 'test', 'fixtures', 'pki', 'kubernetes-ca.crt'),
    'utf8',
  ),
};
