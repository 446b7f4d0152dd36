/**
 * Which layer files are static pod manifests, apart from their validation
 * (src/manifests/static-pods.ts): reading a layer that has none then loads no validator.
 */

/** True when a layer-relative path is in a layer's kubelet manifest directory (`manifests/...`). */
export function isManifestFile(layerRelative: string): boolean {
  return layerRelative.startsWith('manifests/');
}
