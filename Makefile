# content-sync developer entry points.
#
#   make test    start a real Elasticsearch (scripts/elasticsearch.sh; or use ES_URL), install the pinned
#                stand-ins (moto, osmem-server) into .local/venv, then cargo test
#   make build   release build
#   make fmt     cargo fmt
#   make lint    cargo clippy (warnings are errors)
#   make demo    sync a sample bucket end to end on the stand-ins and print a summary
#   make ftest   Elastic's functional test (NAME=s3 DATA_SIZE=small|medium|large)
#   make chaos   kill -9 the service at random moments of its jobs, check index == bucket (ROUNDS=N OBJECTS=M)
#   make bench   extraction benchmarks (criterion): MB/s per format
#   make bench-sync   sync benchmarks on the stand-ins (1 000 mixed files; 10 000 objects full vs incremental)
#   make bench-scale  memory and speed as the bucket grows (N=..., default 100 000): the service against
#                examples/synthetic-s3 (a generated, storage-less S3) and examples/synthetic-es (a
#                synthetic content index before a real Elasticsearch; SCALE_ES=node: the real node only)
#   make bench-extract  does a full sync with native extraction keep every core busy? (EXTRACT_N=..., default
#                20 000 objects cycling tests/corpus from examples/synthetic-s3 --corpus; the ratio to the
#                single-core extraction throughput × cores; DOWNLOADS=...: concurrent downloads/workers;
#                EXTRACT_CORPUS=large: larger generated files, ftest/large_corpus.py)
#   make fuzz    every libFuzzer target for FUZZ_SECS seconds (needs cargo-fuzz; stable via RUSTC_BOOTSTRAP)
#   make image   build content-sync:latest from the Dockerfile (Docker if its daemon answers, else podman)
#   make test-image  run that image as Elastic documents against the stand-ins: sync, probes, SIGTERM
#
# Extra arguments for cargo test: make test TEST_ARGS='--test harness_smoke -- --nocapture'

CARGO ?= cargo
STAND_INS := scripts/stand-ins.sh
TEST_ARGS ?=

.PHONY: test build fmt fmt-check lint stand-ins demo ftest chaos bench bench-sync bench-scale bench-extract fuzz \
	image test-image

stand-ins:
	@$(STAND_INS) install

# The integration tests share one real Elasticsearch node (started here unless ES_URL is set) and
# spawn a moto server per test from MOTO_SERVER_BIN (or use S3_ENDPOINT when set).
test: stand-ins
	$(CARGO) test --all-targets --no-run
	@set -a && eval "$$($(STAND_INS) paths)" && set +a && \
		scripts/with-elasticsearch.sh $(CARGO) test --all-targets --no-fail-fast $(TEST_ARGS)

build:
	$(CARGO) build --release

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

# The main job on a fresh machine: build, start the stand-ins (unless ES_URL and S3_ENDPOINT are set),
# sync a sample bucket, print a summary and a search hit, stop everything.
demo: stand-ins
	$(CARGO) build --release
	@scripts/with-stand-ins.sh .local/venv/bin/python ftest/demo.py target/release/content-sync

# Elastic's S3 functional test: make ftest NAME=s3 DATA_SIZE=small|medium|large
NAME ?= s3
DATA_SIZE ?= medium
ftest: stand-ins
	$(CARGO) build --release
	@scripts/with-stand-ins.sh .local/venv/bin/python ftest/ftest.py --name $(NAME) --data-size $(DATA_SIZE) \
		--binary target/release/content-sync

# Chaos: rounds of bucket changes and jobs killed with SIGKILL at random moments (seeded: SEED=...), each
# checked for index == bucket exactly. A real Elasticsearch (ES_URL, else started) and moto (S3_ENDPOINT,
# else started by the driver). A round with a kill lasts ≥ 30 s (the lease of a dead instance's job).
ROUNDS ?= 2
OBJECTS ?= 3000
CHAOS_ARGS ?=
# CHAOS_PROFILE=debug drives the debug build (what CI has built already).
CHAOS_PROFILE ?= release
chaos: stand-ins
	$(CARGO) build $(if $(filter release,$(CHAOS_PROFILE)),--release,)
	@scripts/with-elasticsearch.sh .local/venv/bin/python ftest/chaos.py --rounds $(ROUNDS) --objects $(OBJECTS) \
		--binary target/$(CHAOS_PROFILE)/content-sync $(CHAOS_ARGS)

