/**
 * Scheduled runs that build only what has new data, against a full build, on a real Postgres:
 * generates a project of S sources, each feeding a chain of D models (plus one mart over all
 * of them), builds it in full with `dbt source freshness` as the kept state, loads new rows into
 * one source, then times what the scheduled runner runs in fresher mode
 *   (a) dbt source freshness && dbt build --select source_status:fresher+ --state <last run>
 *   (b) dbt build                                  (the full run it replaces)
 * with the venv's dbt and 4 threads. Models are counted from run_results.json.
 *
 *   tsx scripts/bench-scheduled.ts [--sources S] [--depth D]      (defaults 12 and 20: 241 models)
 */
import * as fs from "fs";
import * as path from "path";
import { allModels, modelsBuilt, runDbt, writeProfiles } from "../test/support/dbtProject";
import { startPostgres } from "../test/support/postgres";
import { withScratch } from "./support/scratch";
import { ensurePythonEnv } from "../test/support/python";

const DATABASE = "bench_sched";
const PROFILE = "bench_sched";

function flag(argv: string[], name: string, fallback: number, min: number): number {
    const i = argv.indexOf(name);
    const n = i >= 0 ? Number(argv[i + 1]) : fallback;
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min} (got ${argv[i + 1]})`);
    return n;
}

function generate(dir: string, sources: number, depth: number): void {
    const w = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
    };
    w("dbt_project.yml", `name: ${PROFILE}\nversion: "1.0.0"\nprofile: ${PROFILE}\nmodel-paths: ["models"]\nmodels:\n  ${PROFILE}:\n    +materialized: table\n`);
    const tables = Array.from({ length: sources }, (_, s) => `      - name: src_${s}`).join("\n");
    w("models/sources.yml", `version: 2\nsources:\n  - name: raw\n    schema: raw\n    loaded_at_field: loaded_at\n    freshness:\n      warn_after: { count: 24, period: hour }\n    tables:\n${tables}\n`);
    for (let s = 0; s < sources; s++) {
        w(`models/s${s}/m_${s}_0.sql`, `select id, v, loaded_at from {{ source('raw', 'src_${s}') }}\n`);
        for (let d = 1; d < depth; d++) w(`models/s${s}/m_${s}_${d}.sql`, `select id, v + ${d} as v, loaded_at from {{ ref('m_${s}_${d - 1}') }}\n`);
    }
    w("models/mart_all.sql", Array.from({ length: sources }, (_, s) => `select ${s} as source, count(*) as n from {{ ref('m_${s}_${depth - 1}') }}`).join("\nunion all\n") + "\n");
}

async function main(): Promise<void> {
    const argv = process.argv.slice(2);
    const sources = flag(argv, "--sources", 12, 2);
    const depth = flag(argv, "--depth", 20, 1);
    ensurePythonEnv();
    await withScratch("bench-scheduled-", async (tmp, track) => {
        const pg = track(await startPostgres());
        await pg.admin("postgres", `create database ${DATABASE}`);
        await pg.admin(DATABASE, "create schema raw");
        for (let s = 0; s < sources; s++) {
            await pg.admin(DATABASE, `create table raw.src_${s} as select g as id, g as v, now() - interval '1 hour' as loaded_at from generate_series(1, 1000) g`);
        }
        const project = path.join(tmp, "project");
        generate(project, sources, depth);
        const profilesDir = path.join(tmp, "profiles");
        writeProfiles(profilesDir, { prod: { host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, dbname: DATABASE, schema: "analytics", threads: 4 } }, PROFILE);
        const env = { DBT_PROFILES_DIR: profilesDir, DBT_LOG_PATH: path.join(tmp, "logs") };
        const dbt = (args: string[]) => runDbt(["--log-format", "json", ...args], env, { cwd: project });
        const state = path.join(tmp, "state");
        const keep = () => {
            fs.mkdirSync(state, { recursive: true });
            for (const f of ["manifest.json", "sources.json"]) fs.copyFileSync(path.join(project, "target", f), path.join(state, f));
        };

        console.log(`project: ${sources} sources x ${depth} models + 1 mart, Postgres on ${pg.host}:${pg.port}, 4 threads`);
        // The first scheduled run: freshness, then a full build; its artifacts are the next run's state.
        await dbt(["source", "freshness"]);
        await dbt(["build"]);
        keep();
        const total = allModels(path.join(project, "target", "manifest.json")).length;

        await pg.admin(DATABASE, "insert into raw.src_0 select g, g, now() from generate_series(1001, 1100) g");
        const fresh = [await dbt(["source", "freshness"]), await dbt(["build", "--select", "source_status:fresher+", "--state", state])];
        const built = modelsBuilt(path.join(project, "target", "run_results.json")).length;
        const freshSeconds = fresh.reduce((s, r) => s + r.seconds, 0);
        const full = await dbt(["build"]);
        const fullBuilt = modelsBuilt(path.join(project, "target", "run_results.json")).length;

        console.log(`scheduled: built ${built} of ${total} models (fresher+) in ${freshSeconds.toFixed(1)} s (freshness + build)`);
        console.log(`full run:  built ${fullBuilt} of ${total} models in ${full.seconds.toFixed(1)} s`);
        if (built !== depth + 1) throw new Error(`expected ${depth + 1} models downstream of raw.src_0, built ${built}`);
    });
}

main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
});
