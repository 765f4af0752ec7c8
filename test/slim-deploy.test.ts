/**
 * @integration Slim deploys (issue 16 #2), executed: the rendered deploy jobs run against the
 * real-shaped project (incrementals, a snapshot, seeds, custom schemas, an ephemeral model) on a
 * real Postgres with the platform's access model applied, moto_server as the artifacts bucket.
 * After a one-model merge only that model and its descendants rebuild, and production then holds
 * what full builds of the same merges produce (row counts and checksums of every relation).
 */
import assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { renderPipelineFiles, RenderedPipelines } from "../components/pipelines";
import { parseStackConfig } from "../components/config";
import { pipelineContext } from "../components/platform";
import { withCiSystem } from "../scripts/render";
import { resolve, runProgram, toPulumiConfig } from "../scripts/offline";
import { applyRecorded } from "./support/apply";
import { bash, RunResult, runBitbucketStep, runGithubJob } from "./support/ciRun";
import { allModels, changeOneModel, descendants, modelsBuilt } from "./support/dbtProject";
import { MotoServer, startMoto } from "./support/moto";
import { startPostgres, TestServer } from "./support/postgres";
import { stackOnServers } from "./support/stackOnServers";
import { ensurePythonEnv, pythonEnv } from "./support/python";

const REAL_PROJECT = path.resolve(__dirname, "fixtures", "real-project");
const BUCKET = "acme-dbt-slim";
const DATABASE = "analytics_slim";
/** The merged change: its descendants include an incremental (merge) model and, through the snapshot, a table. */
const CHANGED = "stg_customers";
/** Production's schemas and the reference full build's (the CI target in a schema of its own). */
const PROD = ["analytics", "analytics_shop", "analytics_events"];
const REFERENCE = "dbt_pr_990";
/**
 * Columns a run stamps with its own clock: the snapshot's validity columns and fct_orders'
 * `now() as loaded_at`. Two builds can never agree on them, so the checksum leaves them out.
 */
