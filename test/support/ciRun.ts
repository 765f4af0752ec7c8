/**
 * Runs the shell lines of rendered CI files the way each CI system would: Bitbucket (script items
 * in one shell, after-script in another), GitHub Actions (each `run` step in its own bash, the job's
 * and the step's env `${{ }}` expressions evaluated) and Azure Pipelines (each script step in its own bash,
 * `$(macro)` and `${{ parameters.x }}` expanded, conditions and continueOnError honoured).
 * The CI system's own context (PR id, run id, fork flag...) is what the caller passes in.
 */
import assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface RunResult {
    code: number;
    output: string;
}

/** bash with errexit and pipefail on top of the file's own `set -eu` (GitHub's and Bitbucket's shells). */
export function bash(script: string, cwd: string, env: NodeJS.ProcessEnv, flags: string[] = ["-eo", "pipefail"]): RunResult {
    const r = spawnSync("bash", ["--noprofile", "--norc", ...flags, "-c", script], { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}

/** bash as above without blocking this process: for steps that call servers the test itself serves (they answer from its event loop). */
export function bashAsync(script: string, cwd: string, env: NodeJS.ProcessEnv, flags: string[] = ["-eo", "pipefail"]): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", ["--noprofile", "--norc", ...flags, "-c", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", reject);
        child.on("close", (status) => resolve({ code: status ?? 1, output }));
    });
}

/** Hooks a test can hang on a job run. */
export interface RunHooks {
    /** Runs right before the cleanup step (inspect what the run built). */
    beforeCleanup?: () => void | Promise<void>;
    /** Steps (by name prefix) to run twice in a row, as a retried step would. */
    repeat?: string[];
    /** The repeated step's script the second time (default: the same). */
    again?: (script: string) => string;
}

const repeated = (name: string, hooks?: RunHooks) => (hooks?.repeat ?? []).some((p) => name.startsWith(p));

