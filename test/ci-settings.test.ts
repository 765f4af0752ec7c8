/**
 * CiSettings through the program: with ci.manageSettings, every settings variable the rendered
 * pipeline files read exists in the CI system, in the scope the job sees, and none is unused;
 * the names the files reference (variable groups, secure file, environments) are the ones created.
 */
import assert from "assert";
import { parse } from "yaml";
import { ConfigError, parseStackConfig } from "../components/config";
import { SettingVariable } from "../components/pipelines";
import { Recorded, resolve, runProgram, stackConfig } from "../scripts/offline";
import { withCiSystem } from "../scripts/render";

const REPO_GUID = "5b1c2d3e-4f50-4a6b-9c7d-8e9fa0b1c2d3";
const APPROVER = "0f1e2d3c-4b5a-4697-8877-665544332211";

async function program(system: "bitbucket" | "github" | "azure-devops", ci: Record<string, unknown>, aws: Record<string, unknown> = {}) {
    const config = withCiSystem(stackConfig("prod"), system).config;
    const c = JSON.parse(config["dbt-platform:ci"]);
    config["dbt-platform:ci"] = JSON.stringify({ ...c, ...ci });
    config["dbt-platform:aws"] = JSON.stringify({ ...JSON.parse(config["dbt-platform:aws"]), ...aws });
    const { resources, exports } = await runProgram("prod", config);
    const files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
    const variables = (await resolve(exports.pipelineVariables)).value as Record<string, SettingVariable[]>;
    const env = (await resolve(exports.profileEnvironment)).value as Record<string, string>;
    return { resources, files, variables, env, exports };
}

const ofType = (rs: Recorded[], token: string) => rs.filter((r) => r.type === token);
const byName = (vs: { name: string; secret: boolean }[]) => [...vs].sort((a, b) => a.name.localeCompare(b.name));

