/**
 * The scheduled-run container: its Dockerfile (rendered here, built and pushed by the release
 * pipeline) and its entrypoint, a bash script that the tests run locally with exactly the task
 * definition's environment. At task start it pulls the project tarball and its manifest for one
 * commit from the artifacts bucket (pinned, or the one `projects/current` names), so the image
 * changes only when dbt, the adapter or this file does (runnerImageTag).
 */

import { createHash } from "crypto";
import { deadlockRetryLines } from "../../pipelines/runner";

/** Environment variable names the entrypoint reads; the task definition sets each one. */
export const RUNNER_ENV = {
    bucket: "DBT_ARTIFACTS_BUCKET",
    projectKey: "DBT_PROJECT_KEY",
    manifestKey: "DBT_PROJECT_MANIFEST_KEY",
    /** Set instead of the two keys above: the task follows `<prefix>current`, the commit the release published last. */
    projectPrefix: "DBT_PROJECT_PREFIX",
    statePrefix: "DBT_RUN_STATE_PREFIX",
    target: "DBT_TARGET",
    profilesDir: "DBT_PROFILES_DIR",
    mode: "DBT_RUNNER_MODE",
    fullBuildEvery: "DBT_RUNNER_FULL_BUILD_EVERY",
} as const;

/** Where the entrypoint lives in the image. */
export const ENTRYPOINT_PATH = "/usr/local/bin/dbt-scheduled-run";

/** Key of a commit's project tarball under `prefix` (e.g. `projects/<commit>.tar.gz`). */
export function projectTarballKey(prefix: string, commit: string): string {
    return `${prefix}${commit}.tar.gz`;
}

/** Key of the manifest the release compiled for that commit (`projects/<commit>/manifest.json`). */
export function projectManifestKey(prefix: string, commit: string): string {
    return `${prefix}${commit}/manifest.json`;
}

/** Key of the pointer the release writes last: the commit whose project and manifest are complete (`projects/current`). */
export function projectPointerKey(prefix: string): string {
    return `${prefix}current`;
}

/** What the image pins. */
export interface RunnerImageSpec {
    /** Python base image minor version, e.g. 3.11. */
    pythonVersion: string;
    /** dbt-core version, e.g. 1.11.16. */
    dbtVersion: string;
    /** Adapter package, e.g. dbt-postgres. */
    adapterPackage: string;
    /** Adapter version, e.g. 1.11.0. */
    adapterVersion: string;
    /** AWS CLI v1 version, e.g. 1.46.2. */
    awscliVersion: string;
}

/** The Dockerfile text; the entrypoint file sits next to it as `dbt-scheduled-run`. */
export function renderDockerfile(spec: RunnerImageSpec): string {
    return [
        `# Scheduled dbt runs (dbt-platform ScheduledRuns). Build context: this file and dbt-scheduled-run.`,
        `FROM python:${spec.pythonVersion}-slim`,
        `RUN pip install --no-cache-dir dbt-core==${spec.dbtVersion} ${spec.adapterPackage}==${spec.adapterVersion} awscli==${spec.awscliVersion} \\`,
        `    && useradd --create-home --uid 10001 dbt`,
        `COPY --chmod=0755 dbt-scheduled-run ${ENTRYPOINT_PATH}`,
        `# No credentials or project in the image: secrets come from the task definition, the project from S3.`,
        `USER dbt`,
        `WORKDIR /home/dbt`,
        `ENV DBT_SEND_ANONYMOUS_USAGE_STATS=false`,
        `ENTRYPOINT ["${ENTRYPOINT_PATH}"]`,
        ``,
    ].join("\n");
}

/**
 * The image tag for a spec: a digest of the Dockerfile and the entrypoint, so the program (task
 * definition) and the release (docker build/push) agree on it without a hand-kept version, and a
 * changed pin or entrypoint is a new immutable tag.
 */
export function runnerImageTag(spec: RunnerImageSpec): string {
    const digest = createHash("sha256").update(renderDockerfile(spec)).update("\0").update(renderEntrypoint()).digest("hex");
    return `dbt${spec.dbtVersion}-${digest.slice(0, 12)}`;
}

/**
 * The entrypoint. The project comes either from the two keys the task definition pins (one commit)
 * or, with DBT_PROJECT_PREFIX, from `<prefix>current`, the commit the release published last. Modes: `full` (dbt build) and `fresher` (dbt source freshness, then
 * `dbt build --select source_status:fresher+ --state <last good run>`, a full build on the first run,
 * when the kept state is missing, and every DBT_RUNNER_FULL_BUILD_EVERY-th run). Artifacts go to
 * `<state prefix>history/<run id>/`; a successful run also replaces `<state prefix>latest/`.
 */
