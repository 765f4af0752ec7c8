/** Unit tests under Pulumi mocks: CiIdentity's trust and permission policies, WarehouseCredentials' secrets. */
import assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { CiIdentity, CiIdentityArgs, ECR_PUSH_ACTIONS, leastPrivilegeProblems } from "../components/aws/ciIdentity";
import { envAlias, WarehouseCredentials } from "../components/aws/warehouseCredentials";
import { envVarName, TARGET_FIELDS } from "../components/warehouse/postgres/profiles";
import { computed, find, installMocks, plainStrings, Recorded, resolve } from "../scripts/offline";
import { withUnhandledRejections } from "./support/rejections";

const T = {
    role: "aws:iam/role:Role",
    rolePolicy: "aws:iam/rolePolicy:RolePolicy",
    oidc: "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    secret: "aws:secretsmanager/secret:Secret",
    secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
    ciIdentity: "dbt-platform:aws:CiIdentity",
    credentials: "dbt-platform:aws:WarehouseCredentials",
};
const ACCOUNT = "123456789012";
const BUCKET = "arn:aws:s3:::acme-dbt-artifacts";
const DISTRIBUTION = `arn:aws:cloudfront::${ACCOUNT}:distribution/E2ABCDEF123456`;
const KMS = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const secretArn = (n: string) => `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:dbt/dev/${n}-AbCdEf`;
const SECRETS = { ci: secretArn("ci"), deploy: secretArn("prod"), scheduler: secretArn("scheduler") };

const WS_UUID = "0f8fad5b-d9cb-469f-a165-70867728950e";
const REPO_UUID = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const ENV_UUID = "a3bb189e-8bf9-3888-9912-ace4e6543002";
const ADO_ORG_ID = "61c028b9-510c-4f84-bfb2-f48d33b6b542";

const trustOf = (regs: Recorded[], role: string) => JSON.parse(find(regs, T.role, role).inputs.assumeRolePolicy);
const policyOf = (regs: Recorded[], role: string) => JSON.parse(find(regs, T.rolePolicy, `${role}-policy`).inputs.policy);

const base = { artifactsBucketArn: BUCKET, credentialSecretArns: { ci: SECRETS.ci, deploy: SECRETS.deploy } };
const github: CiIdentityArgs = { system: "github", github: { repository: "acme/dbt-transform" }, ...base };

/** Fresh mocks for the dev stack (scripts/offline.ts); `regs` is the live record of registrations. */
async function mocks() {
    const { resources: regs, settle } = await installMocks("dev");
    return { regs, settle };
}

async function build(name: string, args: CiIdentityArgs) {
    const { regs, settle } = await mocks();
    const ci = new CiIdentity(name, args);
    await settle();
    return { regs, ci };
}

/** The web-identity trust policy every OIDC role must have, exactly. */
function webTrust(providerArn: string, prefix: string, aud: string, sub: string, like: boolean) {
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "CiOidc",
                Effect: "Allow",
                Principal: { Federated: providerArn },
                Action: "sts:AssumeRoleWithWebIdentity",
                Condition: like
                    ? { StringEquals: { [`${prefix}:aud`]: aud }, StringLike: { [`${prefix}:sub`]: sub } }
                    : { StringEquals: { [`${prefix}:aud`]: aud, [`${prefix}:sub`]: sub } },
            },
        ],
    };
}



