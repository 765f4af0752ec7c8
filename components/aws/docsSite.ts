import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DOCS_ACCESS_MODES, DocsAccessMode } from "../config/stack";
import { cidrProblem } from "./cidr";

export { cidrProblem } from "./cidr";

/** How viewers are let in; enforced by a CloudFront Function on viewer-request. */
export interface DocsAccessArgs {
    /** public (anyone with the URL), basic-auth (shared user and generated password) or ip-allowlist (IPv4 CIDRs). */
    mode: DocsAccessMode;
    /** IPv4 CIDRs allowed in ip-allowlist mode, e.g. "203.0.113.0/24" (required there, rejected elsewhere). */
    allowedCidrs?: string[];
    /** User name for basic-auth mode (default "dbt-docs"; no colon). */
    username?: string;
}

/** Settings of the docs site that a caller chooses (ArtifactStore passes them through as `docs`). */
export interface DocsSiteOptions {
    /** Custom domain, e.g. "docs.example.com"; omitted: the site answers on its cloudfront.net name. */
    domain?: string;
    /** Route 53 hosted zone of `domain` for certificate validation and alias records (required with `domain`). */
    hostedZoneId?: pulumi.Input<string>;
    /** Access restriction (default public, as in the seed: dbt docs expose model SQL, so restrict real sites). */
    access?: DocsAccessArgs;
    /** CloudFront price class: PriceClass_100 (default), PriceClass_200 or PriceClass_All. */
    priceClass?: string;
}