# libFuzzer on every extractor family, seeded from tests/corpus; crashes land in fuzz/artifacts/.
FUZZ_SECS ?= 120
fuzz:
	FUZZ_SECS=$(FUZZ_SECS) fuzz/run-all.sh

# Extraction throughput (MB/s per format) on the corpus and on large generated inputs.
bench:
	$(CARGO) bench --bench extract

# Sync benchmarks on the stand-ins: 1 000 mixed files with extraction; 10 000 objects full vs no-change
# incremental.
bench-sync: stand-ins
	$(CARGO) build --release
	@scripts/with-stand-ins.sh .local/venv/bin/python ftest/bench_sync.py target/release/content-sync

# Scale: a metadata-only full sync and a no-change incremental sync of a synthetic bucket of N
# objects, beside the servers' own ceilings in the same run (ftest/bench_scale.py). The content index
# is the synthetic Elasticsearch front (examples/synthetic-es: N pre-indexed documents plus STALE,
# default N/10, that the syncs must delete; bulk counted and dropped) before a real node (ES_URL, else
# one started for the run); SCALE_ES=node puts the content index on the real node itself, SCALE_ES=osmem
# on the OpenSearch-API stand-in. SCALE_TEMP_DIR: the service's temporary directory (measured).
# RANGES: service.listing_ranges; PAGE: the connector's page_size (default 1000); S3_LATENCY_MS: the
# synthetic S3 answers each listing request that late, as a distant S3 does.
SCALE_ES ?= front
N ?= 100000
STALE ?=
bench-scale:
	$(CARGO) build --release --bin content-sync --example synthetic-s3 --example synthetic-es
	@$(if $(filter osmem,$(SCALE_ES)),scripts/with-stand-ins.sh,scripts/with-elasticsearch.sh) \
		python3 ftest/bench_scale.py --objects $(N) $(if $(STALE),--stale $(STALE)) \
		--es $(if $(filter front,$(SCALE_ES)),front,node) --binary target/release/content-sync \
		$(if $(RANGES),--ranges $(RANGES)) $(if $(PAGE),--page-size $(PAGE)) \
		$(if $(S3_LATENCY_MS),--s3-latency-ms $(S3_LATENCY_MS)) \
		--s3-binary target/release/examples/synthetic-s3 --es-binary target/release/examples/synthetic-es

# Extraction: a full sync of EXTRACT_N objects cycling the extraction corpus (examples/synthetic-s3
# --corpus) with native extraction, bulk counted and dropped by examples/synthetic-es before a real node
# (ES_URL, else one started for the run), beside the same objects' single-core extraction throughput
# (examples/extract --objects), the synthetic S3's GET ceiling to a plain HTTP client and the same GETs
# through the service's own download path (examples/get-ceiling), in ftest/bench_extract.py.
# EXTRACT_CORPUS=large: the larger files of ftest/large_corpus.py (60-340 KB) instead of tests/corpus.
EXTRACT_N ?= 20000
DOWNLOADS ?=
EXTRACT_CORPUS ?=
bench-extract:
	$(CARGO) build --release --bin content-sync --example synthetic-s3 --example synthetic-es --example extract --example get-ceiling
	$(if $(filter large,$(EXTRACT_CORPUS)),python3 ftest/large_corpus.py target/large-corpus)
	@scripts/with-elasticsearch.sh python3 ftest/bench_extract.py --objects $(EXTRACT_N) \
		$(if $(filter large,$(EXTRACT_CORPUS)),--corpus target/large-corpus) \
		$(if $(DOWNLOADS),--downloads $(DOWNLOADS)) --binary target/release/content-sync \
		--s3-binary target/release/examples/synthetic-s3 --es-binary target/release/examples/synthetic-es \
		--extract-binary target/release/examples/extract --get-binary target/release/examples/get-ceiling

# The container image. Without a registry (this project's machines) scripts/image.sh first makes the
# Dockerfile's two base images locally from Debian packages and the machine's Rust toolchain.
IMAGE ?= content-sync:latest
image:
	IMAGE=$(IMAGE) scripts/image.sh build

# The image run as Elastic documents (`-v config.yml:/config/config.yml … /app/bin/elastic-ingest -c …`)
# against the stand-ins (or ES_URL / S3_ENDPOINT) on the host network.
test-image: stand-ins
	IMAGE=$(IMAGE) scripts/image.sh test