describe("CiIdentity trust policies", () => {
    it("GitHub: creates the OIDC provider and trusts PRs and the main branch of one repository", async () => {
        const { regs, ci } = await build("gh", github);
        const provider = find(regs, T.oidc, "gh-oidc");
        assert.deepStrictEqual(provider.inputs, { url: "https://token.actions.githubusercontent.com", clientIdLists: ["sts.amazonaws.com"] });
        const providerArn = `arn:aws:iam::${ACCOUNT}:oidc-provider/token.actions.githubusercontent.com`;
        assert.strictEqual((await resolve(ci.oidcProviderArn)).value, providerArn);
        const p = "token.actions.githubusercontent.com";
        assert.deepStrictEqual(trustOf(regs, "gh-pull-request"), webTrust(providerArn, p, "sts.amazonaws.com", "repo:acme/dbt-transform:pull_request", false));
        assert.deepStrictEqual(trustOf(regs, "gh-deploy"), webTrust(providerArn, p, "sts.amazonaws.com", "repo:acme/dbt-transform:ref:refs/heads/main", false));
        assert.deepStrictEqual(ci.subjects.deploy, { operator: "StringEquals", value: "repo:acme/dbt-transform:ref:refs/heads/main" });
        assert.strictEqual(ci.issuerUrl, "https://token.actions.githubusercontent.com");
        assert.strictEqual(ci.audience, "sts.amazonaws.com");
    });

    it("GitHub: a deploy environment replaces the branch subject; mainBranch is honoured without one", async () => {
        const env = await build("gh", { ...github, github: { repository: "acme/dbt-transform", deployEnvironment: "production" } });
        assert.strictEqual(trustOf(env.regs, "gh-deploy").Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"],
            "repo:acme/dbt-transform:environment:production");
        const branch = await build("gh", { ...github, github: { repository: "acme/dbt-transform", mainBranch: "release/v2" } });
        assert.strictEqual(trustOf(branch.regs, "gh-deploy").Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"],
            "repo:acme/dbt-transform:ref:refs/heads/release/v2");
        // The PR subject never changes with the deploy settings.
        assert.strictEqual(trustOf(env.regs, "gh-pull-request").Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"],
            "repo:acme/dbt-transform:pull_request");
    });

    it("Bitbucket: reuses a given provider, pins the workspace audience and repository/environment subjects", async () => {
        const providerArn = `arn:aws:iam::${ACCOUNT}:oidc-provider/api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc`;
        const { regs, ci } = await build("bb", {
            system: "bitbucket",
            // Braces and upper case as copied from Bitbucket's UI are normalised.
            bitbucket: { workspace: "acme", workspaceUuid: `{${WS_UUID.toUpperCase()}}`, repositoryUuid: `{${REPO_UUID}}`, deploymentEnvironmentUuid: ENV_UUID },
            oidcProviderArn: providerArn,
            ...base,
        });
        assert.strictEqual(regs.filter((r) => r.type === T.oidc).length, 0, "no provider when oidcProviderArn is given");
        assert.strictEqual((await resolve(ci.oidcProviderArn)).value, providerArn);
        const p = "api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc";
        const aud = `ari:cloud:bitbucket::workspace/${WS_UUID}`;
        assert.deepStrictEqual(trustOf(regs, "bb-pull-request"), webTrust(providerArn, p, aud, `{${REPO_UUID}}*`, true));
        assert.deepStrictEqual(trustOf(regs, "bb-deploy"), webTrust(providerArn, p, aud, `{${REPO_UUID}}{${ENV_UUID}}:*`, true));
        assert.strictEqual(ci.issuerUrl, `https://${p}`);
    });

    it("Bitbucket: creates the workspace provider; without an environment the deploy role trusts the repository", async () => {
        const { regs } = await build("bb", {
            system: "bitbucket",
            bitbucket: { workspace: "acme", workspaceUuid: WS_UUID, repositoryUuid: REPO_UUID },
            ...base,
        });
        const url = "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc";
        assert.deepStrictEqual(find(regs, T.oidc, "bb-oidc").inputs, { url, clientIdLists: [`ari:cloud:bitbucket::workspace/${WS_UUID}`] });
        const p = url.slice("https://".length);
        assert.deepStrictEqual(trustOf(regs, "bb-deploy"),
            webTrust(`arn:aws:iam::${ACCOUNT}:oidc-provider/${p}`, p, `ari:cloud:bitbucket::workspace/${WS_UUID}`, `{${REPO_UUID}}*`, true));
    });

    it("Azure DevOps: trusts one service connection for PRs and another for deploys", async () => {
        const { regs } = await build("ado", {
            system: "azure-devops",
            azureDevops: { organizationId: ADO_ORG_ID, organization: "acme", project: "Data Platform", serviceConnection: "aws-dbt-ci", deployServiceConnection: "aws-dbt-prod" },
            ...base,
        });
        const url = `https://vstoken.dev.azure.com/${ADO_ORG_ID}`;
        assert.deepStrictEqual(find(regs, T.oidc, "ado-oidc").inputs, { url, clientIdLists: ["api://AzureADTokenExchange"] });
        const p = `vstoken.dev.azure.com/${ADO_ORG_ID}`;
        const arn = `arn:aws:iam::${ACCOUNT}:oidc-provider/${p}`;
        assert.deepStrictEqual(trustOf(regs, "ado-pull-request"), webTrust(arn, p, "api://AzureADTokenExchange", "sc://acme/Data Platform/aws-dbt-ci", false));
        assert.deepStrictEqual(trustOf(regs, "ado-deploy"), webTrust(arn, p, "api://AzureADTokenExchange", "sc://acme/Data Platform/aws-dbt-prod", false));
    });
});