export function renderEntrypoint(): string {
    return `#!/usr/bin/env bash
# dbt-platform scheduled run. Reads ${Object.values(RUNNER_ENV).join(", ")}
# and the warehouse credentials the task definition injects from Secrets Manager.
set -euo pipefail

: "\${${RUNNER_ENV.bucket}:?}" "\${${RUNNER_ENV.statePrefix}:?}" "\${${RUNNER_ENV.target}:?}"
mode="\${${RUNNER_ENV.mode}:-full}"
full_every="\${${RUNNER_ENV.fullBuildEvery}:-24}"
case "$mode" in full|fresher) ;; *) echo "dbt-scheduled-run: ${RUNNER_ENV.mode} must be full or fresher, not $mode" >&2; exit 2 ;; esac
case "$full_every" in ''|*[!0-9]*|0) echo "dbt-scheduled-run: ${RUNNER_ENV.fullBuildEvery} must be a positive integer" >&2; exit 2 ;; esac

bucket="s3://\${${RUNNER_ENV.bucket}}"
project_key="\${${RUNNER_ENV.projectKey}:-}"
manifest_key="\${${RUNNER_ENV.manifestKey}:-}"
if [ -z "$project_key" ]; then
  # The release's pointer: written after the tarball and manifest, so it only ever names a complete commit.
  prefix="\${${RUNNER_ENV.projectPrefix}:?set ${RUNNER_ENV.projectKey} and ${RUNNER_ENV.manifestKey}, or ${RUNNER_ENV.projectPrefix}}"
  if ! commit="$(aws s3 cp --only-show-errors "$bucket/\${prefix}current" - | tr -d '[:space:]')"; then
    echo "dbt-scheduled-run: cannot read $bucket/\${prefix}current (has a release published a project yet?)" >&2; exit 2
  fi
  case "$commit" in ''|*[!0-9a-f]*) echo "dbt-scheduled-run: $bucket/\${prefix}current does not name a commit: '$commit'" >&2; exit 2 ;; esac
  project_key="\${prefix}\${commit}.tar.gz"
  manifest_key="\${prefix}\${commit}/manifest.json"
  echo "dbt-scheduled-run: project of commit $commit (\${prefix}current)"
fi
: "\${manifest_key:?${RUNNER_ENV.manifestKey} is required with ${RUNNER_ENV.projectKey}}"
state_url="$bucket/\${${RUNNER_ENV.statePrefix}}"
work="\${DBT_RUNNER_WORKDIR:-$HOME/run}"

# The run id: the ECS task id (from the task metadata endpoint), else a UTC timestamp.
run_id=""
if [ -n "\${ECS_CONTAINER_METADATA_URI_V4:-}" ]; then
  run_id="$(python3 -c 'import json,os,urllib.request; print(json.load(urllib.request.urlopen(os.environ["ECS_CONTAINER_METADATA_URI_V4"] + "/task", timeout=5))["TaskARN"].rsplit("/", 1)[-1])' 2>/dev/null || true)"
fi
run_id="\${run_id:-$(date -u +%Y%m%dT%H%M%SZ)}"

rm -rf "$work" && mkdir -p "$work/project" "$work/state" "$work/release"
aws s3 cp --only-show-errors "$bucket/$project_key" "$work/project.tar.gz"
aws s3 cp --only-show-errors "$bucket/$manifest_key" "$work/release/manifest.json"
tar -xzf "$work/project.tar.gz" -C "$work/project"
cd "$work/project"

dbt_() { dbt --log-format json --no-use-colors "$@"; }
# A build that fails on a Postgres deadlock (40P01) reruns what failed or was skipped, at most twice.
${deadlockRetryLines("python3", "dbt_").join("\n")}
if [ -f packages.yml ] || [ -f dependencies.yml ]; then dbt_ deps; fi

runs_since_full=0
if [ "$mode" = fresher ]; then
  # The last good run's state; absent on the first run.
  aws s3 cp --only-show-errors --recursive "$state_url"latest/ "$work/state/" || true
  if [ -f "$work/state/manifest.json" ] && [ -f "$work/state/sources.json" ] && [ -f "$work/state/runs-since-full" ]; then
    runs_since_full="$(cat "$work/state/runs-since-full")"
    if [ "$((runs_since_full + 1))" -ge "$full_every" ]; then
      echo "dbt-scheduled-run: full build (every $full_every runs)"
      mode=full-periodic
    fi
  else
    echo "dbt-scheduled-run: no previous run state under $state_url""latest/: full build"
    mode=full-first
  fi
  # Freshness of every source, also before a full build: the next run compares against it.
  # A source past its error threshold makes freshness exit 1; the build still runs.
  dbt_ source freshness --target "\${${RUNNER_ENV.target}}" || echo "dbt-scheduled-run: dbt source freshness exited $?"
  if [ ! -f target/sources.json ]; then
    echo "dbt-scheduled-run: dbt source freshness wrote no sources.json: full build"
    mode=full-first
  fi
  cp target/sources.json "$work/sources.json" 2>/dev/null || true
fi

status=0
case "$mode" in
  fresher)
    echo "dbt-scheduled-run: building what has new data (source_status:fresher+)"
    dbt_deadlock_retry dbt_ build --target "\${${RUNNER_ENV.target}}" --select source_status:fresher+ --state "$work/state" || status=$?
    next_count=$((runs_since_full + 1)) ;;
  *)
    dbt_deadlock_retry dbt_ build --target "\${${RUNNER_ENV.target}}" || status=$?
    next_count=0 ;;
esac
# dbt build overwrote target/sources.json only if it ran freshness; keep this run's freshness.
if [ -f "$work/sources.json" ]; then cp "$work/sources.json" target/sources.json; fi

publish="$work/publish"
mkdir -p "$publish"
for f in manifest.json run_results.json sources.json; do
  if [ -f "target/$f" ]; then cp "target/$f" "$publish/"; fi
done
echo "$next_count" > "$publish/runs-since-full"
aws s3 cp --only-show-errors --recursive "$publish/" "$state_url""history/$run_id/"
if [ "$status" -eq 0 ]; then
  # Only a good run becomes the baseline: after a failure the next run retries the same sources.
  aws s3 cp --only-show-errors --recursive "$publish/" "$state_url""latest/"
fi
echo "dbt-scheduled-run: run $run_id ($mode) exited $status; artifacts in $state_url""history/$run_id/"
exit "$status"
`;
}

