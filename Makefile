# content-sync developer entry points.
#
#   make test    install the pinned stand-ins (moto, osmem-server) into .local/venv, then cargo test
#   make build   release build
#   make fmt     cargo fmt
#   make lint    cargo clippy (warnings are errors)
#
# Extra arguments for cargo test: make test TEST_ARGS='--test harness_smoke -- --nocapture'

CARGO ?= cargo
STAND_INS := scripts/stand-ins.sh
TEST_ARGS ?=

.PHONY: test build fmt fmt-check lint stand-ins demo ftest bench

stand-ins:
	@$(STAND_INS) install

# The integration tests spawn their own servers from OSMEM_BIN / MOTO_SERVER_BIN
# (or use ES_URL / S3_ENDPOINT when those are set).
test: stand-ins
	@set -a && eval "$$($(STAND_INS) paths)" && set +a && \
		$(CARGO) test --all-targets $(TEST_ARGS)

build:
	$(CARGO) build --release

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

# --- placeholders (owned by another workstream) ---------------------------------
demo:
	@echo "make demo: not yet implemented" >&2; exit 1

ftest:
	@echo "make ftest: not yet implemented" >&2; exit 1

bench:
	@echo "make bench: not yet implemented" >&2; exit 1
