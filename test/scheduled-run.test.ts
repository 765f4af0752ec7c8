/**
 * @integration The scheduled run itself, executed: ScheduledRuns is declared under mocks with the
 * credential secret that moto's Secrets Manager holds; its container's entrypoint then runs locally
 * (bash, the venv's dbt and awscli) with exactly the environment the task definition injects —
 * its `environment`, each `secrets` entry resolved from moto as ECS does (`<arn>:<json-key>::`),
 * the task role's S3 through moto, and an ECS task metadata endpoint — against a real Postgres as a
 * role-masked prod bot. Proves the build, ownership under masking, the published artifacts, and the
 * fresher+ mode: after new rows land in one source, exactly that source's descendants rebuild.
 */
import assert from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { ScheduledRuns, ScheduledRunsArgs } from "../components/aws/scheduledRuns";
import { matchingLines } from "../components/aws/scheduled/filterPattern";
import { ERROR_FILTER_PATTERN, HEARTBEAT_FILTER_PATTERN } from "../components/aws/scheduledRuns";
import { find } from "../scripts/offline";
import { installAwsMocks } from "./support/awsMocks";
import { MotoServer, MOTO_REGION, startMoto } from "./support/moto";
import { freePort, startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./support/python";
import { maskedProdBotSql, RAW_SOURCES_SQL, writeSourcedProject } from "./support/sourcedProject";

const BUCKET = "acme-dbt-sched";
const DB = "analytics_sched";
const BOT = "dbt_scheduler";
const BOT_PASSWORD = "sched-bot-test-password";
const COMMIT = "4f2a9c0d1e3b5a7968c1d2e3f4a5b6c7d8e9f001";

interface Manifest {
    nodes: Record<string, { resource_type: string }>;
    child_map: Record<string, string[]>;
}

/** Models downstream of `sourceId` in the manifest (through any node type), sorted. */
function sourceDescendants(m: Manifest, sourceId: string): string[] {
    const seen = new Set<string>();
    const queue = [sourceId];
    while (queue.length) {
        for (const c of m.child_map[queue.shift()!] ?? []) if (!seen.has(c)) { seen.add(c); queue.push(c); }
    }
    return [...seen].filter((id) => id.startsWith("model.")).sort();
}

describe("scheduled run: the container's entrypoint with the task definition's environment @integration", function () {
    this.timeout(900_000);
    let server: TestServer;
    let moto: MotoServer;
    let metadata: http.Server;
    let metadataUrl: string;
    let taskCounter = 0;
    let entrypoint: string;
    let container: { environment: { name: string; value: string }[]; secrets: { name: string; valueFrom: string }[] };
    const tmp: string[] = [];
    const mkdtemp = (p: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), p)); tmp.push(d); return d; };
    const aws = (args: string[]) => execFileSync(path.join(VENV_BIN, "aws"), args, { env: pythonEnv(moto.env), encoding: "utf8" });

    /** What ECS puts into the container: the definition's environment and each secret's JSON key. */
    function containerEnv(): Record<string, string> {
        const env: Record<string, string> = {};
        for (const e of container.environment) env[e.name] = e.value;
        const docs = new Map<string, Record<string, unknown>>();
        for (const s of container.secrets) {
            const m = /^(arn:aws:secretsmanager:[^:]+:\d+:secret:[^:]+):([^:]+)::$/.exec(s.valueFrom);
            assert.ok(m, `valueFrom ${s.valueFrom} is not <secret-arn>:<json-key>::`);
            if (!docs.has(m[1])) docs.set(m[1], JSON.parse(aws(["secretsmanager", "get-secret-value", "--secret-id", m[1], "--query", "SecretString", "--output", "text"])));
            const value = docs.get(m[1])![m[2]];
            assert.ok(value !== undefined, `secret has no key ${m[2]}`);
            env[s.name] = String(value);
        }
        return env;
    }

    interface Run { code: number; output: string; runId: string; built: string[]; keys: string[] }

    async function runTask(): Promise<Run> {
        const runId = `0a1b2c3d4e5f${String(++taskCounter).padStart(4, "0")}`;
        (metadata as any).taskId = runId;
        const home = mkdtemp("sched-home-");
        const script = path.join(home, "dbt-scheduled-run");
        fs.writeFileSync(script, entrypoint, { mode: 0o755 });
        // The task role's credentials reach the AWS CLI the way ECS provides them; here moto's.
        const env = pythonEnv({ ...containerEnv(), ...moto.env, HOME: home, ECS_CONTAINER_METADATA_URI_V4: metadataUrl, DBT_LOG_PATH: path.join(home, "logs") });
        // Asynchronously: the metadata endpoint is served from this process's event loop.
        const r = await new Promise<{ status: number | null; output: string }>((resolve, reject) => {
            const child = spawn("bash", [script], { cwd: home, env, stdio: ["ignore", "pipe", "pipe"] });
            let out = "";
            child.stdout.on("data", (b: Buffer) => (out += b.toString()));
            child.stderr.on("data", (b: Buffer) => (out += b.toString()));
            child.on("error", reject);
            child.on("close", (status) => resolve({ status, output: out }));
        });
        const output = r.output;
        const keys = await moto.listKeys(BUCKET, `artifacts/scheduled/history/${runId}/`);
        const rr = await moto.getObject(BUCKET, `artifacts/scheduled/history/${runId}/run_results.json`);
        const built = rr ? [...new Set((JSON.parse(rr.toString()).results as { unique_id: string; status: string }[]).filter((x) => x.unique_id.startsWith("model.") && x.status === "success").map((x) => x.unique_id))].sort() : [];
        return { code: r.status ?? 1, output, runId, built, keys };
    }

    before(async function () {
        ensurePythonEnv();
        [server, moto] = await Promise.all([startPostgres(), startMoto()]);
        await moto.createBucket(BUCKET);
        await server.admin("postgres", `create database ${DB}`);
        for (const s of RAW_SOURCES_SQL) await server.admin(DB, s);
        for (const s of maskedProdBotSql(DB, BOT, BOT_PASSWORD, "analytics")) await server.admin(DB, s);

        // The fake ECS task metadata endpoint (v4): GET <uri>/task → { TaskARN }.
        metadata = http.createServer((req, res) => {
            if (req.url !== "/v4/meta/task") { res.writeHead(404).end(); return; }
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ TaskARN: `arn:aws:ecs:${MOTO_REGION}:123456789012:task/sched/${(metadata as any).taskId}` }));
        });
        const port = await freePort();
        await new Promise<void>((r) => metadata.listen(port, "127.0.0.1", r));
        metadataUrl = `http://127.0.0.1:${port}/v4/meta`;

        const secretArn = JSON.parse(aws(["secretsmanager", "create-secret", "--name", "dbt/prod/scheduler", "--secret-string",
            JSON.stringify({ host: server.host, port: server.port, user: BOT, password: BOT_PASSWORD, dbname: DB, schema: "analytics" })])).ARN as string;

        const args: ScheduledRunsArgs = {
            region: MOTO_REGION,
            artifactsBucketName: BUCKET,
            artifactsBucketArn: `arn:aws:s3:::${BUCKET}`,
            projectCommit: COMMIT,
            image: { pythonVersion: "3.11", dbtVersion: "1.11.16", adapterPackage: "dbt-postgres", adapterVersion: "1.11.0", awscliVersion: "1.46.2" },
            imageTag: "1.11.16",
            credentialSecretArn: secretArn,
            credentialEnv: Object.fromEntries(["host", "port", "user", "password", "dbname", "schema"].map((k) => [`DBT_SCHEDULER_${k.toUpperCase()}`, k])),
            dbtTarget: "scheduler",
            schedules: [{ name: "hourly", expression: "cron(0 * * * ? *)" }],
            network: { subnetIds: ["subnet-0a1b2c3d"], securityGroupIds: ["sg-0123abcd"] },
            runIntervalMinutes: 60,
            freshOnly: { fullBuildEvery: 3 },
        };
        const { resources, settle } = await installAwsMocks("prod");
        const runs = new ScheduledRuns("prod-runs", args);
        await settle();
        entrypoint = runs.entrypoint;
        container = JSON.parse(find(resources, "aws:ecs/taskDefinition:TaskDefinition", "prod-runs-task-definition").inputs.containerDefinitions)[0];

        // What the release publishes: the project tarball and its manifest, by commit.
        const project = writeSourcedProject(mkdtemp("sched-project-"));
        const parseEnv = pythonEnv({ ...containerEnv(), DBT_PROFILES_DIR: path.join(project, ".ci"), DBT_LOG_PATH: path.join(project, "logs") });
        execFileSync(path.join(VENV_BIN, "dbt"), ["parse"], { cwd: project, env: parseEnv, encoding: "utf8" });
        const out = mkdtemp("sched-publish-");
        execFileSync("tar", ["-czf", path.join(out, "project.tar.gz"), "--exclude=target", "--exclude=logs", "-C", project, "."]);
        aws(["s3", "cp", path.join(out, "project.tar.gz"), `s3://${BUCKET}/projects/${COMMIT}.tar.gz`]);
        aws(["s3", "cp", path.join(project, "target", "manifest.json"), `s3://${BUCKET}/projects/${COMMIT}/manifest.json`]);
    });

    after(async () => {
        for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
        await new Promise<void>((r) => (metadata ? metadata.close(() => r()) : r()));
        await Promise.all([moto?.stop(), server?.stop()]);
    });

    let models: string[] = [];
    let manifest: Manifest;

    it("first run: no state yet, so a full build as the masked bot; objects owned by role_prod; artifacts published", async () => {
        const r = await runTask();
        assert.strictEqual(r.code, 0, r.output.slice(-4000));
        assert.match(r.output, /no previous run state under s3:\/\/acme-dbt-sched\/artifacts\/scheduled\/latest\/: full build/);
        const published = await moto.getObject(BUCKET, `artifacts/scheduled/history/${r.runId}/manifest.json`);
        assert.ok(published, `no manifest under artifacts/scheduled/history/${r.runId}/ (have ${r.keys.join(", ") || "nothing"}):\n${r.output.slice(-3000)}`);
        manifest = JSON.parse(published.toString());
        models = Object.keys(manifest.nodes).filter((k) => manifest.nodes[k].resource_type === "model").sort();
        assert.deepStrictEqual(r.built, models);
        const owners = await server.admin<{ owner: string }>(DB, "select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'analytics' and c.relkind in ('r','v')");
        assert.deepStrictEqual(owners.map((o) => o.owner), ["role_prod"]);
        const hist = `artifacts/scheduled/history/${r.runId}/`;
        assert.deepStrictEqual(r.keys, ["manifest.json", "run_results.json", "runs-since-full", "sources.json"].map((f) => hist + f));
        assert.deepStrictEqual(await moto.listKeys(BUCKET, "artifacts/scheduled/latest/"), ["manifest.json", "run_results.json", "runs-since-full", "sources.json"].map((f) => `artifacts/scheduled/latest/${f}`));
        // The logs are JSON: the heartbeat matches once per build, nothing at error level.
        assert.strictEqual(matchingLines(HEARTBEAT_FILTER_PATTERN, r.output).length, 1);
        assert.deepStrictEqual(matchingLines(ERROR_FILTER_PATTERN, r.output), []);
        console.log(`      scheduled: full build ${r.built.length} of ${models.length} models as ${BOT} (objects owned by role_prod)`);
    });

    it("after new rows in raw.orders: fresher+ rebuilds exactly that source's descendants", async () => {
        await server.admin(DB, "insert into raw.orders select g, g * 2, now() from generate_series(51, 60) g");
        const r = await runTask();
        assert.strictEqual(r.code, 0, r.output.slice(-4000));
        assert.match(r.output, /building what has new data \(source_status:fresher\+\)/);
        const expected = sourceDescendants(manifest, "source.acme_sched.raw.orders");
        assert.deepStrictEqual(expected, ["model.acme_sched.activity", "model.acme_sched.orders_daily", "model.acme_sched.stg_orders"]);
        assert.deepStrictEqual(r.built, expected);
        const rows = await server.admin<{ orders: string }>(DB, "select sum(orders)::text as orders from analytics.orders_daily");
        assert.strictEqual(rows[0].orders, "60");
        console.log(`      scheduled: built ${r.built.length} of ${models.length} models (fresher+)`);
    });

    it("no new data: fresher+ builds nothing; the third run since the full build is a full build again", async () => {
        assert.ok(models.length > 0, "the first run found no models");
        const idle = await runTask();
        assert.strictEqual(idle.code, 0, idle.output.slice(-4000));
        assert.deepStrictEqual(idle.built, []);
        // A run with nothing to build still beats the heartbeat (NothingToDo instead of StatsLine), and is no error.
        assert.strictEqual(matchingLines(HEARTBEAT_FILTER_PATTERN, idle.output).length, 1);
        assert.deepStrictEqual(matchingLines(ERROR_FILTER_PATTERN, idle.output), []);
        console.log(`      scheduled: built ${idle.built.length} of ${models.length} models (fresher+, no new data); heartbeat lines ${matchingLines(HEARTBEAT_FILTER_PATTERN, idle.output).length}`);
        const periodic = await runTask();
        assert.strictEqual(periodic.code, 0, periodic.output.slice(-4000));
        assert.match(periodic.output, /full build \(every 3 runs\)/);
        assert.deepStrictEqual(periodic.built, models);
    });

    it("a failing run exits non-zero, logs error events, keeps its artifacts in history and leaves latest/ as the last good run", async () => {
        const latestBefore = await moto.getObject(BUCKET, "artifacts/scheduled/latest/run_results.json");
        await server.admin(DB, "insert into raw.orders select g, g, now() from generate_series(61, 65) g");
        await server.admin(DB, "alter table raw.orders rename column amount to amount_renamed");
        try {
            const r = await runTask();
            assert.notStrictEqual(r.code, 0, "the run should fail: stg_orders selects a column that no longer exists");
            assert.ok(matchingLines(ERROR_FILTER_PATTERN, r.output).length >= 1, "no error event in the failing run's log");
            assert.ok(r.keys.includes(`artifacts/scheduled/history/${r.runId}/run_results.json`), `history of the failed run: ${r.keys.join(", ")}`);
            assert.deepStrictEqual(await moto.getObject(BUCKET, "artifacts/scheduled/latest/run_results.json"), latestBefore, "a failed run replaced latest/");
            assert.match(r.output, new RegExp(`run ${r.runId} \\(fresher\\) exited [1-9]`));
        } finally {
            await server.admin(DB, "alter table raw.orders rename column amount_renamed to amount");
        }
    });
});
