/**
 * @integration The real-dbt harness: the venv's dbt builds the fixture project on a real
 * Postgres as production, the manifest goes through a local S3 endpoint (moto_server) with the
 * venv's AWS CLI, and a pull-request run does slim CI (state:modified+ with deferral) the way
 * the rendered pipelines do, falling back to a full build when there is no manifest.
 */
import assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { allModels, changeOneModel, copyFixture, descendants, FIXTURE_DIR, modelsBuilt, runDbt, writeProfiles } from "./support/dbtProject";
import { MotoServer, startMoto } from "./support/moto";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./support/python";

const DATABASE = "warehouse";
const BUCKET = "acme-dbt-artifacts";
const MANIFEST_KEY = "artifacts/latest/manifest.json";
/** Mid-DAG: one staging parent (deferred), four models downstream, one of them fan-in. */
const CHANGED = "int_customer_sessions";

/** What a pull-request pipeline runs: fetch the production manifest; slim CI if there is one. */
const CI_SCRIPT = `
set -euo pipefail
mkdir -p "$STATE_DIR"
if aws s3 cp "s3://$BUCKET/$MANIFEST_KEY" "$STATE_DIR/manifest.json"; then
    dbt build --target ci --select state:modified+ --defer --state "$STATE_DIR" --project-dir "$PROJECT_DIR" --target-path "$TARGET_PATH"
else
    echo "no production manifest: full build"
    dbt build --target ci --project-dir "$PROJECT_DIR" --target-path "$TARGET_PATH"
fi
`;

function bash(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", ["-c", script], { env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (b: Buffer) => (output += b.toString()));
        child.stderr.on("data", (b: Buffer) => (output += b.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? -1, output }));
    });
}

const tail = (s: string) => s.trim().split("\n").slice(-40).join("\n");
const short = (ids: string[]) => ids.map((id) => id.split(".").pop()!).sort();

