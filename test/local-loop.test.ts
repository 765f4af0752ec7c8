/**
 * The developers' local loop (issue 16 §4): the rendered Makefile, unit-checked, then run with
 * the real make by a developer login on a real Postgres (mirroring PostgresWarehouse: member of
 * role_dev, owner of dbt_<name>), with the production manifest in moto S3 read through the
 * developer's own AWS profile.
 */
import assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LATEST_MANIFEST_KEY } from "../components/aws/artifactStore";
import { LOCAL_LOOP_FILE, LocalLoopContext, localLoopContext, localLoopProblems, renderLocalLoop } from "../components/pipelines/localLoop";
import { PipelineContext } from "../components/pipelines";
import { parseStackConfig } from "../components/config";
import { DbtPlatform } from "../components/platform";
import { parse } from "yaml";
import { resolve, ROOT, runProgram, stackConfig, toPulumiConfig } from "../scripts/offline";
import { allModels, changeOneModel, copyFixture, descendants, modelsBuilt, runDbt, writeProfiles } from "./support/dbtProject";
import { MotoServer, startMoto } from "./support/moto";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, pythonEnv } from "./support/python";

const CTX: LocalLoopContext = { stack: "prod", bucket: "acme-dbt-local", manifestKey: LATEST_MANIFEST_KEY, region: "eu-west-1", target: "dev", projectDir: ".", awsProfile: "data-engineer" };

function make(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn("make", ["--no-print-directory", ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (b: Buffer) => (output += b.toString()));
        child.stderr.on("data", (b: Buffer) => (output += b.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? -1, output }));
    });
}