describe("CiIdentity permissions", () => {
    const full: CiIdentityArgs = { ...github, distributionArn: DISTRIBUTION, kmsKeyArn: KMS, credentialSecretArns: SECRETS };
    const kmsStatement = (actions: string[]) => ({
        Sid: "UseKeyViaS3AndSecretsManager",
        Effect: "Allow",
        Action: actions,
        Resource: [KMS],
        Condition: { StringLike: { "kms:ViaService": ["s3.*.amazonaws.com", "secretsmanager.*.amazonaws.com"] } },
    });

    it("pull request: reads artifacts/*, lists only that prefix, reads the CI secret only", async () => {
        const { regs } = await build("gh", full);
        assert.deepStrictEqual(policyOf(regs, "gh-pull-request"), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "ReadArtifacts", Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${BUCKET}/artifacts/*`] },
                { Sid: "ListPrefixes", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [BUCKET], Condition: { StringLike: { "s3:prefix": ["artifacts/*"] } } },
                { Sid: "ReadCiCredentials", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [SECRETS.ci] },
                kmsStatement(["kms:Decrypt"]),
            ],
        });
    });

    it("deploy: writes artifacts/* and docs/*, invalidates exactly the docs distribution, reads the deploy secret", async () => {
        const { regs } = await build("gh", full);
        assert.deepStrictEqual(policyOf(regs, "gh-deploy"), {
            Version: "2012-10-17",
            Statement: [
                {
                    Sid: "WriteArtifactsAndDocs",
                    Effect: "Allow",
                    Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    Resource: [`${BUCKET}/artifacts/*`, `${BUCKET}/docs/*`],
                },
                { Sid: "ListPrefixes", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [BUCKET], Condition: { StringLike: { "s3:prefix": ["artifacts/*", "docs/*"] } } },
                { Sid: "InvalidateDocs", Effect: "Allow", Action: ["cloudfront:CreateInvalidation"], Resource: [DISTRIBUTION] },
                { Sid: "ReadDeployCredentials", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [SECRETS.deploy] },
                kmsStatement(["kms:Decrypt", "kms:GenerateDataKey"]),
            ],
        });
    });

    it("scheduler: exists only with a scheduler secret, trusts ecs-tasks, reads artifacts and its secret", async () => {
        const { regs, ci } = await build("gh", full);
        assert.deepStrictEqual(trustOf(regs, "gh-scheduler"), {
            Version: "2012-10-17",
            Statement: [{ Sid: "Service", Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }],
        });
        assert.deepStrictEqual(policyOf(regs, "gh-scheduler"), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "ReadArtifacts", Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${BUCKET}/artifacts/*`] },
                { Sid: "ReadSchedulerCredentials", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [SECRETS.scheduler] },
                kmsStatement(["kms:Decrypt"]),
            ],
        });
        assert.strictEqual((await resolve(ci.roleArns.scheduler!)).value, computed(find(regs, T.role, "gh-scheduler"), "arn"));

        const without = await build("gh", github);
        assert.deepStrictEqual(without.regs.filter((r) => r.type === T.role).map((r) => r.name).sort(), ["gh-deploy", "gh-pull-request"]);
        assert.strictEqual(without.ci.roles.scheduler, undefined);
        assert.strictEqual(without.ci.roleArns.scheduler, undefined);
    });

    it("omits optional statements: no distribution, no KMS key, no CI secret", async () => {
        const { regs } = await build("gh", { ...github, credentialSecretArns: { deploy: SECRETS.deploy } });
        assert.deepStrictEqual(policyOf(regs, "gh-pull-request").Statement.map((s: any) => s.Sid), ["ReadArtifacts", "ListPrefixes"]);
        assert.deepStrictEqual(policyOf(regs, "gh-deploy").Statement.map((s: any) => s.Sid), ["WriteArtifactsAndDocs", "ListPrefixes", "ReadDeployCredentials"]);
    });

    it("honours custom prefixes and session duration; outputs the role ARNs", async () => {
        const { regs, ci } = await build("gh", { ...github, artifactsPrefix: "dbt/artifacts/", docsPrefix: "site/", maxSessionDuration: 7200 });
        const deploy = policyOf(regs, "gh-deploy");
        assert.deepStrictEqual(deploy.Statement[0].Resource, [`${BUCKET}/dbt/artifacts/*`, `${BUCKET}/site/*`]);
        assert.deepStrictEqual(deploy.Statement[1].Condition, { StringLike: { "s3:prefix": ["dbt/artifacts/*", "site/*"] } });
        for (const role of ["gh-pull-request", "gh-deploy"]) assert.strictEqual(find(regs, T.role, role).inputs.maxSessionDuration, 7200);
        const defaults = await build("gh", github);
        for (const role of ["gh-pull-request", "gh-deploy"]) assert.strictEqual(find(defaults.regs, T.role, role).inputs.maxSessionDuration, 3600);
        assert.strictEqual((await resolve(ci.roleArns.pullRequest)).value, computed(find(regs, T.role, "gh-pull-request"), "arn"));
        assert.strictEqual((await resolve(ci.roleArns.deploy)).value, computed(find(regs, T.role, "gh-deploy"), "arn"));
    });

    it("attaches each inline policy to its own role; every child is parented and named after the component", async () => {
        const { regs } = await build("gh", full);
        const component = find(regs, T.ciIdentity, "gh");
        const children = regs.filter((r) => r.type.startsWith("aws:"));
        assert.strictEqual(children.length, 7, children.map((c) => c.name).join(", ")); // provider + 3 roles + 3 policies
        for (const c of children) {
            assert.strictEqual(c.parent, component.urn, `${c.name} must be a child of the component`);
            assert.ok(c.name.startsWith("gh-"), c.name);
        }
        for (const duty of ["pull-request", "deploy", "scheduler"]) {
            assert.strictEqual(find(regs, T.rolePolicy, `gh-${duty}-policy`).inputs.role, `gh-${duty}-id`);
        }
    });

    it("never grants wildcard actions, Resource \"*\", access keys or users, in any configuration", async () => {
        const configs: CiIdentityArgs[] = [
            full,
            { ...full, system: "bitbucket", github: undefined, bitbucket: { workspace: "acme", workspaceUuid: WS_UUID, repositoryUuid: REPO_UUID } },
            { ...full, system: "azure-devops", github: undefined, azureDevops: { organizationId: ADO_ORG_ID, organization: "acme", project: "dp", serviceConnection: "c" } },
        ];
        let statements = 0;
        for (const args of configs) {
            const { regs } = await build("x", args);
            assert.ok(!regs.some((r) => /accessKey|iam\/user|userPolicy/i.test(r.type)), "no IAM users or access keys");
            const docs = [
                ...regs.filter((r) => r.type === T.rolePolicy).map((r) => JSON.parse(r.inputs.policy)),
                ...regs.filter((r) => r.type === T.role).map((r) => JSON.parse(r.inputs.assumeRolePolicy)),
            ];
            for (const doc of docs) {
                for (const s of doc.Statement) {
                    statements++;
                    assert.strictEqual(s.Effect, "Allow");
                    for (const a of [].concat(s.Action)) {
                        assert.ok(!String(a).includes("*"), `wildcard action ${a}`);
                        assert.match(String(a), /^[a-z0-9-]+:[A-Za-z]+$/);
                    }
                    for (const res of [].concat(s.Resource ?? [])) {
                        assert.notStrictEqual(res, "*");
                        assert.match(String(res), /^arn:aws:/);
                    }
                    if (s.Principal) assert.notStrictEqual(s.Principal, "*");
                }
            }
            assert.ok(regs.filter((r) => r.type === T.role).every((r) => !("managedPolicyArns" in r.inputs) && !("inlinePolicies" in r.inputs)));
        }
        assert.ok(statements >= 25, `checked ${statements} statements`);
    });

    it("scheduled runs: the deploy role also puts projects/* and pushes to the one runner repository; nothing else gains", async () => {
        const repo = `arn:aws:ecr:eu-west-1:${ACCOUNT}:repository/dbt-prod-scheduled-repository`;
        const { regs, ci } = await build("sr", { ...full, credentialSecretArns: { ci: SECRETS.ci, deploy: SECRETS.deploy }, scheduledRuns: { projectPrefix: "projects/", repositoryArn: repo } });
        const deploy = policyOf(regs, "sr-deploy").Statement;
        assert.deepStrictEqual(deploy.slice(-3), [
            { Sid: "PublishProjects", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${BUCKET}/projects/*`] },
            { Sid: "EcrLogin", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: ["*"] },
            { Sid: "PushRunnerImage", Effect: "Allow", Action: ECR_PUSH_ACTIONS, Resource: [repo] },
        ]);
        assert.ok(ECR_PUSH_ACTIONS.every((a) => /^ecr:[A-Za-z]+$/.test(a)) && !ECR_PUSH_ACTIONS.includes("ecr:GetAuthorizationToken"));
        assert.ok(!JSON.stringify(policyOf(regs, "sr-pull-request")).includes("ecr:"), "the pull-request role gains ECR access");
        assert.strictEqual(ci.roles.scheduler, undefined);
        assert.deepStrictEqual(leastPrivilegeProblems({ Statement: deploy }), []);
    });

    it("the least-privilege guard flags wildcard actions and resources", () => {
        const problems = leastPrivilegeProblems({
            Statement: [
                { Sid: "A", Action: ["s3:*"], Resource: [`${BUCKET}/artifacts/*`] },
                { Sid: "B", Action: "*", Resource: "*" },
                {
                    Sid: "C",
                    Action: ["s3:GetObject"],
                    Resource: [`${BUCKET}/*`, "arn:aws:s3:::*/artifacts/*", `${BUCKET}/art*`, "arn:aws:secretsmanager:*:1:secret:x", "arn:aws:secretsmanager:eu-west-1:1:secret:dbt/*"],
                },
            ],
        });
        assert.deepStrictEqual(problems, [
            'statement A: wildcard action "s3:*"',
            'statement B: wildcard action "*"',
            'statement B: wildcard resource "*"',
            `statement C: wildcard resource "${BUCKET}/*"`,
            'statement C: wildcard resource "arn:aws:s3:::*/artifacts/*"',
            `statement C: wildcard resource "${BUCKET}/art*"`,
            'statement C: wildcard resource "arn:aws:secretsmanager:*:1:secret:x"',
            'statement C: wildcard resource "arn:aws:secretsmanager:eu-west-1:1:secret:dbt/*"',
        ]);
        assert.deepStrictEqual(leastPrivilegeProblems({ Statement: [{ Action: ["s3:GetObject"], Resource: [`${BUCKET}/dbt/artifacts/*`, BUCKET, SECRETS.ci] }] }), []);
    });

    it("fails the deployment when an output-valued ARN turns out to be a wildcard", async () => {
        await withUnhandledRejections(async (errors) => {
            const { regs, settle } = await mocks();
            // An output cannot be checked before super(); the policy JSON is checked once it resolves.
            new CiIdentity("gh", { ...github, credentialSecretArns: { ci: pulumi.output("*"), deploy: SECRETS.deploy } });
            await settle();
            assert.ok(errors.some((e) => /CiIdentity gh: pull-request policy is not least-privilege:\n  - statement ReadCiCredentials: wildcard resource "\*"/.test(e)), errors.join("\n"));
            assert.ok(!regs.some((r) => r.name === "gh-pull-request-policy"), "the bad policy must not register");
            assert.ok(regs.some((r) => r.name === "gh-deploy-policy"));
        });
    });
});

describe("CiIdentity validation", () => {
    const cases: [string, CiIdentityArgs, RegExp[]][] = [
        ["missing bitbucket block", { system: "bitbucket", ...base }, [/bitbucket: required when system is bitbucket/]],
        ["bad workspace uuid", { system: "bitbucket", bitbucket: { workspace: "acme", workspaceUuid: "not-a-uuid", repositoryUuid: REPO_UUID }, ...base },
            [/bitbucket\.workspaceUuid = "not-a-uuid": expected a UUID/]],
        ["unbalanced braces", { system: "bitbucket", bitbucket: { workspace: "acme", workspaceUuid: WS_UUID, repositoryUuid: `{${REPO_UUID}` }, ...base },
            [/bitbucket\.repositoryUuid/]],
        ["bad repository", { system: "github", github: { repository: "dbt-transform" }, ...base }, [/github\.repository = "dbt-transform": expected <owner>\/<repo>/]],
        ["wildcard repository", { system: "github", github: { repository: "acme/*" }, ...base }, [/github\.repository/]],
        ["missing github block", { system: "github", ...base }, [/github: required when system is github/]],
        ["block of another system", { ...github, bitbucket: { workspace: "acme", workspaceUuid: WS_UUID, repositoryUuid: REPO_UUID } },
            [/bitbucket: given, but system is github/]],
        ["bad azure org id", { system: "azure-devops", azureDevops: { organizationId: "acme", organization: "acme", project: "p", serviceConnection: "c" }, ...base },
            [/azureDevops\.organizationId/]],
        ["bucket name instead of ARN", { ...github, artifactsBucketArn: "acme-dbt-artifacts" }, [/artifactsBucketArn = "acme-dbt-artifacts": expected a bucket ARN/]],
        ["wildcard secret", { ...github, credentialSecretArns: { ci: "*" } }, [/credentialSecretArns\.ci = "\*"/]],
        ["kms alias", { ...github, kmsKeyArn: `arn:aws:kms:eu-west-1:${ACCOUNT}:alias/dbt` }, [/kmsKeyArn/]],
        ["provider of another issuer", { ...github, oidcProviderArn: `arn:aws:iam::${ACCOUNT}:oidc-provider/vstoken.dev.azure.com/${ADO_ORG_ID}` },
            [/oidcProviderArn = .*: expected the provider of https:\/\/token\.actions\.githubusercontent\.com/]],
        ["wildcard prefix", { ...github, artifactsPrefix: "*" }, [/artifactsPrefix = "\*"/]],
        ["prefix without slash", { ...github, docsPrefix: "docs" }, [/docsPrefix = "docs"/]],
        ["session too long", { ...github, maxSessionDuration: 86400 }, [/maxSessionDuration = 86400/]],
        ["scheduled runs: a repository name instead of its ARN", { ...github, scheduledRuns: { projectPrefix: "projects/", repositoryArn: "dbt-runner" } }, [/scheduledRuns\.repositoryArn = "dbt-runner": expected an ECR repository ARN/]],
        ["scheduled runs: projects inside the artifacts prefix", { ...github, scheduledRuns: { projectPrefix: "artifacts/projects/", repositoryArn: `arn:aws:ecr:eu-west-1:${ACCOUNT}:repository/r` } },
            [/scheduledRuns\.projectPrefix artifacts\/projects\/ overlaps artifactsPrefix artifacts\//]],
        ["scheduled runs and a lone scheduler role", { ...github, credentialSecretArns: SECRETS, scheduledRuns: { projectPrefix: "projects/", repositoryArn: `arn:aws:ecr:eu-west-1:${ACCOUNT}:repository/r` } },
            [/credentialSecretArns\.scheduler: not with scheduledRuns/]],
        ["several problems at once", { system: "github", github: { repository: "x", mainBranch: "a..b" }, ...base, artifactsPrefix: "/a/" },
            [/github\.repository/, /github\.mainBranch/, /artifactsPrefix/]],
    ];
    for (const [title, args, expected] of cases) {
        it(`rejects ${title} before anything registers`, async () => {
            const { regs, settle } = await mocks();
            assert.throws(() => new CiIdentity("bad", args), (e: Error) => {
                assert.match(e.message, /^CiIdentity bad: invalid arguments:/);
                expected.forEach((re) => assert.match(e.message, re));
                return true;
            });
            await settle();
            assert.deepStrictEqual(regs.map((r) => r.name), [], "nothing may register");
        });
    }
});

const CONNECTIONS = {
    ci: { host: "db.internal", port: 5432, user: "dev_ci", password: "ciPassw0rdAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", dbname: "analytics", schema: "dbt_ci" },
    prod: { host: "db.internal", port: 5432, user: "dbt_deploy", password: "prodPassw0rdBBBBBBBBBBBBBBBBBBBBBBBBBBBB", dbname: "analytics", schema: "analytics" },
    scheduler: { host: "db.internal", port: 5432, user: "dbt_scheduler", password: "schedPassw0rdCCCCCCCCCCCCCCCCCCCCCCCCCCC", dbname: "analytics", schema: "analytics" },
};

/** The contract's credential JSON per target (what a warehouse's credentialSecrets holds). */
const json = (c: Partial<typeof CONNECTIONS>) => Object.fromEntries(Object.entries(c).map(([t, v]) => [t, JSON.stringify(v)]));
const CREDENTIAL_JSON = json(CONNECTIONS);

describe("WarehouseCredentials", () => {
    it("creates one secret and one version per declared target, named <prefix>/<target>", async () => {
        const { regs, settle } = await mocks();
        const creds = new WarehouseCredentials("creds", { namePrefix: "dbt/dev", secrets: pulumi.secret(CREDENTIAL_JSON), fields: TARGET_FIELDS, targetNames: ["ci", "prod"], recoveryWindowInDays: 7 });
        await settle();
        const component = find(regs, T.credentials, "creds");
        assert.deepStrictEqual(regs.filter((r) => r.type === T.secret).map((r) => r.name).sort(), ["creds-ci", "creds-prod"]);
        assert.deepStrictEqual(regs.filter((r) => r.type === T.secretVersion).map((r) => r.name).sort(), ["creds-ci-version", "creds-prod-version"]);
        for (const t of ["ci", "prod"] as const) {
            const secret = find(regs, T.secret, `creds-${t}`);
            const version = find(regs, T.secretVersion, `creds-${t}-version`);
            assert.strictEqual(secret.parent, component.urn);
            assert.strictEqual(version.parent, component.urn);
            assert.strictEqual(secret.inputs.name, `dbt/dev/${t}`);
            assert.strictEqual(secret.inputs.recoveryWindowInDays, 7);
            assert.strictEqual(version.inputs.secretId, `creds-${t}-id`);
            assert.deepStrictEqual(JSON.parse(version.inputs.secretString), CONNECTIONS[t]);
            assert.deepStrictEqual(Object.keys(JSON.parse(version.inputs.secretString)), [...TARGET_FIELDS]);
            assert.strictEqual((await resolve(creds.secretNames[t])).value, `dbt/dev/${t}`);
            assert.strictEqual((await resolve(creds.secretArns[t])).value, computed(secret, "arn"));
        }
        assert.deepStrictEqual(Object.keys(creds.secretArns).sort(), ["ci", "prod"]);
        assert.strictEqual((await resolve(creds.actionSecretIds)).value, "DBT_CI, dbt/dev/ci\nDBT_PROD, dbt/dev/prod");
    });

    it("sends secretString as a secret even when the targets are plain, and no password appears in any plain input", async () => {
        const { regs, settle } = await mocks();
        const creds = new WarehouseCredentials("creds", { namePrefix: "dbt/dev", secrets: CREDENTIAL_JSON, fields: TARGET_FIELDS, targetNames: ["ci", "prod", "scheduler"] });
        await settle();
        for (const t of ["ci", "prod", "scheduler"] as const) {
            const version = find(regs, T.secretVersion, `creds-${t}-version`);
            assert.ok(version.secretInputs.includes("secretString"), `${t}: secretString must reach the engine as a secret`);
            assert.ok(version.inputs.secretString.includes(CONNECTIONS[t].password));
            const out = await resolve(creds.versions[t].secretString);
            assert.strictEqual(out.secret, true, `${t}: the secretString output must be secret`);
            assert.strictEqual(JSON.parse(out.value!).password, CONNECTIONS[t].password);
        }
        const passwords = Object.values(CONNECTIONS).map((c) => c.password);
        assert.ok(regs.length >= 7);
        for (const r of regs) {
            for (const s of plainStrings(r.inputs, r.secretInputs)) {
                for (const pw of passwords) assert.ok(!s.includes(pw), `${r.type} ${r.name} has a password in a plain input`);
            }
        }
    });

    it("passes the KMS key through and leaves AWS defaults alone", async () => {
        const { regs, settle } = await mocks();
        new WarehouseCredentials("creds", { namePrefix: "dbt/prod", secrets: CREDENTIAL_JSON, fields: TARGET_FIELDS, targetNames: ["prod"], kmsKeyId: KMS });
        await settle();
        const secret = find(regs, T.secret, "creds-prod").inputs;
        assert.strictEqual(secret.kmsKeyId, KMS);
        assert.strictEqual(secret.recoveryWindowInDays, undefined);
        assert.strictEqual(secret.name, "dbt/prod/prod");
    });

    it("envAlias + _<FIELD> is exactly profiles.yml's envVarName for every field", () => {
        for (const t of ["ci", "prod", "scheduler", "staging", "release-1", "qa_2"]) {
            for (const f of TARGET_FIELDS) assert.strictEqual(`${envAlias(t)}_${f.toUpperCase()}`, envVarName(t, f));
            // aws-secretsmanager-get-secrets rejects aliases that are not already valid env names.
            assert.match(envAlias(t), /^[A-Z_][A-Z0-9_]*$/);
        }
        assert.strictEqual(envAlias("prod"), "DBT_PROD");
        assert.strictEqual(envAlias("release-1"), "DBT_RELEASE_1");
    });

    it("fails the deployment, without leaking values, when a declared target is missing", async () => {
        // The check runs inside apply, so it surfaces as the program's unhandled rejection, which fails `pulumi up`.
        await withUnhandledRejections(async (errors) => {
            const { regs, settle } = await mocks();
            new WarehouseCredentials("creds", { namePrefix: "dbt/dev", secrets: json({ ci: CONNECTIONS.ci }), fields: TARGET_FIELDS, targetNames: ["ci", "prod"] });
            await settle();
            assert.ok(errors.length > 0, "expected the missing target to fail the program");
            for (const e of errors) {
                assert.match(e, /WarehouseCredentials creds: target prod is declared in targetNames but missing from secrets \(have: ci\)/);
                assert.ok(!e.includes(CONNECTIONS.ci.password));
            }
            assert.ok(!regs.some((r) => r.name === "creds-prod-version"), "the version of a missing target must not register");
            assert.ok(regs.some((r) => r.name === "creds-ci-version"));
        });
    });

    const bad: [string, any, RegExp][] = [
        ["a bad prefix", { namePrefix: "/dbt//prod/", targetNames: ["ci"] }, /namePrefix = "\/dbt\/\/prod\/"/],
        ["no targets", { namePrefix: "dbt/prod", targetNames: [] }, /targetNames: expected at least one target/],
        ["a bad target name", { namePrefix: "dbt/prod", targetNames: ["Prod"] }, /targetNames: "Prod"/],
        ["clashing env vars", { namePrefix: "dbt/prod", targetNames: ["prod-a", "prod_a"] }, /prod-a and prod_a both map to environment variables DBT_PROD_A_\*/],
        ["a duplicate target", { namePrefix: "dbt/prod", targetNames: ["ci", "ci"] }, /ci is declared more than once/],
        ["a bad recovery window", { namePrefix: "dbt/prod", targetNames: ["ci"], recoveryWindowInDays: 3 }, /recoveryWindowInDays = 3/],
    ];
    for (const [title, args, re] of bad) {
        it(`rejects ${title} before anything registers`, async () => {
            const { regs, settle } = await mocks();
            assert.throws(() => new WarehouseCredentials("creds", { secrets: CREDENTIAL_JSON, fields: TARGET_FIELDS, ...args }), (e: Error) => {
                assert.match(e.message, /^WarehouseCredentials creds: invalid arguments:/);
                assert.match(e.message, re);
                return true;
            });
            await settle();
            assert.deepStrictEqual(regs, []);
        });
    }
});
