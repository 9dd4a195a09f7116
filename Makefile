# The verbs a user types. `make run` and `make test` do all set-up first.

SHELL       := /bin/bash
CARGO       ?= cargo
DOVECOT_DIR ?= /tmp/pop3-probe-dovecot
export POP3_PROBE_DOVECOT_DIR := $(DOVECOT_DIR)
SMTP_DIR ?= /tmp/pop3-probe-smtp
export POP3_PROBE_SMTP_DIR := $(SMTP_DIR)
OAUTH2_DIR ?= /tmp/pop3-probe-oauth2
export POP3_PROBE_OAUTH2_DIR := $(OAUTH2_DIR)
BIN         := target/release/pop3-probe

.PHONY: all setup build run test test-fast test-rust lint fmt dovecot-start dovecot-stop smtp-start smtp-stop oauth2-start oauth2-stop clean help fuzz fuzz-ci soak

all: build

help:
	@echo "make run         set up, start a local Dovecot and Exim, probe them with the example"
	@echo "make test        set up, lint, and run every test (what CI runs)"
	@echo "make test-fast   the tests that need no server: unit, scripted servers, pipeline, properties"
	@echo "make test-rust   every cargo test (starts the test Dovecot and Exim first)"
	@echo "make test-infra  Terraform: fmt, validate, checkov, apply/destroy against moto, IAM vs code"
	@echo "make test-infra-tools  checks for Terraform and its AWS provider (from the machine image, never downloaded)"
	@echo "make build       release build of the CLI and the Lambda"
	@echo "make lambda      the arm64 Lambda zip (cargo lambda)"
	@echo "make deploy      terraform apply of infra/examples/complete (deploy-plan, deploy-destroy)"
	@echo "make lint        cargo fmt --check and clippy -D warnings"
	@echo "make fuzz        every fuzz target for 10 minutes (FUZZ_SECONDS=N); fuzz-ci: 1 minute each"
	@echo "make soak        the fault soak, 30 cycles (SOAK_CYCLES=N)"
	@echo "make bench       benchmarks against the tools people use; rewrites BENCHMARKS.md"
	@echo "make bench-ci    the short benchmark run that make test includes"
	@echo "make dovecot-start / dovecot-stop   the test Dovecot on loopback"
	@echo "make smtp-start / smtp-stop         the test Exim (SMTP) on loopback"
	@echo "make oauth2-start / oauth2-stop     oidc-provider and the OAuth2 Dovecot on loopback"
	@echo "make clean       stop the test servers, cargo clean"

setup:
	bash scripts/setup.sh

build:
	$(CARGO) build --release --locked

dovecot-start:
	bash tests/dovecot/ensure.sh $(DOVECOT_DIR)

dovecot-stop:
	bash tests/dovecot/stop.sh $(DOVECOT_DIR)

smtp-start:
	bash tests/smtp/ensure.sh $(SMTP_DIR)

smtp-stop:
	bash tests/smtp/stop.sh $(SMTP_DIR)

# oidc-provider (npm) and a Dovecot that takes only its tokens (docs/oauth2.md).
oauth2-start:
	bash tests/oauth2/ensure.sh $(OAUTH2_DIR)

oauth2-stop:
	bash tests/oauth2/stop.sh $(OAUTH2_DIR)

# The main job on a fresh machine: no AWS account needed. The example
# config watches the local Dovecot; one monitor (an expired certificate) is
# down on purpose, so exit code 2 is expected here.
run: setup build dovecot-start smtp-start
	@mkdir -p target
	@. scripts/example-env.sh $(DOVECOT_DIR) $(SMTP_DIR) && \
	  scripts/local-example.sh $(DOVECOT_DIR) $(SMTP_DIR) > target/local-monitors.json && \
	  $(BIN) run --config target/local-monitors.json --state target/local-state.json; \
	  rc=$$?; test $$rc -le 2

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

# Doc tests too: --all-targets leaves them out, and the round-trip type
# rule is shown by compile-fail doc tests (src/roundtrip/mod.rs).
test-rust: dovecot-start smtp-start oauth2-start
	$(CARGO) test --locked --all-targets
	$(CARGO) test --locked --doc

# No server, no AWS emulator, no browser: the unit tests and the test files
# that play the server themselves. A minute or two on a warm build.
FAST_TESTS := pipeline properties pop3_scripted smtp_scripted init
test-fast:
	$(CARGO) test --locked --lib $(addprefix --test ,$(FAST_TESTS))

include infra/Makefile.fragment
include peer-bench/Makefile.fragment

test: setup lint test-rust test-infra fuzz-ci bench-ci

# Long fuzzing (10 minutes a target by default); CI runs the short version.
FUZZ_SECONDS ?= 600
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-ci:
	bash scripts/fuzz.sh 60

# The fault soak, long (CI runs 2 cycles as part of the test suite).
soak: dovecot-start
	SOAK_CYCLES=$${SOAK_CYCLES:-30} $(CARGO) test --release --locked --test soak -- --nocapture

fmt:
	$(CARGO) fmt --all

clean: dovecot-stop smtp-stop
	$(CARGO) clean
