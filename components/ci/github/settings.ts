/**
 * GitHub settings that the rendered workflows rely on, as code: Actions secrets and variables (per
 * repository or per environment), the deploy environment with its reviewers and branch policy,
 * branch protection requiring the CI check, and the rendered files themselves, committed to the
 * main branch. The set of resources follows from plain arguments; only values are Inputs.
 */
import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import type { Job, PipelineModel } from "../../pipelines/model";
import { apiUrlProblem } from "../rest";
import { scanWorkflows } from "./workflows";

/** A pipeline job as GitHub settings see it (plain: it decides which resources exist). */
export interface GithubCiJob {
    /** Model job id. */
    id: Job["id"];
    /** Settings the job reads: secrets (`secrets.X`) or plain variables (`vars.X`). */
    variables: { name: string; secret: boolean }[];
    /** GitHub environment the job runs in; its settings then live in that environment. */
    environment?: string;
}

/** Required reviewers of the deploy environment (GitHub user and team ids, at most 6 in all). */
export interface GithubReviewers {
    /** GitHub user ids. */
    users?: pulumi.Input<number>[];
    /** GitHub team ids. */
    teams?: pulumi.Input<number>[];
}

/** Arguments of GithubCiSettings. Names, scopes and paths are plain; values are Inputs. */
export interface GithubCiSettingsArgs {
    /** The dbt repository as `owner/repo`; the owner configures the component's GitHub provider. */
    repository: string;
    /** Branch the files are committed to and that is protected (default main). */
    mainBranch?: string;
    /** Paths of the rendered files, relative to the repository root (plain: one file resource each). */
    filePaths: string[];
    /** Rendered file contents keyed by path; must hold exactly `filePaths` (e.g. DbtPlatform.pipelineFiles). */
    files: pulumi.Input<Record<string, string>>;
    /** The pipeline's jobs and the settings they read (see `githubCiJobs`). */
    jobs: GithubCiJob[];
    /** Setting name → value (e.g. PostgresWarehouse.profileEnvironment); secret values stay secrets. */
    values: pulumi.Input<Record<string, string>>;
    /** Required reviewers of the deploy job's environment. */
    reviewers?: GithubReviewers;
    /** Status check the main branch requires; default the pull-request workflow's job name(s). */
    requiredCheck?: pulumi.Input<string>;
    /** Protect the main branch (and require the CI check when there is a pull-request job); default true. */
    protectMainBranch?: boolean;
    /** GitHub token for the provider; default GITHUB_TOKEN. Kept secret in state either way. */
    token?: pulumi.Input<string>;
    /** REST API base of GitHub Enterprise Server or a proxy (e.g. https://github.example.com/api/v3); default api.github.com. */
    apiUrl?: string;
}

/** Setting names per scope. */
export interface GithubSettingNames {
    /** Repository-level names. */
    repository: string[];
    /** Environment name → names in that environment. */
    environments: Record<string, string[]>;
}

/** The jobs of a pipeline model, as GithubCiSettings takes them. */
export function githubCiJobs(model: PipelineModel): GithubCiJob[] {
    return model.jobs.map((j) => ({
        id: j.id,
        variables: j.variables.map((v) => ({ name: v.name, secret: v.secret })),
        environment: j.deploymentEnvironment,
    }));
}

const JOB_IDS: readonly string[] = ["pull-request", "deploy"];
const REPOSITORY = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/;
const BRANCH = /^(?!\/|.*\/\/|.*\.\.|.*\/$)[A-Za-z0-9._/-]{1,200}$/;
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,199}$/;
const ENVIRONMENT = /^[A-Za-z0-9._-]{1,255}$/;
const FILE_PATH = /^(?!\/)(?!.*\/\/)[A-Za-z0-9._\-/ ]{1,400}$/;
const MAX_REVIEWERS = 6;

/** One setting to create, deduplicated by scope and name. */
interface PlannedSetting {
    name: string;
    secret: boolean;
    environment?: string;
    /** Jobs that read it, for messages. */
    jobs: string[];
}

interface Plan {
    owner: string;
    repo: string;
    mainBranch: string;
    protect: boolean;
    settings: PlannedSetting[];
    /** Distinct environments, in job order. */
    environments: string[];
    deployEnvironment?: string;
    pullRequest: boolean;
}

const scopeOf = (environment: string | undefined) => (environment === undefined ? "repository" : `environment ${environment}`);
const isPlain = (v: unknown) => v !== undefined && v !== null && !pulumi.Output.isInstance(v) && typeof (v as any).then !== "function";

