# p11kms — `make run` starts a local daemon on a fresh SoftHSM2 token; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VAR        := $(CURDIR)/var
APT_PKGS   := softhsm2 opensc protobuf-compiler nghttp2-client awscli
PROTO_SRC  := $(shell find proto -name '*.proto')
GEN_STAMP  := src/gen/.stamp
CLIENT_DIR := packages/client
export SOFTHSM2_CONF := $(VAR)/softhsm2.conf

.PHONY: help deps build client generate run test check typecheck lint bench clean token

help:
	@echo "make run    install, build, create ./var token + store, start the daemon (127.0.0.1:50051)"
	@echo "make test   install, build, run the whole test suite"
	@echo "make check  typecheck, lint, unit tests;  make bench  benchmarks;  make clean"

# Debian packages, installed only when a command is missing (CI and fresh machines have none of them).
deps: node_modules/.installed
	@missing=""; \
	command -v softhsm2-util >/dev/null || missing="$$missing softhsm2"; \
	command -v pkcs11-tool   >/dev/null || missing="$$missing opensc"; \
	command -v protoc        >/dev/null || missing="$$missing protobuf-compiler"; \
	command -v h2load        >/dev/null || missing="$$missing nghttp2-client"; \
	[ -x /usr/bin/aws ]                 || missing="$$missing awscli"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	fi

node_modules/.installed: package.json package-lock.json $(CLIENT_DIR)/package.json
	npm ci --no-audit --no-fund
	@touch $@

generate: $(GEN_STAMP)
$(GEN_STAMP): $(PROTO_SRC) Makefile node_modules/.installed | deps
	rm -rf src/gen && mkdir -p src/gen
	protoc --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
	  --ts_proto_out=src/gen \
	  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,env=node,useDate=true,useMapType=true,outputIndex=false \
	  -I proto -I /usr/include $(PROTO_SRC)
	# The client package (@p11kms/client) compiles its own copy: it must not import the server's files.
	rm -rf $(CLIENT_DIR)/src/gen && cp -r src/gen $(CLIENT_DIR)/src/gen
	@touch $@

# The client package first: the daemon imports its wire contract and the CLI its SDK, as "@p11kms/client".
client: deps generate
	npx tsc -p $(CLIENT_DIR)/tsconfig.json

build: client
	npx tsc -p tsconfig.build.json

typecheck: client
	npx tsc -p tsconfig.json --noEmit

lint: client
	npx eslint src test bench $(CLIENT_DIR)/src --max-warnings 0 --no-error-on-unmatched-pattern

# The local token and PINs (random, mode 0600) under ./var, made once.
token: build
	@softhsm/init-token.sh $(VAR) p11kms >/dev/null
	@[ -f $(VAR)/p11kms.yaml ] || sed "s|@VAR@|$(VAR)|g" config/p11kms.dev.yaml > $(VAR)/p11kms.yaml
	@[ -f $(VAR)/dev-access-key.json ] || bin/p11kms create-access-key --out $(VAR)/dev-access-key.json --principal arn:aws:iam::111122223333:root >/dev/null

run: build token
	@echo "AWS-compatible endpoint: http://127.0.0.1:4599 (access key in var/dev-access-key.json; see README)"
	bin/p11kms serve --config $(VAR)/p11kms.yaml

# The last line is the plain "N passed, N failed" summary that CI reads.
test: build typecheck lint
	@mkdir -p $(VAR); status=0; \
	npx vitest run --reporter=default --reporter=json --outputFile.json=$(VAR)/test-results.json || status=$$?; \
	node -e 'const r=require(process.argv[1]); console.log(`$${r.numPassedTests} passed, $${r.numFailedTests} failed` + (r.numPendingTests ? `, $${r.numPendingTests} skipped` : ""))' $(VAR)/test-results.json || status=1; \
	exit $$status

check: typecheck lint
	npx vitest run --project unit

# Four parts, one after the other (each needs the machine to itself): the gRPC path against the device
# and transport ceilings; a token with 10,000 keys against one with 10 (made once, kept in var/bench-10k);
# the AWS JSON facade against an HTTP ceiling and moto_server; envelope encryption against plain
# node:crypto on one core. See docs/benchmarks.md and docs/benchmarks-envelope.md.
bench: build
	rm -rf dist-bench dist-bench-envelope
	npx tsc -p tsconfig.bench.json
	npx tsc -p tsconfig.bench-envelope.json
	node dist-bench/bench/main.js
	node dist-bench/bench/scale/main.js
	node dist-bench/bench/aws/main.js
	taskset -c 0 node dist-bench-envelope/bench/envelope/main.js --rounds 3

# Bounded soak, never run by CI: ~70 % of the measured maximum of a mixed gRPC + AWS workload for SOAK_SECONDS
# (default 600; SOAK_SECONDS=60 for a short run), a line every 10 s (throughput, errors, latency, daemon RSS),
# then the RSS slope. Needs the machine to itself. See docs/operations.md, "Soak".
.PHONY: soak
soak: build
	rm -rf dist-bench
	npx tsc -p tsconfig.bench.json
	node dist-bench/bench/soak/main.js

clean:
	rm -rf dist src/gen dist-bench dist-bench-envelope $(CLIENT_DIR)/dist $(CLIENT_DIR)/src/gen