/**
 * Shell lines a release/deploy job runs to publish what the scheduled runs pull: the project tarball
 * (the checkout without target/, logs/, dbt_packages/, .git, .state and the CI's token file) and the manifest it compiled, by commit.
 * Every CI system runs the same lines; `$COMMIT`-style values come from the system's own variables.
 */
export function publishProjectLines(o: { bucket: string; prefix: string; commitExpr: string; manifestPath?: string; pointer?: boolean }): string[] {
    const tarball = `s3://${o.bucket}/${projectTarballKey(o.prefix, o.commitExpr)}`;
    const manifest = `s3://${o.bucket}/${projectManifestKey(o.prefix, o.commitExpr)}`;
    const lines = [
        // Never the CI's own files: Bitbucket's OIDC token file sits in the clone directory.
        `tar --exclude=./target --exclude=./logs --exclude=./dbt_packages --exclude=./.dbt-partial-parse --exclude=./.git --exclude=./.state --exclude=./.aws-web-identity-token -czf /tmp/dbt-project.tar.gz .`,
        `aws s3 cp --only-show-errors /tmp/dbt-project.tar.gz "${tarball}"`,
        `aws s3 cp --only-show-errors "${o.manifestPath ?? "target/manifest.json"}" "${manifest}"`,
    ];
    // Last: the pointer the tasks follow names a commit only once its tarball and manifest are in place.
    if (o.pointer) lines.push(`printf '%s\\n' "${o.commitExpr}" | aws s3 cp --only-show-errors - "s3://${o.bucket}/${projectPointerKey(o.prefix)}"`);
    return lines;
}

/**
 * Shell lines that build and push the runner image (docker on the CI runner, ECR login through the
 * job's role). `contextDir` holds the rendered Dockerfile and `dbt-scheduled-run`. The tag is immutable:
 * pushing an existing tag fails, so the lines skip the push when the tag already exists.
 */
export function buildImageLines(o: { repositoryUrl: string; region: string; tag: string; contextDir: string }): string[] {
    const registry = o.repositoryUrl.split("/")[0];
    const repo = o.repositoryUrl.slice(registry.length + 1);
    return [
        `if aws ecr describe-images --region ${o.region} --repository-name ${repo} --image-ids imageTag=${o.tag} >/dev/null 2>&1; then echo "image ${o.repositoryUrl}:${o.tag} exists"; else`,
        `  aws ecr get-login-password --region ${o.region} | docker login --username AWS --password-stdin ${registry}`,
        // BuildKit: the Dockerfile's COPY --chmod needs it (older daemons default to the classic builder).
        `  DOCKER_BUILDKIT=1 docker build --pull -t ${o.repositoryUrl}:${o.tag} ${o.contextDir}`,
        `  docker push ${o.repositoryUrl}:${o.tag}`,
        `fi`,
    ];
}
