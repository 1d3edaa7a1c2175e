# Build: the release binary, with SQLite compiled in (no system libraries needed).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked && strip target/release/roost

# Run: a small image with only the binary, as an unprivileged user.
FROM debian:bookworm-slim
# CA certificates: the stripe gateway verifies Stripe's servers (rustls
# with the system's roots).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/roost roost
COPY --from=build /src/target/release/roost /usr/local/bin/roost
USER roost
WORKDIR /var/lib/roost
ENV ROOST_BIND=0.0.0.0:8080 \
    ROOST_LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["roost"]
CMD ["serve"]
