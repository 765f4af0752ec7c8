/** Unit tests under Pulumi mocks: what ArtifactStore and DocsSite declare, and the CloudFront Functions they generate. */
import assert from "assert";
import {
    ArtifactStore,
    ArtifactStoreArgs,
    HISTORY_PREFIX,
    LATEST_MANIFEST_KEY,
    historyManifestKey,
} from "../components/aws/artifactStore";
import { basicAuthHeader, cidrProblem, DocsSite, DocsSiteArgs, ipAllowlistFunctionCode } from "../components/aws/docsSite";
import { computed, find, installMocks, plainStrings, resolve } from "../scripts/offline";

const T = {
    bucket: "aws:s3/bucket:Bucket",
    versioning: "aws:s3/bucketVersioning:BucketVersioning",
    sse: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    lifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    pab: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    ownership: "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    policy: "aws:s3/bucketPolicy:BucketPolicy",
    oac: "aws:cloudfront/originAccessControl:OriginAccessControl",
    cachePolicy: "aws:cloudfront/cachePolicy:CachePolicy",
    distribution: "aws:cloudfront/distribution:Distribution",
    fn: "aws:cloudfront/function:Function",
    cert: "aws:acm/certificate:Certificate",
    certValidation: "aws:acm/certificateValidation:CertificateValidation",
    record: "aws:route53/record:Record",
    provider: "pulumi:providers:aws",
    password: "random:index/randomPassword:RandomPassword",
    store: "dbt-platform:aws:ArtifactStore",
    docs: "dbt-platform:aws:DocsSite",
} as const;

const ACCOUNT = "123456789012";
const CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2";

/** Fresh mocks for the dev stack (scripts/offline.ts), with `find` bound to the live record of registrations. */
async function mocks() {
    const { resources, settle } = await installMocks("dev");
    return { resources, settle, find: (type: string, name: string) => find(resources, type, name) };
}

/** Loads generated CloudFront Function code and returns its handler. */
function loadHandler(code: string): (event: any) => any {
    return new Function(`${code}\nreturn handler;`)();
}

const tlsDeny = (bucketArn: string) => ({
    Sid: "DenyInsecureTransport",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:*",
    Resource: [bucketArn, `${bucketArn}/*`],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
});

