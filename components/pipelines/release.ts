/**
 * The release steps of scheduled runs (features.scheduledRuns), appended to the deploy job after a
 * successful build: build and push the runner image ScheduledRuns' task definition names (skipped
 * when the tag exists), then publish the project tarball and the manifest this deploy compiled by
 * commit, and last move `<prefix>current`, the pointer each scheduled run follows. The same shell
 * on every CI system; only the commit variable differs. The deploy role may write exactly these
 * keys and push to exactly this repository (CiIdentity `scheduledRuns`).
 */
import type { CiSystem } from "../config/stack";
import { buildImageLines, ENTRYPOINT_PATH, publishProjectLines, renderDockerfile, renderEntrypoint, RunnerImageSpec } from "../aws/scheduled/runner";
import type { PipelineContext, Step } from "./model";

/** What the deploy job needs of ScheduledRuns (resolved values). */
export interface ScheduledRelease {
    /** ECR repository URL (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`). */
    repositoryUrl: string;
    /** The tag the task definition runs (ScheduledRuns.imageTag). */
    imageTag: string;
    /** What the image pins (the Dockerfile is rendered from it). */
    image: RunnerImageSpec;
    /** Prefix the tasks read projects from (ScheduledRuns.projectPrefix). */
    projectPrefix: string;
}

/** The commit being released, from each CI system's own environment. */
export const COMMIT_VARIABLE: Record<CiSystem, string> = {
    bitbucket: "BITBUCKET_COMMIT",
    github: "GITHUB_SHA",
    // Azure exposes the predefined Build.SourceVersion to every script as BUILD_SOURCEVERSION.
    "azure-devops": "BUILD_SOURCEVERSION",
};

/** Where the release writes the image's build context (outside the checkout, so it never lands in the project tarball). */
export const IMAGE_CONTEXT_DIR = "/tmp/dbt-runner-image";

/** Problems with the release part of a context, each naming the field. */
export function releaseProblems(ctx: PipelineContext): string[] {
    const r = ctx.scheduled;
    if (!r) return [];
    const problems: string[] = [];
    if (!ctx.aws) problems.push("scheduled: needs aws (the project and the image go to the artifacts bucket and ECR)");
    if (!/^[a-z0-9.-]+\/[a-z0-9][a-z0-9._\/-]*$/.test(r.repositoryUrl)) problems.push(`scheduled.repositoryUrl = ${JSON.stringify(r.repositoryUrl)}: expected <registry>/<repository>`);
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(r.imageTag)) problems.push(`scheduled.imageTag = ${JSON.stringify(r.imageTag)}: expected a Docker tag`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.\/-]*\/$/.test(r.projectPrefix) || r.projectPrefix.includes("..")) problems.push(`scheduled.projectPrefix = ${JSON.stringify(r.projectPrefix)}: expected an S3 key prefix ending in /`);
    return problems;
}

/** A file written by a quoted heredoc (no expansion); the delimiter is checked against the text. */
function heredoc(file: string, text: string, delimiter: string): string[] {
    if (text.split("\n").includes(delimiter)) throw new Error(`release: ${file} contains its heredoc delimiter ${delimiter}`);
    return [`cat > "${file}" <<'${delimiter}'`, ...text.replace(/\n$/, "").split("\n"), delimiter];
}

/** The deploy job's release steps; none unless the context has scheduled runs. */
export function releaseSteps(ctx: PipelineContext): Step[] {
    const r = ctx.scheduled;
    if (!r || !ctx.aws) return [];
    const commitVar = COMMIT_VARIABLE[ctx.system];
    const dir = IMAGE_CONTEXT_DIR;
    return [
        {
            id: "runner-image",
            name: "Build and push the scheduled-run image (once per tag)",
            lines: [
                `rm -rf ${dir} && mkdir -p ${dir}`,
                ...heredoc(`${dir}/Dockerfile`, renderDockerfile(r.image), "DBT_PLATFORM_DOCKERFILE"),
                ...heredoc(`${dir}/${ENTRYPOINT_PATH.split("/").pop()}`, renderEntrypoint(), "DBT_PLATFORM_ENTRYPOINT"),
                ...buildImageLines({ repositoryUrl: r.repositoryUrl, region: ctx.aws.region, tag: r.imageTag, contextDir: dir }),
            ],
            when: "success",
            aws: true,
            docker: true,
        },
        {
            id: "publish-project",
            name: "Publish the project for scheduled runs (by commit, then the current pointer)",
            lines: [
                `commit="\${${commitVar}:-}"`,
                `case "$commit" in ''|*[!0-9a-f]*) echo "${commitVar} must be the released commit (hex), got '$commit'" >&2; exit 1;; esac`,
                // Azure keeps profiles.yml in a secure file: the task reads it from .ci/ (env_var() references only, no secret).
                `if [ ! -f .ci/profiles.yml ]; then mkdir -p .ci && cp "$DBT_PROFILES_DIR/profiles.yml" .ci/profiles.yml; fi`,
                ...publishProjectLines({ bucket: ctx.aws.bucket, prefix: r.projectPrefix, commitExpr: "$commit", pointer: true }),
                `echo "Published s3://${ctx.aws.bucket}/${r.projectPrefix}$commit.tar.gz and its manifest; scheduled runs now build $commit"`,
            ],
            when: "success",
            aws: true,
        },
    ];
}
