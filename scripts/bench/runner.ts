/**
 * Runs the contenders of `bench:ci` against one embedded Postgres and one moto S3: a prior deploy
 * (the rendered deploy job) publishes the production manifest, then every contender runs its PR
 * job on a fresh checkout with the same one-model change, `runs` times. A dbt shim on PATH counts
 * and times every dbt invocation and keeps each one's run_results.json.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { parseStackConfig } from "../../components/config";
import { LATEST_MANIFEST_KEY } from "../../components/aws/artifactStore";
import { pipelineContext } from "../../components/platform";
import { DRIVER_PATH, PipelineModel, PROFILES_DIR, renderPipelineFiles } from "../../components/pipelines";
import { envVarName, postgresProfiles, renderProfilesYaml, TARGET_FIELDS } from "../../components/warehouse/postgres/profiles";
import { changeOneModel, descendants } from "../../test/support/dbtProject";
import { startMoto } from "../../test/support/moto";
import { startPostgres } from "../../test/support/postgres";
import { withScratch } from "../support/scratch";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "../../test/support/python";
import { ROOT, runProgram, toPulumiConfig } from "../offline";
import { applyRecorded } from "../../test/support/apply";
import { BenchProject, generateBenchProject } from "./project";
import { Contender, fullDeploy, oursDeploy, oursPullRequest, seed000, seed002, SEED002_DROP_SCHEMA_MACRO, seed003 } from "./contenders";

/**
 * ours-repush: the same PR pushed again, with what the rendered job's caches restore (dbt_packages and
 * the PR's target/partial_parse.msgpack from ours' run); every other contender starts from a clean checkout.
 */
export const PR_CONTENDERS = ["ours", "ours-repush", "seed000", "seed002", "seed003"] as const;
export const DEPLOY_CONTENDERS = ["ours-deploy", "full-deploy"] as const;
export type ContenderName = (typeof PR_CONTENDERS)[number] | (typeof DEPLOY_CONTENDERS)[number];

export interface BenchOptions {
    models: number;
    rows: number;
    runs: number;
    /** Contenders to run; default all. */
    only?: ContenderName[];
    /** Progress lines (stderr in the CLI). */
    log?: (line: string) => void;
}

export interface Invocation {
    args: string;
    code: number;
    seconds: number;
}

/** One job run of one contender. */
export interface JobRun {
    code: number;
    /** Models built successfully (unique_ids, sorted), over every invocation. */
    built: string[];
    invocations: Invocation[];
    /** Sum of run_results execution_time over every invocation. */
    warehouseSeconds: number;
    wallSeconds: number;
    output: string;
}

export interface ContenderResult {
    name: ContenderName;
    minimal: string[];
    runs: JobRun[];
    /** Medians over the runs. */
    built: number;
    invocations: number;
    warehouseSeconds: number;
    wallSeconds: number;
    /** wall / ours' wall (NaN when ours did not run). */
    ratio: number;
}

export interface BenchResult {
    project: BenchProject;
    contenders: ContenderResult[];
    /** The prior deploy that published the production manifest. */
    baseline: JobRun;
    /** Contender runs that failed (their output tail); a failed contender gets no result line. */
    failures: string[];
}

const DATABASE = "bench";
const BUCKET = "dbt-platform-bench";

export function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The line the issue asks for, exactly. */
export function benchLine(r: ContenderResult): string {
    const ratio = Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : "n/a";
    return `bench: ${r.name} built ${r.built} (minimal ${r.minimal.length}) invocations ${r.invocations} wall ${r.wallSeconds.toFixed(1)} s ratio ${ratio}`;
}

/** Extra figures the fixed line has no room for. */
export function detailLine(r: ContenderResult): string {
    const walls = r.runs.map((x) => x.wallSeconds.toFixed(1)).join("/");
    const perInvocation = r.runs[0].invocations.map((i) => `${i.args.split(" ")[0] || "dbt"} ${i.seconds.toFixed(1)}`).join(", ");
    return `bench-detail: ${r.name} warehouse ${r.warehouseSeconds.toFixed(1)} s, walls ${walls} s, invocations (run 1): ${perInvocation}`;
}

