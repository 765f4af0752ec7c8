/**
 * What GitHub Actions workflow files read from the repository's settings: `secrets.X` and `vars.X`
 * per job and scope (the job's `environment:` or the repository), the environments jobs name, and
 * the status check names of pull-request jobs.
 */
import { parse } from "yaml";

/** Where workflow files live; only these are scanned. */
export const WORKFLOW_PATH = /^\.github\/workflows\/[^/]+\.ya?ml$/;

/** Secrets GitHub provides itself; a workflow may read them without a setting. */
const BUILT_IN_SECRETS = new Set(["GITHUB_TOKEN"]);

/** One `secrets.X` / `vars.X` read by one workflow job. */
export interface SettingReference {
    /** Workflow file path. */
    file: string;
    /** Job id in that file. */
    job: string;
    /** The job's environment; undefined for repository scope. */
    environment?: string;
    name: string;
    secret: boolean;
}

/** Settings-related facts of a set of workflow files. */
export interface WorkflowScan {
    references: SettingReference[];
    /** Environment per `file#job` that names one. */
    environments: { file: string; job: string; environment: string }[];
    /** Check names (job `name:`, else its id) of jobs in workflows triggered by pull requests. */
    pullRequestChecks: string[];
}

function strings(v: unknown): string[] {
    if (typeof v === "string") return [v];
    if (Array.isArray(v)) return v.flatMap(strings);
    if (v && typeof v === "object") return Object.values(v).flatMap(strings);
    return [];
}

/** `secrets.X` / `vars.X` inside `${{ }}` expressions, in any string of `v`. */
function readsOf(v: unknown): { name: string; secret: boolean }[] {
    const out: { name: string; secret: boolean }[] = [];
    for (const s of strings(v)) {
        for (const expr of s.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) {
            for (const m of expr[1].matchAll(/(?<![\w.])(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
                if (m[1] === "secrets" && BUILT_IN_SECRETS.has(m[2])) continue;
                out.push({ name: m[2], secret: m[1] === "secrets" });
            }
        }
    }
    return out;
}

function triggers(on: unknown): string[] {
    if (typeof on === "string") return [on];
    if (Array.isArray(on)) return on.filter((t): t is string => typeof t === "string");
    if (on && typeof on === "object") return Object.keys(on);
    return [];
}

/** A job whose `if:` requires the `closed` action (a conjunction starting with it). */
function closedOnly(job: any): boolean {
    const cond = typeof job?.if === "string" ? job.if.replace(/^\$\{\{\s*|\s*\}\}$/g, "").trim() : "";
    return /^github\.event\.action\s*==\s*'closed'(\s*&&|$)/.test(cond);
}

/** Scans every workflow file in `files`; throws naming the file when one is not a workflow document. */
export function scanWorkflows(files: Record<string, string>): WorkflowScan {
    const scan: WorkflowScan = { references: [], environments: [], pullRequestChecks: [] };
    for (const [file, text] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
        if (!WORKFLOW_PATH.test(file)) continue;
        let doc: any;
        try {
            doc = parse(text);
        } catch (e) {
            throw new Error(`${file}: not valid YAML (${(e as Error).message.split("\n")[0]})`);
        }
        if (!doc || typeof doc !== "object" || !doc.jobs || typeof doc.jobs !== "object") throw new Error(`${file}: expected a workflow with jobs`);
        const { jobs, ...workflowLevel } = doc;
        // Workflow-level env and the like are evaluated inside every job, in that job's scope.
        const shared = readsOf(workflowLevel);
        const onPullRequest = triggers(doc.on).some((t) => t === "pull_request" || t === "pull_request_target");
        for (const [id, job] of Object.entries<any>(jobs)) {
            const env = typeof job?.environment === "string" ? job.environment : typeof job?.environment?.name === "string" ? job.environment.name : undefined;
            if (env !== undefined) scan.environments.push({ file, job: id, environment: env });
            for (const r of [...shared, ...readsOf(job)]) scan.references.push({ file, job: id, environment: env, ...r });
            // GitHub reports a job's check under its name, or its id when it has none. A job that runs only when the
            // pull request closes (the docs preview's removal) reports nothing an open pull request could wait for.
            if (onPullRequest && !closedOnly(job)) scan.pullRequestChecks.push(typeof job?.name === "string" ? job.name : id);
        }
    }
    return scan;
}
