# Build: official Swift image. Run: slim Ubuntu with only what the binary needs.
# Not built in CI here (no Docker engine in this environment).
FROM swift:6.1-noble AS build
WORKDIR /src
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product pubsub --static-swift-stdlib \
 && cp "$(swift build -c release --show-bin-path)/pubsub" /pubsub

FROM ubuntu:noble
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 pubsub
COPY --from=build /pubsub /app/pubsub
USER pubsub
ENV HOST=0.0.0.0 PORT=4000
EXPOSE 4000
ENTRYPOINT ["/app/pubsub"]
CMD ["serve"]
