#!/usr/bin/env bash
# Set-up plus the main job: install, start the local Postgres, `pulumi up --stack dev`.
# No Pulumi account: state lives in .pulumi-state/ and dev secrets use a documented passphrase.
set -euo pipefail
cd "$(dirname "$0")/.."

# The CLI: the npm package `pulumi` at this exact version (run through npx, nothing installed globally).
PULUMI_VERSION=3.265.0
# Resource plugins at exactly the versions the pinned npm packages request (their package.json "pulumi" field;
# test/commands.test.ts keeps the two in step).
PLUGINS=(postgresql:3.18.1 random:4.21.2 aws:7.48.0 github:6.15.0 snowflake:1.3.0 tls:5.6.1)
export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-dbt-platform-dev}"
# The provider reads the local admin password from PGPASSWORD (see scripts/local-postgres.ts).
export PGPASSWORD="${PGPASSWORD:-dbt-platform-local}"
pulumi() { npx --yes "pulumi@${PULUMI_VERSION}" "$@"; }

npm ci
mkdir -p .pulumi-state .local

port_open() { node -e 'require("net").connect(54329,"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))'; }
if ! port_open; then
  nohup npx tsx scripts/local-postgres.ts > .local/postgres.log 2>&1 &
  for _ in $(seq 1 60); do port_open && break; sleep 1; done
  port_open || { echo "local Postgres did not start; see .local/postgres.log" >&2; exit 1; }
fi

for plugin in "${PLUGINS[@]}"; do
  pulumi plugin install resource "${plugin%%:*}" "${plugin#*:}"
done

# Pulumi.dev.yaml carries the encryptionsalt of the dev passphrase, in the CLI's own form: git stays clean.
pulumi stack select dev --create --non-interactive
pulumi up --stack dev --yes --non-interactive "$@"
