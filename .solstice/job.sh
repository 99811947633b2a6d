#!/bin/sh
# Solstice CI's own CI job: install, lint, type-check, unit tests.
# (The integration suite needs Temporal, PostgreSQL and a worker of its own; `.ci/run` runs it.)
set -eu
echo "== node $(node --version), npm $(npm --version)"
npm ci --no-audit --no-fund --prefer-offline
npm run gen --silent
npm run lint
npm run typecheck
npx jest --selectProjects unit
