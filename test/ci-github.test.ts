/**
 * Unit tests under Pulumi mocks: GithubCiSettings creates exactly the settings the rendered GitHub
 * workflows read (both directions, right scope), keeps secret values secret, gates the deploy
 * environment and main branch, commits every rendered file, and rejects bad arguments up front.
 */
import assert from "assert";
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { GithubCiSettings, GithubCiSettingsArgs, githubCiJobs } from "../components/ci/github";
import { scanWorkflows } from "../components/ci/github/workflows";
import { parseStackConfig } from "../components/config/stack";
import { DBT_CORE_VERSION, PipelineContext, RenderedPipelines, renderPipelineFiles } from "../components/pipelines";
import { pipelineContext } from "../components/platform";
import { envVarName, postgresProfiles, renderProfilesYaml, TARGET_FIELDS } from "../components/warehouse/postgres/profiles";
import { withCiSystem } from "../scripts/render";
import { find, installMocks, plainStrings, Recorded, resolve, runProgram, stackConfig } from "../scripts/offline";
import { withUnhandledRejections } from "./support/rejections";
import { attack } from "./support/attacks";
import { postgresPipelineWarehouse } from "./support/pipelineWarehouse";

const T = {
    component: "dbt-platform:ci:GithubCiSettings",
    provider: "pulumi:providers:github",
    secret: "github:index/actionsSecret:ActionsSecret",
    envSecret: "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret",
    variable: "github:index/actionsVariable:ActionsVariable",
    envVariable: "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable",
    environment: "github:index/repositoryEnvironment:RepositoryEnvironment",
    deploymentPolicy: "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
    protection: "github:index/branchProtection:BranchProtection",
    file: "github:index/repositoryFile:RepositoryFile",
};
const SETTING_TYPES = [T.secret, T.envSecret, T.variable, T.envVariable];
const REPOSITORY = "acme-data/analytics-dbt";

/** A production-like GitHub stack with AWS, a CI job and a deploy environment. */
function context(over: Partial<PipelineContext> = {}): PipelineContext {
    const ctx: PipelineContext = {
        stack: "prod",
        system: "github",
        repository: REPOSITORY,
        mainBranch: "main",
        dbt: { profile: "acme", version: DBT_CORE_VERSION, pythonVersion: "3.11" },
        targets: { ci: "ci", deploy: "prod" },
        warehouse: postgresPipelineWarehouse({ ci: "ci", deploy: "prod" }),
        environment: { kind: "development" },
        aws: {
            region: "eu-west-1",
            bucket: "acme-dbt-artifacts",
            distributionId: "E2ABCDEF123456",
            pullRequestRoleArn: "arn:aws:iam::123456789012:role/dbt-ci",
            deployRoleArn: "arn:aws:iam::123456789012:role/dbt-deploy",
        },
        projectEvaluator: true,
        deploymentEnvironment: "production",
        ...over,
    };
    // The warehouse has exactly the context's targets.
    return { ...ctx, warehouse: over.warehouse ?? postgresPipelineWarehouse(ctx.targets) };
}

function render(ctx: PipelineContext): RenderedPipelines {
    const targets = [...new Set([ctx.targets.ci, ctx.targets.deploy].filter((t): t is string => t !== undefined))];
    const profiles = renderProfilesYaml(postgresProfiles({ profile: ctx.dbt.profile, defaultTarget: targets[0], targets, threads: 4, sslmode: "require" }));
    return renderPipelineFiles(ctx, profiles);
}

/** DBT_<TARGET>_<FIELD> for the targets, as PostgresWarehouse.profileEnvironment holds them; passwords random. */
function valuesFor(targets: string[]): { values: Record<string, string>; passwords: string[] } {
    const values: Record<string, string> = {};
    const passwords: string[] = [];
    for (const t of targets) {
        for (const f of TARGET_FIELDS) {
            const v = f === "password" ? `pw-${crypto.randomBytes(12).toString("hex")}` : f === "port" ? "5432" : `${t}-${f}`;
            if (f === "password") passwords.push(v);
            values[envVarName(t, f)] = v;
        }
    }
    return { values, passwords };
}

interface Case {
    rendered: RenderedPipelines;
    args: GithubCiSettingsArgs;
    passwords: string[];
    values: Record<string, string>;
}

