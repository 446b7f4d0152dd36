# syntax=docker/dockerfile:1
# kube-platform build container: the toolkit (scripts/ on PATH), OpenTofu, kubectl, ssh,
# git and jq, run as the non-root user `platform`. Built by `make` (Makefile target
# `image`); entered with ./run.kube -e ENV or ./play.kube.
#
# Base: Node.js 24 (Active LTS, https://nodejs.org/en/about/previous-releases) on Debian 12
# bookworm, slim variant, pinned by tag AND by the digest of its multi-arch index, so a
# rebuild uses the same bytes. To move to a newer patch release, pick the tag on
# https://hub.docker.com/_/node and refresh the digest with either of
#   docker buildx imagetools inspect node:<tag> --format '{{json .Manifest.Digest}}'
#   crane digest node:<tag>
# then rebuild and run the tests.
FROM node:24.11.1-bookworm-slim@sha256:48abc13a19400ca3985071e287bd405a1d99306770eb81d61202fb6b65cf0b57 AS base

# ---- build: compile the TypeScript toolkit and bundle the node agent (dev dependencies) ----
FROM base AS build
WORKDIR /src
COPY package.json package-lock.json ./
# npm ci: exactly the lock file (it lists every platform's optional binaries)
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only (no TypeScript, jest, esbuild, biome) ----
FROM base AS deps
WORKDIR /opt/kube-platform
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- the image ----
FROM base
# Pinned tools, verified by SHA-256 in docker/install-tools.sh before they are installed
# (a mismatch fails the build). Published checksums:
#   OpenTofu: tofu_<version>_SHA256SUMS of https://github.com/opentofu/opentofu/releases/tag/v<version>
#   kubectl:  https://dl.k8s.io/release/<version>/bin/linux/<arch>/kubectl.sha256
# kubectl follows the clusters' default KUBERNETES_VERSION (src/config/schema.ts), within
# the supported skew of one minor release (https://kubernetes.io/releases/version-skew-policy/).
ARG TARGETARCH
ARG OPENTOFU_VERSION=1.10.6
ARG OPENTOFU_SHA256_AMD64=15b7bed76420b50da3e121769c43341df8cd57d751ca14e6dbe9c850124c6dac
ARG OPENTOFU_SHA256_ARM64=a32f653d686a8cad9b9be82101eb5b5e834fbfa8d095842fa1820c5d27fad967
ARG KUBECTL_VERSION=v1.34.2
ARG KUBECTL_SHA256_AMD64=9591f3d75e1581f3f7392e6ad119aab2f28ae7d6c6e083dc5d22469667f27253
ARG KUBECTL_SHA256_ARM64=95df604e914941f3172a93fa8feeb1a1a50f4011dfbe0c01e01b660afc8f9b85
COPY docker/install-tools.sh /usr/local/lib/kube-platform/install-tools.sh
RUN bash /usr/local/lib/kube-platform/install-tools.sh install

WORKDIR /opt/kube-platform
COPY --from=deps /opt/kube-platform/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY scripts ./scripts
COPY docker/entrypoint.sh docker/bashrc ./docker/
# Defaults for a container started without the launcher's mounts (e.g. in CI); run.kube
# mounts the operator's environments/, platform/ and secrets/<env>/ over them.
COPY environments /platform/environments
COPY platform /platform/platform

ENV PATH=/opt/kube-platform/scripts:$PATH \
    NODE_ENV=production \
    HOME=/home/platform \
    PLATFORM_WORKDIR=/platform \
    PLATFORM_SECRETS_DIR=/platform/secrets \
    PLATFORM_TF_BINARY=tofu

WORKDIR /platform
USER platform
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/kube-platform/docker/entrypoint.sh"]