/** The prod stack's pipelines, pointed at the bench bucket; no docs site, no evaluator package. */
export function benchPipelineModel(profilesYaml: string): { model: PipelineModel; files: Record<string, string> } {
    const doc = parse(fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")).config;
    doc["dbt-platform:aws"].artifacts.bucketName = BUCKET;
    doc["dbt-platform:features"] = { docsSite: false, scheduledRuns: false, projectEvaluator: false };
    // Scheduled runs off: their section goes too (config refuses a section for a feature that is off).
    delete doc["dbt-platform:scheduledRuns"];
    const config = parseStackConfig("prod", toPulumiConfig(doc));
    const ctx = pipelineContext(config, undefined, {
        bucket: BUCKET,
        pullRequestRoleArn: "arn:aws:iam::123456789012:role/bench-pull-request",
        deployRoleArn: "arn:aws:iam::123456789012:role/bench-deploy",
    });
    const { model, files } = renderPipelineFiles(ctx, profilesYaml);
    return { model, files };
}

const SHIM = `#!/usr/bin/env bash
# bench:ci: counts and times each dbt invocation and keeps the run_results.json it wrote.
d=$(mktemp -d "$BENCH_LOG/inv.XXXXXX")
printf '%s\\n' "$*" > "$d/args"
touch "$d/start"
s=$(date +%s%N)
"$BENCH_REAL_DBT" "$@"
code=$?
e=$(date +%s%N)
echo "$code $s $e" > "$d/result"
# The one-process driver keeps every command's run results in target/dbt-platform/: all of them count.
find "$BENCH_ROOT" -path '*/dbt-platform/*.json' -newer "$d/start" 2>/dev/null | sort | while read -r f; do cp "$f" "$d/kept-$(basename "$f")"; done
rr=$(find "$BENCH_ROOT" -name run_results.json -newer "$d/start" 2>/dev/null | head -1)
if [ -n "$rr" ]; then cp "$rr" "$d/run_results.json"; fi
exit $code
`;

/**
 * The PR job's one-process driver (python .ci/dbt_platform_run.py) is one dbt process with one
 * parse: counted as one invocation, timed and every command's run_results counted (the driver keeps them in target/dbt-platform/).
 */
const PYTHON_SHIM = `#!/usr/bin/env bash
case "\${1:-}" in
  ${DRIVER_PATH}) exec "$BENCH_SHIM_DIR/dbt-driver" "$@";;
  *) exec "$BENCH_REAL_PYTHON" "$@";;
esac
`;

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
    return new Promise((resolve, reject) => {
        // GitHub's and Bitbucket's bash: errexit and pipefail.
        const child = spawn("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (b: Buffer) => (output += b.toString()));
        child.stderr.on("data", (b: Buffer) => (output += b.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? 1, output }));
    });
}

