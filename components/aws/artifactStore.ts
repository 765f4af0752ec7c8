import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { DocsSite, DocsSiteOptions, docsSiteProblems } from "./docsSite";
import { S3_BUCKET_NAME } from "../config/rules";

/** Prefix of everything dbt runs write (manifest.json, run_results.json). */
export const ARTIFACTS_PREFIX = "artifacts/";
/** Prefix of the stable copy of the last good production run's artifacts; never expired. */
export const LATEST_PREFIX = "artifacts/latest/";
/** Key of the last good production manifest, which CI fetches for deferral. */
export const LATEST_MANIFEST_KEY = "artifacts/latest/manifest.json";
/** Prefix of per-run artifacts: CI writes `artifacts/history/<run-id>/manifest.json`; expired after the retention. */
export const HISTORY_PREFIX = "artifacts/history/";
/** Prefix of the generated dbt docs static site (the docs distribution's origin path); never expired. */
export const DOCS_PREFIX = "docs/";

/** Prefix of the per-pull-request docs previews (`docs/pr/<n>/`): expired after the preview retention, removed by the janitor. */
export const DOCS_PREVIEW_PREFIX = "docs/pr/";
/** Default days a docs preview lives (aws.docs.previewRetentionDays). */
export const DOCS_PREVIEW_RETENTION_DAYS = 14;

/** Key of one run's manifest under the history prefix. */
export function historyManifestKey(runId: string): string {
    return `${HISTORY_PREFIX}${runId}/manifest.json`;
}

/** Arguments of ArtifactStore. */
export interface ArtifactStoreArgs {
    /** Bucket name; omitted: Pulumi auto-names the bucket after the component. */
    bucketName?: pulumi.Input<string>;
    /** Days to keep run history and noncurrent object versions (default 90; integer 1..3650). */
    retentionDays?: number;
    /** KMS key for SSE-KMS with an S3 bucket key (default SSE-S3, AES256); with docs, its key policy must let cloudfront.amazonaws.com decrypt. */
    kmsKeyArn?: pulumi.Input<string>;
    /** Serve the docs prefix through CloudFront (a DocsSite child); omitted: no docs site. */
    docs?: DocsSiteOptions;
    /** Days after which a pull request's docs preview (docs/pr/<n>/) expires, with docs (default 14; integer 1..3650). */
    docsPreviewRetentionDays?: number;
    /** Let `pulumi destroy` delete a non-empty bucket (default false). */
    forceDestroy?: boolean;
    /** Tags for the bucket (and the docs distribution and certificate). */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}


