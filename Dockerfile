# tokenwatch container image: a static binary on distroless (no shell, runs as
# nonroot). Built by docker-compose.yml; by hand:
#   docker build -t tokenwatch --build-arg VERSION=$(git describe --always) .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tokenwatch ./cmd/tokenwatch \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokenwatch /usr/local/bin/tokenwatch
# State (fingerprint key file, alert dispatcher cursor) lives here; mount a volume.
COPY --from=build --chown=65532:65532 /out/state /var/lib/tokenwatch
USER nonroot:nonroot
VOLUME ["/var/lib/tokenwatch"]
# telemetry.listen: /metrics, /healthz, /readyz
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/tokenwatch"]
CMD ["run", "--config", "/etc/tokenwatch/tokenwatch.yaml"]
