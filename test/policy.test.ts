/**
 * CrossGuard policy pack (policy/policies.ts): every policy passes a compliant case and reports
 * the non-compliant ones, called directly with arguments shaped like @pulumi/policy's
 * (ResourceValidationArgs / StackValidationArgs with PolicyResource entries). Preview cases wrap
 * props in the SDK's own unknown-checking proxy, which throws on reading an unknown, exactly as a
 * real `pulumi preview --policy-pack` does. policy/index.ts is never imported (it starts a server).
 */
import assert from "assert";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { PolicyResource, PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy, Secret, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import {
    artifactsBucketVersionedEncrypted,
    cloudfrontHttpsOnly,
    noPlaintextSecretsInOutputs,
    noPublicBuckets,
    noPlaintextSecretsInResources,
    noUnvettedManagedPolicies,
    get,
    noWildcardIam,
    policies,
    trustPoliciesConstrained,
} from "../policy/policies";

import { CI_SYSTEMS } from "../components/config/stack";
import { installMocks, Recorded, resolve, ROOT, stackConfig } from "../scripts/offline";
import { withCiSystem } from "../scripts/render";
import { attack } from "./support/attacks";

// @pulumi/policy's internal proxy (its typings are stripped): used to reproduce preview behaviour.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { unknownCheckingProxy } = require("@pulumi/policy/proxy") as { unknownCheckingProxy: <T>(o: T) => T };

/** The engine's unknown-string sentinel, as deserialised props carry it. */
const UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7";

const T = {
    bucket: "aws:s3/bucket:Bucket",
    pab: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    acl: "aws:s3/bucketAcl:BucketAcl",
    bucketPolicy: "aws:s3/bucketPolicy:BucketPolicy",
    versioning: "aws:s3/bucketVersioning:BucketVersioning",
    sse: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    distribution: "aws:cloudfront/distribution:Distribution",
    role: "aws:iam/role:Role",
    rolePolicy: "aws:iam/rolePolicy:RolePolicy",
    iamPolicy: "aws:iam/policy:Policy",
    secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
    stack: "pulumi:pulumi:Stack",
};

interface Violation {
    message: string;
    urn?: string;
}

class NotApplicable extends Error {}

function options(extra: Partial<PolicyResourceOptions> = {}): PolicyResourceOptions {
    return {
        protect: false,
        ignoreChanges: [],
        aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        additionalSecretOutputs: [],
        ...extra,
    };
}

/** Mirrors @pulumi/policy's isTypeOf: compares the class's __pulumiType with the type token. */
function isTypeOf(type: string, cls: unknown): boolean {
    return (cls as { __pulumiType?: string }).__pulumiType === type;
}

const urnOf = (type: string, name: string) => `urn:pulumi:dev::dbt-platform::${type}::${name}`;

interface ResOpts {
    opts?: Partial<PolicyResourceOptions>;
    propertyDependencies?: Record<string, PolicyResource[]>;
    /** Wrap props in the SDK's unknown-checking proxy (preview behaviour). */
    preview?: boolean;
}

function res(type: string, name: string, props: Record<string, any>, o: ResOpts = {}): PolicyResource {
    const p = o.preview ? unknownCheckingProxy(props) : props;
    return {
        type,
        name,
        urn: urnOf(type, name),
        props: p,
        opts: options(o.opts),
        dependencies: [],
        propertyDependencies: o.propertyDependencies ?? {},
        isType: ((cls: unknown) => isTypeOf(type, cls)) as PolicyResource["isType"],
        asType: ((cls: unknown) => (isTypeOf(type, cls) ? p : undefined)) as PolicyResource["asType"],
    };
}

function runStack(policy: StackValidationPolicy, resources: PolicyResource[], config: object = {}): Violation[] {
    const out: Violation[] = [];
    const args: StackValidationArgs = {
        resources,
        stackTags: new Map(),
        getConfig: <C extends object>() => config as C,
        notApplicable: (reason?: string): never => {
            throw new NotApplicable(reason);
        },
    };
    const r = policy.validateStack(args, (message, urn) => out.push({ message, urn }));
    assert.ok(!(r instanceof Promise), "validateStack is synchronous");
    return out;
}

function runResource(
    policy: { validateResource: (a: ResourceValidationArgs, r: (m: string, u?: string) => void) => void | Promise<void> },
    type: string,
    props: Record<string, any>,
    o: ResOpts = {},
): Violation[] {
    const out: Violation[] = [];
    const p = o.preview ? unknownCheckingProxy(props) : props;
    const args: ResourceValidationArgs = {
        type,
        props: p,
        urn: urnOf(type, "subject"),
        name: "subject",
        opts: options(o.opts),
        stackTags: new Map(),
        isType: ((cls: unknown) => isTypeOf(type, cls)) as ResourceValidationArgs["isType"],
        asType: ((cls: unknown) => (isTypeOf(type, cls) ? p : undefined)) as ResourceValidationArgs["asType"],
        getConfig: <C extends object>() => ({}) as C,
        notApplicable: (reason?: string): never => {
            throw new NotApplicable(reason);
        },
    };
    const r = policy.validateResource(args, (message, urn) => out.push({ message, urn }));
    assert.ok(!(r instanceof Promise), "validateResource is synchronous");
    return out;
}

function none(vs: Violation[]): void {
    assert.deepStrictEqual(vs.map((v) => v.message), []);
}

/** Exactly `n` violations, each matching `re`. */
function some(vs: Violation[], re: RegExp, n = 1): Violation[] {
    assert.strictEqual(vs.length, n, `expected ${n} violation(s) matching ${re}, got:\n  ${vs.map((v) => v.message).join("\n  ")}`);
    for (const v of vs) assert.match(v.message, re);
    return vs;
}

const doc = (...Statement: object[]) => JSON.stringify({ Version: "2012-10-17", Statement });

// ---------------------------------------------------------------------------------------------
// Fixtures: a compliant artifacts bucket with all of its sub-resources
// ---------------------------------------------------------------------------------------------

const BUCKET_NAME = "dbt-dev-artifacts-1a2b3c";

function bucket(name = "artifacts", bucketName = BUCKET_NAME, extra: Record<string, any> = {}, o: ResOpts = {}): PolicyResource {
    return res(T.bucket, name, { bucket: bucketName, id: bucketName, arn: `arn:aws:s3:::${bucketName}`, ...extra }, o);
}

function pab(bucketRef: string, flags: Partial<Record<string, unknown>> = {}, o: ResOpts = {}, name = "artifacts-pab"): PolicyResource {
    return res(
        T.pab,
        name,
        { bucket: bucketRef, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true, ...flags },
        o,
    );
}

function versioning(bucketRef: string, status: string = "Enabled", o: ResOpts = {}, name = "artifacts-versioning"): PolicyResource {
    return res(T.versioning, name, { bucket: bucketRef, versioningConfiguration: { status } }, o);
}

function sse(bucketRef: string, rules: object[] = [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" } }], o: ResOpts = {}, name = "artifacts-sse"): PolicyResource {
    return res(T.sse, name, { bucket: bucketRef, rules }, o);
}

function compliantBucketSet(name = "artifacts", bucketName = BUCKET_NAME): PolicyResource[] {
    return [
        bucket(name, bucketName),
        pab(bucketName, {}, {}, `${name}-pab`),
        versioning(bucketName, "Enabled", {}, `${name}-versioning`),
        sse(bucketName, undefined, {}, `${name}-sse`),
    ];
}

// ---------------------------------------------------------------------------------------------

describe("policy pack", () => {
    it("exports eight uniquely named, described, mandatory policies", () => {
        assert.deepStrictEqual(policies.map((p) => p.name), [
            "no-public-buckets",
            "no-wildcard-iam",
            "artifacts-bucket-versioned-encrypted",
            "cloudfront-https-only",
            "no-plaintext-secrets-in-outputs",
            "trust-policies-constrained",
            "no-unvetted-managed-policies",
            "no-plaintext-secrets-in-resources",
        ]);
        for (const p of policies) {
            assert.strictEqual(p.enforcementLevel, "mandatory", p.name);
            assert.ok(p.description.length > 40, `${p.name} has a real description`);
        }
        assert.deepStrictEqual(
            [
                noPublicBuckets,
                noWildcardIam,
                artifactsBucketVersionedEncrypted,
                cloudfrontHttpsOnly,
                noPlaintextSecretsInOutputs,
                trustPoliciesConstrained,
                noUnvettedManagedPolicies,
                noPlaintextSecretsInResources,
            ],
            policies,
        );
    });

    describe("no-public-buckets", () => {
        const run = (rs: PolicyResource[]) => runStack(noPublicBuckets, rs);

        it("passes a bucket with a full public access block and a bucket policy naming principals", () => {
            const policy = res(T.bucketPolicy, "artifacts-policy", {
                bucket: BUCKET_NAME,
                policy: doc(
                    {
                        Sid: "CiReadWrite",
                        Effect: "Allow",
                        Principal: { AWS: "arn:aws:iam::123456789012:role/dbt-ci" },
                        Action: ["s3:GetObject", "s3:PutObject"],
                        Resource: `arn:aws:s3:::${BUCKET_NAME}/*`,
                    },
                    {
                        Sid: "DocsViaCloudFront",
                        Effect: "Allow",
                        Principal: { Service: "cloudfront.amazonaws.com" },
                        Action: "s3:GetObject",
                        Resource: `arn:aws:s3:::${BUCKET_NAME}/*`,
                        Condition: { StringEquals: { "AWS:SourceArn": "arn:aws:cloudfront::123456789012:distribution/E1" } },
                    },
                    // A Deny on "*" is the usual TLS-only guard, not public access.
                    { Sid: "TlsOnly", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: "*", Condition: { Bool: { "aws:SecureTransport": "false" } } },
                ),
            });
            none(run([...compliantBucketSet(), policy]));
        });

        it("matches the public access block by the bucket id as well as its name", () => {
            none(run([bucket("b", "name-x", { id: "id-x" }), pab("id-x")]));
        });

        it("reports a bucket without a public access block", () => {
            const [v] = some(run([bucket()]), /has no aws\.s3\.BucketPublicAccessBlock/);
            assert.strictEqual(v.urn, urnOf(T.bucket, "artifacts"));
        });

        it("reports a public access block that leaves a flag off", () => {
            some(run([bucket(), pab(BUCKET_NAME, { restrictPublicBuckets: false, ignorePublicAcls: undefined })]), /ignorePublicAcls, restrictPublicBuckets not true/);
        });

        it("reports the bucket whose block belongs to another bucket", () => {
            const vs = run([...compliantBucketSet("a", "bucket-a"), bucket("b", "bucket-b")]);
            const [v] = some(vs, /bucket b \(bucket-b\) has no aws\.s3\.BucketPublicAccessBlock/);
            assert.strictEqual(v.urn, urnOf(T.bucket, "b"));
        });

        for (const acl of ["public-read", "public-read-write", "authenticated-read"]) {
            it(`reports canned ACL ${acl} on a bucket and on a BucketAcl`, () => {
                some(run([bucket("artifacts", BUCKET_NAME, { acl }), pab(BUCKET_NAME)]), new RegExp(`canned ACL "${acl}"`));
                some(run([...compliantBucketSet(), res(T.acl, "artifacts-acl", { bucket: BUCKET_NAME, acl })]), new RegExp(`bucket ACL artifacts-acl sets canned ACL "${acl}"`));
            });
        }

        it("accepts a private ACL", () => {
            none(run([bucket("artifacts", BUCKET_NAME, { acl: "private" }), pab(BUCKET_NAME), res(T.acl, "acl", { bucket: BUCKET_NAME, acl: "private" })]));
        });

        const principals: [string, unknown][] = [
            ['"*"', "*"],
            ['{AWS: "*"}', { AWS: "*" }],
            ['{AWS: [role, "*"]}', { AWS: ["arn:aws:iam::123456789012:role/x", "*"] }],
        ];
        for (const [label, Principal] of principals) {
            it(`reports a bucket policy that Allows Principal ${label}`, () => {
                const p = res(T.bucketPolicy, "public", {
                    bucket: BUCKET_NAME,
                    policy: doc({ Sid: "Public", Effect: "Allow", Principal, Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET_NAME}/*` }),
                });
                const [v] = some(run([...compliantBucketSet(), p]), /bucket policy public statement "Public" allows Principal "\*"/);
                assert.strictEqual(v.urn, urnOf(T.bucketPolicy, "public"));
            });
        }

        it("reports a public Allow even with a SourceArn condition", () => {
            const p = res(T.bucketPolicy, "p", {
                bucket: BUCKET_NAME,
                policy: doc({ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "x", Condition: { ArnLike: { "aws:SourceArn": "arn:x" } } }),
            });
            some(run([...compliantBucketSet(), p]), /statement #1 allows Principal/);
        });

        it("reports an unparsable bucket policy", () => {
            some(run([...compliantBucketSet(), res(T.bucketPolicy, "p", { bucket: BUCKET_NAME, policy: "{not json" })]), /is not valid JSON.*cannot be checked/);
        });

        it("checks a bucket's inline policy too", () => {
            const inline = doc({ Effect: "Allow", Principal: { AWS: "*" }, Action: "s3:GetObject", Resource: "*" });
            some(run([bucket("artifacts", BUCKET_NAME, { policy: inline }), pab(BUCKET_NAME)]), /inline policy statement #1 allows Principal/);
            none(run([bucket("artifacts", BUCKET_NAME, { policy: "" }), pab(BUCKET_NAME)]));
        });

        describe("during preview", () => {
            it("matches a block whose bucket is unknown through propertyDependencies", () => {
                const b = bucket("artifacts", BUCKET_NAME, { id: UNKNOWN_STRING }, { preview: true });
                none(run([b, pab(UNKNOWN_STRING, {}, { preview: true, propertyDependencies: { bucket: [b] } })]));
            });

            it("still reports a flag that is known to be off", () => {
                const b = bucket("artifacts", BUCKET_NAME, { id: UNKNOWN_STRING }, { preview: true });
                some(run([b, pab(UNKNOWN_STRING, { blockPublicPolicy: false }, { preview: true, propertyDependencies: { bucket: [b] } })]), /blockPublicPolicy not true/);
            });

            it("skips (does not report) what it cannot decide", () => {
                const b = bucket("artifacts", BUCKET_NAME, { id: UNKNOWN_STRING }, { preview: true });
                // Unknown bucket reference, no dependency information: can't tell which bucket.
                none(run([b, pab(UNKNOWN_STRING, {}, { preview: true })]));
                // Known match, unknown flag.
                none(run([b, pab(BUCKET_NAME, { blockPublicAcls: UNKNOWN_BOOL }, { preview: true })]));
                // Unknown policy text.
                none(run([b, pab(BUCKET_NAME), res(T.bucketPolicy, "p", { bucket: BUCKET_NAME, policy: UNKNOWN_STRING }, { preview: true })]));
            });

            it("treats raw unknown sentinels (props without the proxy) the same way", () => {
                const b = bucket("artifacts", BUCKET_NAME, { id: UNKNOWN_STRING });
                none(run([b, pab(UNKNOWN_STRING)]));
                none(run([b, pab(BUCKET_NAME, { blockPublicAcls: UNKNOWN_BOOL })]));
                none(run([b, pab(BUCKET_NAME), res(T.bucketPolicy, "p", { bucket: BUCKET_NAME, policy: UNKNOWN_STRING })]));
            });

            it("reports a block that depends on another bucket", () => {
                const a = bucket("a", "bucket-a", { id: UNKNOWN_STRING }, { preview: true });
                const b = bucket("b", "bucket-b", { id: UNKNOWN_STRING }, { preview: true });
                some(run([a, b, pab(UNKNOWN_STRING, {}, { preview: true, propertyDependencies: { bucket: [a] } })]), /bucket b \(bucket-b\) has no/);
            });
        });
    });

    describe("no-wildcard-iam", () => {
        const run = (type: string, props: Record<string, any>, o?: ResOpts) => runResource(noWildcardIam, type, props, o);
        const scoped = {
            Sid: "Artifacts",
            Effect: "Allow",
            Action: ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
            Resource: [`arn:aws:s3:::${BUCKET_NAME}`, `arn:aws:s3:::${BUCKET_NAME}/artifacts/*`, `arn:aws:s3:::${BUCKET_NAME}/artifacts/history/*`],
        };

        it("passes scoped actions and resources on RolePolicy, UserPolicy, GroupPolicy, Policy and Role inline policies", () => {
            none(run(T.rolePolicy, { role: "dbt-ci", policy: doc(scoped) }));
            none(run("aws:iam/userPolicy:UserPolicy", { user: "bot", policy: doc(scoped) }));
            none(run("aws:iam/groupPolicy:GroupPolicy", { group: "devs", policy: doc(scoped) }));
            none(run(T.iamPolicy, { policy: doc(scoped, { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::x/docs/*" }) }));
            none(run(T.role, { assumeRolePolicy: doc({ Effect: "Allow", Principal: { Federated: "arn:oidc" }, Action: "sts:AssumeRoleWithWebIdentity" }), inlinePolicies: [{ name: "artifacts", policy: doc(scoped) }] }));
        });

        it('reports Action "*"', () => {
            some(run(T.rolePolicy, { policy: doc({ Effect: "Allow", Action: "*", Resource: "arn:aws:s3:::x" }) }), /statement #1 allows wildcard action "\*"/);
        });

        it("reports one wildcard inside an Action array", () => {
            some(run(T.rolePolicy, { policy: doc({ Sid: "Mixed", Effect: "Allow", Action: ["s3:GetObject", "s3:*"], Resource: "arn:aws:s3:::x/artifacts/*" }) }), /statement "Mixed" allows wildcard action "s3:\*"/);
        });

        it('reports Resource "*" and a Resource array containing "*"', () => {
            some(run(T.rolePolicy, { policy: doc({ Effect: "Allow", Action: "s3:GetObject", Resource: "*" }) }), /allows Resource "\*"/);
            some(run(T.iamPolicy, { policy: doc({ Effect: "Allow", Action: "s3:GetObject", Resource: ["arn:aws:s3:::x/artifacts/*", "*"] }) }), /allows Resource "\*"/);
        });

        it("reports action and resource wildcards of one statement separately", () => {
            some(run(T.rolePolicy, { policy: doc({ Effect: "Allow", Action: "*", Resource: "*" }) }), /allows (wildcard action|Resource)/, 2);
        });

        it("allows wildcards in Deny statements", () => {
            none(run(T.rolePolicy, { policy: doc(scoped, { Effect: "Deny", Action: "*", Resource: "*", Condition: { Bool: { "aws:SecureTransport": "false" } } }) }));
            none(run(T.rolePolicy, { policy: doc(scoped, { Effect: "Deny", NotAction: "s3:*", Resource: ["*"] }) }));
        });

        it("accepts a single Statement object", () => {
            some(run(T.rolePolicy, { policy: JSON.stringify({ Version: "2012-10-17", Statement: { Effect: "Allow", Action: "iam:*", Resource: "arn:x" } }) }), /"iam:\*"/);
        });

        it("accepts the SDK's object form of a policy document", () => {
            some(run(T.iamPolicy, { policy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["sts:*"], Resource: "arn:x" }] } }), /"sts:\*"/);
        });

        it("reports unparsable policy JSON", () => {
            some(run(T.rolePolicy, { policy: '{"Statement": [' }), /policy is not valid JSON.*cannot be checked/);
            some(run(T.iamPolicy, { policy: '"just a string"' }), /is not a JSON object/);
            some(run(T.iamPolicy, { policy: "{}" }), /has no Statement/);
        });

        it("names the offending Role inline policy and ignores empty inline entries", () => {
            const vs = run(T.role, {
                assumeRolePolicy: doc({ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }),
                inlinePolicies: [{}, { name: "ok", policy: doc(scoped) }, { name: "admin", policy: doc({ Effect: "Allow", Action: "s3:*", Resource: "*" }) }],
            });
            some(vs, /^inline policy "admin": statement #1 allows (wildcard action "s3:\*"|Resource "\*")/, 2);
        });

        it("is not applicable to other resource types", () => {
            assert.throws(() => run(T.bucket, { bucket: "x" }), NotApplicable);
        });

        it("skips a policy whose JSON is not known yet (preview)", () => {
            none(run(T.rolePolicy, { role: UNKNOWN_STRING, policy: UNKNOWN_STRING }, { preview: true }));
            none(run(T.role, { inlinePolicies: [{ name: "x", policy: UNKNOWN_STRING }] }, { preview: true }));
            some(run(T.rolePolicy, { role: UNKNOWN_STRING, policy: doc({ Effect: "Allow", Action: "*", Resource: "arn:x" }) }, { preview: true }), /"\*"/);
        });
    });

    describe("artifacts-bucket-versioned-encrypted", () => {
        const run = (rs: PolicyResource[]) => runStack(artifactsBucketVersionedEncrypted, rs);

        it("passes a versioned bucket with AES256, aws:kms or aws:kms:dsse default encryption", () => {
            for (const sseAlgorithm of ["AES256", "aws:kms", "aws:kms:dsse"]) {
                none(run([bucket(), versioning(BUCKET_NAME), sse(BUCKET_NAME, [{ bucketKeyEnabled: true, applyServerSideEncryptionByDefault: { sseAlgorithm } }])]));
            }
        });

        it("passes when any rule sets an accepted algorithm and when matched by id", () => {
            none(run([bucket("b", "n", { id: "i" }), versioning("i"), sse("n", [{ bucketKeyEnabled: true }, { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }])]));
        });

        it("reports versioning Suspended", () => {
            const [v] = some(run([bucket(), versioning(BUCKET_NAME, "Suspended"), sse(BUCKET_NAME)]), /is not versioned: artifacts-versioning: versioningConfiguration\.status is "Suspended"/);
            assert.strictEqual(v.urn, urnOf(T.bucket, "artifacts"));
        });

        it("reports missing versioning", () => {
            some(run([bucket(), sse(BUCKET_NAME)]), /has no aws\.s3\.BucketVersioning/);
        });

        it("reports missing server-side encryption", () => {
            some(run([bucket(), versioning(BUCKET_NAME)]), /has no aws\.s3\.BucketServerSideEncryptionConfiguration/);
        });

        it("reports encryption without an accepted default algorithm", () => {
            some(run([bucket(), versioning(BUCKET_NAME), sse(BUCKET_NAME, [{ bucketKeyEnabled: true }])]), /no accepted default encryption/);
            some(run([bucket(), versioning(BUCKET_NAME), sse(BUCKET_NAME, [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "none" } }])]), /found "none"/);
        });

        it("reports both problems of a bare bucket, and only the non-compliant one of two buckets", () => {
            some(run([bucket()]), /has no aws\.s3\.(BucketVersioning|BucketServerSideEncryptionConfiguration)/, 2);
            const vs = run([...compliantBucketSet("a", "bucket-a"), bucket("b", "bucket-b"), versioning("bucket-b", "Suspended", {}, "b-versioning"), sse("bucket-b", undefined, {}, "b-sse")]);
            const [v] = some(vs, /bucket b \(bucket-b\) is not versioned/);
            assert.strictEqual(v.urn, urnOf(T.bucket, "b"));
        });

        it("does not let another bucket's configuration count", () => {
            some(run([bucket("a", "bucket-a"), versioning("bucket-b"), sse("bucket-b")]), /bucket a \(bucket-a\) has no/, 2);
        });

        describe("during preview", () => {
            it("matches through propertyDependencies when the bucket reference is unknown", () => {
                const b = bucket("artifacts", BUCKET_NAME, { id: UNKNOWN_STRING }, { preview: true });
                const deps = { preview: true, propertyDependencies: { bucket: [b] } };
                none(run([b, versioning(UNKNOWN_STRING, "Enabled", deps), sse(UNKNOWN_STRING, undefined, deps)]));
                some(run([b, versioning(UNKNOWN_STRING, "Suspended", deps), sse(UNKNOWN_STRING, undefined, deps)]), /"Suspended"/);
            });

            it("skips unknown references and unknown settings instead of reporting", () => {
                const b = bucket("artifacts", BUCKET_NAME, { id: UNKNOWN_STRING }, { preview: true });
                none(run([b, versioning(UNKNOWN_STRING, "Enabled", { preview: true }), sse(UNKNOWN_STRING, undefined, { preview: true })]));
                none(run([b, versioning(BUCKET_NAME, UNKNOWN_STRING, { preview: true }), sse(BUCKET_NAME, [{ applyServerSideEncryptionByDefault: { sseAlgorithm: UNKNOWN_STRING } }], { preview: true })]));
            });
        });
    });

    describe("cloudfront-https-only", () => {
        const run = (props: Record<string, any>, o?: ResOpts) => runResource(cloudfrontHttpsOnly, T.distribution, props, o);
        const distribution = (over: Record<string, any> = {}) => ({
            enabled: true,
            origins: [{ domainName: `${BUCKET_NAME}.s3.eu-west-1.amazonaws.com`, originId: "docs" }],
            defaultCacheBehavior: { targetOriginId: "docs", viewerProtocolPolicy: "redirect-to-https", allowedMethods: ["GET", "HEAD"], cachedMethods: ["GET", "HEAD"] },
            orderedCacheBehaviors: [{ pathPattern: "/assets/*", targetOriginId: "docs", viewerProtocolPolicy: "https-only" }],
            restrictions: { geoRestriction: { restrictionType: "none" } },
            viewerCertificate: { acmCertificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/abc", sslSupportMethod: "sni-only", minimumProtocolVersion: "TLSv1.2_2021" },
            ...over,
        });

        it("passes HTTPS-only behaviours with an ACM certificate on TLSv1.2_2021 or newer", () => {
            for (const minimumProtocolVersion of ["TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"]) {
                none(run(distribution({ viewerCertificate: { acmCertificateArn: "arn:aws:acm:us-east-1:1:certificate/x", sslSupportMethod: "sni-only", minimumProtocolVersion } })));
            }
        });

        it("passes the default CloudFront certificate without a minimum protocol version", () => {
            none(run(distribution({ viewerCertificate: { cloudfrontDefaultCertificate: true }, orderedCacheBehaviors: undefined })));
        });

        it("reports an ordered behaviour that allows plain HTTP", () => {
            const vs = run(distribution({ orderedCacheBehaviors: [{ pathPattern: "/a/*", viewerProtocolPolicy: "https-only" }, { pathPattern: "/legacy/*", viewerProtocolPolicy: "allow-all" }] }));
            some(vs, /orderedCacheBehaviors\[1\] \(\/legacy\/\*\) has viewerProtocolPolicy "allow-all"/);
        });

        it("reports a default behaviour that allows plain HTTP", () => {
            some(run(distribution({ defaultCacheBehavior: { targetOriginId: "docs", viewerProtocolPolicy: "allow-all" } })), /^defaultCacheBehavior has viewerProtocolPolicy "allow-all"/);
        });

        for (const minimumProtocolVersion of ["TLSv1.2_2019", "TLSv1.2_2018", "TLSv1.1_2016", "TLSv1", "SSLv3"]) {
            it(`reports minimumProtocolVersion ${minimumProtocolVersion} with a custom certificate`, () => {
                some(run(distribution({ viewerCertificate: { acmCertificateArn: "arn:x", sslSupportMethod: "sni-only", minimumProtocolVersion } })), /minimumProtocolVersion is ".*"; use "TLSv1\.2_2021" or newer/);
            });
        }

        it("reports a custom certificate (ACM or IAM) without minimumProtocolVersion", () => {
            some(run(distribution({ viewerCertificate: { acmCertificateArn: "arn:x", sslSupportMethod: "sni-only" } })), /unset \(CloudFront defaults to TLSv1\)/);
            some(run(distribution({ viewerCertificate: { iamCertificateId: "ASCA123", sslSupportMethod: "sni-only", minimumProtocolVersion: "TLSv1.2_2019" } })), /"TLSv1\.2_2019"/);
        });

        it("is not applicable to other resource types", () => {
            assert.throws(() => runResource(cloudfrontHttpsOnly, T.bucket, {}), NotApplicable);
        });

        it("during preview: an unknown certificate ARN still counts as a custom certificate", () => {
            some(run(distribution({ viewerCertificate: { acmCertificateArn: UNKNOWN_STRING, sslSupportMethod: "sni-only", minimumProtocolVersion: "TLSv1.2_2019" } }), { preview: true }), /"TLSv1\.2_2019"/);
            none(run(distribution({ viewerCertificate: { acmCertificateArn: UNKNOWN_STRING, sslSupportMethod: "sni-only", minimumProtocolVersion: "TLSv1.2_2021" } }), { preview: true }));
            none(run(distribution({ orderedCacheBehaviors: UNKNOWN_STRING, viewerCertificate: { acmCertificateArn: "arn:x", minimumProtocolVersion: UNKNOWN_STRING } }), { preview: true }));
        });
    });

    describe("no-plaintext-secrets-in-outputs", () => {
        const stack = (outputs: Record<string, any>, o?: ResOpts) => res(T.stack, "dbt-platform-dev", outputs, o);
        const run = (rs: PolicyResource[], config: object = {}) => runStack(noPlaintextSecretsInOutputs, rs, config);

        it("reports a plain-text dbPassword output without echoing the value", () => {
            const [v] = some(run([stack({ environment: "dev", dbPassword: "hunter2-plain" })]), /stack output dbPassword looks like a credential but is not a secret/);
            assert.strictEqual(v.urn, urnOf(T.stack, "dbt-platform-dev"));
            assert.ok(!v.message.includes("hunter2"), "the value must not appear in the message");
        });

        it("passes the same output marked secret", () => {
            none(run([stack({ environment: "dev", dbPassword: new Secret("hunter2") })]));
        });

        it("passes a still-serialised secret", () => {
            none(run([stack({ dbPassword: { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value: "hunter2" } })]));
        });

        it("reports a plain private_key nested in an object output", () => {
            some(run([stack({ ci: { deployKey: { private_key: "-----BEGIN OPENSSH PRIVATE KEY-----", public_key: "ssh-ed25519 AAA" } } })]), /stack output ci\.deployKey\.private_key looks like/);
            some(run([stack({ ci: { privateKey: "k" } })]), /ci\.privateKey/);
        });

        it("reports every plain value under a sensitive key, including array elements", () => {
            // `credentials` names a credential itself, so everything under it counts (user included).
            some(run([stack({ apiTokens: ["a", "b"], credentials: { password: "p", user: "u" } })]), /stack output (apiTokens\[[01]\]|credentials\.(password|user)) looks like/, 4);
        });

        it("passes secret subtrees, shaped like today's dbtTargets and profileEnvironment", () => {
            none(
                run([
                    stack({
                        dbtTargets: new Secret({ ci: { host: "h", port: 5432, user: "dev_ci", password: "p", dbname: "analytics", schema: "dbt_ci" } }),
                        profileEnvironment: new Secret({ DBT_CI_PASSWORD: "p", DBT_CI_HOST: "h" }),
                        developerTargets: { alice: { user: "alice", password: new Secret("p") } },
                        profilesYaml: "password: \"{{ env_var('DBT_CI_PASSWORD') }}\"",
                    }),
                ]),
            );
        });

        it("ignores references to secrets, non-sensitive keys, booleans and empty values", () => {
            none(
                run([
                    stack({
                        ciCredentialsSecretArn: "arn:aws:secretsmanager:eu-west-1:1:secret:x",
                        docsBasicAuthSecretName: "dbt/docs/basic-auth",
                        secret_id: "x",
                        tokens: { arn: "arn:x", name: "n" },
                        rotateToken: true,
                        dbPassword: "",
                        warehouseRoles: ["role_dev", "role_prod"],
                    }),
                ]),
            );
        });

        it("passes the AWS-side exports of index.ts (names and ARNs of secrets, not values)", () => {
            none(
                run([
                    stack({
                        artifactsBucket: BUCKET_NAME,
                        latestManifestKey: "artifacts/latest/manifest.json",
                        docsUrl: "https://dbt-docs.acme.example",
                        docsDistributionId: "E2ABC",
                        ciRoleArns: { ci: "arn:aws:iam::1:role/ci", deploy: "arn:aws:iam::1:role/deploy" },
                        credentialSecretNames: { ci: "dbt/dev/ci", deploy: "dbt/dev/deploy" },
                    }),
                ]),
            );
        });

        it("honours allowedOutputPaths from the policy config", () => {
            const outputs = { dbtTargets: { ci: { password: "p" } }, dbPassword: "x" };
            some(run([stack(outputs)], { allowedOutputPaths: ["dbtTargets"] }), /stack output dbPassword/);
            none(run([stack(outputs)], { allowedOutputPaths: ["dbtTargets.ci.password", "dbPassword"] }));
        });

        it("skips outputs that are not known yet (preview)", () => {
            none(run([stack({ dbPassword: UNKNOWN_STRING, nested: { token: UNKNOWN_STRING } }, { preview: true })]));
            some(run([stack({ dbPassword: UNKNOWN_STRING, token: "t" }, { preview: true })]), /stack output token/);
        });

        it("checks only the root stack resource's props for outputs", () => {
            none(run([res("dbt-platform:index:DbtPlatform", "dbt-dev", { password: "p" }), stack({})]));
        });

        describe("SecretVersion", () => {
            const version = (secretString: unknown, additionalSecretOutputs: string[] = []) =>
                res(T.secretVersion, "ci-credentials-v1", { secretId: "arn:x", secretString }, { opts: { additionalSecretOutputs } });

            it("reports a secretString that is not marked secret", () => {
                const [v] = some(run([version('{"password":"p"}')]), /secret version ci-credentials-v1: secretString is not marked secret/);
                assert.strictEqual(v.urn, urnOf(T.secretVersion, "ci-credentials-v1"));
            });

            it("passes a secret secretString, or one listed in additionalSecretOutputs (as @pulumi/aws always does)", () => {
                none(run([version(new Secret('{"password":"p"}'))]));
                none(run([version('{"password":"p"}', ["secretBinary", "secretString", "secretStringWo"])]));
                none(run([version(undefined)]));
            });
        });
    });
});

// ---------------------------------------------------------------------------------------------
// The whole pack at once: every resource policy on every resource, every stack policy on the set
// ---------------------------------------------------------------------------------------------

interface PackViolation extends Violation {
    policy: string;
}

/** Each policy's config with the schema defaults filled in, as the CLI hands it to the pack. */
function configWithDefaults(policy: ResourceValidationPolicy | StackValidationPolicy, over: object = {}): object {
    const props = (policy.configSchema?.properties ?? {}) as Record<string, { default?: unknown }>;
    const defaults = Object.fromEntries(Object.entries(props).filter(([, s]) => s.default !== undefined).map(([k, s]) => [k, s.default]));
    return { ...defaults, ...over };
}

/**
 * Runs the whole pack: resource policies see each resource's inputs (`inputs`, else its props),
 * stack policies see every resource's outputs (props), exactly as `pulumi up --policy-pack` does.
 */
function runPack(resources: PolicyResource[], config: Record<string, object> = {}, inputs: Map<PolicyResource, Record<string, any>> = new Map()): PackViolation[] {
    const out: PackViolation[] = [];
    for (const policy of policies) {
        const cfg = configWithDefaults(policy, config[policy.name] ?? {});
        if ("validateStack" in policy && policy.validateStack) {
            const args: StackValidationArgs = {
                resources,
                stackTags: new Map(),
                getConfig: <C extends object>() => cfg as C,
                notApplicable: (reason?: string): never => {
                    throw new NotApplicable(reason);
                },
            };
            try {
                const r = policy.validateStack(args, (message, urn) => out.push({ policy: policy.name, message, urn }));
                assert.ok(!(r instanceof Promise), "validateStack is synchronous");
            } catch (e) {
                if (!(e instanceof NotApplicable)) throw e;
            }
        }
        if ("validateResource" in policy && policy.validateResource) {
            const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
            for (const r of resources) {
                const props = inputs.get(r) ?? r.props;
                const args: ResourceValidationArgs = {
                    type: r.type,
                    props,
                    urn: r.urn,
                    name: r.name,
                    opts: r.opts,
                    stackTags: new Map(),
                    isType: ((cls: unknown) => isTypeOf(r.type, cls)) as ResourceValidationArgs["isType"],
                    asType: ((cls: unknown) => (isTypeOf(r.type, cls) ? props : undefined)) as ResourceValidationArgs["asType"],
                    getConfig: <C extends object>() => cfg as C,
                    notApplicable: (reason?: string): never => {
                        throw new NotApplicable(reason);
                    },
                };
                for (const validate of validations) {
                    try {
                        const p = validate(args, (message, urn) => out.push({ policy: policy.name, message, urn: urn ?? r.urn }));
                        assert.ok(!(p instanceof Promise), "validateResource is synchronous");
                    } catch (e) {
                        if (!(e instanceof NotApplicable)) throw e;
                    }
                }
            }
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Crafted bypasses (issue 11 #9): each is a compliant platform plus one hole
// ---------------------------------------------------------------------------------------------

const ACCOUNT = "123456789012";
const GITHUB = "token.actions.githubusercontent.com";
const BITBUCKET = "api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc";
const AZURE = "vstoken.dev.azure.com/0f8fad5b-d9cb-469f-a165-70867728950e";
const oidcArn = (issuer: string) => `arn:aws:iam::${ACCOUNT}:oidc-provider/${issuer}`;
const managed = (name: string) => `arn:aws:iam::aws:policy/${name}`;

/** A web-identity trust statement shaped like components/aws/ciIdentity.ts's. */
function webIdentity(issuer: string, condition: Record<string, Record<string, unknown>>, extra: object = {}): object {
    return { Sid: "CiOidc", Effect: "Allow", Principal: { Federated: oidcArn(issuer) }, Action: "sts:AssumeRoleWithWebIdentity", Condition: condition, ...extra };
}

const GITHUB_TRUST = webIdentity(GITHUB, { StringEquals: { [`${GITHUB}:aud`]: "sts.amazonaws.com", [`${GITHUB}:sub`]: "repo:acme-data/analytics-dbt:pull_request" } });
const ARTIFACTS_RW = {
    Sid: "WriteArtifactsAndDocs",
    Effect: "Allow",
    Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
    Resource: [`arn:aws:s3:::${BUCKET_NAME}/artifacts/*`, `arn:aws:s3:::${BUCKET_NAME}/docs/*`],
};

/** What the platform declares on AWS, reduced to one of each kind, all compliant. */
function platformBaseline(): PolicyResource[] {
    const bucketArn = `arn:aws:s3:::${BUCKET_NAME}`;
    return [
        ...compliantBucketSet(),
        res(T.bucketPolicy, "artifacts-policy", {
            bucket: BUCKET_NAME,
            policy: doc(
                { Sid: "DenyInsecureTransport", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [bucketArn, `${bucketArn}/*`], Condition: { Bool: { "aws:SecureTransport": "false" } } },
                {
                    Sid: "AllowCloudFrontReadDocs",
                    Effect: "Allow",
                    Principal: { Service: "cloudfront.amazonaws.com" },
                    Action: "s3:GetObject",
                    Resource: `${bucketArn}/docs/*`,
                    Condition: { StringEquals: { "AWS:SourceArn": `arn:aws:cloudfront::${ACCOUNT}:distribution/E1ABC` } },
                },
            ),
        }),
        res(T.role, "ci-pull-request", { assumeRolePolicy: doc(GITHUB_TRUST), maxSessionDuration: 3600 }),
        res(T.rolePolicy, "ci-pull-request-policy", {
            role: "ci-pull-request-id",
            policy: doc(ARTIFACTS_RW, {
                Sid: "ListPrefixes",
                Effect: "Allow",
                Action: ["s3:ListBucket"],
                Resource: [bucketArn],
                Condition: { StringLike: { "s3:prefix": ["artifacts/*", "docs/*"] } },
            }),
        }),
        res(T.distribution, "docs-distribution", {
            enabled: true,
            origins: [{ originId: "dbt-docs-s3", domainName: `${BUCKET_NAME}.s3.eu-west-1.amazonaws.com`, originPath: "/docs", originAccessControlId: "oac-1" }],
            defaultCacheBehavior: { targetOriginId: "dbt-docs-s3", viewerProtocolPolicy: "redirect-to-https", allowedMethods: ["GET", "HEAD"], cachedMethods: ["GET", "HEAD"] },
            restrictions: { geoRestriction: { restrictionType: "none" } },
            viewerCertificate: { cloudfrontDefaultCertificate: true },
        }),
        res(T.secretVersion, "credentials-ci-version", { secretId: "arn:x", secretString: '{"password":"p"}' }, { opts: { additionalSecretOutputs: ["secretString"] } }),
        res(T.stack, "dbt-platform-prod", { environment: "prod", artifactsBucket: BUCKET_NAME, docsUrl: "https://dbt-docs.acme.example" }),
    ];
}

/** The baseline with the stack outputs extended by `outputs`. */
function withOutputs(outputs: Record<string, unknown>): PolicyResource[] {
    return platformBaseline().map((r) => (r.type === T.stack ? res(T.stack, r.name, { ...r.props, ...outputs }) : r));
}

const role = (name: string, trust: object, extra: object = {}) => res(T.role, name, { assumeRolePolicy: doc(trust), ...extra });
const rolePolicy = (name: string, ...statements: object[]) => res(T.rolePolicy, name, { role: "ci-pull-request-id", policy: doc(...statements) });
const allow = (Action: unknown, Resource: unknown = `arn:aws:s3:::${BUCKET_NAME}/artifacts/*`, extra: object = {}) => ({ Effect: "Allow", Action, Resource, ...extra });
const distributionWithOrigin = (customOriginConfig: object) =>
    res(T.distribution, "api-distribution", {
        enabled: true,
        origins: [{ originId: "api", domainName: "api.acme.example", customOriginConfig: { httpPort: 80, httpsPort: 443, originSslProtocols: ["TLSv1.2"], ...customOriginConfig } }],
        defaultCacheBehavior: { targetOriginId: "api", viewerProtocolPolicy: "https-only", allowedMethods: ["GET", "HEAD"], cachedMethods: ["GET", "HEAD"] },
        restrictions: { geoRestriction: { restrictionType: "none" } },
        viewerCertificate: { cloudfrontDefaultCertificate: true },
    });
const aclGrant = (uri: string, permission = "READ") => ({
    bucket: BUCKET_NAME,
    accessControlPolicy: { owner: { id: "owner-canonical-id" }, grants: [{ grantee: { type: "Group", uri }, permission }] },
});
const ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

interface Bypass {
    /** What the hole is. */
    name: string;
    /** The policy that must report it. */
    policy: string;
    resources: () => PolicyResource[];
    config?: Record<string, object>;
}

const BYPASSES: Bypass[] = [
    // --- public buckets
    {
        name: "bucket policy Allow with NotPrincipal (everyone but one role)",
        policy: "no-public-buckets",
        resources: () => [
            ...platformBaseline(),
            res(T.bucketPolicy, "artifacts-policy-2", {
                bucket: BUCKET_NAME,
                policy: doc({ Effect: "Allow", NotPrincipal: { AWS: `arn:aws:iam::${ACCOUNT}:role/x` }, Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET_NAME}/*` }),
            }),
        ],
    },
    {
        name: "bucket policy Allow with NotAction to a named role",
        policy: "no-public-buckets",
        resources: () => [
            ...platformBaseline(),
            res(T.bucketPolicy, "artifacts-policy-2", {
                bucket: BUCKET_NAME,
                policy: doc({ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/x` }, NotAction: "s3:DeleteBucket", Resource: `arn:aws:s3:::${BUCKET_NAME}/*` }),
            }),
        ],
    },
    { name: "BucketAcl grant READ to AllUsers", policy: "no-public-buckets", resources: () => [...platformBaseline(), res(T.acl, "acl", aclGrant(ALL_USERS))] },
    {
        name: "BucketAclV2 grant FULL_CONTROL to AuthenticatedUsers",
        policy: "no-public-buckets",
        resources: () => [...platformBaseline(), res("aws:s3/bucketAclV2:BucketAclV2", "acl", aclGrant(AUTHENTICATED_USERS, "FULL_CONTROL"))],
    },
    {
        name: "bucket grants to AllUsers (https URI)",
        policy: "no-public-buckets",
        resources: () => [
            ...platformBaseline().filter((r) => r.type !== T.bucket),
            bucket("artifacts", BUCKET_NAME, { grants: [{ type: "Group", uri: "https://acs.amazonaws.com/groups/global/AllUsers", permissions: ["READ"] }] }),
        ],
    },
    {
        name: "BucketV2 grants WRITE to AuthenticatedUsers",
        policy: "no-public-buckets",
        resources: () => [
            ...platformBaseline(),
            res("aws:s3/bucketV2:BucketV2", "logs", { bucket: "acme-logs", id: "acme-logs", grants: [{ type: "Group", uri: AUTHENTICATED_USERS, permissions: ["WRITE"] }] }),
            pab("acme-logs", {}, {}, "logs-pab"),
            versioning("acme-logs", "Enabled", {}, "logs-versioning"),
            sse("acme-logs", undefined, {}, "logs-sse"),
        ],
    },
    {
        name: "a second, lax public access block on the same bucket",
        policy: "no-public-buckets",
        resources: () => [...platformBaseline(), pab(BUCKET_NAME, { blockPublicPolicy: false, restrictPublicBuckets: false }, {}, "artifacts-pab-2")],
    },
    {
        name: "a second versioning resource (Suspended) on the same bucket",
        policy: "artifacts-bucket-versioned-encrypted",
        resources: () => [...platformBaseline(), versioning(BUCKET_NAME, "Suspended", {}, "artifacts-versioning-2")],
    },
    {
        name: "a second encryption configuration without default encryption on the same bucket",
        policy: "artifacts-bucket-versioned-encrypted",
        resources: () => [...platformBaseline(), sse(BUCKET_NAME, [{ bucketKeyEnabled: true }], {}, "artifacts-sse-2")],
    },
    // --- identity policies: the two ECS exceptions open nothing else
    { name: 'RolePolicy Allow "ecr:*" on "*" (beyond the GetAuthorizationToken exception)', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow("ecr:*", "*"))] },
    { name: 'RolePolicy Allow GetAuthorizationToken + BatchGetImage on "*"', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow(["ecr:GetAuthorizationToken", "ecr:BatchGetImage"], "*"))] },
    { name: "RolePolicy Allow logs:* on a log-stream prefix", policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow("logs:*", `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:runs:log-stream:dbt/*`))] },
    { name: "RolePolicy Allow PutLogEvents on every log group's streams", policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow("logs:PutLogEvents", `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:*:log-stream:dbt/*`))] },
    // --- identity policies
    { name: "RolePolicy Allow NotAction", policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", { Effect: "Allow", NotAction: "iam:*", Resource: `arn:aws:s3:::${BUCKET_NAME}` })] },
    { name: "RolePolicy Allow NotResource", policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", { Effect: "Allow", Action: "s3:GetObject", NotResource: `arn:aws:s3:::${BUCKET_NAME}/private/*` })] },
    { name: 'Resource "arn:aws:s3:::*"', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow("s3:GetObject", "arn:aws:s3:::*"))] },
    { name: 'Resource "arn:aws:s3:::*/artifacts/*" (any bucket)', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow("s3:GetObject", "arn:aws:s3:::*/artifacts/*"))] },
    {
        name: "Resource with a wildcard inside a secret ARN",
        policy: "no-wildcard-iam",
        resources: () => [...platformBaseline(), rolePolicy("p", allow("secretsmanager:GetSecretValue", `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:*`))],
    },
    { name: 'partial wildcard action "s3:*Object"', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow("s3:*Object"))] },
    { name: 'partial wildcard action "iam:Pass*"', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow(["s3:GetObject", "iam:Pass*"], `arn:aws:iam::${ACCOUNT}:role/x`))] },
    { name: 'partial wildcard action "s3:Get*"', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), res(T.iamPolicy, "p", { policy: doc(allow("s3:Get*")) })] },
    { name: 'single-character wildcard action "iam:PassRol?"', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), rolePolicy("p", allow("iam:PassRol?", `arn:aws:iam::${ACCOUNT}:role/x`))] },
    { name: 'UserPolicy with Action "*"', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), res("aws:iam/userPolicy:UserPolicy", "u", { user: "bot", policy: doc(allow("*", "*")) })] },
    { name: 'GroupPolicy with Action "*"', policy: "no-wildcard-iam", resources: () => [...platformBaseline(), res("aws:iam/groupPolicy:GroupPolicy", "g", { group: "devs", policy: doc(allow("*", "*")) })] },
    // --- managed policies
    {
        name: "RolePolicyAttachment of AdministratorAccess",
        policy: "no-unvetted-managed-policies",
        resources: () => [...platformBaseline(), res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin", { role: "ci-pull-request-id", policyArn: managed("AdministratorAccess") })],
    },
    {
        name: "PolicyAttachment of PowerUserAccess",
        policy: "no-unvetted-managed-policies",
        resources: () => [...platformBaseline(), res("aws:iam/policyAttachment:PolicyAttachment", "power", { roles: ["ci-pull-request-id"], policyArn: managed("PowerUserAccess") })],
    },
    {
        name: "Role managedPolicyArns with IAMFullAccess",
        policy: "no-unvetted-managed-policies",
        resources: () => [...platformBaseline(), role("deploy", GITHUB_TRUST, { managedPolicyArns: [managed("IAMFullAccess")] })],
    },
    {
        name: "RolePolicyAttachmentsExclusive with AdministratorAccess",
        policy: "no-unvetted-managed-policies",
        resources: () => [...platformBaseline(), res("aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive", "x", { roleName: "ci-pull-request", policyArns: [managed("AdministratorAccess")] })],
    },
    {
        name: "UserPolicyAttachment of ReadOnlyAccess (AWS-managed, not allow-listed)",
        policy: "no-unvetted-managed-policies",
        resources: () => [...platformBaseline(), res("aws:iam/userPolicyAttachment:UserPolicyAttachment", "ro", { user: "bot", policyArn: managed("ReadOnlyAccess") })],
    },
    {
        name: "GroupPolicyAttachment of AdministratorAccess even when allow-listed",
        policy: "no-unvetted-managed-policies",
        resources: () => [...platformBaseline(), res("aws:iam/groupPolicyAttachment:GroupPolicyAttachment", "admins", { group: "devs", policyArn: managed("AdministratorAccess") })],
        config: { "no-unvetted-managed-policies": { allowedPolicyArns: [managed("AdministratorAccess")] } },
    },
    {
        name: "RolePolicyAttachment of a customer policy not declared in the stack",
        policy: "no-unvetted-managed-policies",
        resources: () => [...platformBaseline(), res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "ext", { role: "ci-pull-request-id", policyArn: `arn:aws:iam::${ACCOUNT}:policy/break-glass` })],
    },
    {
        name: "RolePolicyAttachment of a declared customer policy that is too broad",
        policy: "no-unvetted-managed-policies",
        resources: () => [
            ...platformBaseline(),
            res(T.iamPolicy, "broad", { arn: `arn:aws:iam::${ACCOUNT}:policy/broad`, policy: doc(allow("iam:Pass*", `arn:aws:iam::${ACCOUNT}:role/x`)) }),
            res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "broad", { role: "ci-pull-request-id", policyArn: `arn:aws:iam::${ACCOUNT}:policy/broad` }),
        ],
    },
    // --- trust policies
    { name: 'trust policy Principal "*"', policy: "trust-policies-constrained", resources: () => [...platformBaseline(), role("x", { Effect: "Allow", Principal: "*", Action: "sts:AssumeRole" })] },
    { name: 'trust policy Principal {AWS: "*"}', policy: "trust-policies-constrained", resources: () => [...platformBaseline(), role("x", { Effect: "Allow", Principal: { AWS: "*" }, Action: "sts:AssumeRole" })] },
    {
        name: "trust policy Allow with NotPrincipal",
        policy: "trust-policies-constrained",
        resources: () => [...platformBaseline(), role("x", { Effect: "Allow", NotPrincipal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: "sts:AssumeRole" })],
    },
    {
        name: "GitHub OIDC trust without a sub condition",
        policy: "trust-policies-constrained",
        resources: () => [...platformBaseline(), role("x", webIdentity(GITHUB, { StringEquals: { [`${GITHUB}:aud`]: "sts.amazonaws.com" } }))],
    },
    {
        name: 'GitHub OIDC trust with StringLike sub "*"',
        policy: "trust-policies-constrained",
        resources: () => [...platformBaseline(), role("x", webIdentity(GITHUB, { StringEquals: { [`${GITHUB}:aud`]: "sts.amazonaws.com" }, StringLike: { [`${GITHUB}:sub`]: "*" } }))],
    },
    {
        name: 'GitHub OIDC trust with StringLike sub "repo:*"',
        policy: "trust-policies-constrained",
        resources: () => [...platformBaseline(), role("x", webIdentity(GITHUB, { StringEquals: { [`${GITHUB}:aud`]: "sts.amazonaws.com" }, StringLike: { [`${GITHUB}:sub`]: ["repo:acme-data/analytics-dbt:pull_request", "repo:*"] } }))],
    },
    {
        name: 'GitHub OIDC trust with StringLike sub "repo:acme-data/*" (any repository of the owner)',
        policy: "trust-policies-constrained",
        resources: () => [...platformBaseline(), role("x", webIdentity(GITHUB, { StringEquals: { [`${GITHUB}:aud`]: "sts.amazonaws.com" }, StringLike: { [`${GITHUB}:sub`]: "repo:acme-data/*" } }))],
    },
    {
        name: "GitHub OIDC trust without an aud condition",
        policy: "trust-policies-constrained",
        resources: () => [...platformBaseline(), role("x", webIdentity(GITHUB, { StringEquals: { [`${GITHUB}:sub`]: "repo:acme-data/analytics-dbt:pull_request" } }))],
    },
    {
        name: "Bitbucket OIDC trust with sub under a negated operator",
        policy: "trust-policies-constrained",
        resources: () => [
            ...platformBaseline(),
            role("x", webIdentity(BITBUCKET, { StringEquals: { [`${BITBUCKET}:aud`]: "ari:cloud:bitbucket::workspace/3c5f1a2e-8d4b-4f6a-9c1e-2b7d5e8f0a13" }, StringNotLike: { [`${BITBUCKET}:sub`]: "{00000000-0000-4000-8000-000000000000}*" } })),
        ],
    },
    {
        name: "Bitbucket OIDC trust with sub starting with a wildcard",
        policy: "trust-policies-constrained",
        resources: () => [
            ...platformBaseline(),
            role("x", webIdentity(BITBUCKET, { StringEquals: { [`${BITBUCKET}:aud`]: "ari:cloud:bitbucket::workspace/3c5f1a2e-8d4b-4f6a-9c1e-2b7d5e8f0a13" }, StringLike: { [`${BITBUCKET}:sub`]: "*{a1b2c3d4-0003-4f6a-9c1e-2b7d5e8f0a13}:*" } })),
        ],
    },
    {
        name: "Azure DevOps OIDC trust with a wildcard organization in sub",
        policy: "trust-policies-constrained",
        resources: () => [...platformBaseline(), role("x", webIdentity(AZURE, { StringEquals: { [`${AZURE}:aud`]: "api://AzureADTokenExchange" }, StringLike: { [`${AZURE}:sub`]: "sc://*/dbt/aws-deploy" } }))],
    },
    {
        name: "OIDC trust through sts:* with no conditions",
        policy: "trust-policies-constrained",
        resources: () => [...platformBaseline(), role("x", { Effect: "Allow", Principal: { Federated: oidcArn(GITHUB) }, Action: "sts:*" })],
    },
    // --- CloudFront origins
    { name: "CloudFront custom origin http-only", policy: "cloudfront-https-only", resources: () => [...platformBaseline(), distributionWithOrigin({ originProtocolPolicy: "http-only" })] },
    { name: "CloudFront custom origin match-viewer", policy: "cloudfront-https-only", resources: () => [...platformBaseline(), distributionWithOrigin({ originProtocolPolicy: "match-viewer" })] },
    {
        name: "multitenant distribution allowing plain HTTP",
        policy: "cloudfront-https-only",
        resources: () => [
            ...platformBaseline(),
            res("aws:cloudfront/multitenantDistribution:MultitenantDistribution", "mt", {
                enabled: true,
                comment: "x",
                origins: [{ id: "s3", domainName: `${BUCKET_NAME}.s3.eu-west-1.amazonaws.com`, originAccessControlId: "oac-1" }],
                defaultCacheBehavior: { targetOriginId: "s3", viewerProtocolPolicy: "allow-all" },
                viewerCertificate: { cloudfrontDefaultCertificate: true },
                tenantConfig: {},
            }),
        ],
    },
    {
        name: "CloudFront VPC origin over http-only",
        policy: "cloudfront-https-only",
        resources: () => [
            ...platformBaseline(),
            res("aws:cloudfront/vpcOrigin:VpcOrigin", "vpc", {
                vpcOriginEndpointConfig: { name: "alb", arn: "arn:aws:elasticloadbalancing:x", httpPort: 80, httpsPort: 443, originProtocolPolicy: "http-only", originSslProtocols: { items: ["TLSv1.2"], quantity: 1 } },
            }),
        ],
    },
    // --- secrets under other names, or inside URIs
    { name: "output dbPwd", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ dbPwd: "hunter2" }) },
    { name: "output passwd", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ warehouse: { passwd: "hunter2" } }) },
    { name: "output credentials", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ credentials: "dbt_ci:hunter2" }) },
    { name: "output apiKey", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ apiKey: "AKIA-like-value" }) },
    { name: "output api_key", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ bitbucket: { api_key: "k-123" } }) },
    { name: "output auth", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ docs: { auth: "dbt-docs:s3cr3t" } }) },
    { name: "output sentryDsn", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ sentryDsn: "https://abc123@o1.ingest.sentry.io/42" }) },
    { name: "output connectionString", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ connectionString: "Host=db;Username=dbt;Password=hunter2" }) },
    { name: "output privateKeyPem (private_key under another spelling)", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ deployKeyPem: { "private-key": "-----BEGIN PRIVATE KEY-----" } }) },
    { name: "postgres:// URI with a password under a harmless key", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ warehouseUrl: "postgres://dbt_ci:hunter2@db.acme.example:5432/analytics" }) },
    { name: "any scheme://user:password@ inside an array output", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ endpoints: ["https://api.acme.example", "redis://default:pw-123@cache:6379/0"] }) },
    { name: "redis://:password@ (no user name) under a harmless key", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ cache: "redis://:pw-123@cache:6379/0" }) },
    { name: "JSON text with a password under a harmless key", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ targetsJson: JSON.stringify({ prod: { user: "dbt", password: "hunter2" } }) }) },
    { name: "JSON text with an apiKey under a harmless key", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ settings: JSON.stringify([{ service: "x", apiKey: "k-1" }]) }) },
    { name: "profiles.yml text with a literal password", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ profiles: "dbt:\n  outputs:\n    prod:\n      user: dbt\n      password: hunter2\n" }) },
    { name: "script text with PGPASSWORD=literal", policy: "no-plaintext-secrets-in-outputs", resources: () => withOutputs({ script: "PGPASSWORD=hunter2 psql -h db -U dbt" }) },
    {
        name: "name/value list naming a password",
        policy: "no-plaintext-secrets-in-outputs",
        resources: () => withOutputs({ environment: [{ name: "DBT_PROD_HOST", value: "db" }, { name: "DBT_PROD_PASSWORD", value: "hunter2" }] }),
    },
    {
        name: "S3 access point policy allowing Principal *",
        policy: "no-public-buckets",
        resources: () => [
            ...platformBaseline(),
            res("aws:s3/accessPoint:AccessPoint", "ap", { bucket: BUCKET_NAME, name: "docs", policy: doc({ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:eu-west-1:${ACCOUNT}:accesspoint/docs/object/*` }) }),
        ],
    },
    {
        name: "s3control access point policy allowing {AWS: *}",
        policy: "no-public-buckets",
        resources: () => [
            ...platformBaseline(),
            res("aws:s3control/accessPointPolicy:AccessPointPolicy", "app", { accessPointArn: `arn:aws:s3:eu-west-1:${ACCOUNT}:accesspoint/docs`, policy: doc({ Effect: "Allow", Principal: { AWS: "*" }, Action: "s3:GetObject", Resource: "*" }) }),
        ],
    },
    { name: "S3 object with canned ACL public-read", policy: "no-public-buckets", resources: () => [...platformBaseline(), res("aws:s3/bucketObjectv2:BucketObjectv2", "index", { bucket: BUCKET_NAME, key: "docs/index.html", acl: "public-read" })] },
    {
        name: "S3 object copy granting AllUsers READ",
        policy: "no-public-buckets",
        resources: () => [...platformBaseline(), res("aws:s3/objectCopy:ObjectCopy", "copy", { bucket: BUCKET_NAME, key: "docs/x", source: "b/k", grants: [{ type: "Group", uri: ALL_USERS, permissions: ["READ"] }] })],
    },
    {
        name: "Lambda environment variable holding JSON with a password",
        policy: "no-plaintext-secrets-in-resources",
        resources: () => [...platformBaseline(), res("aws:lambda/function:Function", "f", { runtime: "nodejs20.x", environment: { variables: { CONFIG: JSON.stringify({ host: "db", password: "hunter2" }) } } })],
    },
    {
        name: "SSM parameter of type String holding a password",
        policy: "no-plaintext-secrets-in-resources",
        resources: () => [...platformBaseline(), res("aws:ssm/parameter:Parameter", "p", { name: "/dbt/prod/password", type: "String", value: "hunter2" })],
    },
    {
        name: "SSM parameter of type String holding a connection URI",
        policy: "no-plaintext-secrets-in-resources",
        resources: () => [...platformBaseline(), res("aws:ssm/parameter:Parameter", "p", { name: "/dbt/prod/url", type: "String", value: "postgresql://dbt:hunter2@db/analytics" })],
    },
    {
        name: "Lambda environment variable DB_PASSWORD",
        policy: "no-plaintext-secrets-in-resources",
        resources: () => [...platformBaseline(), res("aws:lambda/function:Function", "f", { runtime: "nodejs20.x", environment: { variables: { DB_HOST: "db", DB_PASSWORD: "hunter2" } } })],
    },
    {
        name: "Lambda environment variable with a password in a URI",
        policy: "no-plaintext-secrets-in-resources",
        resources: () => [...platformBaseline(), res("aws:lambda/function:Function", "f", { runtime: "nodejs20.x", environment: { variables: { DATABASE_URL: "postgres://dbt:hunter2@db/analytics" } } })],
    },
    {
        name: "ECS container environment PGPASSWORD",
        policy: "no-plaintext-secrets-in-resources",
        resources: () => [
            ...platformBaseline(),
            res("aws:ecs/taskDefinition:TaskDefinition", "t", {
                family: "dbt-scheduler",
                containerDefinitions: JSON.stringify([{ name: "dbt", image: "dbt:1.11", environment: [{ name: "PGHOST", value: "db" }, { name: "PGPASSWORD", value: "hunter2" }] }]),
            }),
        ],
    },
];

describe("policy pack: crafted bypasses (issue 11 #9)", () => {
    it("the platform baseline passes the whole pack", () => {
        assert.deepStrictEqual(runPack(platformBaseline()).map((v) => `${v.policy}: ${v.message}`), []);
    });

    it("catches every crafted bypass with the policy meant for it", () => {
        assert.ok(BYPASSES.length >= 20, "at least 20 crafted bypasses");
        assert.strictEqual(new Set(BYPASSES.map((b) => b.name)).size, BYPASSES.length, "bypass names are unique");
        const missed: string[] = [];
        let caught = 0;
        for (const b of BYPASSES) {
            const tried = attack(`policy bypass: ${b.name}`);
            const vs = runPack(b.resources(), b.config);
            if (vs.some((v) => v.policy === b.policy)) {
                caught++;
                tried.blocked();
            }
            else missed.push(`${b.name} (expected ${b.policy}; got ${vs.length === 0 ? "nothing" : vs.map((v) => `${v.policy}: ${v.message}`).join(" | ")})`);
        }
        console.log(`policy bypasses caught: ${caught}/${BYPASSES.length}`);
        assert.deepStrictEqual(missed, []);
    });
});

// ---------------------------------------------------------------------------------------------
// No false positives: every shipped stack, as the program registers it under mocks, passes the pack
// ---------------------------------------------------------------------------------------------

interface Evaluated {
    resources: PolicyResource[];
    inputs: Map<PolicyResource, Record<string, any>>;
}

/**
 * Evaluates index.ts for `stack` under the project's mocks (scripts/offline.ts) and turns every
 * registration into the PolicyResource the engine would hand the pack: outputs (mock state) as
 * props for stack policies, inputs for resource policies, the request's additionalSecretOutputs and
 * propertyDependencies, and the root stack resource whose props are the program's exports
 * (secrets unwrapped, as @pulumi/policy 1.21.0 passes them).
 */
async function evaluateForPolicy(stack: string, config: Record<string, string>): Promise<Evaluated> {
    const { resources, settle } = await installMocks(stack);
    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    const requests = new Map<string, { secretOutputs: string[]; deps: Record<string, string[]> }>();
    monitor.registerResource = (req: any, callback: (err: any, resp: any) => void) => {
        const deps: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((v: any, k: string) => (deps[k] = v.getUrnsList()));
        requests.set(`${req.getType()}::${req.getName()}`, { secretOutputs: req.getAdditionalsecretoutputsList(), deps });
        register(req, callback);
    };
    pulumi.runtime.setAllConfig(config, []);
    const entry = require.resolve(path.join(ROOT, "index.ts"));
    delete require.cache[entry];
    const exports = require(entry) as Record<string, unknown>;
    await settle();

    const outputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(exports)) {
        const value = pulumi.Output.isInstance(v) ? (await resolve(v as pulumi.Output<unknown>)).value : v;
        if (value !== undefined) outputs[k] = value;
    }
    const recorded: Recorded[] = resources.filter((r) => r.type !== T.stack);
    const byUrn = new Map<string, PolicyResource>();
    const inputs = new Map<PolicyResource, Record<string, any>>();
    const out: PolicyResource[] = recorded.map((r) => {
        const req = requests.get(`${r.type}::${r.name}`);
        const p = res(r.type, r.name, r.state, { opts: { additionalSecretOutputs: req?.secretOutputs ?? [] } });
        p.urn = r.urn;
        byUrn.set(r.urn, p);
        inputs.set(p, r.inputs);
        return p;
    });
    for (const r of recorded) {
        const p = byUrn.get(r.urn)!;
        const deps = requests.get(`${r.type}::${r.name}`)?.deps ?? {};
        for (const [k, urns] of Object.entries(deps)) {
            p.propertyDependencies[k] = urns.map((u) => byUrn.get(u)).filter((x): x is PolicyResource => x !== undefined);
        }
    }
    const root = res(T.stack, `dbt-platform-${stack}`, outputs);
    inputs.set(root, outputs);
    return { resources: [...out, root], inputs };
}

/** Docs access modes and AWS options the shipped prod stack can be switched to. */
function prodVariant(change: (aws: any) => void): Record<string, string> {
    const config = stackConfig("prod");
    const aws = JSON.parse(config["dbt-platform:aws"]);
    change(aws);
    return { ...config, "dbt-platform:aws": JSON.stringify(aws) };
}

describe("policy pack: shipped stacks have no violations", function () {
    this.timeout(300_000);

    const cases: [string, string, () => Record<string, string>][] = [];
    for (const stack of ["dev", "sandbox", "staging", "prod", "snowflake", "redshift"]) {
        for (const system of CI_SYSTEMS) cases.push([`${stack} on ${system}`, stack, () => withCiSystem(stackConfig(stack), system).config]);
    }
    cases.push(
        ["prod with public docs", "prod", () => prodVariant((a) => (a.docs = { access: "public" }))],
        ["prod with basic-auth docs", "prod", () => prodVariant((a) => (a.docs = { access: "basic-auth" }))],
        ["prod with a KMS key", "prod", () => prodVariant((a) => (a.artifacts.kmsKeyArn = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`))],
        [
            "prod on github with a deploy environment",
            "prod",
            () => {
                const c = withCiSystem(stackConfig("prod"), "github").config;
                const aws = JSON.parse(c["dbt-platform:aws"]);
                aws.github = { deployEnvironment: "production" };
                return { ...c, "dbt-platform:aws": JSON.stringify(aws) };
            },
        ],
    );

    it("the harness is live: the same recorded prod stack with one hole is reported", async () => {
        const { resources, inputs } = await evaluateForPolicy("prod", stackConfig("prod"));
        const prRole = resources.find((r) => r.type === T.role && r.name === "dbt-prod-ci-pull-request");
        assert.ok(prRole, "the pull-request role is recorded");
        const trust = JSON.parse(inputs.get(prRole)!.assumeRolePolicy);
        const like = trust.Statement[0].Condition.StringLike;
        const subKey = Object.keys(like).find((k) => k.endsWith(":sub"))!;
        assert.match(subKey, /^api\.bitbucket\.org\/2\.0\/workspaces\/[^/]+\/pipelines-config\/identity\/oidc:sub$/);
        like[subKey] = "*";
        inputs.set(prRole, { ...inputs.get(prRole), assumeRolePolicy: JSON.stringify(trust) });
        const bucketRecord = resources.find((r) => r.type === T.bucket)!;
        const lax = pab(String(get(bucketRecord.props, "bucket")), { restrictPublicBuckets: false }, {}, "lax-pab");
        const vs = runPack([...resources, lax], {}, inputs).map((v) => `${v.policy}: ${v.message}`);
        assert.strictEqual(vs.length, 3, vs.join("\n"));
        assert.match(vs.join("\n"), /trust-policies-constrained: trust policy: statement "CiOidc" condition .*:sub pattern "\*" does not pin one identity/);
        assert.match(vs.join("\n"), /no-public-buckets: .* has 2 aws\.s3\.BucketPublicAccessBlock resources/);
    });

    for (const [label, stack, config] of cases) {
        it(label, async () => {
            const { resources, inputs } = await evaluateForPolicy(stack, config());
            const awsCount = resources.filter((r) => r.type.startsWith("aws:")).length;
            if (stack !== "dev") assert.ok(awsCount > 10, `${label}: expected the AWS resources, got ${awsCount}`);
            assert.deepStrictEqual(runPack(resources, {}, inputs).map((v) => `${v.policy}: ${v.message}`), []);
        });
    }
});

// ---------------------------------------------------------------------------------------------
// The new and widened rules one by one: legitimate shapes pass, the rest is reported by name
// ---------------------------------------------------------------------------------------------

describe("policy pack: rules added for issue 11 #9", () => {
    describe("no-public-buckets: grants, NotPrincipal, duplicates", () => {
        const run = (rs: PolicyResource[]) => runStack(noPublicBuckets, rs);

        it("passes ACL grants to the owner and to the log-delivery group", () => {
            const grants = [
                { grantee: { type: "CanonicalUser", id: "owner-canonical-id" }, permission: "FULL_CONTROL" },
                { grantee: { type: "Group", uri: "http://acs.amazonaws.com/groups/s3/LogDelivery" }, permission: "WRITE" },
            ];
            none(run([...compliantBucketSet(), res(T.acl, "acl", { bucket: BUCKET_NAME, accessControlPolicy: { owner: { id: "o" }, grants } })]));
            none(run([bucket("artifacts", BUCKET_NAME, { grants: [{ type: "CanonicalUser", id: "o", permissions: ["FULL_CONTROL"] }] }), ...compliantBucketSet().slice(1)]));
        });

        it("names the public grantee and its permission", () => {
            const acl = res("aws:s3/bucketAclV2:BucketAclV2", "acl", aclGrant(ALL_USERS, "WRITE_ACP"));
            const [v] = some(run([...compliantBucketSet(), acl]), /^bucket ACL acl grants AllUsers \(WRITE_ACP\); buckets must not be public/);
            assert.strictEqual(v.urn, urnOf("aws:s3/bucketAclV2:BucketAclV2", "acl"));
        });

        it("reports every duplicate public access block, even two strict ones", () => {
            const [v] = some(run([...compliantBucketSet(), pab(BUCKET_NAME, {}, {}, "artifacts-pab-2")]), /has 2 aws\.s3\.BucketPublicAccessBlock resources \(artifacts-pab, artifacts-pab-2\)/);
            assert.strictEqual(v.urn, urnOf(T.bucket, "artifacts"));
            const vs = run([...compliantBucketSet(), pab(BUCKET_NAME, { ignorePublicAcls: false }, {}, "artifacts-pab-2")]);
            assert.deepStrictEqual(vs.length, 2, vs.map((x) => x.message).join("\n"));
            assert.match(vs[1].message, /artifacts-pab-2: ignorePublicAcls not true/);
        });

        it("does not count another bucket's block as a duplicate, nor one it can't place during preview", () => {
            none(run([...compliantBucketSet(), ...compliantBucketSet("b", "bucket-b")]));
            const b = bucket("artifacts", BUCKET_NAME, { id: UNKNOWN_STRING }, { preview: true });
            none(run([b, pab(UNKNOWN_STRING, {}, { preview: true, propertyDependencies: { bucket: [b] } }), pab(UNKNOWN_STRING, {}, { preview: true }, "other")]));
            some(
                run([b, pab(UNKNOWN_STRING, {}, { preview: true, propertyDependencies: { bucket: [b] } }), pab(UNKNOWN_STRING, {}, { preview: true, propertyDependencies: { bucket: [b] } }, "second")]),
                /has 2 aws\.s3\.BucketPublicAccessBlock resources/,
            );
        });

        it("skips an access point without a policy of its own", () => {
            none(run([...compliantBucketSet(), res("aws:s3/accessPoint:AccessPoint", "ap", { bucket: BUCKET_NAME, name: "docs", policy: "" })]));
        });

        it("reports NotPrincipal, NotAction and NotResource in Allow statements, not in Deny", () => {
            const p = (s: object) => res(T.bucketPolicy, "p", { bucket: BUCKET_NAME, policy: doc(s) });
            const role = { AWS: `arn:aws:iam::${ACCOUNT}:role/x` };
            some(run([...compliantBucketSet(), p({ Sid: "All", Effect: "Allow", NotPrincipal: role, Action: "s3:GetObject", Resource: "arn:x" })]), /statement "All" allows NotPrincipal/);
            some(run([...compliantBucketSet(), p({ Effect: "Allow", Principal: role, NotAction: "s3:DeleteObject", NotResource: "arn:x" })]), /allows Not(Action|Resource) \(everything but those listed\)/, 2);
            none(run([...compliantBucketSet(), p({ Effect: "Deny", NotPrincipal: role, NotAction: "s3:GetObject", Resource: "arn:x" })]));
        });
    });

    describe("artifacts-bucket-versioned-encrypted: duplicates", () => {
        const run = (rs: PolicyResource[]) => runStack(artifactsBucketVersionedEncrypted, rs);

        it("reports Enabled + Suspended versioning and two encryption configurations on one bucket", () => {
            const vs = run([...compliantBucketSet(), versioning(BUCKET_NAME, "Suspended", {}, "v2")]);
            assert.deepStrictEqual(vs.map((v) => v.message), [
                `bucket artifacts (${BUCKET_NAME}) has 2 aws.s3.BucketVersioning resources (artifacts-versioning, v2); they overwrite each other and deleting one removes the setting. Keep exactly one.`,
                `bucket artifacts (${BUCKET_NAME}) is not versioned: v2: versioningConfiguration.status is "Suspended", not "Enabled".`,
            ]);
            some(run([...compliantBucketSet(), sse(BUCKET_NAME, undefined, {}, "sse-2")]), /has 2 aws\.s3\.BucketServerSideEncryptionConfiguration resources \(artifacts-sse, sse-2\)/);
        });
    });

    describe("no-wildcard-iam: NotAction, NotResource, partial wildcards, resources", () => {
        const run = (props: Record<string, any>, type = T.rolePolicy) => runResource(noWildcardIam, type, props);
        const policy = (...s: object[]) => ({ role: "r", policy: doc(...s) });

        for (const action of ["s3:*Object", "iam:Pass*", "s3:Get*", "*:*", "iam:PassRol?", "S3:*"]) {
            it(`reports wildcard action ${JSON.stringify(action)}`, () => {
                some(run(policy(allow(action))), new RegExp(`allows wildcard action ${JSON.stringify(action).replace(/[*?]/g, "\\$&")}`));
            });
        }

        it("reports NotAction and NotResource in Allow statements", () => {
            some(run(policy({ Effect: "Allow", NotAction: ["iam:*"], Resource: "arn:x" })), /allows NotAction \(every action but those listed\)/);
            some(run(policy({ Effect: "Allow", Action: "s3:GetObject", NotResource: "arn:x" })), /allows NotResource \(every resource but those listed\)/);
        });

        for (const resource of ["arn:aws:s3:::*", `arn:aws:s3:::${BUCKET_NAME}/*`, "arn:aws:s3:::*/artifacts/*", `arn:aws:s3:::${BUCKET_NAME}/art*/x`, `arn:aws:s3:::dbt-*/artifacts/*`, "arn:aws:secretsmanager:eu-west-1:1:secret:dbt/*", "arn:aws:iam::*:role/x"]) {
            it(`reports wildcard resource ${resource}`, () => {
                some(run(policy(allow("s3:GetObject", resource))), /allows wildcard resource/);
            });
        }

        describe("the two narrow exceptions ECS needs", () => {
            const STREAMS = `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:/prod-runs-logs:log-stream:dbt/*`;

            it('passes ecr:GetAuthorizationToken alone on "*" and awslogs writes on one stream prefix of one log group', () => {
                none(run(policy({ Sid: "EcrToken", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" })));
                none(run(policy({ Sid: "EcrToken", Effect: "Allow", Action: "ECR:GetAuthorizationToken", Resource: ["*"] })));
                none(run(policy({ Sid: "WriteLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [STREAMS] })));
                none(run(policy({ Effect: "Allow", Action: "logs:PutLogEvents", Resource: `arn:aws-us-gov:logs:us-gov-west-1:${ACCOUNT}:log-group:runs:log-stream:dbt/dbt/*` })));
            });

            for (const [what, s, n] of [
                ['"ecr:*" on "*"', { Effect: "Allow", Action: "ecr:*", Resource: "*" }, 2],
                ['"ecr:Get*" on "*"', { Effect: "Allow", Action: "ecr:Get*", Resource: "*" }, 2],
                ['"ecr:GetAuthorizationToken?" on "*"', { Effect: "Allow", Action: "ecr:GetAuthorizationToken?", Resource: "*" }, 2],
                ['another action beside the token on "*"', { Effect: "Allow", Action: ["ecr:GetAuthorizationToken", "ecr:BatchGetImage"], Resource: "*" }, 1],
                ['the token through NotAction on "*"', { Effect: "Allow", NotAction: "ecr:GetAuthorizationToken", Action: "ecr:GetAuthorizationToken", Resource: "*" }, 2],
                ['"s3:GetObject" on "*"', { Effect: "Allow", Action: "s3:GetObject", Resource: "*" }, 1],
            ] as const) {
                it(`still reports ${what}`, () => {
                    some(run(policy(s)), /allows (Resource "\*"|wildcard action|NotAction)/, n);
                });
            }

            for (const [what, action, resource, n] of [
                ['"logs:*" on the stream prefix', "logs:*", STREAMS, 2],
                ["logs:DeleteLogStream on the stream prefix", "logs:DeleteLogStream", STREAMS],
                ["s3:GetObject on a log-stream-shaped ARN", "s3:GetObject", STREAMS],
                ["every stream of the group", "logs:PutLogEvents", `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:/prod-runs-logs:log-stream:*`],
                ["every log group", "logs:PutLogEvents", `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:*:log-stream:dbt/*`],
                ["a log-group name prefix", "logs:PutLogEvents", `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:/prod-*:log-stream:dbt/*`],
                ["the whole group", "logs:PutLogEvents", `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:/prod-runs-logs:*`],
                ["any region", "logs:PutLogEvents", `arn:aws:logs:*:${ACCOUNT}:log-group:/prod-runs-logs:log-stream:dbt/*`],
                ["any account", "logs:PutLogEvents", "arn:aws:logs:eu-west-1:*:log-group:/prod-runs-logs:log-stream:dbt/*"],
                ["a wildcard inside the stream prefix", "logs:PutLogEvents", `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:/prod-runs-logs:log-stream:d*/*`],
                ["a stream name prefix without the slash", "logs:PutLogEvents", `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:/prod-runs-logs:log-stream:dbt*`],
            ] as const) {
                it(`still reports ${what}`, () => {
                    some(run(policy(allow(action, resource))), /allows (wildcard resource|wildcard action)/, n ?? 1);
                });
            }
        });

        it("passes the trailing /* of one key prefix of one bucket, and literal ARNs", () => {
            none(run(policy(allow("s3:GetObject", [`arn:aws:s3:::${BUCKET_NAME}/artifacts/*`, `arn:aws:s3:::${BUCKET_NAME}/artifacts/history/*`, `arn:aws:s3:::${BUCKET_NAME}/docs/*`, `arn:aws:s3:::${BUCKET_NAME}`]))));
            none(run(policy(allow("secretsmanager:GetSecretValue", `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:dbt/prod/ci-AbCdEf`))));
            none(run(policy(allow("s3:ListBucket", `arn:aws:s3:::${BUCKET_NAME}`, { Condition: { StringLike: { "s3:prefix": ["artifacts/*"] } } }))));
        });

        it("checks UserPolicy and GroupPolicy like RolePolicy", () => {
            some(run({ user: "bot", policy: doc(allow("*")) }, "aws:iam/userPolicy:UserPolicy"), /wildcard action "\*"/);
            some(run({ group: "g", policy: doc(allow("s3:GetObject", "*")) }, "aws:iam/groupPolicy:GroupPolicy"), /allows Resource "\*"/);
        });
    });

    describe("trust-policies-constrained", () => {
        const run = (trust: unknown, o?: ResOpts) => runResource(trustPoliciesConstrained, T.role, { assumeRolePolicy: typeof trust === "string" ? trust : doc(trust as object) }, o);
        const gh = (cond: Record<string, Record<string, unknown>>) => webIdentity(GITHUB, cond);
        const AUD = { [`${GITHUB}:aud`]: "sts.amazonaws.com" };

        it("passes the platform's trust shapes: GitHub, Bitbucket, Azure DevOps and the ECS scheduler", () => {
            none(run(GITHUB_TRUST));
            none(run(gh({ StringEquals: { ...AUD, [`${GITHUB}:sub`]: "repo:acme-data/analytics-dbt:environment:production" } })));
            none(run(gh({ StringEquals: AUD, StringLike: { [`${GITHUB}:sub`]: "repo:acme-data/analytics-dbt:ref:refs/tags/v*" } })));
            const bbAud = { [`${BITBUCKET}:aud`]: "ari:cloud:bitbucket::workspace/3c5f1a2e-8d4b-4f6a-9c1e-2b7d5e8f0a13" };
            none(run(webIdentity(BITBUCKET, { StringEquals: bbAud, StringLike: { [`${BITBUCKET}:sub`]: "{9e2d7c41-5b3a-4e8f-a6d2-1c4b8f7e3a95}*" } })));
            none(run(webIdentity(BITBUCKET, { StringEquals: bbAud, StringLike: { [`${BITBUCKET}:sub`]: "{9e2d7c41-5b3a-4e8f-a6d2-1c4b8f7e3a95}{a1b2c3d4-0003-4f6a-9c1e-2b7d5e8f0a13}:*" } })));
            none(run(webIdentity(AZURE, { StringEquals: { [`${AZURE}:aud`]: "api://AzureADTokenExchange", [`${AZURE}:sub`]: "sc://acme/dbt/aws-deploy" } })));
            none(run({ Sid: "Service", Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }));
            none(run({ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: "sts:AssumeRole" }));
        });

        it("compares condition keys case-insensitively and accepts a GitHub Enterprise issuer", () => {
            none(run(gh({ StringEquals: { [`${GITHUB}:AUD`]: "sts.amazonaws.com", [`${GITHUB}:Sub`]: "repo:a/b:pull_request" } })));
            const ghe = `${GITHUB}/acme`;
            none(run(webIdentity(ghe, { StringEquals: { [`${ghe}:aud`]: "sts.amazonaws.com" }, StringLike: { [`${ghe}:sub`]: "repo:acme/dbt:*" } })));
        });

        it("reports a sub or aud that is missing, or only under ForAllValues / a negated operator", () => {
            some(run(gh({ StringEquals: AUD })), new RegExp(`without a StringEquals/StringLike condition on ${GITHUB}:sub`));
            some(run(gh({ StringEquals: { [`${GITHUB}:sub`]: "repo:a/b:pull_request" } })), new RegExp(`on ${GITHUB}:aud`));
            some(run(gh({ StringEquals: AUD, "ForAllValues:StringLike": { [`${GITHUB}:sub`]: "repo:a/b:*" } })), /:sub$|condition on .*:sub/);
            some(run(gh({ StringEquals: AUD, StringNotLike: { [`${GITHUB}:sub`]: "repo:a/b:*" } })), /condition on .*:sub/);
            some(run({ Effect: "Allow", Principal: { Federated: oidcArn(GITHUB) }, Action: "sts:AssumeRoleWithWebIdentity" }), /without a StringEquals\/StringLike condition/, 2);
        });

        for (const sub of ["*", "repo:*", "repo:acme-data/*", "repo:*/analytics-dbt:*", "repo:acme-data/analytics-dbt*", "?*"]) {
            it(`reports the GitHub StringLike sub ${JSON.stringify(sub)}`, () => {
                some(run(gh({ StringEquals: AUD, StringLike: { [`${GITHUB}:sub`]: ["repo:acme-data/analytics-dbt:pull_request", sub] } })), /does not pin one identity \(expected repo:<owner>\/<repo>:/);
            });
        }

        it("reports Bitbucket and Azure DevOps subjects that don't pin one repository or service connection", () => {
            some(run(webIdentity(BITBUCKET, { StringEquals: { [`${BITBUCKET}:aud`]: "x" }, StringLike: { [`${BITBUCKET}:sub`]: "{*}*" } })), /expected \{<repository uuid>\}/);
            some(run(webIdentity(AZURE, { StringEquals: { [`${AZURE}:aud`]: "api://AzureADTokenExchange" }, StringLike: { [`${AZURE}:sub`]: "sc://acme/dbt/*" } })), /expected the exact sc:\/\//);
        });

        it("reports a wildcard or empty aud", () => {
            some(run(gh({ StringLike: { [`${GITHUB}:aud`]: "*", [`${GITHUB}:sub`]: "repo:a/b:pull_request" } })), /:aud pattern "\*" is a wildcard/);
            some(run(gh({ StringEquals: { [`${GITHUB}:aud`]: "", [`${GITHUB}:sub`]: "repo:a/b:pull_request" } })), /:aud is empty/);
        });

        it("reports public, NotPrincipal and NotAction trust; ignores Deny", () => {
            some(run({ Effect: "Allow", Principal: { AWS: ["arn:aws:iam::1:root", "*"] }, Action: "sts:AssumeRole" }), /trusts Principal "\*"/);
            some(run({ Effect: "Allow", NotPrincipal: { AWS: "arn:aws:iam::1:root" }, Action: "sts:AssumeRole" }), /trusts NotPrincipal/);
            some(run({ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, NotAction: "sts:TagSession" }), /allows NotAction/);
            none(run(doc({ Effect: "Deny", Principal: "*", NotPrincipal: { AWS: "arn:aws:iam::1:root" }, Action: "sts:*" }, { Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" })));
        });

        it("treats sts:* and sts:AssumeRole* as web identity", () => {
            for (const Action of ["sts:*", "sts:AssumeRole*", ["sts:TagSession", "STS:AssumeRoleWith*"]]) {
                some(run({ Effect: "Allow", Principal: { Federated: oidcArn(GITHUB) }, Action }), /without a StringEquals\/StringLike condition/, 2);
            }
        });

        it("reports an unparsable trust policy, skips an unknown one (preview), and applies only to roles", () => {
            some(run("{nope"), /^trust policy is not valid JSON/);
            none(run(UNKNOWN_STRING, { preview: true }));
            assert.throws(() => runResource(trustPoliciesConstrained, T.rolePolicy, { policy: "{}" }), NotApplicable);
        });
    });

    describe("no-unvetted-managed-policies", () => {
        const run = (rs: PolicyResource[], allowedPolicyArns: string[] = []) => runStack(noUnvettedManagedPolicies, rs, { allowedPolicyArns });
        const attach = (policyArn: unknown, o?: ResOpts) => res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "attach", { role: "r", policyArn }, o);

        for (const name of ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "AmazonS3FullAccess", "AdministratorAccess-Amplify", "SecretsManagerReadWrite"]) {
            it(`reports the AWS-managed ${name}${name === "SecretsManagerReadWrite" ? " (not allow-listed)" : " even when allow-listed"}`, () => {
                const arn = managed(name);
                some(run([attach(arn)], name === "SecretsManagerReadWrite" ? [] : [arn]), new RegExp(`attach \\(policyArn\\): attaches the AWS-managed ${name}`));
            });
        }

        it("passes allow-listed AWS-managed policies (other partitions and paths too) and a clean declared customer policy", () => {
            none(run([attach(managed("service-role/AWSLambdaBasicExecutionRole"))], [managed("service-role/AWSLambdaBasicExecutionRole")]));
            const arn = `arn:aws:iam::${ACCOUNT}:policy/dbt-artifacts`;
            none(run([res(T.iamPolicy, "artifacts", { arn, policy: doc(ARTIFACTS_RW) }), attach(arn)]));
            none(run([attach(`arn:aws:iam::${ACCOUNT}:policy/boundary`)], [`arn:aws:iam::${ACCOUNT}:policy/boundary`]));
            none(run([res(T.role, "r", { managedPolicyArns: [] })]));
            some(run([attach("arn:aws-us-gov:iam::aws:policy/AdministratorAccess")]), /AWS-managed AdministratorAccess/);
        });

        it("checks every list form: Role managedPolicyArns and the *PolicyAttachmentsExclusive resources", () => {
            some(run([res(T.role, "r", { managedPolicyArns: [managed("ReadOnlyAccess"), managed("PowerUserAccess")] })]), /^r \(managedPolicyArns\): attaches the AWS-managed/, 2);
            for (const kind of ["role", "user", "group"]) {
                const type = `aws:iam/${kind}PolicyAttachmentsExclusive:${kind[0].toUpperCase()}${kind.slice(1)}PolicyAttachmentsExclusive`;
                some(run([res(type, "x", { policyArns: [managed("AdministratorAccess")] })]), /^x \(policyArns\): attaches the AWS-managed AdministratorAccess/);
            }
        });

        it("reports a declared customer policy that is too broad, and one that is not declared", () => {
            const arn = `arn:aws:iam::${ACCOUNT}:policy/broad`;
            some(run([res(T.iamPolicy, "broad", { arn, policy: doc({ Effect: "Allow", NotAction: "iam:*", Resource: "arn:x" }) }), attach(arn)]), /attaches broad, which is too broad: statement #1 allows NotAction/);
            some(run([attach(`arn:aws:iam::${ACCOUNT}:policy/elsewhere`)]), /is not declared in this stack, so its document cannot be checked/);
        });

        it("during preview: follows propertyDependencies to a new customer policy, skips what it can't see", () => {
            const broad = res(T.iamPolicy, "broad", { arn: UNKNOWN_STRING, policy: doc(allow("s3:*")) }, { preview: true });
            some(run([broad, attach(UNKNOWN_STRING, { preview: true, propertyDependencies: { policyArn: [broad] } })]), /attach: attaches broad, which is too broad/);
            none(run([attach(UNKNOWN_STRING, { preview: true })]));
            none(run([res(T.role, "r", { managedPolicyArns: UNKNOWN_STRING }, { preview: true })]));
        });
    });

    describe("cloudfront-https-only: origins", () => {
        const run = (over: object) => runResource(cloudfrontHttpsOnly, T.distribution, distributionWithOrigin(over).props);

        it("passes an https-only custom origin on TLSv1.2", () => {
            none(run({ originProtocolPolicy: "https-only" }));
        });

        it("reports http-only, match-viewer and an unset protocol policy, naming the origin", () => {
            some(run({ originProtocolPolicy: "http-only" }), /^origins\[0\] \(api\) has originProtocolPolicy "http-only"; use "https-only"/);
            some(run({ originProtocolPolicy: "match-viewer" }), /"match-viewer"/);
            some(run({}), /originProtocolPolicy unset/);
        });

        it("reports origin TLS older than 1.2", () => {
            some(run({ originProtocolPolicy: "https-only", originSslProtocols: ["TLSv1", "TLSv1.1", "TLSv1.2"] }), /allows originSslProtocols "TLSv1", "TLSv1.1"; use "TLSv1.2"/);
        });

        it("checks multitenant distributions (cacheBehaviors, customOriginConfigs) and VPC origins", () => {
            const MT = "aws:cloudfront/multitenantDistribution:MultitenantDistribution";
            const mt = (over: object) =>
                runResource(cloudfrontHttpsOnly, MT, {
                    enabled: true,
                    origins: [{ id: "api", domainName: "api.acme.example", customOriginConfigs: [{ originProtocolPolicy: "https-only", originSslProtocols: ["TLSv1.2"], httpPort: 80, httpsPort: 443 }] }],
                    defaultCacheBehavior: { targetOriginId: "api", viewerProtocolPolicy: "https-only" },
                    cacheBehaviors: [{ pathPattern: "/a/*", targetOriginId: "api", viewerProtocolPolicy: "redirect-to-https" }],
                    viewerCertificate: { acmCertificateArn: "arn:x", sslSupportMethod: "sni-only", minimumProtocolVersion: "TLSv1.2_2021" },
                    ...over,
                });
            none(mt({}));
            some(mt({ cacheBehaviors: [{ pathPattern: "/legacy/*", viewerProtocolPolicy: "allow-all" }] }), /^cacheBehaviors\[0\] \(\/legacy\/\*\) has viewerProtocolPolicy "allow-all"/);
            some(mt({ origins: [{ id: "api", customOriginConfigs: [{ originProtocolPolicy: "match-viewer" }] }] }), /^origins\[0\] \(api\) has originProtocolPolicy "match-viewer"/);
            some(mt({ viewerCertificate: { acmCertificateArn: "arn:x", minimumProtocolVersion: "TLSv1.2_2019" } }), /"TLSv1\.2_2019"/);
            const VPC = "aws:cloudfront/vpcOrigin:VpcOrigin";
            const vpc = (c: object) => runResource(cloudfrontHttpsOnly, VPC, { vpcOriginEndpointConfig: { name: "alb", arn: "arn:x", httpPort: 80, httpsPort: 443, ...c } });
            none(vpc({ originProtocolPolicy: "https-only", originSslProtocols: { items: ["TLSv1.2"], quantity: 1 } }));
            some(vpc({ originProtocolPolicy: "https-only", originSslProtocols: { items: ["TLSv1.1", "TLSv1.2"], quantity: 2 } }), /^vpcOriginEndpointConfig allows originSslProtocols "TLSv1.1"/);
            some(vpc({ originProtocolPolicy: "match-viewer", originSslProtocols: { items: ["TLSv1.2"], quantity: 1 } }), /^vpcOriginEndpointConfig has originProtocolPolicy "match-viewer"/);
        });

        it("skips an unknown protocol policy during preview", () => {
            none(runResource(cloudfrontHttpsOnly, T.distribution, distributionWithOrigin({ originProtocolPolicy: UNKNOWN_STRING }).props, { preview: true }));
        });
    });

    describe("no-plaintext-secrets-in-outputs: other names, URIs", () => {
        const stack = (outputs: Record<string, any>) => res(T.stack, "dbt-platform-dev", outputs);
        const run = (outputs: Record<string, any>) => runStack(noPlaintextSecretsInOutputs, [stack(outputs)]);

        for (const key of ["pwd", "dbPwd", "passwd", "DB_PASS", "credentials", "apiKey", "api_key", "API-KEY", "auth", "basicAuth", "sentryDsn", "connectionString", "connection_string", "private-key", "passphrase"]) {
            it(`reports a plain output named ${key}`, () => {
                some(run({ [key]: "value-1" }), new RegExp(`stack output ${key.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")} looks like a credential`));
            });
        }

        it("reports credentials embedded in URIs and connection strings under any key, without echoing them", () => {
            const [v] = some(run({ warehouseUrl: "postgres://dbt_ci:hunter2@db:5432/analytics" }), /stack output warehouseUrl looks like a credential/);
            assert.ok(!v.message.includes("hunter2"));
            some(run({ jdbc: "jdbc:postgresql://db/analytics?user=dbt&password=hunter2" }), /stack output jdbc/);
            some(run({ nested: { list: ["x", "amqps://u:p%40ss@mq/vhost"] } }), /stack output nested\.list\[1\]/);
        });

        it("passes the rendered profiles.yml and CI files: their passwords are references", () => {
            none(
                run({
                    profilesYaml: "acme:\n  outputs:\n    prod:\n      password: \"{{ env_var('DBT_PROD_PASSWORD') }}\"\n",
                    github: "env:\n  DBT_PROD_PASSWORD: ${{ secrets.DBT_PROD_PASSWORD }}\n",
                    azure: "env:\n  DBT_CI_PASSWORD: $(DBT_CI_PASSWORD)\n",
                    bitbucket: "script:\n  - export PGPASSWORD=$DBT_CI_PASSWORD\n  - PGPASSWORD=\"${DBT_CI_PASSWORD}\" psql\n",
                    yamlBlock: "password: |\n  multi\n",
                    flags: "password: false\npwd: null\n",
                    variables: [{ name: "DBT_CI_PASSWORD", secret: true }],
                }),
            );
        });

        it("reports JSON text and name/value lists that carry a credential", () => {
            some(run({ blob: JSON.stringify({ a: { token: "t" } }) }), /stack output blob looks like a credential/);
            some(run({ env: [{ Name: "API_KEY", Value: "k" }] }), /stack output env\[0\]\.Value looks like a credential/);
            some(run({ env: [{ name: "HOST", value: "postgres://u:p@h/db" }] }), /stack output env\[0\]\.value/);
            none(run({ blob: JSON.stringify({ host: "db", port: 5432 }), env: [{ name: "HOST", value: "db" }] }));
        });

        it("reports a value under a credential key even when it looks like a reference (random passwords can start with $)", () => {
            some(run({ dbPassword: "$ecret-value" }), /stack output dbPassword/);
        });

        it("passes URLs without a password, placeholders and keys that only mention auth", () => {
            none(
                run({
                    docsUrl: "https://dbt-docs.acme.example",
                    cloneUrl: "https://x-token-auth@bitbucket.org/acme/dbt.git",
                    template: "postgres://$DBT_USER:${DBT_PASSWORD}@db/analytics",
                    jinja: "host=db password={{ env_var('DBT_CI_PASSWORD') }}",
                    windows: "Password=%DBT_PASSWORD%",
                    authMode: "oidc",
                    passThrough: "yes",
                    accessMode: "ip-allowlist",
                    credentialSecretNames: { ci: "dbt/prod/ci" },
                }),
            );
        });
    });

    describe("no-plaintext-secrets-in-resources", () => {
        const run = (type: string, props: Record<string, any>, o?: ResOpts) => runResource(noPlaintextSecretsInResources, type, props, o);
        const SSM = "aws:ssm/parameter:Parameter";
        const LAMBDA = "aws:lambda/function:Function";
        const ECS = "aws:ecs/taskDefinition:TaskDefinition";

        it("reports SSM String/StringList parameters named like a credential or holding a URI credential; passes SecureString", () => {
            some(run(SSM, { name: "/dbt/prod/db-password", type: "String", value: "x" }), /^SSM parameter \/dbt\/prod\/db-password is of type "String" but its name says it holds a credential/);
            some(run(SSM, { name: "/dbt/prod/api_key", type: "StringList", value: "a,b" }), /type "StringList"/);
            some(run(SSM, { name: "/dbt/prod/password/value", type: "String", value: "x" }), /\/dbt\/prod\/password\/value is of type "String"/);
            some(run(SSM, { name: "dbt/credentials/prod", type: "String", value: "x" }), /its name says it holds a credential/);
            some(run(SSM, { name: "/dbt/prod/url", type: "String", insecureValue: "postgres://u:p@h/db" }), /\(insecureValue\) embeds a credential/);
            none(run(SSM, { name: "/dbt/prod/db-password", type: "SecureString", value: "x" }));
            none(run(SSM, { name: "/dbt/prod/password-secret-arn", type: "String", value: "arn:aws:secretsmanager:eu-west-1:1:secret:x" }));
            none(run(SSM, { name: "/dbt/prod/host", type: "String", value: "db.acme.example" }));
        });

        it("reports Lambda variables that are or embed credentials; passes references", () => {
            const fn = (variables: Record<string, unknown>) => run(LAMBDA, { runtime: "nodejs20.x", environment: { variables } });
            some(fn({ PGPASSWORD: "x", API_TOKEN: "y", HOST: "db" }), /^Lambda environment variable (PGPASSWORD|API_TOKEN) looks like a credential/, 2);
            some(fn({ DATABASE_URL: "postgres://u:p@h/db" }), /DATABASE_URL embeds a credential in its value/);
            none(fn({ DB_PASSWORD_SECRET_ARN: "arn:aws:secretsmanager:eu-west-1:1:secret:x", DB_PASSWORD: "", HOST: "db", URL: "https://api.acme.example" }));
            none(run(LAMBDA, { environment: { variables: UNKNOWN_STRING } }, { preview: true }));
        });

        it("reports ECS container environment credentials; passes secrets (valueFrom)", () => {
            const td = (containers: object[]) => run(ECS, { family: "f", containerDefinitions: JSON.stringify(containers) });
            some(td([{ name: "dbt", environment: [{ name: "DBT_PROD_PASSWORD", value: "x" }] }]), /^ECS container dbt environment DBT_PROD_PASSWORD looks like a credential; pass it through "secrets"/);
            none(td([{ name: "dbt", environment: [{ name: "DBT_PROD_HOST", value: "db" }], secrets: [{ name: "DBT_PROD_PASSWORD", valueFrom: "arn:aws:secretsmanager:eu-west-1:1:secret:x" }] }]));
            none(run(ECS, { family: "f", containerDefinitions: UNKNOWN_STRING }, { preview: true }));
        });

        it("is not applicable to other resource types", () => {
            assert.throws(() => run(T.bucket, {}), NotApplicable);
        });
    });

    it("catches every crafted bypass during preview too (props behind the SDK's unknown-checking proxy)", () => {
        let caught = 0;
        for (const b of BYPASSES) {
            const proxied = b.resources().map((r) => ({ ...r, props: unknownCheckingProxy(r.props) }));
            if (runPack(proxied, b.config).some((v) => v.policy === b.policy)) caught++;
        }
        assert.strictEqual(caught, BYPASSES.length);
    });
});
