/**
 * The developers' local loop (issue 16 §4, seed 002's justfile): a Makefile rendered into the dbt
 * repository with `fetch-manifest`, `dev`, `dev-select` and `clean-artifacts`. The production
 * manifest comes from the stack's artifacts bucket, read with the developer's own AWS profile;
 * `dev` builds what the developer changed (state:modified+) in their own schema and defers the
 * rest to production, or builds everything when there is no manifest to defer to.
 *
 * A Makefile rather than a justfile: GNU/BSD make is already on every developer machine and CI
 * image (Xcode command line tools, build-essential), while just is one more tool to install and
 * pin; the recipes are plain POSIX sh either way, so nothing of seed 002's loop is lost.
 */
import { LATEST_MANIFEST_KEY } from "../aws/artifactStore";
import { S3_BUCKET_NAME } from "../config/rules";
import type { PipelineContext } from "./model";

/** Where `fetch-manifest` keeps the production manifest (relative to the repository root). */
export const LOCAL_STATE_DIR = ".artifacts";
/** Where the Makefile lives in the dbt repository. */
export const LOCAL_LOOP_FILE = "Makefile";

/** Plain inputs of the local loop; every value comes from the stack. */
export interface LocalLoopContext {
    /** Stack name, for the do-not-edit header. */
    stack: string;
    /** Artifacts bucket holding the production manifest. */
    bucket: string;
    /** Key of the latest production manifest in the bucket. */
    manifestKey: string;
    /** AWS region of the bucket. */
    region: string;
    /** The developer's dbt target (their own login and schema in their profiles.yml). */
    target: string;
    /** dbt project directory relative to the repository root ("." for the root). */
    projectDir: string;
    /** Default AWS profile for `fetch-manifest`; developers override it with `make ... AWS_PROFILE=x`. */
    awsProfile?: string;
}

