# Ferrostack: `make up` starts the all-in-one cloud, `make test` runs every test, `make down` stops it.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/ferrostack/target
export FERROSTACK_VENV ?= /opt/ferrostack/venv

.PHONY: up down test build lint unit e2e tempest-identity bench-identity clean-state guest-image
.PHONY: tempest-image bench-image
.PHONY: bench-placement
.PHONY: tempest-compute bench-boot tempest-network tempest-volume
.PHONY: bench-compute

up:  ## Install what is missing, build, start the cloud in the background, write clouds.yaml
	@scripts/up.sh

down:  ## Stop the cloud started by `make up`
	@scripts/down.sh

build:
	cargo build --release -p ferrostack

lint:  ## Formatting and clippy, as CI runs them
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:  ## Unit and store tests (SQLite, and PostgreSQL when FERROSTACK_TEST_DATABASE_URL is set)
	cargo nextest run --workspace --no-fail-fast

e2e:  ## End-to-end tests with the real openstack CLI against a freshly started cloud
	scripts/e2e.sh

test:  ## Everything CI runs
	@scripts/test.sh

tempest-identity:  ## Run Tempest's identity API tests against the cloud started by `make up`
	@scripts/tempest.sh identity

bench-identity:  ## Ferrostack vs Keystone: token issue/validate throughput, latency, memory
	@scripts/bench-identity.sh

tempest-image:  ## Run Tempest's image API tests against the cloud started by `make up`
	@scripts/tempest.sh image

tempest-compute:  ## Run Tempest's compute API tests (validation off) against a private cloud it starts
	@scripts/tempest.sh --start compute

tempest-network:  ## Run Tempest's network API tests (API only, no validation) against a private cloud it starts
	@scripts/tempest.sh --start network

tempest-volume:  ## Run Tempest's block storage API tests (no servers, no backups) against a private cloud it starts
	@scripts/tempest.sh --start volume

bench-boot:  ## Real-guest boot latency: API accepted → domain defined (Ferrostack) → started (QEMU)
	@scripts/bench-boot.sh

bench-image:  ## Image upload/download throughput: Ferrostack vs Glance vs dd on the same disk
	@scripts/bench-image.sh

bench-placement:  ## GET /allocation_candidates over 1000 providers: Ferrostack vs openstack-placement
	@scripts/bench-placement.sh

.PHONY: bench-network
bench-network:  ## Port create (with IP allocation) and delete, ports/s and p50/p90/p99: Ferrostack (SQLite, PostgreSQL) vs neutron-server
	@bench/network/run.sh

.PHONY: bench-convergence
bench-convergence:  ## Network convergence through the binary for 1, 100 and 1000 ports on one host: Neutron API call → port ACTIVE → guests' DHCP and ping (root); rewrites its docs/benchmarks.md section (BENCH_WRITE_DOCS=0: print only)
	@bench/convergence/run.sh

.PHONY: bench-volume
bench-volume:  ## Block storage: blank volume create/delete rates, volume from a 1 GiB image vs qemu-img convert, snapshots, attach/detach to a running guest; rewrites its docs/benchmarks.md section
	@bench/volume/run.sh

guest-image:  ## Build (and self-test with --selftest) the tiny test guest: kernel + initramfs and a whole-disk qcow2
	@scripts/build-guest-image.sh

bench-compute:  ## Compute control plane at scale: 1000 simulated hosts (fake driver), servers/s to ACTIVE, API latency at 10,000 servers; rewrites its docs/benchmarks.md section (BENCH_WRITE_DOCS=0: print only)
	@report=$$(mktemp) && trap 'rm -f "$$report"' EXIT && \
	BENCH_REPORT="$$report" cargo bench -p ferrostack-compute-agent --bench scale && \
	if [ "$${BENCH_WRITE_DOCS:-1}" = 1 ]; then \
		python3 bench/doc_section.py docs/benchmarks.md compute-scale < "$$report"; fi