describe("local loop: the rendered Makefile", () => {
    it("declares the four recipes and takes every value from the context", () => {
        const text = renderLocalLoop(CTX);
        for (const recipe of ["fetch-manifest:", "dev: fetch-manifest", "dev-select: fetch-manifest", "clean-artifacts:"]) assert.ok(text.includes(`\n${recipe}\n`), `no ${recipe}`);
        assert.match(text, /^STATE_BUCKET := acme-dbt-local$/m);
        assert.match(text, /^STATE_KEY := artifacts\/latest\/manifest\.json$/m);
        assert.match(text, /^AWS_PROFILE \?= data-engineer$/m);
        assert.match(text, /^DBT_TARGET \?= dev$/m);
        assert.match(text, /--select state:modified\+ --defer --state \$\(STATE_DIR\)/);
    });

    it("is valid make: a dry run prints the deferred build", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-loop-dry-"));
        try {
            fs.writeFileSync(path.join(dir, LOCAL_LOOP_FILE), renderLocalLoop(CTX));
            const r = spawnSync("make", ["-n", "dev", "ARGS=--fail-fast"], { cwd: dir, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stderr);
            assert.match(r.stdout, /aws s3 cp s3:\/\/acme-dbt-local\/artifacts\/latest\/manifest\.json \.artifacts\/manifest\.json\.part --region eu-west-1 --profile data-engineer/);
            assert.match(r.stdout, /dbt build --project-dir \. --target dev --select state:modified\+ --defer --state \.artifacts --fail-fast/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("comes from a stack's pipeline context, and none without an AWS bucket", () => {
        const ctx = { stack: "dev", dbt: {}, aws: { region: "eu-central-1", bucket: "acme-dbt-dev", deployRoleArn: "arn" }, localLoop: { target: "dev" } } as PipelineContext;
        assert.deepStrictEqual(localLoopContext(ctx, { target: "dev_anton" }), { stack: "dev", bucket: "acme-dbt-dev", manifestKey: LATEST_MANIFEST_KEY, region: "eu-central-1", target: "dev_anton", projectDir: ".", awsProfile: undefined });
        assert.strictEqual(localLoopContext({ ...ctx, aws: undefined }), undefined);
        // No developers, no Makefile.
        assert.strictEqual(localLoopContext({ ...ctx, localLoop: undefined }), undefined);
    });

    it("refuses values that make or sh would interpret, naming each field", () => {
        const bad = { ...CTX, bucket: "Acme_Bucket", target: "dev; rm -rf /", projectDir: "../elsewhere", awsProfile: "$(whoami)" };
        assert.deepStrictEqual(localLoopProblems(bad).map((p) => p.split(" = ")[0]), ["bucket", "target", "projectDir", "awsProfile"]);
        assert.throws(() => renderLocalLoop(bad), /local loop for stack prod: invalid context:\n {2}- bucket = "Acme_Bucket": expected an S3 bucket name/);
        assert.throws(() => renderLocalLoop({ ...CTX, projectDir: "/abs" }), /projectDir = "\/abs"/);
        assert.doesNotThrow(() => renderLocalLoop({ ...CTX, projectDir: "transform/dbt", awsProfile: undefined }));
    });
});

describe("local loop: rendered by the program", function () {
    this.timeout(120_000);
    it("the prod stack (AWS, developers) renders the Makefile at the repository root from its own bucket and region", async () => {
        const files = (await resolve((await runProgram("prod")).exports.pipelineFiles)).value as Record<string, string>;
        const text = files[LOCAL_LOOP_FILE];
        assert.ok(text, `no ${LOCAL_LOOP_FILE} in ${Object.keys(files).join(", ")}`);
        assert.match(text, /^STATE_BUCKET := dbt-prod-artifacts-bucket-[0-9a-f]+$/m);
        assert.match(text, /^STATE_REGION := eu-west-1$/m);
        assert.match(text, /^DBT_TARGET \?= dev$/m);
    });

    it("a stack without AWS renders none", async () => {
        const files = (await resolve((await runProgram("dev")).exports.pipelineFiles)).value as Record<string, string>;
        assert.strictEqual(files[LOCAL_LOOP_FILE], undefined);
    });

    it("a component name that cannot name the auto-named bucket fails before anything is registered", async () => {
        const config = parseStackConfig("prod", stackConfig("prod"));
        assert.throws(() => new DbtPlatform("Dbt_Prod", { config, warehouseAdminPassword: "x" }), /Dbt_Prod: the developers' local loop \(Makefile\) cannot be rendered:\n {2}- bucket = "Dbt_Prod-artifacts-bucket-0000000": expected an S3 bucket name/);
    });
});

describe("local loop: a developer's make dev on a real Postgres with the manifest in moto S3 @integration", function () {
    this.timeout(600_000);
    const DATABASE = "analytics_local";
    const CHANGED = "int_customer_sessions";
    let pg: TestServer;
    let moto: MotoServer;
    let tmp: string;
    let repo: string;
    let env: NodeJS.ProcessEnv;
    let prodModels: string[];

    const relationsIn = async (schema: string) =>
        (await pg.admin<{ table_name: string }>(DATABASE, "select table_name from information_schema.tables where table_schema = $1 order by 1", [schema])).map((r) => r.table_name);

    before(async () => {
        ensurePythonEnv();
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "local-loop-"));
        [pg, moto] = await Promise.all([startPostgres(), startMoto()]);
        await pg.admin("postgres", `create database ${DATABASE}`);
        // What PostgresWarehouse creates, in plain SQL: group roles, a masked deploy bot owning
        // production through role_prod, and a developer in role_dev owning dbt_anton, reading production.
        for (const sql of [
            "create role role_dev nologin inherit",
            "create role role_prod nologin inherit",
            `grant connect, create on database ${DATABASE} to role_dev, role_prod`,
            "create role deployer login password 'deployer-pw' inherit in role role_prod",
            "alter role deployer set role role_prod",
            "create role anton login password 'anton-pw' inherit in role role_dev",
        ]) await pg.admin("postgres", sql);
        for (const sql of [
            "revoke create on schema public from public",
            "create schema analytics authorization role_prod",
            "create schema dbt_anton authorization anton",
            "grant usage on schema analytics to role_dev",
            "grant select on all tables in schema analytics to role_dev",
            "alter default privileges for role role_prod in schema analytics grant select on tables to role_dev",
            "alter default privileges for role role_prod grant usage on schemas to role_dev",
            "alter default privileges for role role_prod grant select on tables to role_dev",
        ]) await pg.admin(DATABASE, sql);

        // Production: the deploy bot builds the fixture; its manifest goes to the stack's bucket.
        const conn = { host: pg.host, port: pg.port, dbname: DATABASE };
        const prodDir = copyFixture(path.join(tmp, "prod"));
        const prodProfiles = path.join(tmp, "prod-profiles");
        writeProfiles(prodProfiles, { prod: { ...conn, user: "deployer", password: "deployer-pw", schema: "analytics" } });
        await runDbt(["build", "--project-dir", prodDir, "--target", "prod"], { DBT_PROFILES_DIR: prodProfiles, DBT_LOG_PATH: path.join(tmp, "logs-prod") });
        prodModels = allModels(path.join(prodDir, "target", "manifest.json"));
        await moto.createBucket(CTX.bucket);
        const put = spawnSync("aws", ["s3", "cp", path.join(prodDir, "target", "manifest.json"), `s3://${CTX.bucket}/${CTX.manifestKey}`], { env: pythonEnv(moto.env), encoding: "utf8" });
        assert.strictEqual(put.status, 0, put.stderr);

        // The developer's machine: a checkout with one changed model, their own profiles.yml and
        // their own named AWS profile (no AWS_* keys in the environment).
        // The Makefile the program renders for a prod stack whose bucket is this moto bucket.
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.prod.yaml`, "utf8")).config;
        doc["dbt-platform:aws"].artifacts.bucketName = CTX.bucket;
        const files = (await resolve((await runProgram("prod", toPulumiConfig(doc))).exports.pipelineFiles)).value as Record<string, string>;
        repo = copyFixture(path.join(tmp, "repo"));
        fs.writeFileSync(path.join(repo, LOCAL_LOOP_FILE), files[LOCAL_LOOP_FILE]);
        changeOneModel(repo, CHANGED);
        const home = path.join(tmp, "home");
        writeProfiles(path.join(home, ".dbt"), { dev: { ...conn, user: "anton", password: "anton-pw", schema: "dbt_anton" } });
        fs.mkdirSync(path.join(home, ".aws"));
        fs.writeFileSync(path.join(home, ".aws", "credentials"), `[data-engineer]\naws_access_key_id = ${moto.env.AWS_ACCESS_KEY_ID}\naws_secret_access_key = ${moto.env.AWS_SECRET_ACCESS_KEY}\n`);
        fs.writeFileSync(path.join(home, ".aws", "config"), "[profile data-engineer]\nregion = eu-west-1\n");
        env = pythonEnv({ HOME: home, AWS_ENDPOINT_URL: moto.endpoint, DBT_LOG_PATH: path.join(tmp, "logs-dev") });
    });

    after(async () => {
        await Promise.all([pg?.stop(), moto?.stop()]);
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("make dev builds only the changed model and its descendants in the developer's schema, deferring to production", async () => {
        const r = await make(["dev", `AWS_PROFILE=${CTX.awsProfile}`], repo, env);
        assert.strictEqual(r.code, 0, r.output.slice(-4000));
        assert.match(r.output, /Production manifest in \.artifacts\/manifest\.json/);
        const minimal = descendants(path.join(repo, ".artifacts", "manifest.json"), CHANGED);
        const built = modelsBuilt(path.join(repo, "target", "run_results.json"));
        console.log(`      make dev: built ${built.length} of ${prodModels.length} models (minimal ${minimal.length}) in dbt_anton`);
        assert.deepStrictEqual(built, minimal);
        assert.ok(minimal.length < prodModels.length / 2);
        // Exactly those relations in the developer's schema, owned by the developer.
        assert.deepStrictEqual(await relationsIn("dbt_anton"), minimal.map((id) => id.split(".").pop()!).sort());
        const owners = await pg.admin<{ owner: string }>(DATABASE, "select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'dbt_anton' and c.relkind in ('r','v')");
        assert.deepStrictEqual(owners.map((o) => o.owner), ["anton"]);
        // Deferral really read production: the changed model's view selects from analytics.
        const [def] = await pg.admin<{ d: string }>(DATABASE, `select pg_get_viewdef('dbt_anton.${CHANGED}'::regclass) as d`);
        assert.match(def.d, /analytics\.stg_/);
    });

    it("make dev-select builds a selection with deferral; without SELECT it says how to call it", async () => {
        const r = await make(["dev-select", "SELECT=dim_countries", `AWS_PROFILE=${CTX.awsProfile}`], repo, env);
        assert.strictEqual(r.code, 0, r.output.slice(-4000));
        assert.deepStrictEqual(modelsBuilt(path.join(repo, "target", "run_results.json")).map((id) => id.split(".").pop()), ["dim_countries"]);
        const usage = await make(["dev-select"], repo, env);
        assert.notStrictEqual(usage.code, 0);
        assert.match(usage.output, /usage: make dev-select SELECT='<dbt selection>'/);
    });

    it("clean-artifacts removes the manifest; with no manifest in the bucket make dev builds everything", async () => {
        const clean = await make(["clean-artifacts"], repo, env);
        assert.strictEqual(clean.code, 0, clean.output);
        assert.ok(!fs.existsSync(path.join(repo, ".artifacts")));
        await pg.admin(DATABASE, "drop schema dbt_anton cascade");
        await pg.admin(DATABASE, "create schema dbt_anton authorization anton");
        // The developer's profile can read the bucket, but the manifest is gone (a new stack, say).
        const rm = spawnSync("aws", ["s3", "rm", `s3://${CTX.bucket}/${CTX.manifestKey}`], { env: pythonEnv(moto.env), encoding: "utf8" });
        assert.strictEqual(rm.status, 0, rm.stderr);
        const r = await make(["dev", `AWS_PROFILE=${CTX.awsProfile}`], repo, env);
        assert.strictEqual(r.code, 0, r.output.slice(-4000));
        assert.match(r.output, /warning: no production manifest from s3:\/\/acme-dbt-local\/artifacts\/latest\/manifest\.json: dev builds everything/);
        assert.ok(!fs.existsSync(path.join(repo, ".artifacts", "manifest.json")));
        assert.deepStrictEqual(modelsBuilt(path.join(repo, "target", "run_results.json")), prodModels);
    });
});
