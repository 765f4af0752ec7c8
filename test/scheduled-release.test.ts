/**
 * @integration The release chain of scheduled runs, executed: the prod stack with features.scheduledRuns
 * (under mocks, its warehouse plan applied to a real Postgres, moto as S3, STS and ECR) renders its
 * Bitbucket release; that step's very lines run from main (the e2e harness, test/support/ciRun.ts): dbt
 * builds production, the runner image step logs in to ECR, builds and pushes the task definition's tag,
 * and the project tarball, its manifest and the `projects/current` pointer land in the bucket. Then the
 * image's own entrypoint (the file the release wrote into the build context) runs with exactly the task
 * definition's environment and secrets: it follows the pointer, pulls what the release published and
 * builds production as the scheduler bot.
 *
 * No docker here: `docker` is a stand-in on PATH that records its arguments and the build context, so
 * the image build and push are proven as the rendered lines and their arguments, not as a pushed image.
 * moto does not evaluate IAM policies; the deploy role's rights are asserted under mocks
 * (test/scheduled-platform.test.ts).
 */
import assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { azureNames, renderPipelineFiles, SettingVariable } from "../components/pipelines";
import { parseStackConfig } from "../components/config";
import { pipelineContext } from "../components/platform";
import { renderDockerfile, renderEntrypoint, runnerImageTag } from "../components/aws/scheduled/runner";
import { applyRecorded } from "./support/apply";
import { azureSteps, runAzureJob, runBitbucketStep } from "./support/ciRun";
import { allModels, copyFixture, modelsBuilt } from "./support/dbtProject";
import { MotoServer, startMoto } from "./support/moto";
import { startPostgres, TestServer } from "./support/postgres";
import { stackOnServers } from "./support/stackOnServers";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./support/python";
import { find, Recorded, resolve, runProgram, toPulumiConfig } from "../scripts/offline";

const BUCKET = "acme-dbt-release";
const DATABASE = "analytics_release";
const COMMIT = "9c1e2b7d5e8f0a133c5f1a2e8d4b4f6a9c1e2b7d";
/** The commit of the second release (Azure DevOps), which moves the pointer. */
const COMMIT2 = "0a13e2b7d5e8f9c13c5f1a2e8d4b4f6a9c1e2b7d";
const IMAGE_CONTEXT = "/tmp/dbt-runner-image";

