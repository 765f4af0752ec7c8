/**
 * Helpers around a real dbt project: copy the fixture, make a PR-like edit, and read what dbt
 * built (run_results.json) against what slim CI should build (the manifest's child_map).
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { stringify } from "yaml";
import { pythonEnv, VENV_BIN } from "./python";
import type { PostgresTargetConnection } from "../../components/warehouse/postgres/warehouse";

export const FIXTURE_DIR = path.resolve(__dirname, "..", "fixtures", "dbt-project");
/** The fixture's `profile:`; the generated bench projects use the same. */
export const PROFILE_NAME = "acme_analytics";

/** Copies the fixture (without any stray target/ or logs/) so runs never write into the repo. */
export function copyFixture(dest: string): string {
    fs.cpSync(FIXTURE_DIR, dest, {
        recursive: true,
        filter: (src) => !["target", "logs", "dbt_packages"].includes(path.basename(src)) || path.dirname(src) !== FIXTURE_DIR,
    });
    return dest;
}

/**
 * A semantic edit to one model, as a pull request would make: the model gains a column, so its
 * checksum changes and `state:modified` selects it. Works for any model body (wrapped as a CTE).
 */
export function changeOneModel(projectDir: string, modelName: string): string {
    const file = findModelFile(path.join(projectDir, "models"), modelName);
    if (!file) throw new Error(`no model ${modelName} under ${projectDir}/models`);
    const body = fs.readFileSync(file, "utf8").trimEnd();
    fs.writeFileSync(
        file,
        `-- Changed in a pull request: adds pr_change_marker.\nwith pr_changed as (\n${body}\n)\n\nselect *, 1 as pr_change_marker from pr_changed\n`,
    );
    return file;
}

function findModelFile(dir: string, modelName: string): string | undefined {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, entry.name);
        if (entry.isDirectory()) {
            const found = findModelFile(p, modelName);
            if (found) return found;
        } else if (entry.name === `${modelName}.sql`) {
            return p;
        }
    }
    return undefined;
}

interface Manifest {
    nodes: Record<string, { resource_type: string; name: string; schema: string }>;
    child_map: Record<string, string[]>;
}

function readManifest(projectDirOrManifest: string): Manifest {
    const file = fs.statSync(projectDirOrManifest).isDirectory() ? path.join(projectDirOrManifest, "target", "manifest.json") : projectDirOrManifest;
    return JSON.parse(fs.readFileSync(file, "utf8"));
}

/** The unique_id of model `modelName` in a manifest. */
export function modelId(projectDirOrManifest: string, modelName: string): string {
    const m = readManifest(projectDirOrManifest);
    const id = Object.keys(m.nodes).find((k) => m.nodes[k].resource_type === "model" && m.nodes[k].name === modelName);
    if (!id) throw new Error(`no model ${modelName} in the manifest`);
    return id;
}

/** unique_ids of every model in a manifest, sorted. */
export function allModels(projectDirOrManifest: string): string[] {
    const m = readManifest(projectDirOrManifest);
    return Object.keys(m.nodes)
        .filter((k) => m.nodes[k].resource_type === "model")
        .sort();
}

/** The model and every model downstream of it (child_map), sorted: what `<model>+` should build. */
export function descendants(projectDirOrManifest: string, modelName: string): string[] {
    const m = readManifest(projectDirOrManifest);
    const start = modelId(projectDirOrManifest, modelName);
    const seen = new Set<string>([start]);
    const queue = [start];
    while (queue.length) {
        // Walk through every node type (a snapshot can sit between models), keep only models.
        for (const child of m.child_map[queue.shift()!] ?? []) {
            if (!seen.has(child)) {
                seen.add(child);
                queue.push(child);
            }
        }
    }
    return [...seen].filter((id) => m.nodes[id]?.resource_type === "model").sort();
}

/** unique_ids of the models that ran successfully, from a run_results.json, sorted. */
export function modelsBuilt(runResultsPath: string): string[] {
    const rr = JSON.parse(fs.readFileSync(runResultsPath, "utf8")) as { results: { unique_id: string; status: string }[] };
    return [...new Set(rr.results.filter((r) => r.unique_id.startsWith("model.") && r.status === "success").map((r) => r.unique_id))].sort();
}

/** A target's connection as the platform describes it, plus dbt threads. */
export type PostgresTarget = PostgresTargetConnection & { threads?: number };

/** Writes `<dir>/profiles.yml` with one postgres output per target; the first is the default. */
export function writeProfiles(dir: string, targets: Record<string, PostgresTarget>, profile = PROFILE_NAME): string {
    const outputs: Record<string, unknown> = {};
    for (const [name, t] of Object.entries(targets)) {
        outputs[name] = { type: "postgres", host: t.host, port: t.port, user: t.user, password: t.password, dbname: t.dbname, schema: t.schema, threads: t.threads ?? 4, sslmode: "disable" };
    }
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "profiles.yml");
    fs.writeFileSync(file, stringify({ [profile]: { target: Object.keys(targets)[0], outputs } }));
    return file;
}

export interface DbtRun {
    code: number;
    output: string;
    seconds: number;
}

/**
 * Runs the venv's dbt with `pythonEnv(env)`; `env` should hold DBT_PROFILES_DIR and DBT_LOG_PATH.
 * Throws with the tail of the output on a non-zero exit unless `allowFailure`.
 */
export function runDbt(args: string[], env: Record<string, string>, opts: { cwd?: string; allowFailure?: boolean } = {}): Promise<DbtRun> {
    const started = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
        const child = spawn(path.join(VENV_BIN, "dbt"), ["--no-use-colors", ...args], { cwd: opts.cwd, env: pythonEnv(env), stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (b: Buffer) => (output += b.toString()));
        child.stderr.on("data", (b: Buffer) => (output += b.toString()));
        child.on("error", reject);
        child.on("close", (code) => {
            const run = { code: code ?? -1, output, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
            if (run.code !== 0 && !opts.allowFailure) {
                reject(new Error(`dbt ${args.join(" ")} exited ${run.code}:\n${output.trim().split("\n").slice(-40).join("\n")}`));
            } else {
                resolve(run);
            }
        });
    });
}
