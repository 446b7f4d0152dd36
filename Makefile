# kube-platform — see README.md. `make` builds the image; `make local` and `make test`
# are the quick start and work on a fresh clone without Docker.
SHELL := /bin/bash
VERSION := $(shell node -p "require('./package.json').version" 2>/dev/null || echo dev)
IMAGE ?= kube-platform
REGISTRY ?=

.PHONY: all image push deps build local local-down test lint check-tools clean

all: image

image: ## build the build container kube-platform:$(VERSION)
	docker build -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

push: image ## push the image to $(REGISTRY)
	@test -n "$(REGISTRY)" || { echo "make push: set REGISTRY=registry.example.com/team" >&2; exit 2; }
	docker tag $(IMAGE):$(VERSION) $(REGISTRY)/$(IMAGE):$(VERSION)
	docker push $(REGISTRY)/$(IMAGE):$(VERSION)

# npm ci: installs exactly what the lock file lists and never rewrites it. The lock file
# lists every platform's optional binaries (biome, esbuild, jest's resolver), as npm 11
# writes it, so `npm install` with npm 10 or 11 leaves it unchanged too (CI checks that).
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json ## install dependencies (from the lock file) when the lock file changed

# rebuilt only when a source, the compiler settings or the dependencies changed (tsc, the
# agent bundle and the CLI bundle take ~25 s; `make local` on an unchanged tree skips them)
BUILD_INPUTS := $(shell find src test bench tools -type f -name '*.ts' 2>/dev/null) \
	$(shell find src -type f -name '*.json' 2>/dev/null) tsconfig.json package.json
dist/.build-stamp: node_modules/.package-lock.json $(BUILD_INPUTS)
	npm run --silent build
	@touch $@

build: dist/.build-stamp ## compile the toolkit, bundle the CLI and the node agent (when sources changed)

# all at once: the local AWS's instances run no agent, so a staged rollout would wait for
# masters that never report
local: build ## the main job end to end against the embedded local AWS, then the inventory
	./play.kube --local -- run --yes --rollout all-at-once
	./play.kube --local -- aws-instances

local-down: ## stop the embedded local AWS that `make local` left running
	./scripts/local-aws stop

check-tools: ## fail loudly when a tool the tests need is missing
	@bash .ci/check-tools

test: deps check-tools ## the whole test suite (unit + integration against moto_server and terraform)
	npm test

lint: deps
	npm run --silent lint

clean:
	rm -rf dist
