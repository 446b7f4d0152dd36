/**
 * Control-plane static pod templates (platform/manifests) and their renderer: values from a
 * validated environment, Handlebars rendering with validation, atomic writes into the
 * secrets working copy. See render.ts for the rules of the template tree.
 */
export { registerHelpers, TemplateValueError, yamlQuote } from './helpers.js';
export {
  isStaticPodPath,
  LAYERS,
  type Layer,
  RENDERED_FILE_MODE,
  type RenderedFile,
  renderTree,
  templateErrorLocation,
  validateYaml,
} from './render.js';
export {
  type ControlPlaneImages,
  type ControlPlanePorts,
  IMAGE_REGISTRY,
  type ManifestEtcdMember,
  type ManifestPki,
  type ManifestValues,
  manifestValues,
} from './values.js';
export { renderToSecrets, SECRETS_DIR_MODE, type WriteResult, writeRendered } from './write.js';
