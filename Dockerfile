# stampede's three binaries (stampede, stampede-tui, stampede-gateway) and the Kubernetes shard and
# collector scripts, for deploy/kubernetes. Multi-stage: the build in Rust's image, the run in Debian's
# slim one (the binaries link glibc only: TLS is rustls, built in; no database client library), as a
# non-root user.
#   docker build --build-arg GIT_REVISION=$(git describe --always --dirty) -t stampede .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
ARG GIT_REVISION=""
ENV STAMPEDE_GIT_REVISION=${GIT_REVISION}
RUN cargo build --release --locked --bin stampede --bin stampede-tui --bin stampede-gateway \
 && strip target/release/stampede target/release/stampede-tui target/release/stampede-gateway

FROM debian:bookworm-slim
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin stampede
COPY --from=build /src/target/release/stampede /src/target/release/stampede-tui \
     /src/target/release/stampede-gateway /usr/local/bin/
COPY deploy/kubernetes/stampede-shard deploy/kubernetes/stampede-collect /usr/local/bin/
COPY scenarios /usr/share/stampede/scenarios
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["stampede"]
CMD ["--help"]