/** Arguments of DocsSite: the options plus the bucket the site is served from. */
export interface DocsSiteArgs extends DocsSiteOptions {
    /** Name of the bucket holding the docs (used in the distribution's comment). */
    bucketName: pulumi.Input<string>;
    /** ARN of that bucket (scopes the bucket policy statement). */
    bucketArn: pulumi.Input<string>;
    /** Regional domain name of that bucket, the origin CloudFront reads from. */
    bucketRegionalDomainName: pulumi.Input<string>;
    /** Key prefix of the site inside the bucket, as a CloudFront origin path (default "/docs"). */
    originPath?: string;
    /** Tags for the distribution and the certificate. */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** The seed's cache TTLs (seconds): min_ttl 0, default_ttl 300, max_ttl 3600. */
export const DOCS_CACHE_TTLS = { minTtl: 0, defaultTtl: 300, maxTtl: 3600 } as const;
/** Price classes CloudFront accepts. */
export const PRICE_CLASSES = ["PriceClass_100", "PriceClass_200", "PriceClass_All"] as const;
/** User name of basic-auth mode when none is given. */
export const DEFAULT_DOCS_USERNAME = "dbt-docs";

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ORIGIN_PATH = /^(\/[A-Za-z0-9._-]+)+$/;

/**
 * Problems with docs options, each prefixed with `field` (e.g. "docs."), or [] when they are valid.
 * ArtifactStore runs this too, so a bad docs option registers nothing at all.
 */
export function docsSiteProblems(opts: DocsSiteOptions & { originPath?: string }, field = ""): string[] {
    const problems: string[] = [];
    if (opts.domain !== undefined) {
        if (!DOMAIN.test(opts.domain)) {
            problems.push(`${field}domain = ${JSON.stringify(opts.domain)}: expected a lower-case DNS name such as docs.example.com`);
        }
        if (opts.hostedZoneId === undefined || opts.hostedZoneId === "") {
            problems.push(`${field}hostedZoneId: required when ${field}domain is set (certificate validation and alias records go there)`);
        }
    }
    if (opts.priceClass !== undefined && !(PRICE_CLASSES as readonly string[]).includes(opts.priceClass)) {
        problems.push(`${field}priceClass = ${JSON.stringify(opts.priceClass)}: expected one of ${PRICE_CLASSES.join(", ")}`);
    }
    if (opts.originPath !== undefined && !ORIGIN_PATH.test(opts.originPath)) {
        problems.push(`${field}originPath = ${JSON.stringify(opts.originPath)}: expected a path like /docs (leading slash, no trailing slash)`);
    }
    const access = opts.access;
    if (access !== undefined) {
        const modes: readonly DocsAccessMode[] = DOCS_ACCESS_MODES;
        if (!modes.includes(access.mode)) {
            problems.push(`${field}access.mode = ${JSON.stringify(access.mode)}: expected one of ${modes.join(", ")}`);
        }
        if (access.mode === "ip-allowlist") {
            if (!access.allowedCidrs || access.allowedCidrs.length === 0) {
                problems.push(`${field}access.allowedCidrs: expected at least one IPv4 CIDR in ip-allowlist mode`);
            }
            (access.allowedCidrs ?? []).forEach((c, i) => {
                const p = cidrProblem(c);
                if (p) problems.push(`${field}access.allowedCidrs[${i}] = ${JSON.stringify(c)}: ${p}`);
            });
        } else if (access.allowedCidrs !== undefined) {
            problems.push(`${field}access.allowedCidrs: only used in ip-allowlist mode, not ${access.mode}`);
        }
        if (access.mode === "basic-auth") {
            const u = access.username;
            if (u !== undefined && !/^[\x21-\x39\x3b-\x7e]{1,64}$/.test(u)) {
                problems.push(`${field}access.username = ${JSON.stringify(u)}: expected 1-64 printable ASCII characters without colon or space`);
            }
        } else if (access.username !== undefined) {
            problems.push(`${field}access.username: only used in basic-auth mode, not ${access.mode}`);
        }
    }
    return problems;
}

/** The Authorization header value basic-auth mode expects. */
export function basicAuthHeader(username: string, password: string): string {
    return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

/**
 * CloudFront Function (cloudfront-js-2.0, viewer-request) that answers 401 unless the request
 * carries exactly `expectedHeader` as its Authorization header. The code embeds the credential,
 * so callers must keep it a secret.
 */
export function basicAuthFunctionCode(expectedHeader: string): string {
    return `// dbt docs: HTTP basic authentication (generated by dbt-platform DocsSite).
var EXPECTED = ${JSON.stringify(expectedHeader)};

function sameString(a, b) {
    if (typeof a !== "string" || a.length !== b.length) return false;
    var diff = 0;
    for (var i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    return diff === 0;
}

function handler(event) {
    var request = event.request;
    var header = request.headers.authorization;
    if (header && sameString(header.value, EXPECTED)) return request;
    return {
        statusCode: 401,
        statusDescription: "Unauthorized",
        headers: { "www-authenticate": { value: 'Basic realm="dbt docs", charset="UTF-8"' } },
    };
}
`;
}

/**
 * CloudFront Function (cloudfront-js-2.0, viewer-request) that answers 403 unless the viewer's
 * IPv4 address lies in one of `cidrs` (validated with cidrProblem first). IPv6 viewers never match.
 */
export function ipAllowlistFunctionCode(cidrs: string[]): string {
    return `// dbt docs: IPv4 allowlist (generated by dbt-platform DocsSite).
var ALLOWED_CIDRS = ${JSON.stringify(cidrs)};

function ipv4(text) {
    var parts = String(text).split(".");
    if (parts.length !== 4) return -1;
    var n = 0;
    for (var i = 0; i < 4; i++) {
        if (!/^[0-9]{1,3}$/.test(parts[i])) return -1;
        var octet = Number(parts[i]);
        if (octet > 255) return -1;
        n = n * 256 + octet;
    }
    return n;
}

// Arithmetic instead of bit operators: JavaScript bitwise results are signed 32-bit.
var RANGES = ALLOWED_CIDRS.map(function (cidr) {
    var parts = cidr.split("/");
    var size = Math.pow(2, 32 - Number(parts[1]));
    return { network: Math.floor(ipv4(parts[0]) / size), size: size };
});

function allowed(ip) {
    var n = ipv4(ip);
    if (n < 0) return false;
    for (var i = 0; i < RANGES.length; i++) {
        if (Math.floor(n / RANGES[i].size) === RANGES[i].network) return true;
    }
    return false;
}

function handler(event) {
    if (allowed(event.viewer && event.viewer.ip)) return event.request;
    return { statusCode: 403, statusDescription: "Forbidden" };
}
`;
}

/**
 * The dbt docs static site: a CloudFront distribution reading a private S3 prefix through
 * Origin Access Control, with an optional custom domain and an optional access restriction.
 * It does not own the bucket policy (S3 allows one per bucket): the bucket's owner merges
 * `bucketPolicyStatements` into its policy.
 */
export class DocsSite extends pulumi.ComponentResource {
    /** The CloudFront distribution. */
    public readonly distribution: aws.cloudfront.Distribution;
    /** Its ID (for `aws cloudfront create-invalidation` in the deploy workflow). */
    public readonly distributionId: pulumi.Output<string>;
    /** Its ARN (the SourceArn the bucket policy admits). */
    public readonly distributionArn: pulumi.Output<string>;
    /** https://<domain>, or https://<id>.cloudfront.net without a custom domain. */
    public readonly url: pulumi.Output<string>;
    /** Bucket policy statements that let this distribution (and only it) read the docs prefix. */
    public readonly bucketPolicyStatements: pulumi.Output<any[]>;
    /** Access mode in force. */
    public readonly accessMode: DocsAccessMode;
    /** basic-auth user name (basic-auth mode only). */
    public readonly basicAuthUsername?: string;
    /** basic-auth password, a secret (basic-auth mode only). */
    public readonly basicAuthPassword?: pulumi.Output<string>;

    constructor(name: string, args: DocsSiteArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        const problems = docsSiteProblems(args);
        if (problems.length > 0) {
            throw new Error(`DocsSite ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
        }
        super("dbt-platform:aws:DocsSite", name, {}, opts);
        const originPath = args.originPath ?? "/docs";
        const access: DocsAccessArgs = args.access ?? { mode: "public" };
        this.accessMode = access.mode;
        if (args.access === undefined) {
            pulumi.log.warn(
                `DocsSite ${name}: no access restriction set, so the docs site is public to anyone with its URL; ` +
                    `set access.mode to basic-auth or ip-allowlist for internal docs, or to public to silence this`,
                this,
            );
        }
        // An IPv4 allowlist cannot match IPv6 viewers, and dual-stack browsers prefer IPv6 when the
        // distribution offers it: serve IPv4 only in that mode so allowed offices are not locked out.
        const ipv6 = access.mode !== "ip-allowlist";
        const originId = "dbt-docs-s3";

        const oac = new aws.cloudfront.OriginAccessControl(
            `${name}-oac`,
            {
                description: "OAC for the dbt docs S3 prefix",
                originAccessControlOriginType: "s3",
                signingBehavior: "always",
                signingProtocol: "sigv4",
            },
            { parent: this },
        );

        // The seed uses forwarded_values with min/default/max TTL 0/300/3600. forwardedValues and the
        // behaviour-level TTLs are deprecated in favour of cache policies, so the same settings live in
        // a cache policy: same TTLs, no query strings, cookies or headers in the cache key (as
        // query_string = false and cookies forward = none), plus compressed variants for compress = true.
        const cachePolicy = new aws.cloudfront.CachePolicy(
            `${name}-cache-policy`,
            {
                comment: "dbt docs: seed TTLs, nothing from the viewer in the cache key",
                ...DOCS_CACHE_TTLS,
                parametersInCacheKeyAndForwardedToOrigin: {
                    cookiesConfig: { cookieBehavior: "none" },
                    headersConfig: { headerBehavior: "none" },
                    queryStringsConfig: { queryStringBehavior: "none" },
                    enableAcceptEncodingGzip: true,
                    enableAcceptEncodingBrotli: true,
                },
            },
            { parent: this },
        );

        let accessFunction: aws.cloudfront.Function | undefined;
        if (access.mode === "basic-auth") {
            const username = access.username ?? DEFAULT_DOCS_USERNAME;
            const password = new random.RandomPassword(
                `${name}-basic-auth-password`,
                // Alphanumeric: easy to type into a browser prompt and to pass around.
                { length: 32, special: false },
                { parent: this },
            );
            this.basicAuthUsername = username;
            this.basicAuthPassword = pulumi.secret(password.result);
            accessFunction = new aws.cloudfront.Function(
                `${name}-basic-auth`,
                {
                    runtime: "cloudfront-js-2.0",
                    comment: "dbt docs: HTTP basic authentication",
                    publish: true,
                    // The code embeds base64(user:password): keep it a secret in state and outputs.
                    code: pulumi.secret(this.basicAuthPassword.apply((pw) => basicAuthFunctionCode(basicAuthHeader(username, pw)))),
                },
                { parent: this, additionalSecretOutputs: ["code"] },
            );
        } else if (access.mode === "ip-allowlist") {
            accessFunction = new aws.cloudfront.Function(
                `${name}-ip-allowlist`,
                {
                    runtime: "cloudfront-js-2.0",
                    comment: "dbt docs: IPv4 allowlist",
                    publish: true,
                    code: ipAllowlistFunctionCode(access.allowedCidrs!),
                },
                { parent: this },
            );
        }

        let aliases: string[] | undefined;
        let viewerCertificate: aws.types.input.cloudfront.DistributionViewerCertificate = { cloudfrontDefaultCertificate: true };
        if (args.domain !== undefined) {
            const domain = args.domain;
            const zoneId = args.hostedZoneId!;
            // CloudFront only uses certificates from us-east-1, whatever the stack's region.
            const usEast1 = new aws.Provider(`${name}-us-east-1`, { region: "us-east-1" }, { parent: this });
            const certificate = new aws.acm.Certificate(
                `${name}-certificate`,
                { domainName: domain, validationMethod: "DNS", tags: args.tags },
                { parent: this, provider: usEast1 },
            );
            // One domain and no alternative names, so exactly one validation record.
            const dvo = certificate.domainValidationOptions.apply((o) => o[0]);
            const validationRecord = new aws.route53.Record(
                `${name}-certificate-validation-record`,
                {
                    zoneId,
                    name: dvo.apply((o) => o.resourceRecordName!),
                    type: dvo.apply((o) => o.resourceRecordType!),
                    records: [dvo.apply((o) => o.resourceRecordValue!)],
                    ttl: 60,
                    allowOverwrite: true,
                },
                { parent: this },
            );
            const validation = new aws.acm.CertificateValidation(
                `${name}-certificate-validation`,
                { certificateArn: certificate.arn, validationRecordFqdns: [validationRecord.fqdn] },
                { parent: this, provider: usEast1 },
            );
            aliases = [domain];
            viewerCertificate = {
                // The validated ARN: the distribution waits until the certificate is issued.
                acmCertificateArn: validation.certificateArn,
                sslSupportMethod: "sni-only",
                minimumProtocolVersion: "TLSv1.2_2021",
            };
        }

        this.distribution = new aws.cloudfront.Distribution(
            `${name}-distribution`,
            {
                enabled: true,
                isIpv6Enabled: ipv6,
                comment: pulumi.interpolate`dbt documentation site (s3://${args.bucketName}${originPath})`,
                defaultRootObject: "index.html",
                aliases,
                priceClass: args.priceClass ?? "PriceClass_100",
                origins: [
                    {
                        originId,
                        domainName: args.bucketRegionalDomainName,
                        originPath,
                        originAccessControlId: oac.id,
                    },
                ],
                defaultCacheBehavior: {
                    targetOriginId: originId,
                    viewerProtocolPolicy: "redirect-to-https",
                    allowedMethods: ["GET", "HEAD", "OPTIONS"],
                    cachedMethods: ["GET", "HEAD"],
                    compress: true,
                    cachePolicyId: cachePolicy.id,
                    functionAssociations: accessFunction ? [{ eventType: "viewer-request", functionArn: accessFunction.arn }] : undefined,
                },
                restrictions: { geoRestriction: { restrictionType: "none" } },
                viewerCertificate,
                tags: args.tags,
            },
            { parent: this },
        );

        if (args.domain !== undefined) {
            for (const type of ipv6 ? ["A", "AAAA"] : ["A"]) {
                new aws.route53.Record(
                    `${name}-alias-${type.toLowerCase()}`,
                    {
                        zoneId: args.hostedZoneId!,
                        name: args.domain,
                        type,
                        aliases: [
                            {
                                name: this.distribution.domainName,
                                zoneId: this.distribution.hostedZoneId,
                                evaluateTargetHealth: false,
                            },
                        ],
                    },
                    { parent: this },
                );
            }
        }

        this.distributionId = this.distribution.id;
        this.distributionArn = this.distribution.arn;
        this.url = args.domain !== undefined ? pulumi.output(`https://${args.domain}`) : pulumi.interpolate`https://${this.distribution.domainName}`;
        this.bucketPolicyStatements = pulumi
            .all([args.bucketArn, this.distribution.arn])
            .apply(([bucketArn, distributionArn]) => [
                {
                    Sid: "AllowCloudFrontReadDocs",
                    Effect: "Allow",
                    Principal: { Service: "cloudfront.amazonaws.com" },
                    Action: "s3:GetObject",
                    Resource: `${bucketArn}${originPath}/*`,
                    Condition: { StringEquals: { "AWS:SourceArn": distributionArn } },
                },
            ]);

        this.registerOutputs({
            distributionId: this.distributionId,
            distributionArn: this.distributionArn,
            url: this.url,
            bucketPolicyStatements: this.bucketPolicyStatements,
            accessMode: this.accessMode,
            basicAuthUsername: this.basicAuthUsername,
            basicAuthPassword: this.basicAuthPassword,
        });
    }
}