describe("ArtifactStore (defaults, no docs site)", () => {
    let m: Awaited<ReturnType<typeof mocks>>;
    let store: ArtifactStore;
    before(async () => {
        m = await mocks();
        store = new ArtifactStore("art", {});
        await m.settle();
    });
    const bucket = () => m.find(T.bucket, "art-bucket");

    it("registers the component with every child parented to it and named after it", () => {
        const comp = m.find(T.store, "art");
        const children = m.resources.filter((r) => r !== comp);
        assert.deepStrictEqual(children.map((r) => r.type).sort(), [T.bucket, T.lifecycle, T.ownership, T.pab, T.policy, T.sse, T.versioning].sort());
        for (const r of children) {
            assert.strictEqual(r.parent, comp.urn, `${r.name} must be a child of the store`);
            assert.ok(r.name.startsWith("art-"), r.name);
        }
    });

    it("leaves the bucket auto-named and refuses to destroy it while it holds objects", () => {
        assert.deepStrictEqual(m.find(T.bucket, "art-bucket").inputs, { forceDestroy: false });
    });

    it("enables versioning and encrypts with AES256 by default", () => {
        assert.deepStrictEqual(m.find(T.versioning, "art-versioning").inputs, { bucket: computed(bucket(), "bucket"), versioningConfiguration: { status: "Enabled" } });
        assert.deepStrictEqual(m.find(T.sse, "art-encryption").inputs.rules, [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }]);
    });

    it("expires run history and old versions after 90 days, never the latest manifest or the docs", () => {
        const lifecycle = m.find(T.lifecycle, "art-lifecycle");
        assert.strictEqual(lifecycle.inputs.bucket, computed(bucket(), "bucket"));
        assert.deepStrictEqual(lifecycle.inputs.rules, [
            { id: "expire-artifact-history", status: "Enabled", filter: { prefix: "artifacts/history/" }, expiration: { days: 90 } },
            { id: "expire-noncurrent-versions", status: "Enabled", filter: {}, noncurrentVersionExpiration: { noncurrentDays: 90 } },
            { id: "remove-expired-delete-markers", status: "Enabled", filter: {}, expiration: { expiredObjectDeleteMarker: true } },
            { id: "abort-incomplete-multipart-uploads", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 7 } },
        ]);
        // Only the history prefix loses current objects; whole-bucket rules touch old versions, markers and uploads.
        for (const rule of lifecycle.inputs.rules) {
            if (rule.expiration?.days !== undefined) assert.strictEqual(rule.filter.prefix, HISTORY_PREFIX, rule.id);
        }
        assert.ok(!LATEST_MANIFEST_KEY.startsWith(HISTORY_PREFIX) && !"docs/index.html".startsWith(HISTORY_PREFIX));
        assert.ok(lifecycle.dependencies.includes(m.find(T.versioning, "art-versioning").urn), "lifecycle waits for versioning");
    });

    it("blocks all public access and enforces bucket-owner ownership", () => {
        assert.deepStrictEqual(m.find(T.pab, "art-public-access-block").inputs, {
            bucket: computed(bucket(), "bucket"), blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true,
        });
        assert.deepStrictEqual(m.find(T.ownership, "art-ownership").inputs, { bucket: computed(bucket(), "bucket"), rule: { objectOwnership: "BucketOwnerEnforced" } });
    });

    it("attaches one TLS-only bucket policy after the public access block", () => {
        const policy = m.find(T.policy, "art-policy");
        assert.strictEqual(policy.inputs.bucket, computed(bucket(), "bucket"));
        assert.deepStrictEqual(JSON.parse(policy.inputs.policy), { Version: "2012-10-17", Statement: [tlsDeny(computed(bucket(), "arn"))] });
        assert.ok(policy.dependencies.includes(m.find(T.pab, "art-public-access-block").urn), "policy waits for the public access block");
        assert.strictEqual(m.resources.filter((r) => r.type === T.policy).length, 1);
    });

    it("exposes the bucket and the key layout", async () => {
        assert.strictEqual((await resolve(store.bucketName)).value, computed(bucket(), "bucket"));
        assert.strictEqual((await resolve(store.bucketArn)).value, computed(bucket(), "arn"));
        assert.strictEqual(store.artifactsPrefix, "artifacts/");
        assert.strictEqual(store.docsPrefix, "docs/");
        assert.strictEqual(store.latestManifestKey, "artifacts/latest/manifest.json");
        assert.strictEqual(store.historyPrefix, "artifacts/history/");
        assert.strictEqual(historyManifestKey("run-42"), "artifacts/history/run-42/manifest.json");
        assert.strictEqual(store.docsSite, undefined);
        assert.strictEqual(m.find(T.store, "art").outputs.latestManifestKey, LATEST_MANIFEST_KEY);
    });
});