interface RunResultsFile {
    results: { unique_id: string; status: string; execution_time: number }[];
}

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
    const log = opts.log ?? (() => {});
    const wanted = new Set<ContenderName>(opts.only ?? [...PR_CONTENDERS, ...DEPLOY_CONTENDERS]);
    if (!(Number.isInteger(opts.runs) && opts.runs >= 1)) throw new Error(`--runs must be a positive integer (got ${opts.runs})`);
    ensurePythonEnv();
    // An interrupted benchmark must not leave a Postgres, a moto_server or gigabytes of temp behind.
    return withScratch("bench-ci-", async (tmp, track) => {
        const [server, moto] = await Promise.all([startPostgres().then(track), startMoto().then(track)]);
        // The prod stack's warehouse plan, applied as `pulumi up` would: the rendered macros need its
        // dbt_platform functions (schemas are created through dbt_platform.create_schema).
        const doc = parse(fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")).config;
        doc["dbt-platform:warehouse"].connection = { host: server.host, port: server.port, database: DATABASE, username: server.adminUser, sslmode: "disable" };
        doc["dbt-platform:warehouse"].createDatabase = true;
        const { resources, exports } = await runProgram("prod", toPulumiConfig(doc));
        await applyRecorded(server, resources);
        // The bots' real logins (CI masked to the dev role, deploy to the prod role), as CI variables.
        const botSettings = await new Promise<Record<string, string>>((resolve) => exports.profileEnvironment.apply((v: Record<string, string>) => resolve(v)));
        await moto.createBucket(BUCKET);
        const project = generateBenchProject(path.join(tmp, "project"), { models: opts.models, rows: opts.rows });
        log(`project: ${project.models.length} models (${project.counts.tables} tables, ${project.counts.incremental} incremental, ${project.counts.views} views), ${project.counts.tests} tests, ${project.counts.seeds} seeds, ${opts.rows} rows per base table; change: ${project.changedModel}`);

        const profilesYaml = renderProfilesYaml(postgresProfiles({ profile: "acme_analytics", defaultTarget: "ci", targets: ["ci", "prod"], threads: 4, sslmode: "disable" }));
        const { model, files } = benchPipelineModel(profilesYaml);

        const settings: Record<string, string> = {};
        for (const t of ["ci", "prod"]) for (const f of TARGET_FIELDS) settings[envVarName(t, f)] = botSettings[envVarName(t, f)];

        const shimDir = path.join(tmp, "shim");
        fs.mkdirSync(shimDir);
        fs.writeFileSync(path.join(shimDir, "dbt"), SHIM, { mode: 0o755 });
        fs.writeFileSync(path.join(shimDir, "python"), PYTHON_SHIM, { mode: 0o755 });
        fs.writeFileSync(path.join(shimDir, "dbt-driver"), SHIM.replace('"$BENCH_REAL_DBT" "$@"', '"$BENCH_REAL_PYTHON" "$@"'), { mode: 0o755 });

        let checkouts = 0;
        const checkout = (change: boolean): string => {
            const dir = path.join(tmp, `checkout-${++checkouts}`);
            fs.cpSync(project.dir, dir, { recursive: true });
            for (const [rel, text] of Object.entries(files)) {
                fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
                fs.writeFileSync(path.join(dir, rel), text);
            }
            fs.writeFileSync(path.join(dir, "macros", "drop_schema.sql"), SEED002_DROP_SCHEMA_MACRO);
            if (change) changeOneModel(dir, project.changedModel);
            return dir;
        };

        const runJob = async (c: Contender, dir: string): Promise<JobRun> => {
            const logDir = fs.mkdtempSync(path.join(tmp, `log-${c.name}-`));
            const env = pythonEnv({
                ...settings,
                ...moto!.env,
                ...c.env,
                PATH: [shimDir, VENV_BIN, process.env.PATH ?? ""].join(path.delimiter),
                BENCH_LOG: logDir,
                BENCH_ROOT: dir,
                BENCH_REAL_DBT: path.join(VENV_BIN, "dbt"),
                BENCH_REAL_PYTHON: path.join(VENV_BIN, "python"),
                BENCH_SHIM_DIR: shimDir,
                DBT_LOG_PATH: path.join(logDir, "dbt-logs"),
            });
            const started = process.hrtime.bigint();
            let failed = false;
            let output = "";
            for (const step of c.steps) {
                if (failed && step.when !== "always") continue;
                const r = await bash(step.lines.join("\n"), dir, env);
                output += `--- ${step.name} (exit ${r.code})\n${r.output}`;
                if (r.code !== 0 && !step.continueOnError) failed = true;
            }
            const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
            const invocations: (Invocation & { start: number; results: RunResultsFile[] })[] = [];
            for (const d of fs.readdirSync(logDir).filter((x) => x.startsWith("inv."))) {
                const p = path.join(logDir, d);
                if (!fs.existsSync(path.join(p, "result"))) continue;
                const [code, s, e] = fs.readFileSync(path.join(p, "result"), "utf8").trim().split(" ").map(Number);
                const rr = path.join(p, "run_results.json");
                const kept = fs.readdirSync(p).filter((f) => f.startsWith("kept-")).sort();
                const files = kept.length ? kept.map((f) => path.join(p, f)) : fs.existsSync(rr) ? [rr] : [];
                invocations.push({
                    args: fs.readFileSync(path.join(p, "args"), "utf8").trim(),
                    code,
                    seconds: (e - s) / 1e9,
                    start: s,
                    results: files.map((f) => JSON.parse(fs.readFileSync(f, "utf8")) as RunResultsFile),
                });
            }
            invocations.sort((a, b) => a.start - b.start);
            const built = new Set<string>();
            let warehouseSeconds = 0;
            for (const inv of invocations) {
                for (const r of inv.results.flatMap((f) => f.results)) {
                    warehouseSeconds += r.execution_time ?? 0;
                    if (r.unique_id.startsWith("model.") && r.status === "success") built.add(r.unique_id);
                }
            }
            return {
                code: failed ? 1 : 0,
                built: [...built].sort(),
                invocations: invocations.map(({ args, code, seconds }) => ({ args, code, seconds })),
                warehouseSeconds,
                wallSeconds,
                output,
            };
        };

        const mustPass = (name: string, r: JobRun) => {
            if (r.code !== 0) throw new Error(`${name} failed:\n${r.output.split("\n").slice(-60).join("\n")}`);
        };
        const dropSchemas = async (prefix: string) => {
            if (!prefix) return;
            const rows = await server.admin<{ nspname: string }>(DATABASE, "select nspname from pg_namespace where nspname like $1", [`${prefix}%`]);
            for (const r of rows) await server.admin(DATABASE, `drop schema "${r.nspname.replace(/"/g, '""')}" cascade`);
        };

        // The prior deploy: production and the manifest every contender defers to.
        log("baseline: the rendered deploy job on the unchanged project");
        const baseline = await runJob(oursDeploy(model, "baseline"), checkout(false));
        mustPass("baseline deploy", baseline);
        const baselineManifest = await moto.getObject(BUCKET, LATEST_MANIFEST_KEY);
        if (!baselineManifest) throw new Error("the baseline deploy published no manifest");
        const manifestFile = path.join(tmp, "baseline-manifest.json");
        fs.writeFileSync(manifestFile, baselineManifest);
        // A body edit leaves the DAG as it is: the baseline's child_map gives the minimal set.
        const minimal = descendants(manifestFile, project.changedModel);
        log(`baseline: ${baseline.built.length} models in ${baseline.wallSeconds.toFixed(1)} s; minimal set for ${project.changedModel}: ${minimal.length}`);

        const profilesDir = PROFILES_DIR;
        const makers: Record<ContenderName, (run: number) => Contender> = {
            ours: (run) => oursPullRequest(model, 100 + run),
            "ours-repush": (run) => ({ ...oursPullRequest(model, 100 + run), name: "ours-repush" }),
            // The seeds' jobs build in PR-family schemas too: on the platform's warehouse the CI login may create no other.
            seed000: (run) => seed000(BUCKET, profilesDir, `dbt_pr_${200 + run}`),
            seed002: (run) => seed002(BUCKET, profilesDir, `dbt_pr_${300 + run}`),
            seed003: (run) => seed003(profilesDir, `dbt_pr_${400 + run}`),
            "ours-deploy": (run) => oursDeploy(model, `bench-${run}`),
            "full-deploy": (run) => fullDeploy(model, `bench-full-${run}`),
        };
        const runsOf = new Map<ContenderName, JobRun[]>();
        const failures: string[] = [];
        const failed = new Set<ContenderName>();
        // One contender failing (say a deadlock while replacing production tables) must not lose the others' figures.
        const record = (name: ContenderName, run: number, r: JobRun) => {
            if (r.code !== 0) {
                failed.add(name);
                runsOf.delete(name);
                failures.push(`${name} (run ${run}) failed:\n${r.output.split("\n").slice(-60).join("\n")}`);
                log(`run ${run}: ${name} FAILED after ${r.wallSeconds.toFixed(1)} s`);
                return;
            }
            log(`run ${run}: ${name} built ${r.built.length} in ${r.wallSeconds.toFixed(1)} s (${r.invocations.length} dbt invocations)`);
            runsOf.set(name, [...(runsOf.get(name) ?? []), r]);
        };
        const restoreManifest = async () => {
            const aws = (args: string[]) => bash(["aws", ...args].map((a) => `'${a}'`).join(" "), tmp, pythonEnv(moto!.env));
            const r = await aws(["s3", "cp", manifestFile, `s3://${BUCKET}/${LATEST_MANIFEST_KEY}`]);
            if (r.code !== 0) throw new Error(`restoring the baseline manifest failed: ${r.output}`);
        };
        // What CI caches restore for a re-push of the same PR: the cache steps' paths, from ours' run of that PR.
        const oursCheckouts = new Map<number, string>();
        const restoreCaches = (from: string | undefined, to: string) => {
            if (!from) throw new Error("ours-repush needs ours' run of the same PR (add ours to --only)");
            for (const rel of ["dbt_packages", "target/partial_parse.msgpack"]) {
                if (fs.existsSync(path.join(from, rel))) fs.cpSync(path.join(from, rel), path.join(to, rel), { recursive: true });
            }
            return to;
        };
        for (let run = 1; run <= opts.runs; run++) {
            for (const name of PR_CONTENDERS) {
                if (!wanted.has(name) || failed.has(name)) continue;
                const c = makers[name](run);
                const dir = name === "ours-repush" ? restoreCaches(oursCheckouts.get(run), checkout(true)) : checkout(true);
                if (name === "ours") oursCheckouts.set(run, dir);
                const r = await runJob(c, dir);
                await dropSchemas(c.schemaPrefix);
                record(name, run, r);
            }
        }
        // Deploys last: a failed full redeploy (the pg_rewrite deadlock of concurrent `drop ... cascade`s of
        // replaced tables) leaves production without the views it dropped, and every later PR job deferring
        // to production would fail on them.
        for (let run = 1; run <= opts.runs; run++) {
            for (const name of DEPLOY_CONTENDERS) {
                if (!wanted.has(name) || failed.has(name)) continue;
                // Every deploy run starts from the same production state: the baseline manifest.
                await restoreManifest();
                record(name, run, await runJob(makers[name](run), checkout(true)));
            }
        }

        const oursWall = runsOf.has("ours") ? median(runsOf.get("ours")!.map((r) => r.wallSeconds)) : NaN;
        const contenders: ContenderResult[] = [...runsOf].map(([name, runs]) => {
            const wallSeconds = median(runs.map((r) => r.wallSeconds));
            return {
                name,
                minimal,
                runs,
                built: median(runs.map((r) => r.built.length)),
                invocations: median(runs.map((r) => r.invocations.length)),
                warehouseSeconds: median(runs.map((r) => r.warehouseSeconds)),
                wallSeconds,
                ratio: wallSeconds / oursWall,
            };
        });
        return { project, contenders, baseline, failures };
    });
}