/** Validates the plain arguments and derives the settings to create; throws naming every bad field. */
function plan(name: string, args: GithubCiSettingsArgs): Plan {
    const problems: string[] = [];
    const repository = args.repository;
    if (typeof repository !== "string" || !REPOSITORY.test(repository) || /\/\.\.?$/.test(repository)) {
        problems.push(`repository = ${JSON.stringify(repository)}: expected owner/repo (a GitHub owner and repository name)`);
    }
    const [owner, repo] = typeof repository === "string" ? repository.split("/") : ["", ""];
    const mainBranch = args.mainBranch ?? "main";
    if (typeof mainBranch !== "string" || !BRANCH.test(mainBranch)) problems.push(`mainBranch = ${JSON.stringify(mainBranch)}: expected a git branch name`);
    if (args.apiUrl !== undefined) {
        const problem = apiUrlProblem(args.apiUrl);
        // Not echoed: a URL with credentials in it is one of the things rejected.
        if (problem) problems.push(`apiUrl: expected ${problem}, e.g. https://github.example.com/api/v3`);
    }
    const protect = args.protectMainBranch ?? true;
    if (typeof protect !== "boolean") problems.push(`protectMainBranch = ${JSON.stringify(protect)}: expected true or false`);

    const settings = new Map<string, PlannedSetting>();
    const environments: string[] = [];
    let deployEnvironment: string | undefined;
    let pullRequest = false;
    if (!Array.isArray(args.jobs) || args.jobs.length === 0) {
        problems.push("jobs: expected at least one job");
    } else {
        const seenJobs = new Set<string>();
        args.jobs.forEach((job, i) => {
            const where = `jobs[${i}]`;
            if (!JOB_IDS.includes(job?.id)) {
                problems.push(`${where}.id = ${JSON.stringify(job?.id)}: expected one of ${JOB_IDS.join(", ")}`);
                return;
            }
            if (seenJobs.has(job.id)) problems.push(`${where}.id: job ${job.id} is declared more than once`);
            seenJobs.add(job.id);
            if (job.id === "pull-request") pullRequest = true;
            const env = job.environment;
            if (env !== undefined) {
                if (typeof env !== "string" || !ENVIRONMENT.test(env)) {
                    problems.push(`${where}.environment = ${JSON.stringify(env)}: expected a GitHub environment name (letters, digits, . _ -)`);
                    return;
                }
                if (!environments.includes(env)) environments.push(env);
                if (job.id === "deploy") deployEnvironment = env;
            }
            if (!Array.isArray(job.variables)) {
                problems.push(`${where}.variables: expected a list of { name, secret }`);
                return;
            }
            const inJob = new Set<string>();
            job.variables.forEach((v, k) => {
                const at = `${where}.variables[${k}]`;
                if (typeof v?.name !== "string" || !SETTING_NAME.test(v.name) || /^GITHUB_/i.test(v.name)) {
                    problems.push(`${at}.name = ${JSON.stringify(v?.name)}: expected a GitHub secret/variable name (letter or _, then letters, digits, _; not GITHUB_*)`);
                    return;
                }
                if (typeof v.secret !== "boolean") {
                    problems.push(`${at}.secret (${v.name}): expected true or false`);
                    return;
                }
                if (inJob.has(v.name.toUpperCase())) {
                    problems.push(`${at}: ${v.name} is declared more than once in job ${job.id}`);
                    return;
                }
                inJob.add(v.name.toUpperCase());
                // GitHub names are case-insensitive: DBT_X and dbt_x are one setting.
                const key = `${env ?? ""}\0${v.name.toUpperCase()}`;
                const other = settings.get(key);
                if (!other) {
                    settings.set(key, { name: v.name, secret: v.secret, environment: env, jobs: [job.id] });
                } else if (other.name !== v.name || other.secret !== v.secret) {
                    const kind = (s: boolean) => (s ? "a secret" : "a variable");
                    problems.push(
                        `${at}: ${v.name} (${kind(v.secret)}) in job ${job.id} conflicts with ${other.name} (${kind(other.secret)}) in job ${other.jobs.join(", ")}: ` +
                            `both are the ${scopeOf(env)} setting ${v.name.toUpperCase()}`,
                    );
                } else {
                    other.jobs.push(job.id);
                }
            });
        });
    }

    if (!Array.isArray(args.filePaths) || args.filePaths.length === 0) {
        problems.push("filePaths: expected the paths of the rendered files");
    } else {
        const seen = new Set<string>();
        for (const p of args.filePaths) {
            if (typeof p !== "string" || !FILE_PATH.test(p) || p.split("/").some((s) => s === "." || s === ".." || s === "")) {
                problems.push(`filePaths: ${JSON.stringify(p)}: expected a path relative to the repository root`);
            } else if (seen.has(p)) {
                problems.push(`filePaths: ${p} is listed more than once`);
            }
            seen.add(p);
        }
    }
    if (args.files === undefined || args.files === null) problems.push("files: expected the rendered file contents");
    else if (isPlain(args.files)) problems.push(...fileProblems(args.filePaths ?? [], args.files as Record<string, unknown>));

    if (args.values === undefined || args.values === null) problems.push("values: expected the setting values (name → value)");
    else if (isPlain(args.values)) problems.push(...valueProblems([...settings.values()], args.values as Record<string, unknown>));

    const r = args.reviewers;
    if (r !== undefined) {
        const users = r?.users ?? [];
        const teams = r?.teams ?? [];
        if (!Array.isArray(users) || !Array.isArray(teams)) {
            problems.push("reviewers: expected { users?: number[]; teams?: number[] }");
        } else {
            if (users.length + teams.length === 0) problems.push("reviewers: expected at least one user or team id (leave reviewers out for none)");
            if (users.length + teams.length > MAX_REVIEWERS) problems.push(`reviewers: ${users.length + teams.length} given; GitHub allows at most ${MAX_REVIEWERS} users and teams in all`);
            for (const [field, ids] of [["users", users], ["teams", teams]] as const) {
                for (const id of ids) {
                    if (isPlain(id) && !(Number.isInteger(id) && (id as number) > 0)) problems.push(`reviewers.${field}: ${JSON.stringify(id)}: expected a numeric GitHub id`);
                }
            }
        }
        if (deployEnvironment === undefined) problems.push("reviewers: the deploy job has no environment to require reviewers on");
    }
    if (args.requiredCheck !== undefined) {
        if (!protect) problems.push("requiredCheck: given, but protectMainBranch is false");
        else if (!pullRequest) problems.push("requiredCheck: given, but there is no pull-request job to report it");
        else if (isPlain(args.requiredCheck) && (typeof args.requiredCheck !== "string" || args.requiredCheck.trim() === "")) {
            problems.push(`requiredCheck = ${JSON.stringify(args.requiredCheck)}: expected a status check name`);
        }
    }
    if (problems.length > 0) throw new Error(`GithubCiSettings ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
    return { owner, repo, mainBranch, protect, settings: [...settings.values()], environments, deployEnvironment, pullRequest };
}

/** `files` must hold exactly the listed paths, each with content. */
function fileProblems(paths: string[], files: Record<string, unknown>): string[] {
    const problems: string[] = [];
    for (const p of paths) {
        const c = files[p];
        if (c === undefined || c === null || c === "") problems.push(`files: no content for ${p} (listed in filePaths)`);
    }
    for (const p of Object.keys(files)) if (!paths.includes(p)) problems.push(`files: ${p} is not in filePaths, so it would not be committed`);
    return problems;
}

/** Every planned setting needs a non-empty value; messages name settings, never values. */
function valueProblems(settings: PlannedSetting[], values: Record<string, unknown>): string[] {
    const have = Object.keys(values).sort().join(", ") || "none";
    return settings
        .filter((s) => {
            const v = values[s.name];
            return v === undefined || v === null || v === "";
        })
        .map((s) => `values: no value for ${s.name} (read by job ${s.jobs.join(", ")}; have: ${have})`);
}

/** Workflow files and planned settings must match in both directions: every read has a setting, every setting a read. */
function workflowProblems(p: Plan, files: Record<string, string>): { problems: string[]; pullRequestChecks: string[] } {
    const scan = scanWorkflows(files);
    const problems: string[] = [];
    const key = (env: string | undefined, n: string, secret: boolean) => `${env ?? ""}\0${secret ? "secrets" : "vars"}\0${n.toUpperCase()}`;
    const planned = new Set(p.settings.map((s) => key(s.environment, s.name, s.secret)));
    const read = new Set<string>();
    for (const r of scan.references) {
        const k = key(r.environment, r.name, r.secret);
        read.add(k);
        if (!planned.has(k)) {
            problems.push(`${r.file} job ${r.job} reads ${r.secret ? "secrets" : "vars"}.${r.name}, but no job declares it in the ${scopeOf(r.environment)}`);
            planned.add(k);
        }
    }
    for (const s of p.settings) {
        if (!read.has(key(s.environment, s.name, s.secret))) {
            problems.push(`${s.name} (${s.secret ? "secret" : "variable"}, ${scopeOf(s.environment)}, job ${s.jobs.join(", ")}) is read by no workflow`);
        }
    }
    const usedEnvironments = new Set<string>();
    for (const e of scan.environments) {
        usedEnvironments.add(e.environment);
        // GitHub would create a missing environment on first use, without reviewers or branch policy.
        if (!p.environments.includes(e.environment)) problems.push(`${e.file} job ${e.job} runs in environment ${e.environment}, which no job declares`);
    }
    for (const env of p.environments) if (!usedEnvironments.has(env)) problems.push(`environment ${env} is used by no workflow job`);
    return { problems, pullRequestChecks: [...new Set(scan.pullRequestChecks)] };
}

/** GitHub secrets, variables, environments, branch protection and committed files for a dbt pipeline. */
export class GithubCiSettings extends pulumi.ComponentResource {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: GithubCiSettingsArgs): void {
        plan(name, args);
    }

    /** Secret names per scope. */
    public readonly secretNames: GithubSettingNames;
    /** Variable names per scope. */
    public readonly variableNames: GithubSettingNames;
    /** The deploy job's environment, when it has one. */
    public readonly environmentName?: string;
    /** Status checks the main branch requires (empty without protection or a pull-request job). */
    public readonly requiredChecks: pulumi.Output<string[]>;
    /** Blob SHA of each committed file, by path. */
    public readonly fileShas: pulumi.Output<Record<string, string>>;
    /** The provider every child uses (owner from `repository`). */
    public readonly provider: github.Provider;
    /** Environments by name. */
    public readonly environments: Record<string, github.RepositoryEnvironment>;
    /** Committed files by path. */
    public readonly files: Record<string, github.RepositoryFile>;
    /** Main-branch protection, unless protectMainBranch is false. */
    public readonly branchProtection?: github.BranchProtection;

    constructor(name: string, args: GithubCiSettingsArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        const p = plan(name, args);
        super("dbt-platform:ci:GithubCiSettings", name, {}, opts);

        const token = args.token ?? (process.env.GITHUB_TOKEN || undefined);
        // Explicit provider: the owner comes from the validated repository, and the SDK would store an
        // environment token unmarked, so it is passed as a secret.
        this.provider = new github.Provider(
            `${name}-github`,
            {
                owner: p.owner,
                ...(token !== undefined ? { token: pulumi.secret(token) } : {}),
                // The provider joins API paths onto base_url, which must end with a slash.
                ...(args.apiUrl !== undefined ? { baseUrl: `${args.apiUrl.replace(/\/+$/, "")}/` } : {}),
            },
            { parent: this },
        );
        const child: pulumi.CustomResourceOptions = { parent: this, provider: this.provider };
        const repository = p.repo;

        const files = pulumi.output(args.files).apply((f) => {
            const problems = fileProblems(args.filePaths, f ?? {});
            let checks: string[] = [];
            if (problems.length === 0) {
                const w = workflowProblems(p, f);
                problems.push(...w.problems);
                checks = w.pullRequestChecks;
            }
            if (problems.length > 0) throw new Error(`GithubCiSettings ${name}: the files and jobs disagree:\n  - ${problems.join("\n  - ")}`);
            return { files: f, checks };
        });
        const values = pulumi.output(args.values).apply((v) => {
            const problems = valueProblems(p.settings, v ?? {});
            if (problems.length > 0) throw new Error(`GithubCiSettings ${name}: ${problems.join("; ")}`);
            return v;
        });
        // Every child waits for both checks: a missing value or a file/job mismatch registers none of them.
        // `ready` carries no value, so it must not pass the values' secrecy on to names.
        const ready = pulumi.unsecret(pulumi.all([files, values]).apply(() => true));
        const gated = <T>(v: T) => ready.apply(() => v);

        this.environments = {};
        const settings: pulumi.Resource[] = [];
        for (const env of p.environments) {
            const reviewers = env === p.deployEnvironment && args.reviewers ? [{ users: args.reviewers.users, teams: args.reviewers.teams }] : undefined;
            const environment = new github.RepositoryEnvironment(
                `${name}-env-${env}`,
                {
                    repository,
                    environment: gated(env),
                    reviewers,
                    // Only main deploys: a custom policy naming it. "Protected branches" would admit any other
                    // protected branch too, and a workflow on another branch could then read the environment's secrets.
                    deploymentBranchPolicy: { protectedBranches: false, customBranchPolicies: true },
                },
                child,
            );
            this.environments[env] = environment;
            settings.push(environment);
            settings.push(
                new github.RepositoryEnvironmentDeploymentPolicy(
                    `${name}-env-${env}-branch-policy`,
                    { repository, environment: environment.environment, branchPattern: p.mainBranch },
                    child,
                ),
            );
        }

        const names = (secret: boolean): GithubSettingNames => {
            const out: GithubSettingNames = { repository: [], environments: {} };
            for (const s of p.settings.filter((x) => x.secret === secret)) {
                if (s.environment === undefined) out.repository.push(s.name);
                else (out.environments[s.environment] ??= []).push(s.name);
            }
            return out;
        };
        this.secretNames = names(true);
        this.variableNames = names(false);
        this.environmentName = p.deployEnvironment;

        for (const s of p.settings) {
            const raw = pulumi.all([values, ready]).apply(([v]) => String(v[s.name]));
            const scope = s.environment === undefined ? "" : `env-${s.environment}-`;
            if (s.secret) {
                // `value` supersedes the deprecated plaintextValue in @pulumi/github 6.
                const value = pulumi.secret(raw);
                settings.push(
                    s.environment === undefined
                        ? new github.ActionsSecret(`${name}-${scope}secret-${s.name}`, { repository, secretName: s.name, value }, child)
                        : new github.ActionsEnvironmentSecret(
                              `${name}-${scope}secret-${s.name}`,
                              { repository, environment: this.environments[s.environment].environment, secretName: s.name, value },
                              child,
                          ),
                );
            } else {
                settings.push(
                    s.environment === undefined
                        ? new github.ActionsVariable(`${name}-${scope}var-${s.name}`, { repository, variableName: s.name, value: raw }, child)
                        : new github.ActionsEnvironmentVariable(
                              `${name}-${scope}var-${s.name}`,
                              { repository, environment: this.environments[s.environment].environment, variableName: s.name, value: raw },
                              child,
                          ),
                );
            }
        }

        this.requiredChecks = pulumi.output([]);
        if (p.protect) {
            const contexts = p.pullRequest
                ? pulumi.all([files, args.requiredCheck]).apply(([f, given]) => {
                      if (given === undefined) {
                          if (f.checks.length === 0) throw new Error(`GithubCiSettings ${name}: requiredCheck: no workflow runs on pull requests, so there is no CI check to require`);
                          return f.checks;
                      }
                      // A required check that no job reports would block every merge.
                      if (!f.checks.includes(given)) throw new Error(`GithubCiSettings ${name}: requiredCheck = ${JSON.stringify(given)}: no pull-request job reports it (have: ${f.checks.join(", ") || "none"})`);
                      return [given];
                  })
                : undefined;
            this.branchProtection = new github.BranchProtection(
                `${name}-protect-${p.mainBranch}`,
                {
                    repositoryId: gated(repository),
                    pattern: p.mainBranch,
                    requiredStatusChecks: contexts ? [{ strict: true, contexts }] : undefined,
                    allowsDeletions: false,
                    allowsForcePushes: false,
                    // Admins (the token this program runs with) may still commit the rendered files directly.
                    enforceAdmins: false,
                },
                child,
            );
            settings.push(this.branchProtection);
            if (contexts) this.requiredChecks = contexts;
        }

        // Files last: committing deploy.yml to main starts a run, which must find every setting in place.
        const stack = pulumi.getStack();
        this.files = {};
        for (const path of args.filePaths) {
            this.files[path] = new github.RepositoryFile(
                `${name}-file-${path}`,
                {
                    repository,
                    branch: p.mainBranch,
                    file: path,
                    content: files.apply((f) => f.files[path]),
                    commitMessage: `dbt-platform stack ${stack}: ${path}`,
                    overwriteOnCreate: true,
                },
                { ...child, dependsOn: settings },
            );
        }
        this.fileShas = pulumi
            .all(args.filePaths.map((f) => this.files[f].sha))
            .apply((shas) => Object.fromEntries(args.filePaths.map((f, i) => [f, shas[i]])));

        this.registerOutputs({
            secretNames: this.secretNames,
            variableNames: this.variableNames,
            environmentName: this.environmentName,
            requiredChecks: this.requiredChecks,
            fileShas: this.fileShas,
        });
    }
}
