# Build: the official Swift image of the toolchain CI builds and tests with (6.3.1; the code
# needs 6.2 or later, e.g. for InlineArray). Run: slim Ubuntu with only what the binary needs.
# Not built in CI here (no Docker engine in this environment).
FROM swift:6.3.1-noble AS build
WORKDIR /src
# Package.resolved, when the build context has one (it is not in git: run `swift package
# resolve` or any build first), pins every dependency to the versions the tests ran with.
COPY Package.swift Package.resolve[d] ./
RUN if [ -f Package.resolved ]; then swift package resolve --force-resolved-versions; else swift package resolve; fi
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product pubsub --static-swift-stdlib \
 && cp "$(swift build -c release --show-bin-path)/pubsub" /pubsub

FROM ubuntu:noble
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 pubsub
COPY --from=build /pubsub /app/pubsub
USER pubsub
ENV HOST=0.0.0.0 PORT=4000
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/api/health" > /dev/null || exit 1
ENTRYPOINT ["/app/pubsub"]
CMD ["serve"]