/** Args as the platform would wire them: files and values as outputs, the values secret. */
function caseFor(ctx: PipelineContext, over: Partial<GithubCiSettingsArgs> = {}): Case {
    const rendered = render(ctx);
    const { values, passwords } = valuesFor([...new Set([ctx.targets.ci, ctx.targets.deploy].filter((t): t is string => t !== undefined))]);
    const args: GithubCiSettingsArgs = {
        repository: ctx.repository,
        mainBranch: ctx.mainBranch,
        filePaths: Object.keys(rendered.files),
        files: pulumi.output(rendered.files),
        jobs: githubCiJobs(rendered.model),
        values: pulumi.secret(values),
        ...over,
    };
    return { rendered, args, passwords, values };
}

async function build(args: GithubCiSettingsArgs, stack = "prod") {
    const { resources: regs, settle } = await installMocks(stack);
    const settings = new GithubCiSettings("gh", args);
    await settle();
    return { regs, settings };
}

/** Every `secrets.X` / `vars.X` in the workflow files, with the environment of the job that reads it. */
function workflowReads(files: Record<string, string>): { file: string; environment?: string; kind: "secrets" | "vars"; name: string }[] {
    const reads: { file: string; environment?: string; kind: "secrets" | "vars"; name: string }[] = [];
    for (const [file, text] of Object.entries(files)) {
        if (!file.startsWith(".github/workflows/")) continue;
        for (const job of Object.values<any>(parse(text).jobs)) {
            for (const m of JSON.stringify(job).matchAll(/\$\{\{\s*(secrets|vars)\.([A-Za-z0-9_]+)\s*\}\}/g)) {
                reads.push({ file, environment: job.environment, kind: m[1] as "secrets" | "vars", name: m[2] });
            }
        }
    }
    return reads;
}

/** Settings resources as (kind, name, environment). */
function settingResources(regs: Recorded[]) {
    return regs
        .filter((r) => SETTING_TYPES.includes(r.type))
        .map((r) => ({
            kind: r.type === T.secret || r.type === T.envSecret ? ("secrets" as const) : ("vars" as const),
            name: (r.inputs.secretName ?? r.inputs.variableName) as string,
            environment: r.type === T.envSecret || r.type === T.envVariable ? (r.inputs.environment as string) : undefined,
            r,
        }));
}

/** (a): each read has exactly one resource in its scope, each resource a read. */
function assertSettingsMatchReads(regs: Recorded[], files: Record<string, string>): void {
    const reads = workflowReads(files);
    const settings = settingResources(regs);
    assert.ok(reads.length > 0, "the workflows read no settings");
    for (const read of reads) {
        const hits = settings.filter((s) => s.kind === read.kind && s.name === read.name && s.environment === read.environment);
        const scope = read.environment ? `environment ${read.environment}` : "the repository";
        assert.strictEqual(hits.length, 1, `${read.file} reads ${read.kind}.${read.name}: expected one resource in ${scope}, found ${hits.length}`);
    }
    for (const s of settings) {
        assert.ok(
            reads.some((read) => read.kind === s.kind && read.name === s.name && read.environment === s.environment),
            `${s.r.type} ${s.name} (${s.environment ?? "repository"}) is read by no workflow`,
        );
        assert.strictEqual(s.r.inputs.repository, "analytics-dbt");
    }
}

/** (b): every secret value is a secret input and appears in no plain input or output. */
function assertSecretsStaySecret(regs: Recorded[], c: { passwords: string[]; values: Record<string, string> }): void {
    const secrets = regs.filter((r) => r.type === T.secret || r.type === T.envSecret);
    assert.ok(secrets.length > 0);
    for (const r of secrets) {
        assert.ok(r.secretInputs.includes("value"), `${r.name}: value is not a secret input`);
        assert.strictEqual(r.inputs.value, c.values[r.inputs.secretName], `${r.name}: wrong value`);
        assert.strictEqual(r.inputs.plaintextValue, undefined, `${r.name}: deprecated plaintextValue set`);
    }
    for (const r of regs) {
        const plain = [...plainStrings(r.inputs, r.secretInputs), ...plainStrings(r.outputs, r.secretOutputs)];
        for (const p of c.passwords) assert.ok(!plain.some((s) => s.includes(p)), `${r.type} ${r.name} shows a secret value in plain text`);
    }
}


