# content-sync: multi-stage build, small runtime image.
# `docker run -v $PWD/config.yml:/config/config.yml content-sync /app/bin/elastic-ingest -c /config/config.yml`
# works unchanged: /app/bin/elastic-ingest is the same binary. `make image` builds it with Docker or podman,
# also on machines without a registry (scripts/image.sh makes the two base images locally there).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo.toml declares the extraction bench: the manifest needs its file even for a --bin build.
COPY benches ./benches
# target/ goes in the same step: it is 1 GB of no use to the runtime stage.
RUN cargo build --release --locked --bin content-sync \
 && mkdir -p /out/app/bin \
 && cp target/release/content-sync /out/app/bin/content-sync \
 && ln -s content-sync /out/app/bin/elastic-ingest \
 && rm -rf target
COPY config.yml.example /out/app/config.yml.example

# The binary needs only glibc and libgcc; distroless cc has them, CA certificates and time zones, and no
# shell or package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/app /app
# The image's `nonroot` user, numeric so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
WORKDIR /app
ENV PATH="/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXPOSE 9108
ENTRYPOINT []
CMD ["/app/bin/content-sync", "-c", "/config/config.yml"]
