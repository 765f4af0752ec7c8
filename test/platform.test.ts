/** The whole program per stack under mocks: AWS is wired from the resources that own each value. */
import assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { find, Recorded, resolve, runProgram, stackConfig } from "../scripts/offline";
import { withCiSystem } from "../scripts/render";

const json = (r: Recorded, key: string) => JSON.parse(r.inputs[key]);
const value = async (o: any) => (o && typeof o.apply === "function" ? (await resolve(o)).value : o);

describe("program: AWS off (dev default)", () => {
    it("registers no AWS resource and exports no AWS value", async () => {
        const { resources, exports } = await runProgram("dev");
        assert.deepStrictEqual(resources.filter((r) => r.type.startsWith("aws:") || r.type.startsWith("pulumi:providers:aws")).map((r) => r.name), []);
        assert.deepStrictEqual(resources.filter((r) => r.type.startsWith("dbt-platform:aws:")).map((r) => r.name), []);
        for (const k of ["artifactsBucket", "docsUrl", "ciRoleArns", "credentialSecretNames"]) assert.strictEqual(exports[k], undefined);
    });
});

describe("program: prod stack (AWS on, docs site, Bitbucket OIDC)", () => {
    let resources: Recorded[];
    let exports: Record<string, pulumi.Output<any>>;
    before(async () => {
        ({ resources, exports } = await runProgram("prod"));
    });
    const r = (type: string, name: string) => find(resources, type, name);

    it("uses one explicit AWS provider in the configured region for every AWS child", () => {
        const provider = r("pulumi:providers:aws", "dbt-prod-aws");
        assert.strictEqual(provider.inputs.region, "eu-west-1");
        const usEast1 = r("pulumi:providers:aws", "dbt-prod-artifacts-docs-us-east-1");
        assert.strictEqual(usEast1.inputs.region, "us-east-1");
        const ref = (p: Recorded) => `${p.urn}::${p.id}`;
        for (const x of resources.filter((y) => y.type.startsWith("aws:"))) {
            const expected = x.type.startsWith("aws:acm/") ? ref(usEast1) : ref(provider);
            assert.strictEqual(x.provider, expected, `${x.name} must use ${expected}`);
        }
    });

    it("configures the artifacts bucket: versioned, encrypted, private, lifecycle on history only", () => {
        const bucket = r("aws:s3/bucket:Bucket", "dbt-prod-artifacts-bucket").state.bucket;
        const versioning = r("aws:s3/bucketVersioning:BucketVersioning", "dbt-prod-artifacts-versioning");
        assert.strictEqual(versioning.inputs.bucket, bucket);
        assert.strictEqual(versioning.inputs.versioningConfiguration.status, "Enabled");
        const sse = r("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "dbt-prod-artifacts-encryption");
        assert.strictEqual(sse.inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm, "AES256");
        const pab = r("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "dbt-prod-artifacts-public-access-block").inputs;
        assert.deepStrictEqual([pab.blockPublicAcls, pab.blockPublicPolicy, pab.ignorePublicAcls, pab.restrictPublicBuckets], [true, true, true, true]);
        const rules = r("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "dbt-prod-artifacts-lifecycle").inputs.rules;
        const prefixes = JSON.stringify(rules);
        assert.ok(prefixes.includes("artifacts/history/"), "history expires");
        assert.ok(!prefixes.includes("artifacts/latest/") && !prefixes.includes('"docs/"'), "latest manifest and docs never expire");
    });

    it("lets only this distribution read docs/ and denies plain HTTP", () => {
        const policy = json(r("aws:s3/bucketPolicy:BucketPolicy", "dbt-prod-artifacts-policy"), "policy");
        const dist = r("aws:cloudfront/distribution:Distribution", "dbt-prod-artifacts-docs-distribution");
        const bucketArn = r("aws:s3/bucket:Bucket", "dbt-prod-artifacts-bucket").state.arn;
        assert.match(bucketArn, /^arn:aws:s3:::dbt-prod-artifacts-bucket-/);
        const tls = policy.Statement.find((s: any) => s.Effect === "Deny");
        assert.deepStrictEqual(tls.Condition, { Bool: { "aws:SecureTransport": "false" } });
        const cf = policy.Statement.find((s: any) => s.Principal?.Service === "cloudfront.amazonaws.com");
        assert.deepStrictEqual(cf.Action, "s3:GetObject");
        assert.deepStrictEqual(cf.Resource, `${bucketArn}/docs/*`);
        assert.match(dist.state.arn, /^arn:aws:cloudfront::\d{12}:distribution\/E[0-9A-F]+$/);
        assert.deepStrictEqual(cf.Condition, { StringEquals: { "AWS:SourceArn": dist.state.arn } });
    });

    it("serves docs over HTTPS from the docs/ prefix through Origin Access Control, with the custom domain and IP allow-list", () => {
        const dist = r("aws:cloudfront/distribution:Distribution", "dbt-prod-artifacts-docs-distribution").inputs;
        assert.strictEqual(dist.defaultRootObject, "index.html");
        assert.strictEqual(dist.origins[0].originPath, "/docs");
        assert.match(dist.origins[0].domainName, /^dbt-prod-artifacts-bucket-[0-9a-f]+\.s3\.eu-west-1\.amazonaws\.com$/);
        assert.ok(dist.origins[0].originAccessControlId);
        assert.strictEqual(dist.defaultCacheBehavior.viewerProtocolPolicy, "redirect-to-https");
        assert.deepStrictEqual(dist.aliases, ["dbt-docs.acme.example"]);
        assert.strictEqual(dist.viewerCertificate.minimumProtocolVersion, "TLSv1.2_2021");
        assert.strictEqual(dist.defaultCacheBehavior.functionAssociations[0].eventType, "viewer-request");
        const fn = r("aws:cloudfront/function:Function", "dbt-prod-artifacts-docs-ip-allowlist").inputs.code as string;
        for (const net of ["203.0.113.0", "198.51.100.17"]) assert.ok(fn.includes(net), `allow-list has ${net} from the stack config`);
    });

    it("stores each bot target's credentials in Secrets Manager as a secret", async () => {
        const names = resources.filter((x) => x.type === "aws:secretsmanager/secret:Secret").map((x) => x.inputs.name).sort();
        assert.deepStrictEqual(names, ["dbt/prod/ci", "dbt/prod/prod", "dbt/prod/scheduler"]);
        const targets = (await resolve(exports.dbtTargets)).value as Record<string, any>;
        const version = r("aws:secretsmanager/secretVersion:SecretVersion", "dbt-prod-credentials-prod-version");
        // The warehouse contract's credential JSON: every field as text (the action exports text anyway).
        assert.deepStrictEqual(JSON.parse(version.inputs.secretString), Object.fromEntries(Object.entries(targets.prod).map(([k, v]) => [k, String(v)])));
    });

    it("trusts exactly this Bitbucket workspace and repository, and wires real ARNs into the role policies", () => {
        const oidc = r("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "dbt-prod-ci-oidc").inputs;
        assert.strictEqual(oidc.url, "https://api.bitbucket.org/2.0/workspaces/acme-data/pipelines-config/identity/oidc");
        assert.deepStrictEqual(oidc.clientIdLists, ["ari:cloud:bitbucket::workspace/3c5f1a2e-8d4b-4f6a-9c1e-2b7d5e8f0a13"]);
        const trust = json(r("aws:iam/role:Role", "dbt-prod-ci-deploy"), "assumeRolePolicy");
        const cond = JSON.stringify(trust.Statement[0].Condition);
        assert.ok(cond.includes("{9e2d7c41-5b3a-4e8f-a6d2-1c4b8f7e3a95}{a1b2c3d4-0003-4f6a-9c1e-2b7d5e8f0a13}:*"), cond);
        const deploy = json(r("aws:iam/rolePolicy:RolePolicy", "dbt-prod-ci-deploy-policy"), "policy");
        const all = JSON.stringify(deploy);
        assert.ok(!all.includes("undefined") && !all.includes("null"), "every ARN is wired");
        const secretArn = resources.find((x) => x.type === "aws:secretsmanager/secret:Secret" && x.inputs.name === "dbt/prod/prod")!.state.arn;
        const read = deploy.Statement.find((s: any) => [s.Action].flat().includes("secretsmanager:GetSecretValue"));
        assert.ok(read, "deploy role reads its credentials");
        assert.deepStrictEqual([read.Resource].flat(), [secretArn]);
        const invalidate = deploy.Statement.find((s: any) => [s.Action].flat().includes("cloudfront:CreateInvalidation"));
        assert.deepStrictEqual([invalidate.Resource].flat(), [r("aws:cloudfront/distribution:Distribution", "dbt-prod-artifacts-docs-distribution").state.arn]);
        for (const s of deploy.Statement) {
            for (const a of [s.Action].flat()) assert.ok(a !== "*" && !a.endsWith(":*"), `wildcard action ${a}`);
            // The one exception (scheduled runs push the runner image): ecr:GetAuthorizationToken alone, which AWS grants only on "*".
            const ecrToken = [s.Action].flat().every((a: string) => a === "ecr:GetAuthorizationToken");
            for (const res of [s.Resource].flat()) if (!ecrToken) assert.notStrictEqual(res, "*");
        }
    });

    it("exports what the pipelines need", async () => {
        assert.match(await value(exports.artifactsBucket), /^dbt-prod-artifacts-bucket-/);
        assert.strictEqual(await value(exports.latestManifestKey), "artifacts/latest/manifest.json");
        assert.strictEqual(await value(exports.docsUrl), "https://dbt-docs.acme.example");
        const roles = exports.ciRoleArns as any;
        assert.match(await value(roles.pullRequest), /^arn:aws:iam::\d{12}:role\/dbt-prod-ci-pull-request/);
        assert.match(await value(roles.deploy), /^arn:aws:iam::\d{12}:role\/dbt-prod-ci-deploy/);
        // Scheduled runs bring their own roles (test/scheduled-platform.test.ts): no lone CiIdentity scheduler role.
        assert.strictEqual(roles.scheduler, undefined);
    });
});

describe("program: release stages without a CI user", () => {
    it("sandbox: no CI secret, no docs site, no scheduler role (scheduled runs off)", async () => {
        const { resources } = await runProgram("sandbox");
        assert.deepStrictEqual(resources.filter((x) => x.type === "aws:secretsmanager/secret:Secret").map((x) => x.inputs.name).sort(), ["dbt/sandbox/sandbox", "dbt/sandbox/scheduler"]);
        assert.deepStrictEqual(resources.filter((x) => x.type.startsWith("aws:cloudfront/")), []);
        assert.ok(!resources.some((x) => x.type === "aws:iam/role:Role" && x.name === "dbt-sandbox-ci-scheduler"));
        const pr = json(find(resources, "aws:iam/rolePolicy:RolePolicy", "dbt-sandbox-ci-pull-request-policy"), "policy");
        assert.ok(!JSON.stringify(pr).includes("secretsmanager"), "no CI credentials to read on a stage without a CI user");
    });

    it("github CI: trust the repository's pull requests and the deploy environment (main only) the program creates", async () => {
        const config: Record<string, string> = { ...stackConfig("staging"), "dbt-platform:ci": JSON.stringify({ system: "github", repository: "acme-data/analytics-dbt" }) };
        const aws = JSON.parse(config["dbt-platform:aws"]);
        delete aws.bitbucket;
        config["dbt-platform:aws"] = JSON.stringify(aws);
        const { resources } = await runProgram("staging", config);
        const oidc = find(resources, "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "dbt-staging-ci-oidc").inputs;
        assert.strictEqual(oidc.url, "https://token.actions.githubusercontent.com");
        const pr = json(find(resources, "aws:iam/role:Role", "dbt-staging-ci-pull-request"), "assumeRolePolicy");
        assert.ok(JSON.stringify(pr).includes("repo:acme-data/analytics-dbt:pull_request"));
        const deploy = json(find(resources, "aws:iam/role:Role", "dbt-staging-ci-deploy"), "assumeRolePolicy");
        // Without aws.github.deployEnvironment the deploy job still runs in the stage's environment, and only it is trusted.
        assert.ok(JSON.stringify(deploy).includes("repo:acme-data/analytics-dbt:environment:staging"), JSON.stringify(deploy));
        assert.ok(!JSON.stringify(deploy).includes(":ref:refs/heads/"), "the deploy role also trusts a branch ref");
    });
});

describe("program: docs access modes", () => {
    const withDocs = (docs: Record<string, unknown>) => {
        const config: Record<string, string> = { ...stackConfig("prod") };
        const a = JSON.parse(config["dbt-platform:aws"]);
        a.docs = docs;
        config["dbt-platform:aws"] = JSON.stringify(a);
        return config;
    };

    it("public: no viewer function, and the program warns rather than fails", async () => {
        const { resources, exports } = await runProgram("prod", withDocs({ access: "public" }));
        const dist = find(resources, "aws:cloudfront/distribution:Distribution", "dbt-prod-artifacts-docs-distribution").inputs;
        assert.deepStrictEqual(dist.defaultCacheBehavior.functionAssociations ?? [], []);
        assert.deepStrictEqual(resources.filter((x) => x.type === "aws:cloudfront/function:Function"), []);
        assert.strictEqual(exports.docsBasicAuth, undefined);
        assert.match(await value(exports.docsUrl), /^https:\/\/d[0-9a-f]+\.cloudfront\.net$/);
    });

    it("basic-auth: a generated password, exported only as a secret", async () => {
        const { resources, exports } = await runProgram("prod", withDocs({ access: "basic-auth" }));
        const fn = find(resources, "aws:cloudfront/function:Function", "dbt-prod-artifacts-docs-basic-auth");
        assert.ok(fn.secretInputs.includes("code"), "the function code embeds the credential, so it is a secret");
        const login = await resolve(exports.docsBasicAuth);
        assert.strictEqual(login.secret, true);
        const { username, password } = login.value as { username: string; password: string };
        assert.match(password, /^.{20,}$/);
        const header = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
        assert.ok((fn.inputs.code as string).includes(header));
    });

    it("ip-allowlist: the exact configured networks reach the viewer function", async () => {
        const { resources } = await runProgram("prod", withDocs({ access: "ip-allowlist", allowedCidrs: ["192.0.2.0/24"] }));
        const code = find(resources, "aws:cloudfront/function:Function", "dbt-prod-artifacts-docs-ip-allowlist").inputs.code as string;
        assert.ok(code.includes("192.0.2.0"));
        assert.ok(!code.includes("203.0.113.0"), "the stack file's networks were replaced");
    });
});

describe("program: snowflake stack (warehouse contract, key pairs, GitHub reads Secrets Manager)", () => {
    let resources: Recorded[];
    let exports: Record<string, pulumi.Output<any>>;
    before(async () => {
        ({ resources, exports } = await runProgram("snowflake"));
    });
    const r = (type: string, name: string) => find(resources, type, name);

    it("stores each target's credential JSON (the contract's credentialSecrets) in Secrets Manager, as a secret", async () => {
        const names = resources.filter((x) => x.type === "aws:secretsmanager/secret:Secret").map((x) => x.inputs.name).sort();
        assert.deepStrictEqual(names, ["dbt/snowflake/ci", "dbt/snowflake/prod"]);
        const targets = (await resolve(exports.dbtTargets)).value as Record<string, Record<string, unknown>>;
        for (const t of ["ci", "prod"]) {
            const version = r("aws:secretsmanager/secretVersion:SecretVersion", `dbt-snowflake-credentials-${t}-version`);
            assert.ok(version.secretInputs.includes("secretString"), `${t}: secretString must reach the engine as a secret`);
            const doc = JSON.parse(version.inputs.secretString);
            // Seed 002's shape plus the schema: account, user, role, warehouse, database, schema, private_key.
            assert.deepStrictEqual(Object.keys(doc), ["account", "user", "role", "warehouse", "database", "schema", "private_key"]);
            assert.strictEqual(doc.private_key, targets[t].private_key);
            assert.match(doc.private_key, /^-----BEGIN PRIVATE KEY-----\n/);
            assert.match(r("aws:secretsmanager/secret:Secret", `dbt-snowflake-credentials-${t}`).inputs.description, /private_key \(read as DBT_(CI|PROD)_<FIELD>\)$/);
        }
    });

    it("each CI role reads only its own target's secret, which the workflows name", async () => {
        const files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
        for (const [role, target, file] of [["pull-request", "ci", "ci.yml"], ["deploy", "prod", "deploy.yml"]] as const) {
            const policy = json(r("aws:iam/rolePolicy:RolePolicy", `dbt-snowflake-ci-${role}-policy`), "policy");
            const read = policy.Statement.find((s: any) => [s.Action].flat().includes("secretsmanager:GetSecretValue"));
            const arn = resources.find((x) => x.type === "aws:secretsmanager/secret:Secret" && x.inputs.name === `dbt/snowflake/${target}`)!.state.arn;
            assert.deepStrictEqual([read.Resource].flat(), [arn], role);
            assert.ok(files[`.github/workflows/${file}`].includes(`secret-ids: DBT_${target.toUpperCase()}, dbt/snowflake/${target}`), file);
        }
        // Nothing for CiSettings to store on GitHub: the jobs read no repository secrets.
        assert.deepStrictEqual((await resolve(exports.pipelineVariables)).value, { "pull-request": [], deploy: [] });
    });

    it("Bitbucket: the private key is a Secured variable holding its base64, which the rendered preamble decodes to a mode-600 file", async () => {
        const config = withCiSystem(stackConfig("snowflake"), "bitbucket").config;
        config["dbt-platform:ci"] = JSON.stringify({ ...JSON.parse(config["dbt-platform:ci"]), manageSettings: true });
        const bb = await runProgram("snowflake", config);
        const env = (await resolve(bb.exports.profileEnvironment)).value as Record<string, string>;
        const vars = bb.resources.filter((x) => x.type === "pulumi-nodejs:dynamic/bitbucket:RepositoryVariable" || x.type === "pulumi-nodejs:dynamic/bitbucket:DeploymentVariable");
        for (const key of ["DBT_CI_PRIVATE_KEY", "DBT_PROD_PRIVATE_KEY"]) {
            const v = vars.find((x) => x.inputs.key === key);
            assert.ok(v, `no variable ${key}`);
            assert.strictEqual(v.inputs.secured, true);
            assert.ok(v.secretInputs.includes("value"));
            assert.strictEqual(v.inputs.value, Buffer.from(env[key], "utf8").toString("base64"));
            assert.ok(!String(v.inputs.value).includes("\n"), "a secured variable value without newlines");
        }
        // Every other variable is the warehouse's value as is.
        for (const v of vars.filter((x) => !String(x.inputs.key).endsWith("_PRIVATE_KEY"))) assert.strictEqual(v.inputs.value, env[v.inputs.key], v.inputs.key);
        const file = ((await resolve(bb.exports.pipelineFiles)).value as Record<string, string>)["bitbucket-pipelines.yml"];
        assert.ok(file.includes(`(umask 077 && printf '%s' "$DBT_CI_PRIVATE_KEY" | base64 -d > "$DBT_CI_PRIVATE_KEY_PATH")`));
        assert.ok(file.includes('chmod 600 "$DBT_PROD_PRIVATE_KEY_PATH"'));
    });
});