describe("GithubCiSettings", () => {
    describe("settings match what the rendered workflows read", () => {
        const scenarios: [string, PipelineContext][] = [
            ["CI job plus a deploy job in environment production", context()],
            ["no deploy environment: everything at repository scope", context({ deploymentEnvironment: undefined })],
            ["a gated release stage without a CI job", context({ stack: "staging", targets: { deploy: "staging" }, environment: { kind: "release", promotesFrom: "sandbox" }, deploymentEnvironment: "staging" })],
            ["no AWS", context({ aws: undefined })],
        ];
        for (const [title, ctx] of scenarios) {
            it(title, async () => {
                const c = caseFor(ctx);
                const { regs, settings } = await build(c.args, ctx.stack);
                assertSettingsMatchReads(regs, c.rendered.files);
                assertSecretsStaySecret(regs, c);
                const environments = regs.filter((r) => r.type === T.environment).map((r) => r.inputs.environment);
                assert.deepStrictEqual(environments, ctx.deploymentEnvironment ? [ctx.deploymentEnvironment] : []);
                assert.strictEqual(settings.environmentName, ctx.deploymentEnvironment);
            });
        }

        it("creates a setting that two jobs read in the same scope once", async () => {
            // CI and deploy on one target, no environment: both workflows read DBT_PROD_HOST etc. from the repository.
            const ctx = context({ targets: { ci: "prod", deploy: "prod" }, deploymentEnvironment: undefined });
            const c = caseFor(ctx);
            const ci = c.rendered.files[".github/workflows/ci.yml"];
            const deploy = c.rendered.files[".github/workflows/deploy.yml"];
            assert.ok(ci.includes("${{ vars.DBT_PROD_HOST }}") && deploy.includes("${{ vars.DBT_PROD_HOST }}"), "the scenario needs a shared read");
            const { regs, settings } = await build(c.args);
            assertSettingsMatchReads(regs, c.rendered.files);
            assert.strictEqual(regs.filter((r) => r.type === T.variable && r.inputs.variableName === "DBT_PROD_HOST").length, 1);
            assert.strictEqual(regs.filter((r) => r.type === T.secret && r.inputs.secretName === "DBT_PROD_PASSWORD").length, 1);
            assert.deepStrictEqual(settings.secretNames, { repository: ["DBT_PROD_PASSWORD"], environments: {} });
            assert.deepStrictEqual(settings.variableNames.repository, ["DBT_PROD_HOST", "DBT_PROD_PORT", "DBT_PROD_USER", "DBT_PROD_DBNAME", "DBT_PROD_SCHEMA"]);
        });

        it("the program's own outputs (dev on GitHub): files and secret profileEnvironment", async function () {
            this.timeout(300_000);
            const config = withCiSystem(stackConfig("dev"), "github").config;
            const { resources: regs, exports } = await runProgram("dev", config);
            const files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
            const profilesYaml = (await resolve(exports.profilesYaml)).value as string;
            // The plain jobs come from the same model the program rendered its files from.
            const rendered = renderPipelineFiles(pipelineContext(parseStackConfig("dev", config), undefined, {}), profilesYaml);
            assert.deepStrictEqual(rendered.files, files);
            const env = await resolve(exports.profileEnvironment);
            assert.ok(env.secret);
            const values = env.value as Record<string, string>;
            const before = regs.length;
            const settings = new GithubCiSettings("gh", {
                repository: REPOSITORY,
                filePaths: Object.keys(rendered.files),
                files: exports.pipelineFiles,
                jobs: githubCiJobs(rendered.model),
                values: exports.profileEnvironment,
            });
            await resolve(settings.fileShas);
            const mine = regs.slice(before);
            assertSettingsMatchReads(mine, files);
            const passwords = Object.entries(values).filter(([k]) => k.endsWith("_PASSWORD")).map(([, v]) => v);
            assertSecretsStaySecret(mine, { passwords, values });
            assert.deepStrictEqual(settings.secretNames, { repository: ["DBT_CI_PASSWORD"], environments: { production: ["DBT_PROD_PASSWORD"] } });
            assert.strictEqual(mine.filter((r) => r.type === T.file).length, Object.keys(files).length);
        });
    });

    describe("secrets", () => {
        it("stay secret even when the values arrive in plain text; names in outputs, never values", async () => {
            const c = caseFor(context());
            const { regs } = await build({ ...c.args, values: c.values });
            assertSecretsStaySecret(regs, c);
            const variable = find(regs, T.variable, "gh-var-DBT_CI_HOST");
            assert.deepStrictEqual(variable.secretInputs, [], "a plain variable from plain values stays plain");
            const component = find(regs, T.component, "gh");
            const shown = JSON.stringify(component.outputs);
            for (const v of Object.values(c.values).filter((v) => v !== "5432")) assert.ok(!shown.includes(v), "a value is echoed in the outputs");
            assert.deepStrictEqual(component.outputs.secretNames, { repository: ["DBT_CI_PASSWORD"], environments: { production: ["DBT_PROD_PASSWORD"] } });
            assert.deepStrictEqual(component.outputs.variableNames.environments.production, ["DBT_PROD_HOST", "DBT_PROD_PORT", "DBT_PROD_USER", "DBT_PROD_DBNAME", "DBT_PROD_SCHEMA"]);
            assert.strictEqual(component.outputs.environmentName, "production");
        });

        it("the provider takes the owner from repository and the token only as a secret", async () => {
            const c = caseFor(context());
            const token = `ghp_${crypto.randomBytes(16).toString("hex")}`;
            const { regs } = await build({ ...c.args, token });
            const provider = find(regs, T.provider, "gh-github");
            assert.strictEqual(provider.inputs.owner, "acme-data");
            assert.ok(provider.secretInputs.includes("token"));
            for (const r of regs) assert.ok(!plainStrings(r.inputs, r.secretInputs).some((s) => s.includes(token)), `${r.name} shows the token`);
            for (const r of regs.filter((x) => x.type.startsWith("github:index/"))) {
                assert.ok(r.provider.startsWith(`${provider.urn}::`), `${r.name} does not use the component's provider`);
            }
        });
    });

    describe("ci.apiUrl (GitHub Enterprise Server or a proxy)", () => {
        it("the program passes ci.apiUrl to the component's provider as baseUrl, and every GitHub resource uses that provider", async function () {
            this.timeout(300_000);
            const apiUrl = "https://github.example.com/api/v3";
            const base = withCiSystem(stackConfig("prod"), "github").config;
            const ci = JSON.parse(base["dbt-platform:ci"]);
            const config = { ...base, "dbt-platform:ci": JSON.stringify({ ...ci, manageSettings: true, apiUrl: `${apiUrl}/` }) };
            const { resources: regs } = await runProgram("prod", config);
            const providers = regs.filter((r) => r.type === T.provider);
            assert.strictEqual(providers.length, 1, providers.map((p) => p.name).join(", "));
            // Config strips the trailing slash; the provider needs one (it joins API paths onto base_url).
            assert.strictEqual(providers[0].inputs.baseUrl, `${apiUrl}/`);
            const github = regs.filter((r) => r.type.startsWith("github:index/"));
            assert.ok(github.length >= 10, `only ${github.length} GitHub resources`);
            for (const r of github) assert.ok(r.provider?.startsWith(`${providers[0].urn}::`), `${r.type} ${r.name} does not use the apiUrl provider`);
        });

        it("without apiUrl the provider talks to api.github.com (the SDK's default)", async () => {
            const c = caseFor(context());
            const { regs } = await build(c.args);
            assert.strictEqual(find(regs, T.provider, "gh-github").inputs.baseUrl, process.env.GITHUB_BASE_URL || "https://api.github.com/");
        });
    });

    describe("production secrets are reachable only from the deploy environment (issue 11 #2)", () => {
        const STACKS = ["sandbox", "staging", "prod"] as const;
        const ROLE = "aws:iam/role:Role";

        /** The stack's shipped config rendered for GitHub with settings managed, evaluated as the program. */
        async function evaluate(stack: string) {
            const base = withCiSystem(stackConfig(stack), "github").config;
            const ci = JSON.parse(base["dbt-platform:ci"]);
            const config = { ...base, "dbt-platform:ci": JSON.stringify({ ...ci, manageSettings: true }) };
            const { resources: regs, exports } = await runProgram(stack, config);
            const files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
            return { regs, files, repository: ci.repository as string };
        }

        it("every production secret of the shipped release stacks is an environment secret of the deploy job's environment", async function () {
            this.timeout(600_000);
            let repositoryScoped = 0;
            const problems: string[] = [];
            for (const stack of STACKS) {
                const { regs, files, repository } = await evaluate(stack);
                // Release stages deploy to the target named after the stack; the scheduler is a production login too.
                const prodPrefixes = [stack, "scheduler"].map((t) => envVarName(t, "host").replace(/HOST$/, ""));
                const isProd = (n: string) => prodPrefixes.some((p) => n.startsWith(p));
                const repoSecrets = regs.filter((r) => r.type === T.secret && isProd(r.inputs.secretName));
                repositoryScoped += repoSecrets.length;
                for (const r of repoSecrets) problems.push(`${stack}: ${r.inputs.secretName} is a repository secret`);

                const deploy = parse(files[".github/workflows/deploy.yml"]);
                const jobs = Object.entries<any>(deploy.jobs);
                assert.ok(jobs.length > 0, `${stack}: deploy.yml has no jobs`);
                const environments = regs.filter((r) => r.type === T.environment);
                for (const [id, job] of jobs) {
                    const env = typeof job.environment === "string" ? job.environment : job.environment?.name;
                    if (!env) {
                        problems.push(`${stack}: deploy job ${id} runs in no environment`);
                        continue;
                    }
                    const created = environments.find((e) => e.inputs.environment === env);
                    if (!created) {
                        problems.push(`${stack}: deploy job ${id} runs in environment ${env}, which the program does not create`);
                        continue;
                    }
                    // main only: a custom policy naming main, not "any protected branch".
                    assert.deepStrictEqual(created.inputs.deploymentBranchPolicy, { protectedBranches: false, customBranchPolicies: true }, `${stack}: ${env} branch policy`);
                    const policies = regs.filter((r) => r.type === T.deploymentPolicy && r.inputs.environment === env);
                    assert.deepStrictEqual(policies.map((r) => r.inputs.branchPattern), ["main"], `${stack}: ${env} deployment branch policies`);
                    const envSecrets = regs.filter((r) => r.type === T.envSecret && r.inputs.environment === env).map((r) => r.inputs.secretName);
                    assert.ok(envSecrets.some(isProd), `${stack}: environment ${env} holds no production secret (has ${envSecrets.join(", ")})`);
                    // The deploy role trusts exactly that environment's OIDC subject.
                    const trusts = regs
                        .filter((r) => r.type === ROLE && /deploy/.test(r.name))
                        .map((r) => JSON.stringify(JSON.parse(r.inputs.assumeRolePolicy)));
                    assert.strictEqual(trusts.length, 1, `${stack}: one deploy role`);
                    assert.ok(trusts[0].includes(`"repo:${repository}:environment:${env}"`), `${stack}: the deploy role trusts ${trusts[0]}`);
                    assert.ok(!/ref:refs\/heads/.test(trusts[0]), `${stack}: the deploy role also trusts a branch ref`);
                }
            }
            console.log(`github prod secrets: ${repositoryScoped} repository-scoped`);
            const tried = attack("GitHub: a production secret readable from a pull-request or branch job");
            assert.deepStrictEqual(problems, []);
            tried.blocked();
        });
    });

    describe("deploy environment and main branch", () => {
        it("the environment has the reviewers and deploys only from main (a custom policy, not any protected branch)", async () => {
            const c = caseFor(context(), { reviewers: { users: [101, 102], teams: [7] } });
            const { regs } = await build(c.args);
            const env = find(regs, T.environment, "gh-env-production");
            assert.deepStrictEqual(env.inputs.reviewers, [{ users: [101, 102], teams: [7] }]);
            assert.deepStrictEqual(env.inputs.deploymentBranchPolicy, { protectedBranches: false, customBranchPolicies: true });
            assert.strictEqual(env.inputs.repository, "analytics-dbt");
            assert.deepStrictEqual(env.secretInputs, [], "the environment name must not inherit the values' secrecy");
            const policy = find(regs, T.deploymentPolicy, "gh-env-production-branch-policy");
            assert.deepStrictEqual(policy.inputs, { repository: "analytics-dbt", environment: "production", branchPattern: "main" });
            // Environment settings wait for their environment.
            for (const r of regs.filter((x) => x.type === T.envSecret || x.type === T.envVariable)) assert.ok(r.dependencies.includes(env.urn), `${r.name} does not wait for the environment`);
        });

        it("without branch protection, the environment names the main branch in a custom policy", async () => {
            const c = caseFor(context({ mainBranch: "trunk" }), { protectMainBranch: false });
            const { regs, settings } = await build(c.args);
            assert.strictEqual(regs.filter((r) => r.type === T.protection).length, 0);
            assert.deepStrictEqual((await resolve(settings.requiredChecks)).value, []);
            const env = find(regs, T.environment, "gh-env-production");
            assert.deepStrictEqual(env.inputs.deploymentBranchPolicy, { protectedBranches: false, customBranchPolicies: true });
            assert.strictEqual(env.inputs.reviewers, undefined);
            const policy = find(regs, T.deploymentPolicy, "gh-env-production-branch-policy");
            assert.deepStrictEqual(policy.inputs, { repository: "analytics-dbt", environment: "production", branchPattern: "trunk" });
        });

        it("main requires the CI job's check, by the name GitHub reports (the job's name:)", async () => {
            const c = caseFor(context());
            const ciJob = Object.values<any>(parse(c.rendered.files[".github/workflows/ci.yml"]).jobs)[0];
            const { regs, settings } = await build(c.args);
            const protection = find(regs, T.protection, "gh-protect-main");
            assert.deepStrictEqual(protection.inputs, {
                repositoryId: "analytics-dbt",
                pattern: "main",
                requiredStatusChecks: [{ strict: true, contexts: [ciJob.name] }],
                allowsDeletions: false,
                allowsForcePushes: false,
                enforceAdmins: false,
            });
            assert.strictEqual(ciJob.name, "dbt slim CI");
            assert.deepStrictEqual((await resolve(settings.requiredChecks)).value, ["dbt slim CI"]);
            const explicit = await build({ ...c.args, requiredCheck: pulumi.output("dbt slim CI") });
            assert.deepStrictEqual(find(explicit.regs, T.protection, "gh-protect-main").inputs.requiredStatusChecks, [{ strict: true, contexts: ["dbt slim CI"] }]);
        });

        it("without a CI job main is protected but requires no check", async () => {
            const c = caseFor(context({ stack: "staging", targets: { deploy: "staging" }, environment: { kind: "release", promotesFrom: "sandbox" }, deploymentEnvironment: "staging" }));
            const { regs } = await build(c.args, "staging");
            const protection = find(regs, T.protection, "gh-protect-main");
            assert.strictEqual(protection.inputs.requiredStatusChecks, undefined);
            assert.strictEqual(protection.inputs.allowsForcePushes, false);
        });
    });

    describe("files", () => {
        it("commits every rendered file to the main branch with the exact content, after every setting", async () => {
            const ctx = context({ mainBranch: "release/v2" });
            const c = caseFor(ctx);
            const { regs, settings } = await build(c.args);
            const files = regs.filter((r) => r.type === T.file);
            assert.deepStrictEqual(files.map((f) => f.inputs.file).sort(), Object.keys(c.rendered.files).sort());
            const before = regs.filter((r) => [...SETTING_TYPES, T.environment, T.protection].includes(r.type)).map((r) => r.urn);
            assert.strictEqual(before.length, 13);
            for (const [path, content] of Object.entries(c.rendered.files)) {
                const f = find(regs, T.file, `gh-file-${path}`);
                assert.deepStrictEqual(f.inputs, {
                    repository: "analytics-dbt",
                    branch: "release/v2",
                    file: path,
                    content,
                    commitMessage: `dbt-platform stack prod: ${path}`,
                    overwriteOnCreate: true,
                });
                // deploy.yml starts a run when it lands on main: the settings it reads must exist first.
                for (const urn of before) assert.ok(f.dependencies.includes(urn), `${path} does not wait for ${urn}`);
            }
            assert.deepStrictEqual(Object.keys((await resolve(settings.fileShas)).value).sort(), Object.keys(c.rendered.files).sort());
            assert.strictEqual(find(regs, T.protection, "gh-protect-release/v2").inputs.pattern, "release/v2");
        });
    });

    describe("bad arguments", () => {
        const c = caseFor(context());
        const plainValues = { ...c.values };
        const jobs = c.args.jobs;
        const deploy = jobs.find((j) => j.id === "deploy")!;
        const pr = jobs.find((j) => j.id === "pull-request")!;
        const cases: [string, Partial<GithubCiSettingsArgs>, RegExp][] = [
            ["a repository without an owner", { repository: "analytics-dbt" }, /repository = "analytics-dbt": expected owner\/repo/],
            ["a wildcard repository", { repository: "acme-data/*" }, /repository = "acme-data\/\*"/],
            ["a bad main branch", { mainBranch: "main..x" }, /mainBranch = "main\.\.x": expected a git branch name/],
            ["a job variable with no value", { values: { ...plainValues, DBT_PROD_PASSWORD: "" } }, /values: no value for DBT_PROD_PASSWORD \(read by job deploy; have: /],
            [
                "one name as a secret in one job and a variable in another, same scope",
                { jobs: [{ ...pr, variables: [...pr.variables, { name: "DBT_SHARED", secret: true }] }, { id: "deploy", variables: [...deploy.variables, { name: "DBT_SHARED", secret: false }] }] },
                /jobs\[1\]\.variables\[6\]: DBT_SHARED \(a variable\) in job deploy conflicts with DBT_SHARED \(a secret\) in job pull-request: both are the repository setting DBT_SHARED/,
            ],
            [
                "a name declared twice in one job (GitHub names ignore case)",
                { jobs: [{ ...pr, variables: [...pr.variables, { name: "dbt_ci_host", secret: false }] }, deploy] },
                /jobs\[0\]\.variables\[5\]: dbt_ci_host is declared more than once in job pull-request/,
            ],
            ["a duplicate job", { jobs: [deploy, deploy] }, /jobs\[1\]\.id: job deploy is declared more than once/],
            ["an unknown job", { jobs: [{ id: "nightly" as any, variables: [] }] }, /jobs\[0\]\.id = "nightly": expected one of pull-request, deploy/],
            ["a GITHUB_ name", { jobs: [{ ...deploy, variables: [{ name: "GITHUB_TOKEN", secret: true }] }] }, /jobs\[0\]\.variables\[0\]\.name = "GITHUB_TOKEN"/],
            ["a bad environment name", { jobs: [{ ...deploy, environment: "prod/eu" }] }, /jobs\[0\]\.environment = "prod\/eu"/],
            ["reviewers without a deploy environment", { jobs: [pr, { ...deploy, environment: undefined }], reviewers: { users: [1] } }, /reviewers: the deploy job has no environment/],
            ["too many reviewers", { reviewers: { users: [1, 2, 3, 4], teams: [5, 6, 7] } }, /reviewers: 7 given; GitHub allows at most 6/],
            ["a non-numeric reviewer", { reviewers: { users: ["octocat" as any] } }, /reviewers\.users: "octocat": expected a numeric GitHub id/],
            ["requiredCheck without protection", { protectMainBranch: false, requiredCheck: "dbt slim CI" }, /requiredCheck: given, but protectMainBranch is false/],
            ["requiredCheck without a CI job", { jobs: [deploy], requiredCheck: "dbt slim CI" }, /requiredCheck: given, but there is no pull-request job/],
            ["a rendered file left out of filePaths", { filePaths: c.args.filePaths.filter((p) => p !== ".ci/profiles.yml"), files: c.rendered.files }, /files: \.ci\/profiles\.yml is not in filePaths/],
            ["a path escaping the repository", { filePaths: ["../x.yml"] }, /filePaths: "\.\.\/x\.yml": expected a path relative to the repository root/],
            ["an apiUrl over plain http to a remote host", { apiUrl: "http://github.example.com/api/v3" }, /apiUrl: expected an https URL/],
            ["an apiUrl with credentials in it", { apiUrl: "https://user:pw@github.example.com/api/v3" }, /apiUrl: expected a URL without credentials/],
        ];
        // Apply-time failures first: the next installMocks drops the promises a failed registration leaves pending.
        it("a value missing from an output fails at apply time naming the variable, and no setting or file registers", async () => {
            await withUnhandledRejections(async (errors) => {
                const { resources: regs, settle } = await installMocks("prod");
                const { DBT_PROD_PASSWORD: _dropped, ...rest } = plainValues;
                new GithubCiSettings("gh", { ...c.args, values: pulumi.secret(rest) });
                await settle();
                assert.ok(errors.some((e) => /GithubCiSettings gh: values: no value for DBT_PROD_PASSWORD \(read by job deploy; have: DBT_CI_DBNAME, /.test(e)), errors.join("\n"));
                for (const e of errors) for (const p of c.passwords) assert.ok(!e.includes(p), "the error shows a secret value");
                assert.deepStrictEqual(regs.filter((r) => r.type.startsWith("github:index/")).map((r) => r.name), []);
            });
        });

        it("workflows and jobs that disagree fail at apply time naming each setting, and nothing registers", async () => {
            await withUnhandledRejections(async (errors) => {
                const { resources: regs, settle } = await installMocks("prod");
                const jobs = [
                    // DBT_CI_USER dropped: ci.yml reads it. DBT_EXTRA added: nothing reads it.
                    { ...pr, variables: [...pr.variables.filter((v) => v.name !== "DBT_CI_USER"), { name: "DBT_EXTRA", secret: true }] },
                    deploy,
                ];
                new GithubCiSettings("gh", { ...c.args, jobs, values: pulumi.secret({ ...plainValues, DBT_EXTRA: "x" }) });
                await settle();
                const e = errors.find((x) => x.includes("the files and jobs disagree")) ?? "";
                assert.match(e, /\.github\/workflows\/ci\.yml job slim-ci reads vars\.DBT_CI_USER, but no job declares it in the repository/);
                assert.match(e, /DBT_EXTRA \(secret, repository, job pull-request\) is read by no workflow/);
                assert.deepStrictEqual(regs.filter((r) => r.type.startsWith("github:index/")).map((r) => r.name), []);
            });
        });

        it("a required check that no pull-request job reports fails at apply time", async () => {
            await withUnhandledRejections(async (errors) => {
                const { resources: regs, settle } = await installMocks("prod");
                new GithubCiSettings("gh", { ...c.args, requiredCheck: "slim-ci" });
                await settle();
                assert.ok(errors.some((e) => /requiredCheck = "slim-ci": no pull-request job reports it \(have: dbt slim CI\)/.test(e)), errors.join("\n"));
                assert.strictEqual(regs.filter((r) => r.type === T.protection || r.type === T.file).length, 0);
            });
        });

        for (const [title, over, re] of cases) {
            it(`rejects ${title} before anything registers`, async () => {
                const { resources: regs, settle } = await installMocks("prod");
                const args = { ...c.args, ...over };
                const check = (e: Error) => {
                    assert.match(e.message, /^GithubCiSettings gh: invalid arguments:/);
                    assert.match(e.message, re);
                    for (const p of c.passwords) assert.ok(!e.message.includes(p), "the error shows a secret value");
                    return true;
                };
                assert.throws(() => GithubCiSettings.validate("gh", args), check);
                assert.throws(() => new GithubCiSettings("gh", args), check);
                await settle();
                assert.deepStrictEqual(regs.map((r) => r.type), []);
            });
        }
    });
});

describe("scanWorkflows: the checks a pull request reports", () => {
    it("a job that runs only when the pull request closes is no check to require; the others are", () => {
        const ci = [
            "on:",
            "  pull_request:",
            "    types: [opened, synchronize, reopened, closed]",
            "jobs:",
            "  slim-ci:",
            "    name: dbt slim CI",
            "    if: github.event.action != 'closed'",
            "    runs-on: ubuntu-latest",
            "    steps: [{ run: 'true' }]",
            "  docs-preview-cleanup:",
            "    name: Remove the docs preview (pull request closed)",
            "    if: ${{ github.event.action == 'closed' && github.event.pull_request.head.repo.full_name == github.repository }}",
            "    runs-on: ubuntu-latest",
            "    steps: [{ run: 'true' }]",
            "  lint:",
            "    if: github.event.action == 'closed' || github.event.action == 'opened'",
            "    runs-on: ubuntu-latest",
            "    steps: [{ run: 'true' }]",
            "",
        ].join("\n");
        assert.deepStrictEqual(scanWorkflows({ ".github/workflows/ci.yml": ci }).pullRequestChecks, ["dbt slim CI", "lint"]);
    });
});