/** Applies defaults and rejects bad arguments before any child is registered. */
function normalise(name: string, args: ArtifactStoreArgs): { retentionDays: number; previewRetentionDays: number; forceDestroy: boolean } {
    const problems: string[] = [];
    const retentionDays = args.retentionDays ?? 90;
    if (!Number.isInteger(retentionDays) || retentionDays < 1 || retentionDays > 3650) {
        problems.push(`retentionDays = ${JSON.stringify(retentionDays)}: expected an integer from 1 to 3650`);
    }
    const previewRetentionDays = args.docsPreviewRetentionDays ?? DOCS_PREVIEW_RETENTION_DAYS;
    if (!Number.isInteger(previewRetentionDays) || previewRetentionDays < 1 || previewRetentionDays > 3650) {
        problems.push(`docsPreviewRetentionDays = ${JSON.stringify(previewRetentionDays)}: expected an integer from 1 to 3650`);
    }
    if (typeof args.bucketName === "string" && (!S3_BUCKET_NAME.test(args.bucketName) || args.bucketName.includes(".."))) {
        problems.push(`bucketName = ${JSON.stringify(args.bucketName)}: expected 3-63 lower-case letters, digits, dots and hyphens`);
    }
    if (args.docs !== undefined) problems.push(...docsSiteProblems(args.docs, "docs."));
    if (problems.length > 0) {
        throw new Error(`ArtifactStore ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
    }
    return { retentionDays, previewRetentionDays, forceDestroy: args.forceDestroy ?? false };
}

/**
 * The S3 bucket for dbt state artifacts and the docs site (seed "Prerequisites"): private,
 * versioned, encrypted, TLS-only, with history expiry; optionally the CloudFront docs site.
 */
export class ArtifactStore extends pulumi.ComponentResource {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: ArtifactStoreArgs): void {
        normalise(name, args);
    }

    /** The bucket. */
    public readonly bucket: aws.s3.Bucket;
    /** Its name. */
    public readonly bucketName: pulumi.Output<string>;
    /** Its ARN. */
    public readonly bucketArn: pulumi.Output<string>;
    /** The bucket policy (TLS-only, plus CloudFront read of the docs prefix when docs are on). */
    public readonly bucketPolicy: aws.s3.BucketPolicy;
    /** "artifacts/". */
    public readonly artifactsPrefix = ARTIFACTS_PREFIX;
    /** "docs/". */
    public readonly docsPrefix = DOCS_PREFIX;
    /** "artifacts/latest/manifest.json": the last good production manifest. */
    public readonly latestManifestKey = LATEST_MANIFEST_KEY;
    /** "artifacts/history/": CI writes `artifacts/history/<run-id>/manifest.json`. */
    public readonly historyPrefix = HISTORY_PREFIX;
    /** The docs site, when `docs` is given. */
    public readonly docsSite?: DocsSite;

    constructor(name: string, args: ArtifactStoreArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        const model = normalise(name, args);
        super("dbt-platform:aws:ArtifactStore", name, {}, opts);
        const child = { parent: this };

        this.bucket = new aws.s3.Bucket(
            `${name}-bucket`,
            { bucket: args.bucketName, forceDestroy: model.forceDestroy, tags: args.tags },
            child,
        );
        const bucket = this.bucket.id;
        this.bucketName = this.bucket.bucket;
        this.bucketArn = this.bucket.arn;

        const versioning = new aws.s3.BucketVersioning(
            `${name}-versioning`,
            // Versioning keeps the previous "latest" manifest recoverable after a bad deploy overwrote it.
            { bucket, versioningConfiguration: { status: "Enabled" } },
            child,
        );

        new aws.s3.BucketServerSideEncryptionConfiguration(
            `${name}-encryption`,
            {
                bucket,
                rules: [
                    args.kmsKeyArn !== undefined
                        ? {
                              applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: args.kmsKeyArn },
                              // A bucket key cuts KMS requests (and cost) for the many small artifact objects.
                              bucketKeyEnabled: true,
                          }
                        : { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } },
                ],
            },
            child,
        );
        if (args.kmsKeyArn !== undefined && args.docs !== undefined) {
            pulumi.log.warn(
                `ArtifactStore ${name}: docs objects are encrypted with kmsKeyArn; its key policy must allow kms:Decrypt ` +
                    `to the service principal cloudfront.amazonaws.com for the docs distribution, or the site answers 403`,
                this,
            );
        }

        new aws.s3.BucketLifecycleConfiguration(
            `${name}-lifecycle`,
            {
                bucket,
                // artifacts/latest/ and docs/ (but docs/pr/) have no expiration rule: the latest manifest is what CI defers
                // to, however long ago production last deployed. Their overwritten versions do expire.
                rules: [
                    {
                        id: "expire-artifact-history",
                        status: "Enabled",
                        filter: { prefix: HISTORY_PREFIX },
                        expiration: { days: model.retentionDays },
                    },
                    {
                        id: "expire-noncurrent-versions",
                        status: "Enabled",
                        filter: {},
                        noncurrentVersionExpiration: { noncurrentDays: model.retentionDays },
                    },
                    {
                        id: "remove-expired-delete-markers",
                        status: "Enabled",
                        filter: {},
                        expiration: { expiredObjectDeleteMarker: true },
                    },
                    {
                        id: "abort-incomplete-multipart-uploads",
                        status: "Enabled",
                        filter: {},
                        abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
                    },
                    // Pull requests' docs previews: the janitor removes a closed PR's at once; this catches the rest.
                    ...(args.docs
                        ? [{ id: "expire-docs-previews", status: "Enabled", filter: { prefix: DOCS_PREVIEW_PREFIX }, expiration: { days: model.previewRetentionDays } }]
                        : []),
                ],
            },
            // Noncurrent-version rules need versioning in place first.
            { parent: this, dependsOn: [versioning] },
        );

        const publicAccessBlock = new aws.s3.BucketPublicAccessBlock(
            `${name}-public-access-block`,
            { bucket, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
            child,
        );

        new aws.s3.BucketOwnershipControls(`${name}-ownership`, { bucket, rule: { objectOwnership: "BucketOwnerEnforced" } }, child);

        if (args.docs !== undefined) {
            this.docsSite = new DocsSite(
                `${name}-docs`,
                {
                    ...args.docs,
                    bucketName: this.bucket.bucket,
                    bucketArn: this.bucket.arn,
                    bucketRegionalDomainName: this.bucket.bucketRegionalDomainName,
                    originPath: `/${DOCS_PREFIX.replace(/\/$/, "")}`,
                    tags: args.tags,
                },
                child,
            );
        }

        // S3 allows one policy per bucket, so the docs site's statements are merged in here.
        const arn = this.bucket.arn;
        const statements = pulumi
            .all([arn, this.docsSite ? this.docsSite.bucketPolicyStatements : []])
            .apply(([bucketArn, docsStatements]) => [
                {
                    Sid: "DenyInsecureTransport",
                    Effect: "Deny",
                    Principal: "*",
                    Action: "s3:*",
                    Resource: [bucketArn, `${bucketArn}/*`],
                    Condition: { Bool: { "aws:SecureTransport": "false" } },
                },
                ...docsStatements,
            ]);
        this.bucketPolicy = new aws.s3.BucketPolicy(
            `${name}-policy`,
            { bucket, policy: pulumi.jsonStringify({ Version: "2012-10-17", Statement: statements }) },
            // With the public access block in place first, a policy can never make the bucket public.
            { parent: this, dependsOn: [publicAccessBlock] },
        );

        this.registerOutputs({
            bucketName: this.bucketName,
            bucketArn: this.bucketArn,
            artifactsPrefix: this.artifactsPrefix,
            docsPrefix: this.docsPrefix,
            latestManifestKey: this.latestManifestKey,
            historyPrefix: this.historyPrefix,
        });
    }
}
