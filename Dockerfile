# syntax=docker/dockerfile:1
#
# Phalanx in a small runtime image, run as an unprivileged user.
#
#   docker build -t phalanx:local .
#   docker run --rm phalanx:local --help
#
# Stage 1 builds the release binary; stage 2 carries only the binary, CA
# certificates (for https beacon nodes and relays) and time-zone data.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p phalanx \
    && strip target/release/phalanx \
    && ./target/release/phalanx --version

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 1000 phalanx \
    && useradd --system --uid 1000 --gid phalanx --create-home --home-dir /home/phalanx phalanx
COPY --from=builder /src/target/release/phalanx /usr/local/bin/phalanx
USER phalanx:phalanx
WORKDIR /home/phalanx
# p2p: TCP and QUIC. The validator API (3600) and the metrics (3620) stay on
# the compose network: publish them only on purpose.
EXPOSE 3610/tcp 3630/udp
ENTRYPOINT ["phalanx"]
CMD ["--help"]