describe("dbt harness: slim CI with deferral on Postgres and a local S3 @integration", function () {
    let pg: TestServer | undefined;
    let moto: MotoServer | undefined;
    let tmp: string;
    let project: string;
    let dbtEnv: Record<string, string>;
    let prodManifest: string;

    const relations = async (schema: string) =>
        (await pg!.admin<{ table_name: string }>(DATABASE, "select table_name from information_schema.tables where table_schema = $1", [schema])).map((r) => r.table_name).sort();
    const columns = async (schema: string, table: string) =>
        (await pg!.admin<{ column_name: string }>(DATABASE, "select column_name from information_schema.columns where table_schema = $1 and table_name = $2", [schema, table])).map(
            (r) => r.column_name,
        );
    const ciRun = async (schema: string, key: string) => {
        const targetPath = path.join(tmp, `target-${schema}`);
        const env = pythonEnv({
            ...moto!.env,
            ...dbtEnv,
            DBT_CI_SCHEMA: schema,
            BUCKET,
            MANIFEST_KEY: key,
            STATE_DIR: path.join(tmp, `state-${schema}`),
            PROJECT_DIR: project,
            TARGET_PATH: targetPath,
        });
        const r = await bash(CI_SCRIPT, env);
        assert.strictEqual(r.code, 0, `CI run for ${schema} failed:\n${tail(r.output)}`);
        return { targetPath, output: r.output };
    };

    before(async function () {
        this.timeout(900_000);
        ensurePythonEnv();
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-harness-"));
        [pg, moto] = await Promise.all([startPostgres(), startMoto()]);
        await pg.admin("postgres", `create database ${DATABASE}`);

        project = copyFixture(path.join(tmp, "project"));
        const conn = { host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, dbname: DATABASE, threads: 4 };
        const profilesDir = path.join(tmp, "profiles");
        // The CI schema comes from the environment, as in the platform's rendered profile.
        writeProfiles(profilesDir, { prod: { ...conn, schema: "analytics" }, ci: { ...conn, schema: "{{ env_var('DBT_CI_SCHEMA') }}" } });
        dbtEnv = { DBT_PROFILES_DIR: profilesDir, DBT_LOG_PATH: path.join(tmp, "logs") };

        const prodTarget = path.join(tmp, "target-prod");
        await runDbt(["build", "--target", "prod", "--project-dir", project, "--target-path", prodTarget], dbtEnv);
        prodManifest = path.join(prodTarget, "manifest.json");

        await moto.createBucket(BUCKET);
        const up = await bash(`aws s3 cp "$SRC" "s3://$BUCKET/$KEY"`, pythonEnv({ ...moto.env, SRC: prodManifest, BUCKET, KEY: MANIFEST_KEY }));
        assert.strictEqual(up.code, 0, `upload failed:\n${up.output}`);
    });

    after(async function () {
        this.timeout(60_000);
        await Promise.allSettled([moto?.stop(), pg?.stop()]);
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("runs the venv's dbt, aws and moto_server, not copies from PATH", async () => {
        const r = await bash("command -v dbt aws moto_server", pythonEnv());
        assert.deepStrictEqual(r.output.trim().split("\n"), ["dbt", "aws", "moto_server"].map((b) => path.join(VENV_BIN, b)));
    });

    it("builds every fixture model into analytics as production, leaving the fixture untouched", async () => {
        const models = allModels(prodManifest);
        assert.ok(models.length >= 30, `fixture has ${models.length} models`);
        assert.deepStrictEqual(modelsBuilt(path.join(tmp, "target-prod", "run_results.json")), models);
        const inAnalytics = await relations("analytics");
        for (const name of short(models)) assert.ok(inAnalytics.includes(name), `analytics.${name} missing`);
        assert.ok(!fs.existsSync(path.join(FIXTURE_DIR, "target")) && !fs.existsSync(path.join(FIXTURE_DIR, "logs")), "dbt wrote into the fixture");
    });

    it("round-trips the production manifest through the S3 endpoint", async () => {
        assert.deepStrictEqual(await moto!.listKeys(BUCKET, "artifacts/"), [MANIFEST_KEY]);
        const stored = await moto!.getObject(BUCKET, MANIFEST_KEY);
        assert.ok(stored?.equals(fs.readFileSync(prodManifest)), "stored manifest differs from target/manifest.json");
        assert.strictEqual(await moto!.getObject(BUCKET, "artifacts/latest/nothing.json"), undefined);
        const back = path.join(tmp, "downloaded", "manifest.json");
        const r = await bash(`aws s3 cp "s3://$BUCKET/$KEY" "$DEST"`, pythonEnv({ ...moto!.env, BUCKET, KEY: MANIFEST_KEY, DEST: back }));
        assert.strictEqual(r.code, 0, r.output);
        assert.ok(fs.readFileSync(back).equals(fs.readFileSync(prodManifest)));
    });

    it("slim CI builds exactly the changed model and its descendants, reading the rest from analytics", async () => {
        changeOneModel(project, CHANGED);
        const expected = descendants(prodManifest, CHANGED);
        const { targetPath } = await ciRun("dbt_pr_7", MANIFEST_KEY);

        const built = modelsBuilt(path.join(targetPath, "run_results.json"));
        assert.deepStrictEqual(built, expected);
        assert.ok(built.length > 1 && built.length < allModels(prodManifest).length / 3, `built ${built.length} models`);

        // Only the built relations land in the PR schema; no seeds, no unselected models.
        assert.deepStrictEqual(await relations("dbt_pr_7"), short(built));
        assert.ok((await columns("dbt_pr_7", CHANGED)).includes("pr_change_marker"));
        assert.ok(!(await columns("analytics", CHANGED)).includes("pr_change_marker"), "production was touched");

        // Unselected parents resolve to production; selected ones to the PR schema.
        const compiled = (model: string, layer: string) => fs.readFileSync(path.join(targetPath, "compiled", "acme_analytics", "models", layer, `${model}.sql`), "utf8");
        assert.match(compiled(CHANGED, "intermediate"), /"warehouse"\."analytics"\."stg_web_sessions"/);
        const dim = compiled("dim_customers", "marts");
        assert.match(dim, /"warehouse"\."dbt_pr_7"\."int_customer_sessions"/);
        assert.match(dim, /"warehouse"\."analytics"\."int_customers_with_geo"/);
        assert.match(dim, /"warehouse"\."analytics"\."int_customer_orders"/);

        // Downstream models query through the deferred production relations.
        const [summary] = await pg!.admin(DATABASE, "select net_revenue, order_count, vip_customers from dbt_pr_7.executive_summary");
        const [prod] = await pg!.admin(DATABASE, "select net_revenue, order_count, vip_customers from analytics.executive_summary");
        assert.deepStrictEqual(summary, prod);
        const [{ n }] = await pg!.admin(DATABASE, "select count(*)::int as n from dbt_pr_7.customer_segments");
        assert.strictEqual(n, 12);
    });

    it("falls back to a full build when there is no production manifest", async () => {
        const { targetPath, output } = await ciRun("dbt_pr_8", "artifacts/latest/missing/manifest.json");
        assert.match(output, /no production manifest: full build/);
        const models = allModels(prodManifest);
        assert.deepStrictEqual(modelsBuilt(path.join(targetPath, "run_results.json")), models);
        const inSchema = await relations("dbt_pr_8");
        for (const name of short(models)) assert.ok(inSchema.includes(name), `dbt_pr_8.${name} missing`);
    });
});
