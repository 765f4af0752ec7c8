/**
 * Phase-2 measurements on the generated bench project (issue 16 §3), with the venv's real dbt:
 *   - does dbt keep target/partial_parse.msgpack when the PR schema (a profile value) changes,
 *     or when only the password (not a connection key) changes?
 *   - what one dbt invocation costs: deps, a cold parse, a warm parse, a warm `ls` (bench:ci's
 *     bench-detail lines give the cost of each invocation of every contender, --version included);
 *   - one parse per job: the same commands in one Python process with dbtRunner(manifest=...).
 * dbt parse needs no warehouse, so no Postgres runs here.
 *
 *   npx tsx scripts/bench/measure-parse.ts [--models 500]
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { envVarName, postgresProfiles, renderProfilesYaml } from "../../components/warehouse/postgres/profiles";
import { runDbt } from "../../test/support/dbtProject";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "../../test/support/python";
import { spawnSync } from "child_process";
import { generateBenchProject } from "./project";

const DRIVER = `
import sys, time
from dbt.cli.main import dbtRunner
project = sys.argv[1]
t0 = time.time()
res = dbtRunner().invoke(["parse", "--project-dir", project, "--target", "ci", "--quiet"])
assert res.success, res.exception
t1 = time.time()
runner = dbtRunner(manifest=res.result)
times = []
for _ in range(3):
    s = time.time()
    r = runner.invoke(["ls", "--project-dir", project, "--target", "ci", "--resource-type", "model", "--quiet", "--output", "name"])
    assert r.success, r.exception
    times.append(time.time() - s)
print("parse %.1f reuse %s" % (t1 - t0, " ".join("%.2f" % t for t in times)))
`;

async function main(argv: string[]): Promise<void> {
    const i = argv.indexOf("--models");
    const models = i >= 0 ? Number(argv[i + 1]) : 500;
    ensurePythonEnv();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-parse-"));
    try {
        const project = generateBenchProject(path.join(tmp, "project"), { models, rows: 1000 });
        const profilesDir = path.join(tmp, "profiles");
        fs.mkdirSync(profilesDir);
        fs.writeFileSync(path.join(profilesDir, "profiles.yml"), renderProfilesYaml(postgresProfiles({ profile: "acme_analytics", defaultTarget: "ci", targets: ["ci"], threads: 4, sslmode: "disable" })));
        const conn = { host: "127.0.0.1", port: "5432", user: "ci", password: "pw-1", dbname: "analytics", schema: "dbt_pr_1" };
        const env = (over: Partial<typeof conn> = {}) => {
            const e: Record<string, string> = { DBT_PROFILES_DIR: profilesDir, DBT_LOG_PATH: path.join(tmp, "logs") };
            for (const [k, v] of Object.entries({ ...conn, ...over })) e[envVarName("ci", k as keyof typeof conn)] = v;
            return e;
        };
        const msgpack = path.join(project.dir, "target", "partial_parse.msgpack");
        const dbt = async (label: string, args: string[], e: Record<string, string>) => {
            const r = await runDbt([...args, "--project-dir", project.dir], e, { cwd: project.dir });
            const note = r.output.split("\n").filter((l) => /partial pars/i.test(l)).map((l) => l.replace(/^\S*\d\d:\d\d:\d\d\s+/, "").trim());
            console.log(`parse-bench: ${label}: ${r.seconds.toFixed(1)} s${note.length ? ` (${[...new Set(note)].join("; ")})` : ""}`);
            return r;
        };
        console.log(`parse-bench: project of ${project.models.length} models, ${project.counts.tests} tests`);
        await dbt("dbt deps (no packages)", ["deps"], env());
        await dbt("dbt parse, cold (schema dbt_pr_1)", ["parse", "--target", "ci"], env());
        const first = fs.statSync(msgpack).mtimeMs;
        await dbt("dbt parse, warm, same schema", ["parse", "--target", "ci"], env());
        await dbt("dbt ls, warm, same schema", ["ls", "--target", "ci", "--resource-type", "model", "--output", "name"], env());
        await dbt("dbt parse, password changed only", ["parse", "--target", "ci"], env({ password: "pw-2" }));
        await dbt("dbt parse, schema changed to dbt_pr_2", ["parse", "--target", "ci"], env({ schema: "dbt_pr_2" }));
        await dbt("dbt parse, dbt_pr_2 again", ["parse", "--target", "ci"], env({ schema: "dbt_pr_2" }));
        await dbt("dbt parse, back to dbt_pr_1", ["parse", "--target", "ci"], env());
        console.log(`parse-bench: partial_parse.msgpack rewritten since the cold parse: ${fs.statSync(msgpack).mtimeMs !== first}`);
        await dbt("dbt parse --no-partial-parse", ["parse", "--target", "ci", "--no-partial-parse"], env());

        const driver = path.join(tmp, "driver.py");
        fs.writeFileSync(driver, DRIVER);
        const started = Date.now();
        const r = spawnSync(path.join(VENV_BIN, "python"), [driver, project.dir], { cwd: project.dir, env: pythonEnv(env({ schema: "dbt_pr_3" })), encoding: "utf8" });
        if (r.status !== 0) throw new Error(`dbtRunner driver failed:\n${r.stdout}${r.stderr}`);
        console.log(`parse-bench: one process, dbtRunner: ${r.stdout.trim().split("\n").pop()} (s; 3 ls reusing the parsed manifest), whole process ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}

main(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
});