describe("ArtifactStore with KMS and a basic-auth docs site on a custom domain", () => {
    let m: Awaited<ReturnType<typeof mocks>>;
    let store: ArtifactStore;
    const args: ArtifactStoreArgs = {
        bucketName: "acme-dbt-artifacts",
        retentionDays: 30,
        kmsKeyArn: "arn:aws:kms:eu-central-1:123456789012:key/abcd",
        forceDestroy: true,
        tags: { Project: "data-platform" },
        docs: { domain: "docs.example.com", hostedZoneId: "Z123", access: { mode: "basic-auth" }, priceClass: "PriceClass_All" },
    };
    before(async () => {
        m = await mocks();
        store = new ArtifactStore("art", args);
        await m.settle();
    });
    const bucketArn = "arn:aws:s3:::acme-dbt-artifacts";
    const distribution = () => m.find(T.distribution, "art-docs-distribution");
    const cert = () => m.find(T.cert, "art-docs-certificate");

    it("names the bucket, tags it and allows force destroy when asked", () => {
        assert.deepStrictEqual(m.find(T.bucket, "art-bucket").inputs, { bucket: "acme-dbt-artifacts", forceDestroy: true, tags: { Project: "data-platform" } });
    });

    it("encrypts with the KMS key and an S3 bucket key", () => {
        assert.deepStrictEqual(m.find(T.sse, "art-encryption").inputs.rules, [
            { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: args.kmsKeyArn }, bucketKeyEnabled: true },
        ]);
    });

    it("applies the retention to history and noncurrent versions", () => {
        const rules = m.find(T.lifecycle, "art-lifecycle").inputs.rules;
        assert.deepStrictEqual(rules[0].expiration, { days: 30 });
        assert.deepStrictEqual(rules[1].noncurrentVersionExpiration, { noncurrentDays: 30 });
    });

    it("creates the docs site as a child of the store", () => {
        const comp = m.find(T.store, "art");
        const docs = m.find(T.docs, "art-docs");
        assert.strictEqual(docs.parent, comp.urn);
        for (const r of m.resources.filter((x) => x.name.startsWith("art-docs-"))) assert.strictEqual(r.parent, docs.urn, r.name);
        assert.ok(store.docsSite instanceof DocsSite);
    });

    it("merges the CloudFront read statement into the one bucket policy", () => {
        assert.strictEqual(m.resources.filter((r) => r.type === T.policy).length, 1);
        assert.deepStrictEqual(JSON.parse(m.find(T.policy, "art-policy").inputs.policy), {
            Version: "2012-10-17",
            Statement: [
                tlsDeny(bucketArn),
                {
                    Sid: "AllowCloudFrontReadDocs",
                    Effect: "Allow",
                    Principal: { Service: "cloudfront.amazonaws.com" },
                    Action: "s3:GetObject",
                    Resource: `${bucketArn}/docs/*`,
                    Condition: { StringEquals: { "AWS:SourceArn": computed(distribution(), "arn") } },
                },
            ],
        });
        assert.match(distribution().id, /^E[0-9A-F]{13}$/);
        assert.strictEqual(computed(distribution(), "arn"), `arn:aws:cloudfront::${ACCOUNT}:distribution/${distribution().id}`);
    });

    it("reads the docs prefix through Origin Access Control", () => {
        assert.deepStrictEqual(m.find(T.oac, "art-docs-oac").inputs, {
            description: "OAC for the dbt docs S3 prefix",
            originAccessControlOriginType: "s3",
            signingBehavior: "always",
            signingProtocol: "sigv4",
        });
        const d = m.find(T.distribution, "art-docs-distribution").inputs;
        assert.deepStrictEqual(d.origins, [
            { originId: "dbt-docs-s3", domainName: computed(m.find(T.bucket, "art-bucket"), "bucketRegionalDomainName"), originPath: "/docs", originAccessControlId: "art-docs-oac-id" },
        ]);
        assert.strictEqual(d.enabled, true);
        assert.strictEqual(d.isIpv6Enabled, true);
        assert.strictEqual(d.defaultRootObject, "index.html");
        assert.strictEqual(d.priceClass, "PriceClass_All");
        assert.deepStrictEqual(d.restrictions, { geoRestriction: { restrictionType: "none" } });
        assert.deepStrictEqual(d.tags, { Project: "data-platform" });
        assert.strictEqual(d.comment, "dbt documentation site (s3://acme-dbt-artifacts/docs)");
    });

    it("caches with the seed's TTLs through a cache policy and redirects to HTTPS", () => {
        const policy = m.find(T.cachePolicy, "art-docs-cache-policy").inputs;
        assert.deepStrictEqual([policy.minTtl, policy.defaultTtl, policy.maxTtl], [0, 300, 3600]);
        assert.deepStrictEqual(policy.parametersInCacheKeyAndForwardedToOrigin, {
            cookiesConfig: { cookieBehavior: "none" },
            headersConfig: { headerBehavior: "none" },
            queryStringsConfig: { queryStringBehavior: "none" },
            enableAcceptEncodingGzip: true,
            enableAcceptEncodingBrotli: true,
        });
        assert.deepStrictEqual(m.find(T.distribution, "art-docs-distribution").inputs.defaultCacheBehavior, {
            targetOriginId: "dbt-docs-s3",
            viewerProtocolPolicy: "redirect-to-https",
            allowedMethods: ["GET", "HEAD", "OPTIONS"],
            cachedMethods: ["GET", "HEAD"],
            compress: true,
            cachePolicyId: "art-docs-cache-policy-id",
            functionAssociations: [{ eventType: "viewer-request", functionArn: computed(m.find(T.fn, "art-docs-basic-auth"), "arn") }],
        });
    });

    it("issues and validates the certificate in us-east-1 and serves the domain with it", () => {
        const provider = m.find(T.provider, "art-docs-us-east-1");
        assert.strictEqual(provider.inputs.region, "us-east-1");
        const ref = `${provider.urn}::${provider.id}`;
        assert.strictEqual(cert().provider, ref, "certificate must use the us-east-1 provider");
        assert.deepStrictEqual(cert().inputs, { domainName: "docs.example.com", validationMethod: "DNS", tags: { Project: "data-platform" } });
        const [dvo] = computed(cert(), "domainValidationOptions");
        const record = m.find(T.record, "art-docs-certificate-validation-record");
        assert.deepStrictEqual(record.inputs, {
            zoneId: "Z123", name: dvo.resourceRecordName, type: "CNAME", records: [dvo.resourceRecordValue], ttl: 60, allowOverwrite: true,
        });
        const validation = m.find(T.certValidation, "art-docs-certificate-validation");
        assert.strictEqual(validation.provider, ref, "certificate validation must use the us-east-1 provider");
        assert.deepStrictEqual(validation.inputs, {
            certificateArn: computed(cert(), "arn"),
            validationRecordFqdns: [computed(record, "fqdn")],
        });
        const d = m.find(T.distribution, "art-docs-distribution");
        assert.ok(d.dependencies.includes(validation.urn), "the distribution waits for the issued certificate");
        assert.notStrictEqual(d.provider, ref);
        assert.deepStrictEqual(d.inputs.aliases, ["docs.example.com"]);
        assert.deepStrictEqual(d.inputs.viewerCertificate, {
            acmCertificateArn: computed(cert(), "arn"),
            sslSupportMethod: "sni-only",
            minimumProtocolVersion: "TLSv1.2_2021",
        });
    });

    it("points A and AAAA alias records at the distribution", async () => {
        for (const type of ["A", "AAAA"]) {
            assert.deepStrictEqual(m.find(T.record, `art-docs-alias-${type.toLowerCase()}`).inputs, {
                zoneId: "Z123",
                name: "docs.example.com",
                type,
                aliases: [{ name: computed(distribution(), "domainName"), zoneId: CLOUDFRONT_ZONE, evaluateTargetHealth: false }],
            });
        }
        const docs = store.docsSite!;
        assert.strictEqual((await resolve(docs.url)).value, "https://docs.example.com");
        assert.strictEqual((await resolve(docs.distributionId)).value, distribution().id);
        assert.strictEqual((await resolve(docs.distributionArn)).value, computed(distribution(), "arn"));
    });

    it("protects the site with basic auth whose password is only ever a secret", async () => {
        const docs = store.docsSite!;
        const pw = await resolve(docs.basicAuthPassword!);
        assert.strictEqual(pw.secret, true);
        assert.match(pw.value, /^[A-Za-z0-9]{32}$/);
        assert.strictEqual(docs.basicAuthUsername, "dbt-docs");
        assert.deepStrictEqual(m.find(T.password, "art-docs-basic-auth-password").inputs, { length: 32, special: false });

        const fn = m.find(T.fn, "art-docs-basic-auth");
        assert.strictEqual(fn.inputs.runtime, "cloudfront-js-2.0");
        assert.strictEqual(fn.inputs.publish, true);
        assert.ok(fn.secretInputs.includes("code"), "the function code embeds the credential and must be a secret");

        const header = basicAuthHeader("dbt-docs", pw.value);
        const encoded = header.slice("Basic ".length);
        assert.ok(fn.inputs.code.includes(header));
        for (const r of m.resources) {
            for (const s of plainStrings(r.inputs, r.secretInputs)) {
                assert.ok(!s.includes(pw.value) && !s.includes(encoded), `${r.type} ${r.name} carries the password in plain text`);
            }
        }
        for (const r of m.resources) {
            for (const s of plainStrings(r.outputs, r.secretOutputs)) assert.ok(!s.includes(pw.value) && !s.includes(encoded), `${r.urn} exports the password in plain text`);
        }
        assert.ok(m.find(T.docs, "art-docs").secretOutputs.includes("basicAuthPassword"));
    });

    it("generates a basic-auth function that admits only the right Authorization header", async () => {
        const pw = (await resolve(store.docsSite!.basicAuthPassword!)).value;
        const handler = loadHandler(m.find(T.fn, "art-docs-basic-auth").inputs.code);
        const request = (authorization?: string) => ({
            uri: "/index.html",
            headers: authorization === undefined ? {} : { authorization: { value: authorization } },
        });
        for (const wrong of [undefined, basicAuthHeader("dbt-docs", "wrong"), basicAuthHeader("someone", pw), `Bearer ${pw}`, ""]) {
            const res = handler({ request: request(wrong), viewer: { ip: "198.51.100.1" } });
            assert.strictEqual(res.statusCode, 401, `header ${wrong}`);
            assert.match(res.headers["www-authenticate"].value, /^Basic realm=/);
        }
        const ok = request(basicAuthHeader("dbt-docs", pw));
        assert.strictEqual(handler({ request: ok, viewer: { ip: "198.51.100.1" } }), ok);
    });
});


