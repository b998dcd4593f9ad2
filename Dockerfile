# trengo-sync container image: built on the official Rust image, run on distroless (glibc, no
# shell, no package manager) as the non-root user 65532. State lives in the volume
# /var/lib/trengo-sync; the configuration and the tokens come from files mounted at run time
# (compose.yaml and docs/deploy.md show how). Build: `docker build -t trengo-sync .`
# (`--build-arg TRENGO_SYNC_GIT_COMMIT=$(git rev-parse --short=12 HEAD)` labels build_info).

ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Dependencies first, so editing the source does not rebuild them: a stub crate with the
# real manifest and lock file.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches/sync \
    && echo 'fn main() {}' > src/main.rs \
    && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/sync/main.rs \
    && cargo build --release --locked --bin trengo-sync \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
ARG TRENGO_SYNC_GIT_COMMIT=unknown
ENV TRENGO_SYNC_GIT_COMMIT=${TRENGO_SYNC_GIT_COMMIT}
# touch: the stub's build is older than the real sources only by mtime.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin trengo-sync \
    && install -D -m 0755 target/release/trengo-sync /out/usr/bin/trengo-sync \
    && install -d -m 0700 /out/var/lib/trengo-sync

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="trengo-sync" \
      org.opencontainers.image.description="Two-way sync between Trengo tickets and GoHighLevel tasks" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY --from=builder /out/usr/bin/trengo-sync /usr/bin/trengo-sync
COPY --from=builder --chown=65532:65532 /out/var/lib/trengo-sync /var/lib/trengo-sync
# The configuration file is mounted here; every key can also come from TRENGO_SYNC__* variables.
ENV TRENGO_SYNC_CONFIG=/etc/trengo-sync/config.toml \
    TRENGO_SYNC__STORE__PATH=/var/lib/trengo-sync/state.sqlite \
    TRENGO_SYNC__HTTP__LISTEN=0.0.0.0:8642 \
    TRENGO_SYNC__LOG__FORMAT=json
USER 65532:65532
VOLUME ["/var/lib/trengo-sync"]
EXPOSE 8642
# /healthz fails when a job has not ticked for three periods (the scheduler stalled).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/usr/bin/trengo-sync", "healthcheck"]
ENTRYPOINT ["/usr/bin/trengo-sync"]
CMD ["run"]