const RUN_CLOCK_COLUMNS = ["dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "loaded_at"];

/** Models a build materialises (ephemeral ones are inlined, never in run_results as built). */
function materialised(manifestPath: string): string[] {
    const nodes = JSON.parse(fs.readFileSync(manifestPath, "utf8")).nodes as Record<string, { config: { materialized: string } }>;
    return allModels(manifestPath).filter((id) => nodes[id].config.materialized !== "ephemeral");
}

const plain = (r: RunResult): RunResult => ({ code: r.code, output: r.output.replace(/\x1b\[[0-9;]*m/g, "") });

describe("slim deploys on a real-shaped dbt project @integration", function () {
    this.timeout(1_200_000);
    let server: TestServer;
    let moto: MotoServer;
    let settings: Record<string, string>;
    let profilesYaml: string;
    let github: RenderedPipelines;
    let bitbucket: RenderedPipelines;
    const dirs: string[] = [];

    function render(system: "github" | "bitbucket", baseConfig: Record<string, string>, roles: { pullRequestRoleArn: string; deployRoleArn: string }): RenderedPipelines {
        const { config } = withCiSystem(baseConfig, system);
        return renderPipelineFiles(pipelineContext(parseStackConfig("prod", config), undefined, { bucket: BUCKET, ...roles }), profilesYaml);
    }

    /** A checkout of the main branch after `merged` edits: the project, the rendered files, the edits. */
    function checkout(files: Record<string, string>, merged: string[]): string {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-slim-repo-"));
        dirs.push(dir);
        fs.cpSync(REAL_PROJECT, dir, { recursive: true });
        for (const [rel, text] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
            fs.writeFileSync(path.join(dir, rel), text);
        }
        for (const m of merged) changeOneModel(dir, m);
        return dir;
    }

    const logs = () => fs.mkdtempSync(path.join(os.tmpdir(), "dbt-slim-logs-"));

    function deploySettings(r: RenderedPipelines): Record<string, string> {
        const out: Record<string, string> = {};
        for (const v of r.model.jobs.find((j) => j.id === "deploy")!.variables) out[v.name] = settings[v.name];
        return out;
    }

    /** deploy.yml of the prod stack (a gated release from main), with or without the full_build input. */
    async function githubDeploy(dir: string, run: string, fullBuild = false): Promise<RunResult> {
        const job = parse(github.files[".github/workflows/deploy.yml"]).jobs.deploy;
        const context = {
            "github.run_id": run,
            "github.run_attempt": "1",
            "github.ref_name": "main",
            "inputs.full_refresh && 'true' || 'false'": "false",
            "inputs.full_refresh_select": "",
            "inputs.full_build && 'true' || 'false'": fullBuild ? "true" : "false",
        };
        const onUses = (step: any, env: NodeJS.ProcessEnv) => {
            if (!String(step.uses).startsWith("aws-actions/configure-aws-credentials")) return;
            const token = path.join(dir, ".gh-oidc-token");
            fs.writeFileSync(token, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJnaCJ9.");
            Object.assign(env, { AWS_ROLE_ARN: step.with["role-to-assume"], AWS_WEB_IDENTITY_TOKEN_FILE: token, AWS_DEFAULT_REGION: step.with["aws-region"] });
        };
        const base = pythonEnv({ AWS_ENDPOINT_URL: moto.endpoint, DBT_LOG_PATH: logs() });
        return plain(await runGithubJob(job, dir, { settings: deploySettings(github), context, env: base, onUses }));
    }

    /** The reference: a full `dbt build` of the same checkout by the CI bot into the REFERENCE schema family. */
    function referenceBuild(dir: string): RunResult {
        const ci: Record<string, string> = {};
        for (const v of github.model.jobs.find((j) => j.id === "pull-request")!.variables) ci[v.name] = settings[v.name];
        const env = { ...pythonEnv({ DBT_LOG_PATH: logs() }), ...ci, DBT_CI_SCHEMA: REFERENCE, DBT_PROFILES_DIR: ".ci" };
        return plain(bash("dbt deps --quiet && dbt build --target ci --fail-fast", dir, env));
    }

    /** Relation name → "rows <n> md5 <checksum of the ordered rows>" for every table and view of `schemas`. */
    async function fingerprint(schemas: string[], base: string): Promise<Record<string, string>> {
        const rels = await server.admin<{ nspname: string; relname: string }>(
            DATABASE,
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = any($1) and c.relkind in ('r', 'v') order by 1, 2",
            [schemas],
        );
        const out: Record<string, string> = {};
        for (const { nspname, relname } of rels) {
            const cols = await server.admin<{ column_name: string }>(DATABASE, "select column_name from information_schema.columns where table_schema = $1 and table_name = $2 order by column_name", [nspname, relname]);
            const kept = cols.map((c) => c.column_name).filter((c) => !RUN_CLOCK_COLUMNS.includes(c));
            const row = `row(${kept.map((c) => `t."${c}"`).join(", ")})::text`;
            const [r] = await server.admin<{ n: string; sum: string }>(DATABASE, `select count(*)::text as n, md5(coalesce(string_agg(${row}, E'\\n' order by ${row}), '')) as sum from "${nspname}"."${relname}" t`);
            // analytics_shop.fct_orders and dbt_pr_990_shop.fct_orders are the same relation of two environments.
            out[`${nspname.slice(base.length) || "."}/${relname} (${kept.join(",")})`] = `rows ${r.n} md5 ${r.sum}`;
        }
        return out;
    }

    before(async function () {
        ensurePythonEnv();
        [server, moto] = await Promise.all([startPostgres(), startMoto()]);
        await moto.createBucket(BUCKET);
        const doc = stackOnServers("prod", server, { database: DATABASE, bucket: BUCKET, features: { docsSite: false, scheduledRuns: false, projectEvaluator: false } });
        const baseConfig = toPulumiConfig(doc);
        const { resources, exports } = await runProgram("prod", baseConfig);
        await applyRecorded(server, resources);
        settings = (await resolve(exports.profileEnvironment)).value as Record<string, string>;
        profilesYaml = (await resolve(exports.profilesYaml)).value as string;
        const arns = exports.ciRoleArns as unknown as Record<"pullRequest" | "deploy", import("@pulumi/pulumi").Output<string>>;
        const roles = { pullRequestRoleArn: (await resolve(arns.pullRequest)).value, deployRoleArn: (await resolve(arns.deploy)).value };
        github = render("github", baseConfig, roles);
        bitbucket = render("bitbucket", baseConfig, roles);
        // The source the project reads by name (fct_web_events' events); it does not change during these runs.
        await server.admin(
            DATABASE,
            `create schema landing;
             create table landing.web_events as
               select g as event_id, (g % 5) + 1 as customer_id, 'view'::text as event_type, timestamp '2026-11-01' + g * interval '1 hour' as occurred_at
               from generate_series(1, 20) g;
             grant usage on schema landing to role_dev, role_prod;
             grant select on all tables in schema landing to role_dev, role_prod;`,
        );
    });

    after(async () => {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
        await Promise.all([moto?.stop(), server?.stop()]);
    });

    it("first deploy builds everything; after a one-model merge only it and its descendants rebuild, and production equals full builds of the same merges", async () => {
        // Merge 0: nothing published yet, so the deploy builds the whole project (and the reference, the same commit in full).
        const first = checkout(github.files, []);
        const d1 = await githubDeploy(first, "slim-1");
        assert.strictEqual(d1.code, 0, d1.output.slice(-4000));
        assert.match(d1.output, /No production manifest yet/);
        const total = materialised(path.join(first, "target/manifest.json"));
        assert.deepStrictEqual(modelsBuilt(path.join(first, "target/run_results.json")), total);
        const r1 = referenceBuild(checkout(github.files, []));
        assert.strictEqual(r1.code, 0, r1.output.slice(-4000));

        // Merge 1: one model changes; the slim deploy defers to merge 0's manifest.
        const second = checkout(github.files, [CHANGED]);
        const d2 = await githubDeploy(second, "slim-2");
        assert.strictEqual(d2.code, 0, d2.output.slice(-4000));
        assert.match(d2.output, /Production manifest: dbt 1\.11\.\d+, \d+\.\d hours old/);
        assert.match(d2.output, /Slim deploy: building state:modified\+ against the last good production manifest/);
        const built = modelsBuilt(path.join(second, "target/run_results.json"));
        const minimal = descendants(path.join(second, "target/manifest.json"), CHANGED);
        // The snapshot between stg_customers and dim_customers is rebuilt too (descendants walks through it).
        assert.match(d2.output, /OK snapshotted analytics\.snap_customers/);
        assert.match(d2.output, /OK created sql incremental model analytics_shop\.fct_customer_revenue [ .]*\[MERGE/);
        console.log(`      slim deploy: built ${built.length} of ${total.length} models (minimal ${minimal.length})`);
        assert.deepStrictEqual(built, minimal);
        assert.ok(minimal.length < total.length / 2, `minimal set of ${minimal.length} of ${total.length}`);
        // Merge 1 is now the last good manifest.
        const latest = JSON.parse((await moto.getObject(BUCKET, "artifacts/latest/manifest.json"))!.toString());
        assert.deepStrictEqual(Object.keys(latest.nodes).sort(), Object.keys(JSON.parse(fs.readFileSync(path.join(second, "target/manifest.json"), "utf8")).nodes).sort());
        const changedId = `model.acme_shop.${CHANGED}`;
        assert.deepStrictEqual(latest.nodes[changedId].checksum, JSON.parse(fs.readFileSync(path.join(second, "target/manifest.json"), "utf8")).nodes[changedId].checksum);

        // The reference gets merge 1 as a full build on top of its own merge 0: what a deploy that rebuilds everything leaves.
        const r2 = referenceBuild(checkout(github.files, [CHANGED]));
        assert.strictEqual(r2.code, 0, r2.output.slice(-4000));
        const prod = await fingerprint(PROD, "analytics");
        const reference = await fingerprint([REFERENCE, `${REFERENCE}_shop`, `${REFERENCE}_events`], REFERENCE);
        console.log(`      slim deploy: production equals the full builds on ${Object.keys(prod).length} relations (row counts and md5 of ordered rows)`);
        assert.ok(Object.keys(prod).length >= total.length, `production has ${Object.keys(prod).length} relations`);
        assert.deepStrictEqual(prod, reference);
        assert.ok(Object.keys(prod).some((k) => k.startsWith("./snap_customers (")) && Object.keys(prod).some((k) => k.startsWith("_shop/fct_customer_revenue (")), Object.keys(prod).join("\n"));
    });

    it("an unchanged merge builds nothing; by hand (GitHub full_build, Bitbucket full-build-prod) it builds everything", async () => {
        const same = checkout(github.files, [CHANGED]);
        const d = await githubDeploy(same, "slim-3");
        assert.strictEqual(d.code, 0, d.output.slice(-4000));
        assert.deepStrictEqual(modelsBuilt(path.join(same, "target/run_results.json")), []);

        const byHand = checkout(github.files, [CHANGED]);
        const f = await githubDeploy(byHand, "slim-4", true);
        assert.strictEqual(f.code, 0, f.output.slice(-4000));
        assert.match(f.output, /Full build \(by hand, on the schedule or after a full refresh\): not deferring/);
        const all = materialised(path.join(byHand, "target/manifest.json"));
        assert.deepStrictEqual(modelsBuilt(path.join(byHand, "target/run_results.json")), all);

        const custom = parse(bitbucket.files["bitbucket-pipelines.yml"]).pipelines.custom["full-build-prod"];
        const dir = checkout(bitbucket.files, [CHANGED]);
        const env = {
            ...pythonEnv({ AWS_ENDPOINT_URL: moto.endpoint, DBT_LOG_PATH: logs() }),
            ...deploySettings(bitbucket),
            BITBUCKET_BRANCH: "main",
            BITBUCKET_BUILD_NUMBER: "77",
            BITBUCKET_CLONE_DIR: dir,
            BITBUCKET_STEP_OIDC_TOKEN: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJiYiJ9.",
        };
        const { script } = await runBitbucketStep(custom.find((x: any) => x.step).step, dir, env);
        const b = plain(script);
        assert.strictEqual(b.code, 0, b.output.slice(-4000));
        assert.match(b.output, /Full build \(by hand/);
        assert.deepStrictEqual(modelsBuilt(path.join(dir, "target/run_results.json")), all);
        console.log(`      full build by hand: github ${all.length} models, bitbucket ${all.length} models`);
    });
});