const docsArgs = (extra: Partial<DocsSiteArgs> = {}): DocsSiteArgs => ({
    bucketName: "b",
    bucketArn: "arn:aws:s3:::b",
    bucketRegionalDomainName: "b.s3.eu-central-1.amazonaws.com",
    ...extra,
});

describe("DocsSite on its own", () => {
    it("serves publicly on the cloudfront.net name with the default certificate and no function", async () => {
        const m = await mocks();
        const site = new DocsSite("pub", docsArgs({ access: { mode: "public" } }));
        await m.settle();
        const distribution = m.find(T.distribution, "pub-distribution");
        const d = distribution.inputs;
        assert.deepStrictEqual(d.viewerCertificate, { cloudfrontDefaultCertificate: true });
        assert.strictEqual(d.aliases, undefined);
        assert.strictEqual(d.priceClass, "PriceClass_100");
        assert.strictEqual(d.isIpv6Enabled, true);
        assert.strictEqual(d.defaultCacheBehavior.functionAssociations, undefined);
        assert.deepStrictEqual(d.origins[0].originPath, "/docs");
        for (const t of [T.fn, T.cert, T.certValidation, T.record, T.provider, T.password]) {
            assert.deepStrictEqual(m.resources.filter((r) => r.type === t), [], `no ${t} without a domain or a restriction`);
        }
        assert.strictEqual((await resolve(site.url)).value, `https://${computed(distribution, "domainName")}`);
        assert.strictEqual(site.basicAuthPassword, undefined);
        assert.deepStrictEqual((await resolve(site.bucketPolicyStatements)).value, [
            {
                Sid: "AllowCloudFrontReadDocs",
                Effect: "Allow",
                Principal: { Service: "cloudfront.amazonaws.com" },
                Action: "s3:GetObject",
                Resource: "arn:aws:s3:::b/docs/*",
                Condition: { StringEquals: { "AWS:SourceArn": computed(distribution, "arn") } },
            },
        ]);
    });

    it("honours a custom origin path in the origin and the policy statement", async () => {
        const m = await mocks();
        const site = new DocsSite("op", docsArgs({ access: { mode: "public" }, originPath: "/site/docs" }));
        await m.settle();
        assert.strictEqual(m.find(T.distribution, "op-distribution").inputs.origins[0].originPath, "/site/docs");
        assert.strictEqual((await resolve(site.bucketPolicyStatements)).value[0].Resource, "arn:aws:s3:::b/site/docs/*");
    });

    it("restricts to an IPv4 allowlist with a viewer-request function and serves IPv4 only", async () => {
        const m = await mocks();
        const cidrs = ["10.0.0.0/8", "203.0.113.7/32", "192.168.128.0/17"];
        new DocsSite("ip", docsArgs({ access: { mode: "ip-allowlist", allowedCidrs: cidrs }, domain: "docs.example.com", hostedZoneId: "Z9" }));
        await m.settle();
        const fn = m.find(T.fn, "ip-ip-allowlist");
        assert.deepStrictEqual(
            { runtime: fn.inputs.runtime, publish: fn.inputs.publish, code: fn.inputs.code },
            { runtime: "cloudfront-js-2.0", publish: true, code: ipAllowlistFunctionCode(cidrs) },
        );
        const d = m.find(T.distribution, "ip-distribution").inputs;
        assert.deepStrictEqual(d.defaultCacheBehavior.functionAssociations, [{ eventType: "viewer-request", functionArn: computed(fn, "arn") }]);
        assert.strictEqual(d.isIpv6Enabled, false, "an IPv4 allowlist must not offer IPv6 to dual-stack viewers");
        assert.deepStrictEqual(m.resources.filter((r) => r.type === T.record).map((r) => r.name).sort(), ["ip-alias-a", "ip-certificate-validation-record"]);
        assert.deepStrictEqual(m.resources.filter((r) => r.type === T.password), []);

        const handler = loadHandler(fn.inputs.code);
        const request = { uri: "/index.html", headers: {} };
        for (const ip of ["10.0.0.0", "10.255.255.255", "203.0.113.7", "192.168.128.1", "192.168.255.254"]) {
            assert.strictEqual(handler({ request, viewer: { ip } }), request, `${ip} is allowed`);
        }
        for (const ip of ["11.0.0.1", "9.255.255.255", "203.0.113.8", "192.168.127.255", "2001:db8::1", "", "10.0.0", "10.0.0.256"]) {
            assert.deepStrictEqual(handler({ request, viewer: { ip } }), { statusCode: 403, statusDescription: "Forbidden" }, `${ip} is refused`);
        }
        assert.strictEqual(loadHandler(ipAllowlistFunctionCode(["0.0.0.0/0"]))({ request, viewer: { ip: "255.255.255.255" } }), request);
    });

    it("uses the given basic-auth user name", async () => {
        const m = await mocks();
        const site = new DocsSite("ba", docsArgs({ access: { mode: "basic-auth", username: "analyst" } }));
        await m.settle();
        const pw = (await resolve(site.basicAuthPassword!)).value;
        const handler = loadHandler(m.find(T.fn, "ba-basic-auth").inputs.code);
        const request = { headers: { authorization: { value: basicAuthHeader("analyst", pw) } } };
        assert.strictEqual(handler({ request }), request);
        assert.strictEqual(handler({ request: { headers: { authorization: { value: basicAuthHeader("dbt-docs", pw) } } } }).statusCode, 401);
    });
});

