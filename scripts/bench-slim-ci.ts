/**
 * Slim CI against a full build on a real Postgres: generates a project of N models (default
 * 240), builds it as production, changes one mid-DAG model, then times
 *   (a) dbt build --select state:modified+ --defer --state <prod manifest>   (fresh CI schema)
 *   (b) dbt build                                                          (another fresh schema)
 * with the venv's dbt and 4 threads. Models are counted from run_results.json.
 *
 *   npm run bench:slim-ci [-- --models N]
 */
import * as fs from "fs";
import * as path from "path";
import { allModels, changeOneModel, descendants, modelsBuilt, runDbt, writeProfiles } from "../test/support/dbtProject";
import { startPostgres } from "../test/support/postgres";
import { withScratch } from "./support/scratch";
import { ensurePythonEnv } from "../test/support/python";
import { generateProject } from "./gen-dbt-project";

const DATABASE = "bench";

function parseModels(argv: string[]): number {
    const i = argv.indexOf("--models");
    const n = i >= 0 ? Number(argv[i + 1]) : 240;
    if (!Number.isInteger(n) || n < 200) throw new Error(`--models must be an integer >= 200 (got ${argv[i + 1]})`);
    return n;
}

/** dbt's own elapsed time (execution, without start-up and parsing). */
function executionSeconds(runResults: string): number {
    return JSON.parse(fs.readFileSync(runResults, "utf8")).elapsed_time;
}

async function main(): Promise<void> {
    const models = parseModels(process.argv.slice(2));
    ensurePythonEnv();
    await withScratch("bench-slim-ci-", async (tmp, track) => {
        const pg = track(await startPostgres());
        await pg.admin("postgres", `create database ${DATABASE}`);
        const project = generateProject(path.join(tmp, "project"), { models });
        const conn = { host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, dbname: DATABASE, threads: 4 };
        const profilesDir = path.join(tmp, "profiles");
        writeProfiles(profilesDir, { prod: { ...conn, schema: "analytics" }, ci: { ...conn, schema: "{{ env_var('DBT_CI_SCHEMA') }}" } });
        const env = { DBT_PROFILES_DIR: profilesDir, DBT_LOG_PATH: path.join(tmp, "logs") };
        const target = (name: string) => path.join(tmp, `target-${name}`);

        console.log(`project: ${models} models in ${project.layers.length} layers, Postgres on ${pg.host}:${pg.port}, 4 threads`);
        const prod = await runDbt(["build", "--target", "prod", "--project-dir", project.dir, "--target-path", target("prod")], env);
        console.log(`prod:     built ${modelsBuilt(path.join(target("prod"), "run_results.json")).length} models in ${prod.seconds.toFixed(1)} s (production state)`);

        const stateDir = path.join(tmp, "state");
        fs.mkdirSync(stateDir);
        const stateManifest = path.join(stateDir, "manifest.json");
        fs.copyFileSync(path.join(target("prod"), "manifest.json"), stateManifest);
        const total = allModels(stateManifest).length;
        changeOneModel(project.dir, project.middleModel);
        const expected = descendants(stateManifest, project.middleModel);
        console.log(`changed:  ${project.middleModel} (itself + ${expected.length - 1} downstream models)`);

        const slim = await runDbt(
            ["build", "--target", "ci", "--select", "state:modified+", "--defer", "--state", stateDir, "--project-dir", project.dir, "--target-path", target("slim")],
            { ...env, DBT_CI_SCHEMA: "dbt_ci_slim" },
        );
        const full = await runDbt(["build", "--target", "ci", "--project-dir", project.dir, "--target-path", target("full")], { ...env, DBT_CI_SCHEMA: "dbt_ci_full" });

        const slimBuilt = modelsBuilt(path.join(target("slim"), "run_results.json"));
        const fullBuilt = modelsBuilt(path.join(target("full"), "run_results.json"));
        console.log("");
        console.log(`slim ci:  built ${slimBuilt.length} of ${total} models in ${slim.seconds.toFixed(1)} s`);
        console.log(`full:     built ${fullBuilt.length} of ${total} models in ${full.seconds.toFixed(1)} s`);
        console.log(`ratio: ${(fullBuilt.length / slimBuilt.length).toFixed(1)}x fewer models, ${(full.seconds / slim.seconds).toFixed(1)}x faster`);
        const slimExec = executionSeconds(path.join(target("slim"), "run_results.json"));
        const fullExec = executionSeconds(path.join(target("full"), "run_results.json"));
        console.log(`(dbt execution only, without start-up and parsing: ${slimExec.toFixed(1)} s vs ${fullExec.toFixed(1)} s, ${(fullExec / slimExec).toFixed(1)}x)`);

        if (JSON.stringify(slimBuilt) !== JSON.stringify(expected)) {
            throw new Error(`slim CI built ${slimBuilt.length} models, expected exactly the ${expected.length} in ${project.middleModel}+`);
        }
        if (fullBuilt.length !== total) throw new Error(`full build built ${fullBuilt.length} of ${total} models`);
    });
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
});