/** Bitbucket: `script` items in one shell, `after-script` in another with BITBUCKET_EXIT_CODE. */
export async function runBitbucketStep(step: any, dir: string, env: NodeJS.ProcessEnv, hooks?: RunHooks): Promise<{ script: RunResult; after?: RunResult }> {
    const items: string[] = [];
    for (const item of step.script as string[]) {
        items.push(item);
        // An item starts with `# <step name>`; a repeated one runs again right after itself.
        if (repeated(String(item).split("\n")[0].replace(/^# /, ""), hooks)) items.push(hooks?.again ? hooks.again(item) : item);
    }
    const script = bash(items.join("\n"), dir, env);
    await hooks?.beforeCleanup?.();
    const after = step["after-script"] ? bash(step["after-script"].join("\n"), dir, { ...env, BITBUCKET_EXIT_CODE: String(script.code) }) : undefined;
    return { script, after };
}

/** GitHub: each `run` step in its own bash; `uses` steps are emulated by `onUses`. */
export async function runGithubJob(
    job: any,
    dir: string,
    opts: {
        settings: Record<string, string>;
        context: Record<string, string>;
        env: NodeJS.ProcessEnv;
        /** Settings GitHub does not hand this run (secrets on a fork's PR): they read as empty strings. */
        withheld?: string[];
        onUses?: (step: any, env: NodeJS.ProcessEnv) => void;
        /** Run the steps with bashAsync (the steps call a server this process serves). */
        nonBlocking?: boolean;
    },
    hooks?: RunHooks,
): Promise<RunResult> {
    const expr = (v: string) =>
        String(v).replace(/\$\{\{\s*(.+?)\s*\}\}/g, (_, e: string) => {
            const m = /^(secrets|vars)\.([A-Z0-9_]+)$/.exec(e);
            if (m) {
                const value = opts.settings[m[2]];
                // GitHub gives an unset secret as an empty string (a fork's pull request); otherwise a missing value is a test bug.
                assert.ok(value !== undefined || opts.withheld?.includes(m[2]), `workflow reads ${e}, which has no value`);
                return value ?? "";
            }
            if (e in opts.context) return opts.context[e];
            throw new Error(`unsupported expression in the workflow: ${e}`);
        });
    const env: NodeJS.ProcessEnv = { ...opts.env };
    for (const [k, v] of Object.entries(job.env ?? {})) env[k] = expr(String(v));
    let failed = false;
    let output = "";
    for (const step of job.steps) {
        if (step.uses) {
            if (step.if !== undefined) {
                assert.ok(step.if in opts.context, `unsupported step condition in the workflow: ${step.if}`);
                if (opts.context[step.if] !== "true") continue;
            }
            opts.onUses?.(step, env);
            continue;
        }
        if (failed && step.if !== "always()") continue;
        if (step.name.startsWith("Drop")) await hooks?.beforeCleanup?.();
        // A step's own env (its expressions evaluated) on top of the job's.
        const stepEnv: NodeJS.ProcessEnv = { ...env };
        for (const [k, v] of Object.entries(step.env ?? {})) stepEnv[k] = expr(String(v));
        for (let i = 0; i < (repeated(step.name, hooks) ? 2 : 1); i++) {
            const run = i > 0 && hooks?.again ? hooks.again(step.run) : step.run;
            const r = opts.nonBlocking ? await bashAsync(run, dir, stepEnv) : bash(run, dir, stepEnv);
            output += r.output;
            if (r.code !== 0 && !step["continue-on-error"]) failed = true;
        }
    }
    return { code: failed ? 1 : 0, output };
}

/** The steps of an Azure job or deployment job. */
export function azureSteps(stage: any): any[] {
    const j = stage.jobs[0];
    return j.steps ?? j.strategy.runOnce.deploy.steps;
}

/**
 * Azure: `$(name)` macros expand from `variables` (variable group values and predefined variables)
 * before the script runs, unknown ones stay as written (as Azure leaves them); `${{ parameters.x }}`
 * from `parameters` (Agent.TempDirectory and Pipeline.Workspace are fresh folders). DownloadSecureFile writes `secureFiles[name]` and sets `<step name>.secureFilePath`;
 * AWSShellScript runs its inline script with `awsEnv` (the service connection's credentials).
 */
export async function runAzureJob(
    steps: any[],
    dir: string,
    opts: { variables: Record<string, string>; parameters?: Record<string, string>; secureFiles: Record<string, string>; env: NodeJS.ProcessEnv; awsEnv: Record<string, string> },
    hooks?: RunHooks,
): Promise<RunResult> {
    const vars: Record<string, string> = {
        ...opts.variables,
        "Agent.TempDirectory": fs.mkdtempSync(path.join(os.tmpdir(), "azure-agent-")),
        "Pipeline.Workspace": fs.mkdtempSync(path.join(os.tmpdir(), "azure-workspace-")),
    };
    const expand = (text: string) =>
        String(text)
            .replace(/\$\{\{\s*parameters\.([A-Za-z0-9_]+)\s*\}\}/g, (_, p: string) => {
                assert.ok(opts.parameters && p in opts.parameters, `the pipeline reads parameter ${p}, which the run has no value for`);
                return opts.parameters[p];
            })
            .replace(/\$\(([A-Za-z0-9_.]+)\)/g, (whole, name: string) => (name in vars ? vars[name] : whole));
    let failed = false;
    let output = "";
    for (const step of steps) {
        // A Cache@2 step is a miss (cold caches, as GitHub's actions/cache in the e2e harnesses): it restores nothing.
        if (step.checkout || step.task === "UsePythonVersion@0" || step.task === "Cache@2") continue;
        if (step.task === "DownloadSecureFile@1") {
            const content = opts.secureFiles[step.inputs.secureFile];
            assert.ok(content !== undefined, `no secure file ${step.inputs.secureFile}`);
            const file = path.join(vars["Agent.TempDirectory"], `secure-${step.inputs.secureFile}`);
            fs.writeFileSync(file, content);
            vars[`${step.name}.secureFilePath`] = file;
            continue;
        }
        const condition = step.condition ?? "succeeded()";
        if (failed && condition !== "always()") continue;
        if (String(step.displayName).startsWith("Drop")) await hooks?.beforeCleanup?.();
        let script: string;
        let extra: Record<string, string> = {};
        if (step.task === "AWSShellScript@1") {
            script = step.inputs.inlineScript;
            extra = { ...opts.awsEnv, AWS_DEFAULT_REGION: step.inputs.regionName };
        } else if (step.bash !== undefined) {
            script = step.bash;
        } else {
            throw new Error(`unsupported Azure step ${JSON.stringify(step).slice(0, 200)}`);
        }
        const env: NodeJS.ProcessEnv = { ...opts.env, ...extra };
        for (const [k, v] of Object.entries(step.env ?? {})) env[k] = expand(String(v));
        // Azure's Bash task runs the script as a file with plain bash (the script's own `set -eu` applies).
        for (let i = 0; i < (repeated(String(step.displayName), hooks) ? 2 : 1); i++) {
            const r = bash(expand(i > 0 && hooks?.again ? hooks.again(script) : script), dir, env, []);
            output += r.output;
            if (r.code !== 0 && !step.continueOnError) failed = true;
        }
    }
    return { code: failed ? 1 : 0, output };
}