describe("validation before any registration", () => {
    async function rejects(build: () => void, pattern: RegExp) {
        const m = await mocks();
        assert.throws(build, (e: Error) => pattern.test(e.message) || assert.fail(`unexpected message: ${e.message}`));
        await m.settle();
        assert.deepStrictEqual(m.resources.map((r) => r.name), [], "nothing may be registered");
    }

    for (const days of [0, -1, 1.5, 3651]) {
        it(`rejects retentionDays ${days}`, () =>
            rejects(() => new ArtifactStore("bad", { retentionDays: days }), new RegExp(`^ArtifactStore bad: invalid arguments:\\n  - retentionDays = ${days}: expected an integer from 1 to 3650$`)));
    }

    it("accepts the bounds of retentionDays", async () => {
        const m = await mocks();
        new ArtifactStore("lo", { retentionDays: 1 });
        new ArtifactStore("hi", { retentionDays: 3650 });
        await m.settle();
        assert.strictEqual(m.find(T.lifecycle, "hi-lifecycle").inputs.rules[0].expiration.days, 3650);
    });

    it("rejects a docs domain without a hosted zone, in the store and in the site", async () => {
        await rejects(
            () => new ArtifactStore("bad", { docs: { domain: "docs.example.com", access: { mode: "public" } } }),
            /^ArtifactStore bad: invalid arguments:\n  - docs\.hostedZoneId: required when docs\.domain is set/,
        );
        await rejects(() => new DocsSite("bad", docsArgs({ domain: "docs.example.com" })), /^DocsSite bad: invalid arguments:\n  - hostedZoneId: required when domain is set/);
    });

    it("rejects bad CIDRs and names each one", async () => {
        await rejects(
            () => new DocsSite("bad", docsArgs({ access: { mode: "ip-allowlist", allowedCidrs: ["10.0.0.0/8", "10.0.0.256/24", "10.0.0.1/24", "2001:db8::/32", "10.0.0.0"] } })),
            new RegExp(
                [
                    String.raw`access\.allowedCidrs\[1\] = "10\.0\.0\.256/24": expected an IPv4 CIDR such as 203\.0\.113\.0/24`,
                    String.raw`access\.allowedCidrs\[2\] = "10\.0\.0\.1/24": host bits are set \(did you mean 10\.0\.0\.0/24\?\)`,
                    String.raw`access\.allowedCidrs\[3\] = "2001:db8::/32": expected an IPv4 CIDR such as 203\.0\.113\.0/24`,
                    String.raw`access\.allowedCidrs\[4\] = "10\.0\.0\.0": expected an IPv4 CIDR such as 203\.0\.113\.0/24`,
                ].join(String.raw`\n  - `),
            ),
        );
        await rejects(
            () => new ArtifactStore("bad", { docs: { access: { mode: "ip-allowlist", allowedCidrs: ["300.1.1.1/8"] } } }),
            /docs\.access\.allowedCidrs\[0\] = "300\.1\.1\.1\/8"/,
        );
        await rejects(() => new DocsSite("bad", docsArgs({ access: { mode: "ip-allowlist" } })), /access\.allowedCidrs: expected at least one IPv4 CIDR/);
        assert.strictEqual(cidrProblem("192.168.0.0/16"), undefined);
        assert.strictEqual(cidrProblem("010.0.0.0/8"), "expected an IPv4 CIDR such as 203.0.113.0/24");
        assert.strictEqual(cidrProblem("10.0.0.0/33"), "expected an IPv4 CIDR such as 203.0.113.0/24");
    });

    it("rejects other bad options", async () => {
        await rejects(() => new DocsSite("bad", docsArgs({ priceClass: "PriceClass_1" })), /priceClass = "PriceClass_1": expected one of PriceClass_100, PriceClass_200, PriceClass_All/);
        await rejects(() => new DocsSite("bad", docsArgs({ domain: "Docs.Example.com", hostedZoneId: "Z" })), /domain = "Docs\.Example\.com": expected a lower-case DNS name/);
        await rejects(() => new DocsSite("bad", docsArgs({ originPath: "/docs/" })), /originPath = "\/docs\/": expected a path like \/docs/);
        await rejects(() => new DocsSite("bad", docsArgs({ access: { mode: "basic-auth", username: "a:b" } })), /access\.username = "a:b"/);
        await rejects(() => new DocsSite("bad", docsArgs({ access: { mode: "public", allowedCidrs: ["10.0.0.0/8"] } })), /allowedCidrs: only used in ip-allowlist mode, not public/);
        await rejects(() => new ArtifactStore("bad", { bucketName: "Bad_Bucket" }), /bucketName = "Bad_Bucket": expected 3-63 lower-case/);
    });
});
