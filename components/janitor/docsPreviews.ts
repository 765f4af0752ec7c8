/**
 * The janitor's docs-preview sweep (issue 16 §5): the PR job publishes `dbt docs generate` output to
 * `docs/pr/<n>/` on the docs bucket; once pull request n is closed its preview is removed. A bucket
 * lifecycle rule (aws.docs.previewRetentionDays) expires whatever this never reaches. S3 is reached
 * through the AWS CLI the pipelines already install (credentials from its own chain, read per call).
 */
import { spawn } from "child_process";
import { DOCS_PREVIEW_PREFIX } from "../aws/artifactStore";
import { S3_BUCKET_NAME } from "../config/rules";
import type { PullRequestState, PullRequestStatus } from "./pullRequests";

/** Runs `aws <args>`; resolves with stdout, rejects (naming the command) on a non-zero exit. */
export type AwsCli = (args: string[]) => Promise<string>;

/** The AWS CLI on PATH (`aws`), with the environment's credentials and endpoint. */
export const awsCli: AwsCli = (args) =>
    new Promise((resolve, reject) => {
        const child = spawn("aws", args, { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (b: Buffer) => (out += b.toString()));
        child.stderr.on("data", (b: Buffer) => (err += b.toString()));
        child.on("error", (e) => reject(new Error(`janitor: aws ${args.slice(0, 2).join(" ")}: ${e.message}`)));
        child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`janitor: aws ${args.slice(0, 2).join(" ")} exited ${code}: ${err.trim()}`))));
    });

/** Options of one docs-preview sweep. */
export interface DocsPreviewOptions {
    /** The docs site's bucket (the artifacts bucket). */
    bucket: string;
    /** Pull request states from the CI system. */
    pullRequests: PullRequestState;
    /** Runs the AWS CLI (default: `aws` on PATH). */
    aws?: AwsCli;
    /** Delete for real (default false: only report). */
    execute?: boolean;
    /** Where the report lines go (default console.log). */
    log?: (line: string) => void;
}

/** What a sweep found and did. */
export interface DocsPreviewReport {
    /** Pull request numbers with a preview, and each one's state. */
    previews: { pr: number; state: PullRequestStatus; action: "remove" | "keep" }[];
    /** Previews of closed pull requests (C). */
    closed: number;
    /** Previews removed (0 in a dry run). */
    removed: number;
    summary: string;
}

/** Lists `docs/pr/<n>/` and removes the previews of closed pull requests; open and unknown ones stay (the lifecycle rule expires them). */
export async function sweepDocsPreviews(o: DocsPreviewOptions): Promise<DocsPreviewReport> {
    if (!S3_BUCKET_NAME.test(o.bucket)) throw new Error(`janitor: docs bucket ${JSON.stringify(o.bucket)}: expected an S3 bucket name`);
    const aws = o.aws ?? awsCli;
    const log = o.log ?? ((l: string) => console.log(l));
    const mode = o.execute ? "" : " (dry run)";
    // One prefix per PR: the delimiter lists docs/pr/<n>/ without every object under it (the CLI follows pagination).
    const listing = await aws(["s3api", "list-objects-v2", "--bucket", o.bucket, "--prefix", DOCS_PREVIEW_PREFIX, "--delimiter", "/", "--output", "json"]);
    const prefixes: string[] = listing.trim() ? ((JSON.parse(listing).CommonPrefixes ?? []) as { Prefix: string }[]).map((p) => p.Prefix) : [];
    const numbers = prefixes
        .map((p) => /^docs\/pr\/([1-9][0-9]{0,9})\/$/.exec(p)?.[1])
        .filter((n): n is string => n !== undefined)
        .map(Number)
        .sort((a, b) => a - b);
    const previews: DocsPreviewReport["previews"] = [];
    let removed = 0;
    for (const pr of numbers) {
        const state = await o.pullRequests.state(pr);
        const where = `s3://${o.bucket}/${DOCS_PREVIEW_PREFIX}${pr}/`;
        if (state !== "closed") {
            previews.push({ pr, state, action: "keep" });
            log(`janitor${mode}: keep docs preview ${where} (PR ${pr} ${state === "open" ? "open" : `not found on ${o.pullRequests.describe}`})`);
            continue;
        }
        previews.push({ pr, state, action: "remove" });
        if (!o.execute) {
            log(`janitor${mode}: would remove docs preview ${where} (PR ${pr} closed)`);
            continue;
        }
        await aws(["s3", "rm", where, "--recursive", "--only-show-errors"]);
        removed++;
        log(`janitor: removed docs preview ${where} (PR ${pr} closed)`);
    }
    const closed = previews.filter((p) => p.action === "remove").length;
    const summary = `janitor${mode}: removed ${removed} of ${closed} closed docs previews, kept ${previews.length - closed}`;
    log(summary);
    return { previews, closed, removed, summary };
}