describe("CI settings from the stack", function () {
    this.timeout(120_000);

    it("off by default: no CI-system resource", async () => {
        const { resources } = await runProgram("prod");
        assert.deepStrictEqual(resources.filter((r) => /dynamic\/(bitbucket|azuredevops)|^github:/.test(r.type)), []);
    });

    it("Bitbucket: repository variables for CI, deployment variables for the deploy step's environment", async () => {
        const { resources, files, variables, env } = await program("bitbucket", { manageSettings: true });
        const doc = parse(files["bitbucket-pipelines.yml"]);
        const deployStep = doc.pipelines.custom["release-prod"].find((x: any) => x.step).step;
        const [pipelines] = ofType(resources, "pulumi-nodejs:dynamic/bitbucket:PipelinesConfig");
        assert.strictEqual(pipelines.inputs.enabled, true);
        const [environment] = ofType(resources, "pulumi-nodejs:dynamic/bitbucket:DeploymentEnvironment");
        assert.strictEqual(environment.inputs.name, deployStep.deployment);
        assert.strictEqual(environment.inputs.environmentType, "Production");
        const repoVars = ofType(resources, "pulumi-nodejs:dynamic/bitbucket:RepositoryVariable");
        const deployVars = ofType(resources, "pulumi-nodejs:dynamic/bitbucket:DeploymentVariable");
        assert.deepStrictEqual(byName(repoVars.map((r) => ({ name: r.inputs.key, secret: r.inputs.secured }))), byName(variables["pull-request"]));
        assert.deepStrictEqual(byName(deployVars.map((r) => ({ name: r.inputs.key, secret: r.inputs.secured }))), byName(variables.deploy));
        for (const r of [...repoVars, ...deployVars]) {
            assert.ok(r.secretInputs.includes("value"), `${r.name}: value is not a secret`);
            assert.strictEqual(r.inputs.value, env[r.inputs.key], `${r.name}: value not wired from the warehouse`);
            assert.strictEqual(r.inputs.workspace, "acme-data");
            assert.strictEqual(r.inputs.repoSlug, "analytics-dbt");
        }
        assert.ok(deployVars.every((r) => r.inputs.environmentUuid === environment.state.uuid || r.dependencies.includes(environment.urn)));
        // Issue 11: production credentials live only in the deployment environment, never as repository
        // variables (every pipeline on every branch, pull requests included, can read those).
        const prodSecrets = deployVars.filter((r) => r.inputs.secured).map((r) => r.inputs.value as string);
        assert.ok(prodSecrets.length > 0, "the deploy step has secured credentials");
        for (const r of repoVars) {
            assert.ok(!prodSecrets.includes(r.inputs.value), `${r.inputs.key}: a production secret as a repository variable`);
            assert.ok(!deployVars.some((d) => d.inputs.key === r.inputs.key), `${r.inputs.key}: also a deployment variable, so a repository-wide copy exists`);
        }
        assert.ok(deployVars.filter((r) => variables.deploy.find((v) => v.name === r.inputs.key)!.secret).every((r) => r.inputs.secured === true), "secret deploy values are Secured");
    });

    it("ci.apiUrl reaches every Bitbucket and Azure DevOps resource; without it they use the public API", async () => {
        const bb = await program("bitbucket", { manageSettings: true, apiUrl: "https://bitbucket-proxy.acme.internal/2.0/" });
        const bbResources = bb.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/bitbucket:"));
        assert.ok(bbResources.length >= 4);
        for (const r of bbResources) assert.strictEqual(r.inputs.apiUrl, "https://bitbucket-proxy.acme.internal/2.0", `${r.type} ${r.name}`);
        const az = await program("azure-devops", { manageSettings: true, azureRepositoryId: REPO_GUID, approvers: [APPROVER], apiUrl: "https://devops.acme.internal/DefaultCollection" });
        const azResources = az.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/azuredevops:"));
        assert.ok(azResources.length >= 4);
        for (const r of azResources) assert.strictEqual(r.inputs.apiUrl, "https://devops.acme.internal/DefaultCollection", `${r.type} ${r.name}`);
        const plain = await program("bitbucket", { manageSettings: true });
        for (const r of plain.resources.filter((x) => x.type.startsWith("pulumi-nodejs:dynamic/bitbucket:"))) {
            assert.strictEqual(r.inputs.apiUrl, "https://api.bitbucket.org/2.0");
            if (!r.type.endsWith(":PipelinesConfig")) assert.strictEqual(r.inputs.adopt, false, `${r.name}: adopts nothing by default`);
        }
        for (const r of bbResources) if (!r.type.endsWith(":PipelinesConfig")) assert.strictEqual(r.inputs.adopt, false);
        const adopting = await program("bitbucket", { manageSettings: true, adoptExisting: true });
        for (const r of adopting.resources.filter((x) => /bitbucket:(RepositoryVariable|DeploymentVariable|DeploymentEnvironment)$/.test(x.type))) {
            assert.strictEqual(r.inputs.adopt, true, `${r.name}: ci.adoptExisting reaches it`);
        }
    });

    it("Azure DevOps: the groups, secure file and environment the YAML names, with permissions and approval", async () => {
        const { resources, files, variables, env, exports } = await program("azure-devops", { manageSettings: true, azureRepositoryId: REPO_GUID, approvers: [APPROVER] });
        const doc = parse(files["azure-pipelines.yml"]);
        const groups = ofType(resources, "pulumi-nodejs:dynamic/azuredevops:VariableGroup");
        const referenced = doc.stages.flatMap((s: any) => s.jobs.flatMap((j: any) => (j.variables ?? []).map((v: any) => v.group)));
        assert.deepStrictEqual(groups.map((g) => g.inputs.name).sort(), [...referenced].sort());
        for (const g of groups) {
            const job = g.inputs.name.endsWith("pull-request") ? "pull-request" : "deploy";
            const declared = Object.entries(g.inputs.variables as Record<string, { value: string; isSecret: boolean }>).map(([name, v]) => ({ name, secret: v.isSecret }));
            assert.deepStrictEqual(byName(declared), byName(variables[job]));
            for (const [name, v] of Object.entries(g.inputs.variables as Record<string, { value: string }>)) assert.strictEqual(v.value, env[name]);
            assert.ok(g.secretInputs.includes("variables"));
        }
        const secureFileSteps = doc.stages.flatMap((s: any) => s.jobs.flatMap((j: any) => (j.steps ?? j.strategy.runOnce.deploy.steps).filter((x: any) => x.task === "DownloadSecureFile@1")));
        // One profiles secure file per job (the deploy job's is main-only), each one the program creates, with profiles.yml.
        const secureFiles = ofType(resources, "pulumi-nodejs:dynamic/azuredevops:SecureFile");
        assert.ok(secureFileSteps.length >= 2);
        assert.deepStrictEqual([...new Set(secureFileSteps.map((x: any) => x.inputs.secureFile))].sort(), secureFiles.map((f) => f.inputs.name).sort());
        for (const f of secureFiles) assert.strictEqual(f.inputs.content, (await resolve(exports.profilesYaml)).value);
        const [definition] = ofType(resources, "pulumi-nodejs:dynamic/azuredevops:BuildDefinition");
        assert.strictEqual(definition.inputs.yamlFilename, "azure-pipelines.yml");
        assert.deepStrictEqual(definition.inputs.repository, { type: "TfsGit", id: REPO_GUID, name: "analytics-dbt", defaultBranch: "refs/heads/main" });
        const [environment] = ofType(resources, "pulumi-nodejs:dynamic/azuredevops:Environment");
        const deployStage = doc.stages.find((s: any) => s.stage === "deploy");
        assert.strictEqual(environment.inputs.name, deployStage.jobs[0].environment);
        const [check] = ofType(resources, "pulumi-nodejs:dynamic/azuredevops:ApprovalCheck");
        assert.deepStrictEqual(check.inputs.approverIds, [APPROVER]);
        const permits = ofType(resources, "pulumi-nodejs:dynamic/azuredevops:PipelinePermission").map((p) => p.inputs.resourceType).sort();
        // The pipeline is permitted to exactly what it uses: the environment, each secure file and each group.
        assert.deepStrictEqual(permits, ["environment", ...secureFiles.map(() => "securefile"), ...groups.map(() => "variablegroup")]);
    });

    it("GitHub: one secret or variable per reference, in the job's scope, and the workflow files committed", async () => {
        const { resources, files, variables } = await program("github", { manageSettings: true, approvers: ["1234567"] }, { github: { deployEnvironment: "prod" } });
        const [environment] = ofType(resources, "github:index/repositoryEnvironment:RepositoryEnvironment");
        assert.strictEqual(environment.inputs.environment, parse(files[".github/workflows/deploy.yml"]).jobs.deploy.environment);
        const declared = [...variables["pull-request"], ...variables.deploy];
        const created = resources.filter((r) => /^github:index\/actions(Environment)?(Secret|Variable):/.test(r.type));
        assert.strictEqual(created.length, new Set(declared.map((v) => v.name)).size);
        const committed = ofType(resources, "github:index/repositoryFile:RepositoryFile").map((r) => r.inputs.file).sort();
        assert.deepStrictEqual(committed, Object.keys(files).sort());
    });

    it("GitHub reviewers go on the deploy environment the program always creates (no aws.github.deployEnvironment needed)", async () => {
        const config = withCiSystem(stackConfig("prod"), "github").config;
        config["dbt-platform:ci"] = JSON.stringify({ ...JSON.parse(config["dbt-platform:ci"]), manageSettings: true, approvers: ["1234567"] });
        const { resources } = await runProgram("prod", config);
        const envs = resources.filter((r) => r.type === "github:index/repositoryEnvironment:RepositoryEnvironment");
        assert.deepStrictEqual(envs.map((r) => [r.inputs.environment, r.inputs.reviewers]), [["prod", [{ users: [1234567] }]]]);
    });

    it("rejects settings the system cannot take, naming the key", () => {
        const bad = (system: "bitbucket" | "azure-devops", ci: Record<string, unknown>) => {
            const config = withCiSystem(stackConfig("prod"), system).config;
            config["dbt-platform:ci"] = JSON.stringify({ ...JSON.parse(config["dbt-platform:ci"]), ...ci });
            try {
                parseStackConfig("prod", config);
            } catch (e) {
                assert.ok(e instanceof ConfigError);
                return e.message;
            }
            assert.fail("accepted");
        };
        assert.match(bad("azure-devops", { manageSettings: true }), /dbt-platform:ci\.azureRepositoryId.*required with manageSettings/);
        assert.match(bad("azure-devops", { approvers: ["bob"] }), /dbt-platform:ci\.approvers\[0\].*identity GUID/);
        assert.match(bad("bitbucket", { approvers: ["1"] }), /dbt-platform:ci\.approvers\[0\].*no approvers on Bitbucket/);
        assert.match(bad("bitbucket", { azureRepositoryId: REPO_GUID }), /dbt-platform:ci\.azureRepositoryId.*only for ci\.system azure-devops/);
    });
});