const RULES: { field: keyof LocalLoopContext; re: RegExp; what: string }[] = [
    { field: "stack", re: /^[A-Za-z0-9_.-]+$/, what: "a stack name" },
    { field: "bucket", re: S3_BUCKET_NAME, what: "an S3 bucket name" },
    { field: "manifestKey", re: /^[A-Za-z0-9_.\/-]+\.json$/, what: "an S3 key of letters, digits, _ . / - ending in .json" },
    { field: "region", re: /^[a-z]{2}(-[a-z]+)+-\d+$/, what: "an AWS region such as eu-west-1" },
    { field: "target", re: /^[A-Za-z_][A-Za-z0-9_-]*$/, what: "a dbt target name" },
    { field: "projectDir", re: /^(\.|[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*)$/, what: "a relative path inside the repository (no .., no leading /)" },
    { field: "awsProfile", re: /^[A-Za-z0-9_.@+-]+$/, what: "an AWS profile name" },
];

/** Problems with a local-loop context, each naming the field; empty when it renders. */
export function localLoopProblems(ctx: LocalLoopContext): string[] {
    const problems: string[] = [];
    for (const { field, re, what } of RULES) {
        const v = ctx[field];
        if (v === undefined && field === "awsProfile") continue;
        // Every value lands in make and sh unquoted: only characters neither treats specially pass.
        if (typeof v !== "string" || !re.test(v) || v.split("/").includes("..")) problems.push(`${field} = ${JSON.stringify(v)}: expected ${what}`);
    }
    return problems;
}

/**
 * The local-loop inputs of a stack's pipeline context; undefined when the stack has no AWS state
 * bucket or no local loop (ctx.localLoop: the stack has developers).
 */
export function localLoopContext(ctx: PipelineContext, opts: { target?: string; projectDir?: string; awsProfile?: string } = {}): LocalLoopContext | undefined {
    if (!ctx.aws || !ctx.localLoop) return undefined;
    return {
        stack: ctx.stack,
        bucket: ctx.aws.bucket,
        manifestKey: LATEST_MANIFEST_KEY,
        region: ctx.aws.region,
        target: opts.target ?? ctx.localLoop.target,
        projectDir: opts.projectDir ?? ctx.dbt.projectDir ?? ".",
        awsProfile: opts.awsProfile,
    };
}

/** A recipe line: a tab, then the shell line. */
const r = (line: string) => `\t${line}`;

/** Renders the Makefile; throws naming every bad field. */
export function renderLocalLoop(ctx: LocalLoopContext): string {
    const problems = localLoopProblems(ctx);
    if (problems.length) throw new Error(`local loop for stack ${ctx.stack}: invalid context:\n  - ${problems.join("\n  - ")}`);
    const state = LOCAL_STATE_DIR;
    const dbt = "dbt build --project-dir $(DBT_PROJECT_DIR) --target $(DBT_TARGET)";
    return [
        `# Rendered by dbt-platform from stack ${ctx.stack}; do not edit by hand (npm run render -- --stack ${ctx.stack}).`,
        "# The developers' local loop: build what you changed in your own schema, deferring the rest to production.",
        "#   make fetch-manifest                # the production manifest, read with your own AWS profile",
        "#   make dev [ARGS=--fail-fast]        # state:modified+ with deferral; everything when there is no manifest",
        "#   make dev-select SELECT='my_model+' # a selection with deferral",
        "#   make clean-artifacts               # forget the downloaded manifest",
        `# Your profiles.yml needs a target ${ctx.target} (your login and schema); add ${state}/ to .gitignore.`,
        "",
        `AWS_PROFILE ?= ${ctx.awsProfile ?? ""}`,
        `DBT_TARGET ?= ${ctx.target}`,
        `DBT_PROJECT_DIR ?= ${ctx.projectDir}`,
        `STATE_BUCKET := ${ctx.bucket}`,
        `STATE_KEY := ${ctx.manifestKey}`,
        `STATE_REGION := ${ctx.region}`,
        `STATE_DIR := ${state}`,
        "ARGS ?=",
        "SELECT ?=",
        "",
        // Without a profile the CLI's own chain applies (AWS_PROFILE, SSO cache, instance role).
        "AWS_PROFILE_FLAG := $(if $(strip $(AWS_PROFILE)),--profile $(AWS_PROFILE),)",
        "",
        ".PHONY: fetch-manifest dev dev-select clean-artifacts",
        "",
        "fetch-manifest:",
        r("@mkdir -p $(STATE_DIR)"),
        // A failed download leaves no manifest behind: deferring to a stale one would build the wrong set.
        r("@if aws s3 cp s3://$(STATE_BUCKET)/$(STATE_KEY) $(STATE_DIR)/manifest.json.part --region $(STATE_REGION) $(AWS_PROFILE_FLAG) --only-show-errors; then \\"),
        r("  mv $(STATE_DIR)/manifest.json.part $(STATE_DIR)/manifest.json; echo \"Production manifest in $(STATE_DIR)/manifest.json\"; \\"),
        r("else \\"),
        r("  rm -f $(STATE_DIR)/manifest.json $(STATE_DIR)/manifest.json.part; echo \"warning: no production manifest from s3://$(STATE_BUCKET)/$(STATE_KEY): dev builds everything\" >&2; \\"),
        r("fi"),
        "",
        "dev: fetch-manifest",
        r(`@if [ -f $(STATE_DIR)/manifest.json ]; then \\`),
        r(`  set -x; ${dbt} --select state:modified+ --defer --state $(STATE_DIR) $(ARGS); \\`),
        r("else \\"),
        r(`  set -x; ${dbt} $(ARGS); \\`),
        r("fi"),
        "",
        "dev-select: fetch-manifest",
        r(`@if [ -z "$(strip $(SELECT))" ]; then echo "usage: make dev-select SELECT='<dbt selection>'" >&2; exit 2; fi`),
        r(`@if [ -f $(STATE_DIR)/manifest.json ]; then \\`),
        r(`  set -x; ${dbt} --select $(SELECT) --defer --state $(STATE_DIR) $(ARGS); \\`),
        r("else \\"),
        r(`  set -x; ${dbt} --select $(SELECT) $(ARGS); \\`),
        r("fi"),
        "",
        "clean-artifacts:",
        r("rm -rf $(STATE_DIR)"),
        "",
    ].join("\n");
}
