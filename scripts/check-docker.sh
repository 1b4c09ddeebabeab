#!/usr/bin/env bash
# What CI can check of docker/ without a Docker engine: every Dockerfile passes dockerfile-utils'
# linter with no diagnostic at all, and the compose file (with and without the gpu profile) is
# valid to Debian's docker-compose. Images are NOT built here.
set -euo pipefail
cd "$(dirname "$0")/.."

for dockerfile in docker/Dockerfile docker/Dockerfile.gpu; do
  diagnostics=$(npx --no-install dockerfile-utils lint -j "$dockerfile")
  if [ "$diagnostics" != "[]" ]; then
    echo "docker: $dockerfile: $diagnostics" >&2
    exit 1
  fi
done

if ! command -v docker-compose >/dev/null 2>&1; then
  if apt-cache policy docker-compose 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    echo "ci: installing docker-compose (for \`docker-compose config\` only)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq docker-compose >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }
  else
    echo "docker: docker-compose is not installable here: compose file not validated" >&2
    exit 1
  fi
fi
docker-compose -f docker/compose.yaml config -q
docker-compose -f docker/compose.yaml --profile gpu config -q
echo "docker: Dockerfiles lint clean, docker/compose.yaml valid (images not built)"
