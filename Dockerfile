# content-sync: multi-stage build, small runtime image.
# `docker run -v $PWD/config.yml:/config/config.yml content-sync /app/bin/elastic-ingest -c /config/config.yml`
# works unchanged: /app/bin/elastic-ingest is the same binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo.toml declares the extraction bench: the manifest needs its file even for a --bin build.
COPY benches ./benches
RUN cargo build --release --locked --bin content-sync

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app content-sync
COPY --from=build /src/target/release/content-sync /app/bin/content-sync
RUN ln -s /app/bin/content-sync /app/bin/elastic-ingest
COPY config.yml.example /app/config.yml.example
USER content-sync
WORKDIR /app
ENV PATH="/app/bin:${PATH}"
ENTRYPOINT []
CMD ["/app/bin/content-sync", "-c", "/config/config.yml"]