describe("scheduled runs: the release publishes what the task runs @integration", function () {
    this.timeout(900_000);
    let server: TestServer;
    let moto: MotoServer;
    let resources: Recorded[];
    let settings: Record<string, string>;
    let jobVariables: Record<string, SettingVariable[]>;
    let files: Record<string, string>;
    let config: Record<string, string>;
    let profilesYaml: string;
    const tmp: string[] = [];
    const mkdtemp = (p: string) => {
        const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
        tmp.push(d);
        return d;
    };
    const aws = (args: string[]) => execFileSync(path.join(VENV_BIN, "aws"), args, { env: pythonEnv(moto.env), encoding: "utf8" });

    before(async function () {
        ensurePythonEnv();
        [server, moto] = await Promise.all([startPostgres(), startMoto()]);
        await moto.createBucket(BUCKET);
        // The prod stack as shipped, scheduled runs on; pointed at the test servers, docs off (no CloudFront here).
        const doc = stackOnServers("prod", server, { database: DATABASE, bucket: BUCKET, features: { docsSite: false, scheduledRuns: true, projectEvaluator: false } });
        let exports: Record<string, any>;
        config = toPulumiConfig(doc);
        ({ resources, exports } = await runProgram("prod", config));
        await applyRecorded(server, resources);
        settings = (await resolve(exports.profileEnvironment)).value as Record<string, string>;
        jobVariables = (await resolve(exports.pipelineVariables)).value as Record<string, SettingVariable[]>;
        files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
        profilesYaml = (await resolve(exports.profilesYaml)).value as string;
        // The runner's repository, as ECR would hold it (the name the program's repository URL ends in).
        const url = find(resources, "aws:ecr/repository:Repository", "dbt-prod-scheduled-repository").state.repositoryUrl as string;
        aws(["ecr", "create-repository", "--repository-name", url.slice(url.indexOf("/") + 1)]);
    });

    after(async () => {
        for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
        fs.rmSync(IMAGE_CONTEXT, { recursive: true, force: true });
        await Promise.all([moto?.stop(), server?.stop()]);
    });

    it("before any release the task fails clearly: no projects/current to follow", async () => {
        const [container] = JSON.parse(find(resources, "aws:ecs/taskDefinition:TaskDefinition", "dbt-prod-scheduled-task-definition").inputs.containerDefinitions);
        const env0 = Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
        const home = mkdtemp("dbt-task-home-");
        const run = spawnSync("bash", ["-c", renderEntrypoint()], { cwd: home, env: pythonEnv({ ...env0, ...moto.env, HOME: home }), encoding: "utf8" });
        assert.strictEqual(run.status, 2, `${run.stdout}${run.stderr}`);
        assert.match(run.stderr, new RegExp(`dbt-scheduled-run: cannot read s3://${BUCKET}/projects/current \\(has a release published a project yet\\?\\)`));
    });

    it("Bitbucket release from main: image pushed under the task's tag, project + manifest by commit, then the pointer; the task runs it", async () => {
        const step = parse(files["bitbucket-pipelines.yml"]).pipelines.custom["release-prod"].find((x: any) => x.step).step;
        assert.deepStrictEqual(step.services, ["docker"]);
        const dir = mkdtemp("dbt-release-repo-");
        copyFixture(dir);
        for (const [rel, text] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
            fs.writeFileSync(path.join(dir, rel), text);
        }
        // docker stands in: it records each call, the password it was given on stdin and the build context.
        const shim = mkdtemp("docker-shim-");
        const log = path.join(shim, "calls.log");
        fs.writeFileSync(
            path.join(shim, "docker"),
            `#!/usr/bin/env bash\nprintf 'docker %s\\n' "$*" >> "${log}"\ncase "$1" in login) cat > "${log}.password" ;; build) cp -r "\${@: -1}" "${shim}/context" ;; esac\n`,
            { mode: 0o755 },
        );
        const vars: Record<string, string> = {};
        for (const v of jobVariables.deploy) vars[v.name] = settings[v.name];
        const env = pythonEnv({
            ...vars,
            AWS_ENDPOINT_URL: moto.endpoint,
            DBT_LOG_PATH: mkdtemp("dbt-release-logs-"),
            BITBUCKET_BRANCH: "main",
            BITBUCKET_BUILD_NUMBER: "77",
            BITBUCKET_COMMIT: COMMIT,
            BITBUCKET_CLONE_DIR: dir,
            BITBUCKET_STEP_OIDC_TOKEN: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyZWxlYXNlIn0.",
        });
        env.PATH = `${shim}${path.delimiter}${env.PATH}`;
        const { script } = await runBitbucketStep(step, dir, env);
        assert.strictEqual(script.code, 0, script.output.slice(-4000));

        // The image: the tag the task definition runs, built from the rendered Dockerfile and entrypoint.
        const repoUrl = find(resources, "aws:ecr/repository:Repository", "dbt-prod-scheduled-repository").state.repositoryUrl as string;
        const [container] = JSON.parse(find(resources, "aws:ecs/taskDefinition:TaskDefinition", "dbt-prod-scheduled-task-definition").inputs.containerDefinitions);
        const image = { pythonVersion: "3.11", dbtVersion: "1.11.16", adapterPackage: "dbt-postgres", adapterVersion: "1.11.0", awscliVersion: "1.46.2" };
        const tag = runnerImageTag(image);
        assert.strictEqual(container.image, `${repoUrl}:${tag}`);
        const registry = repoUrl.split("/")[0];
        assert.deepStrictEqual(fs.readFileSync(log, "utf8").trim().split("\n"), [
            `docker login --username AWS --password-stdin ${registry}`,
            `docker build --pull -t ${repoUrl}:${tag} ${IMAGE_CONTEXT}`,
            `docker push ${repoUrl}:${tag}`,
        ]);
        assert.ok(fs.readFileSync(`${log}.password`, "utf8").trim().length > 0, "docker login got no ECR password");
        assert.strictEqual(fs.readFileSync(path.join(shim, "context", "Dockerfile"), "utf8"), renderDockerfile(image));
        assert.strictEqual(fs.readFileSync(path.join(shim, "context", "dbt-scheduled-run"), "utf8"), renderEntrypoint());

        // The project: tarball, manifest and pointer at the keys the task's entrypoint reads.
        const env0 = Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
        const prefix = env0.DBT_PROJECT_PREFIX as string;
        assert.strictEqual(prefix, "projects/");
        assert.deepStrictEqual(await moto.listKeys(BUCKET, prefix), [`${prefix}${COMMIT}.tar.gz`, `${prefix}${COMMIT}/manifest.json`, `${prefix}current`].sort());
        assert.strictEqual((await moto.getObject(BUCKET, `${prefix}current`))!.toString(), `${COMMIT}\n`);
        const manifest = JSON.parse((await moto.getObject(BUCKET, `${prefix}${COMMIT}/manifest.json`))!.toString());
        assert.deepStrictEqual(Object.keys(manifest.nodes).sort(), Object.keys(JSON.parse(fs.readFileSync(path.join(dir, "target/manifest.json"), "utf8")).nodes).sort());
        const tarball = path.join(mkdtemp("dbt-release-tar-"), "project.tar.gz");
        fs.writeFileSync(tarball, (await moto.getObject(BUCKET, `${prefix}${COMMIT}.tar.gz`))!);
        const entries = spawnSync("tar", ["-tzf", tarball], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
        for (const must of ["./dbt_project.yml", "./.ci/profiles.yml", "./macros/dbt_platform_drop_pr_schemas.sql"]) assert.ok(entries.includes(must), `tarball lacks ${must}`);
        for (const never of ["./target/", "./logs/", "./.aws-web-identity-token"]) assert.ok(!entries.some((e) => e === never || e.startsWith(never)), `tarball has ${never}`);
        console.log(`      release: published ${prefix}${COMMIT}.tar.gz (${entries.filter((e) => !e.endsWith("/")).length} files), its manifest (${Object.keys(manifest.nodes).length} nodes) and ${prefix}current; image ${repoUrl.split("/")[1]}:${tag} built and pushed (docker stand-in)`);

        // The task: the image's entrypoint with the task definition's environment and secrets (`<arn>:<key>::`).
        const secrets: Record<string, string> = {};
        for (const s of container.secrets as { name: string; valueFrom: string }[]) {
            const m = /^(arn:aws:secretsmanager:[^:]+:\d+:secret:[^:]+):([^:]+)::$/.exec(s.valueFrom)!;
            const secret = resources.find((x) => x.type === "aws:secretsmanager/secret:Secret" && x.state.arn === m[1])!;
            const version = resources.find((x) => x.type === "aws:secretsmanager/secretVersion:SecretVersion" && x.inputs.secretId === secret.id)!;
            secrets[s.name] = String(JSON.parse(version.inputs.secretString)[m[2]]);
        }
        await server.admin(DATABASE, "drop schema analytics cascade");
        await server.admin(DATABASE, "create schema analytics authorization role_prod");
        const home = mkdtemp("dbt-task-home-");
        const run = spawnSync("bash", [path.join(shim, "context", "dbt-scheduled-run")], {
            cwd: home,
            env: pythonEnv({ ...env0, ...secrets, ...moto.env, HOME: home, DBT_LOG_PATH: path.join(home, "logs") }),
            encoding: "utf8",
            maxBuffer: 64 * 1024 * 1024,
        });
        const output = `${run.stdout}${run.stderr}`;
        assert.strictEqual(run.status, 0, output.slice(-4000));
        assert.match(output, new RegExp(`dbt-scheduled-run: project of commit ${COMMIT} \\(projects/current\\)`));
        const built = modelsBuilt(path.join(home, "run/project/target/run_results.json"));
        const models = allModels(path.join(home, "run/project/target/manifest.json"));
        assert.strictEqual(built.length, models.length);
        const owners = await server.admin<{ owner: string }>(DATABASE, "select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'analytics' and c.relkind in ('r','v')");
        assert.deepStrictEqual(owners.map((o) => o.owner), ["role_prod"]);
        console.log(`      scheduled: the task built ${built.length} of ${models.length} models from ${prefix}${COMMIT}.tar.gz as ${secrets.DBT_SCHEDULER_USER} (objects owned by role_prod)`);
    });
    it("Azure DevOps release of the next commit: the existing image tag is not rebuilt; profiles.yml from the secure file goes into the tarball; the pointer moves", async () => {
        // The same stack on Azure DevOps (its files from the same platform function, the same warehouse and resources).
        const c: Record<string, string> = { ...config, "dbt-platform:ci": JSON.stringify({ system: "azure-devops", repository: "acme/analytics/analytics-dbt" }) };
        const awsCfg = JSON.parse(c["dbt-platform:aws"]);
        delete awsCfg.bitbucket;
        awsCfg.azureDevops = { organizationId: "0f8fad5b-d9cb-469f-a165-70867728950e", serviceConnection: "aws-ci", deployServiceConnection: "aws-deploy" };
        c["dbt-platform:aws"] = JSON.stringify(awsCfg);
        const repo = find(resources, "aws:ecr/repository:Repository", "dbt-prod-scheduled-repository").state.repositoryUrl as string;
        const [container] = JSON.parse(find(resources, "aws:ecs/taskDefinition:TaskDefinition", "dbt-prod-scheduled-task-definition").inputs.containerDefinitions);
        const tag = String(container.image).slice(repo.length + 1);
        const ctx = pipelineContext(parseStackConfig("prod", c), undefined, {
            bucket: BUCKET,
            pullRequestRoleArn: "arn:aws:iam::123456789012:role/pr",
            deployRoleArn: "arn:aws:iam::123456789012:role/deploy",
            runnerRepositoryUrl: repo,
            runnerImageTag: tag,
        });
        const azureFiles = renderPipelineFiles(ctx, profilesYaml).files;
        assert.ok(!(".ci/profiles.yml" in azureFiles), "Azure keeps profiles.yml in a secure file");
        const stage = parse(azureFiles["azure-pipelines.yml"]).stages.find((x: any) => x.stage === "deploy");
        const dir = mkdtemp("dbt-release-azure-");
        copyFixture(dir);
        for (const [rel, text] of Object.entries(azureFiles)) {
            fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
            fs.writeFileSync(path.join(dir, rel), text);
        }
        // The image of this tag is in ECR already (an earlier release pushed it): the step must not rebuild it.
        const manifest = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", config: { mediaType: "application/vnd.docker.container.image.v1+json", size: 2, digest: `sha256:${"0".repeat(64)}` }, layers: [] });
        aws(["ecr", "put-image", "--repository-name", repo.slice(repo.indexOf("/") + 1), "--image-tag", tag, "--image-manifest", manifest]);
        const shim = mkdtemp("docker-shim-");
        fs.writeFileSync(path.join(shim, "docker"), `#!/usr/bin/env bash\nprintf 'docker %s\\n' "$*" >> "${shim}/calls.log"\n`, { mode: 0o755 });
        const variables: Record<string, string> = { "Build.BuildId": "78", "Build.SourceBranch": "refs/heads/main" };
        for (const v of jobVariables.deploy) variables[v.name] = settings[v.name];
        const env = pythonEnv({ AWS_ENDPOINT_URL: moto.endpoint, DBT_LOG_PATH: mkdtemp("dbt-release-logs-"), BUILD_SOURCEVERSION: COMMIT2 });
        env.PATH = `${shim}${path.delimiter}${env.PATH}`;
        const r = await runAzureJob(azureSteps(stage), dir, {
            variables,
            parameters: { fullRefresh: "false", fullRefreshSelect: " ", fullBuild: "false" },
            secureFiles: { [azureNames("prod").profilesSecureFile("deploy")]: profilesYaml },
            env,
            // The deploy service connection hands the step credentials (moto accepts any).
            awsEnv: { AWS_ACCESS_KEY_ID: "azure-service-connection", AWS_SECRET_ACCESS_KEY: "azure-service-connection" },
        });
        assert.strictEqual(r.code, 0, r.output.slice(-4000));
        assert.ok(r.output.includes(`image ${repo}:${tag} exists`), r.output.slice(-3000));
        assert.ok(!fs.existsSync(path.join(shim, "calls.log")), "docker ran although the tag exists");
        assert.strictEqual((await moto.getObject(BUCKET, "projects/current"))!.toString(), `${COMMIT2}\n`);
        const tarball = path.join(mkdtemp("dbt-release-tar-"), "project.tar.gz");
        fs.writeFileSync(tarball, (await moto.getObject(BUCKET, `projects/${COMMIT2}.tar.gz`))!);
        const profiles = spawnSync("tar", ["-xzOf", tarball, "./.ci/profiles.yml"], { encoding: "utf8" });
        assert.strictEqual(profiles.status, 0, profiles.stderr);
        assert.strictEqual(profiles.stdout, profilesYaml);
        assert.ok(await moto.getObject(BUCKET, `projects/${COMMIT2}/manifest.json`), "no manifest for the second commit");
        // The first release's objects stay: a task started before the pointer moved still finds its commit.
        assert.ok(await moto.getObject(BUCKET, `projects/${COMMIT}.tar.gz`));
        console.log(`      release (azure-devops): projects/current -> ${COMMIT2}; image ${tag} exists, not rebuilt; .ci/profiles.yml from the secure file in the tarball`);
    });
});
