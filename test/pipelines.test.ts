/**
 * Pipeline definitions: every stack rendered for every CI system, validated with the publishers'
 * schemas (and GitHub's own parser), wired to the recorded infrastructure, secret-free, and with
 * the settings variables they read matching what the model declares, in both directions.
 */
import assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { parse } from "yaml";
import { CI_SYSTEMS, CiSystem } from "../components/config/stack";
import {
    BITBUCKET_IMAGE,
    contextProblems,
    GITHUB_ACTION_PINS,
    pinProblems,
    DBT_CORE_VERSION,
    dropSchemaMacro,
    Job,
    PipelineContext,
    pipelineModel,
    renderPipelineFiles,
    SettingVariable,
} from "../components/pipelines";
import { withCiSystem } from "../scripts/render";
import { Recorded, resolve, ROOT, runProgram, stackConfig } from "../scripts/offline";
import { azureSchemaErrors, bitbucketSchemaErrors, githubParserErrors, githubSchemaErrors } from "./support/pipelineSchemas";
import { postgresPipelineWarehouse } from "./support/pipelineWarehouse";
import { redshiftDropMacro, snowflakeDropMacro, SnowflakeWarehouse } from "../components/warehouse";

const STACKS = ["dev", "sandbox", "staging", "prod", "snowflake", "redshift"] as const;

/** A stack file's config section (plain YAML). */
const stackDoc = (stack: string, key: string): any => parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")).config[`dbt-platform:${key}`] ?? {};
const kindOf = (stack: string): "postgres" | "snowflake" | "redshift" => stackDoc(stack, "warehouse").kind ?? "postgres";

interface Rendered {
    files: Record<string, string>;
    variables: Record<Job["id"], SettingVariable[]>;
    resources: Recorded[];
    exports: Record<string, any>;
    passwords: string[];
}

const cache = new Map<string, Rendered>();

async function render(stack: string, system: CiSystem): Promise<Rendered> {
    const key = `${stack}/${system}`;
    let r = cache.get(key);
    if (!r) {
        const { resources, exports } = await runProgram(stack, withCiSystem(stackConfig(stack), system).config);
        const targets = (await resolve(exports.dbtTargets)).value as Record<string, { password?: string; private_key?: string }>;
        const developers = exports.developerTargets ? ((await resolve(exports.developerTargets)).value as Record<string, { password: string }>) : {};
        r = {
            files: (await resolve(exports.pipelineFiles)).value,
            variables: (await resolve(exports.pipelineVariables)).value,
            resources,
            exports,
            // Every credential a rendered file must never hold: passwords, or Snowflake's private keys (their base64 body too).
            passwords: [...Object.values(targets), ...Object.values(developers)].flatMap((t: { password?: string; private_key?: string }) =>
                t.password ? [t.password] : t.private_key ? [t.private_key, t.private_key.split("\n")[1]] : [],
            ),
        };
        cache.set(key, r);
    }
    return r;
}

/** env_var() names profiles.yml reads for one target. */
function profileVariables(profilesYaml: string, target: string): string[] {
    const doc = parse(profilesYaml);
    const outputs = (Object.values(doc)[0] as any).outputs[target] ?? {};
    return Object.values(outputs)
        .filter((v): v is string => typeof v === "string")
        .flatMap((v) => [...v.matchAll(/env_var\('([A-Z0-9_]+)'\)/g)].map((m) => m[1]))
        .sort();
}

const names = (vs: SettingVariable[]) => vs.map((v) => v.name).sort();

describe("pipelines", function () {
    this.timeout(300_000);

    for (const stack of STACKS) {
        for (const system of CI_SYSTEMS) {
            describe(`${stack} on ${system}`, () => {
                it("renders files that the publisher's schema accepts", async () => {
                    const { files } = await render(stack, system);
                    const ciFiles = Object.keys(files).filter((f) => f.endsWith(".yml") && !f.endsWith("profiles.yml"));
                    assert.ok(ciFiles.length > 0, "no CI file rendered");
                    for (const f of ciFiles) {
                        const errors =
                            system === "bitbucket" ? bitbucketSchemaErrors(files[f]) : system === "azure-devops" ? azureSchemaErrors(files[f]) : githubSchemaErrors(files[f]);
                        assert.deepStrictEqual(errors, [], `${f} fails its schema`);
                        if (system === "github") assert.deepStrictEqual(await githubParserErrors(f, files[f]), [], `${f} fails GitHub's parser`);
                    }
                });

                it("pins every third-party action by commit SHA (tag in a comment) and the Bitbucket image by digest", async () => {
                    const { files } = await render(stack, system);
                    if (system === "github") {
                        for (const f of Object.keys(files).filter((p) => p.startsWith(".github/workflows/"))) {
                            const lines = files[f].split("\n").filter((l) => /^\s*(- )?uses:/.test(l));
                            assert.ok(lines.length >= 2, `${f}: no uses: lines`);
                            for (const l of lines) assert.match(l, /^\s*(- )?uses: [A-Za-z0-9-]+\/[A-Za-z0-9._-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, `${f}: ${l.trim()}`);
                        }
                    }
                    if (system === "bitbucket") {
                        assert.match(parse(files["bitbucket-pipelines.yml"]).image, /^python:3\.11-slim@sha256:[0-9a-f]{64}$/);
                    }
                });

                if (system === "azure-devops") {
                    it("each job downloads its own profiles secure file (the deploy job's is main-only)", async () => {
                        const doc = parse((await render(stack, system)).files["azure-pipelines.yml"]);
                        const secureFile = (steps: any[]) => steps.filter((x) => x.task === "DownloadSecureFile@1").map((x) => x.inputs.secureFile);
                        const deploy = doc.stages.find((x: any) => x.stage === "deploy").jobs[0].strategy.runOnce.deploy.steps;
                        assert.deepStrictEqual(secureFile(deploy), [`dbt-${stack}-profiles-deploy.yml`]);
                        const ci = doc.stages.find((x: any) => x.stage === "slim_ci");
                        if (ci) assert.deepStrictEqual(secureFile(ci.jobs[0].steps), [`dbt-${stack}-profiles.yml`]);
                    });
                }

                it("contains no secret value, only references", async () => {
                    const { files, passwords } = await render(stack, system);
                    assert.ok(passwords.length >= 2);
                    for (const [f, text] of Object.entries(files)) {
                        for (const p of passwords) assert.ok(!text.includes(p), `${f} contains a password`);
                    }
                });

                it("reads exactly the settings variables the model declares, per job", async () => {
                    const { files, variables, exports } = await render(stack, system);
                    const profiles = (await resolve(exports.profilesYaml)).value as string;
                    const ciTarget = "ci";
                    const deployTarget = stackDoc(stack, "environment").kind === "release" ? stack : "prod";
                    // profiles.yml side: the variables are its env_var() names, less the PR schema the job derives; a
                    // key file's path variable is set by the job, which writes the file from the key's variable.
                    const settingsOf = (vars: string[]) => vars.map((n) => n.replace(/_PRIVATE_KEY_PATH$/, "_PRIVATE_KEY")).sort();
                    // Key-pair credentials on GitHub come from Secrets Manager (seed 002): the jobs read no settings then.
                    const fromSecret = kindOf(stack) === "snowflake" && system === "github";
                    const hasCi = profileVariables(profiles, ciTarget).length > 0;
                    if (hasCi) {
                        const ciNeeds = settingsOf(profileVariables(profiles, ciTarget).filter((n) => n !== "DBT_CI_SCHEMA"));
                        assert.deepStrictEqual(names(variables["pull-request"]), fromSecret ? [] : ciNeeds);
                    } else {
                        assert.strictEqual(variables["pull-request"], undefined, "a stack without a CI user renders a PR job");
                    }
                    assert.deepStrictEqual(names(variables.deploy), fromSecret ? [] : settingsOf(profileVariables(profiles, deployTarget)));
                    if (fromSecret) {
                        // Each job reads its target's secret (alias DBT_<TARGET>) with parse-json-secrets.
                        for (const [file, target] of [["ci.yml", ciTarget], ["deploy.yml", deployTarget]] as const) {
                            const steps = parse(files[`.github/workflows/${file}`]).jobs[file === "ci.yml" ? "slim-ci" : "deploy"].steps;
                            const read = steps.find((x: any) => String(x.uses).startsWith("aws-actions/aws-secretsmanager-get-secrets@"));
                            assert.deepStrictEqual(read?.with, { "secret-ids": `DBT_${target.toUpperCase()}, dbt/${stack}/${target}`, "parse-json-secrets": true }, file);
                        }
                    }
                    // CI file side: what each file pulls from the CI system's settings.
                    if (system === "github") {
                        for (const [job, file] of [["pull-request", "ci.yml"], ["deploy", "deploy.yml"]] as const) {
                            const text = files[`.github/workflows/${file}`];
                            if (!variables[job]) {
                                assert.strictEqual(text, undefined);
                                continue;
                            }
                            const refs = [...text.matchAll(/\$\{\{\s*(secrets|vars)\.([A-Z0-9_]+)\s*\}\}/g)].map((m) => ({ name: m[2], secret: m[1] === "secrets" }));
                            assert.deepStrictEqual(refs.sort((a, b) => a.name.localeCompare(b.name)), [...variables[job]].sort((a, b) => a.name.localeCompare(b.name)));
                        }
                    } else if (system === "azure-devops") {
                        const doc = parse(files["azure-pipelines.yml"]);
                        for (const stage of doc.stages) {
                            const job = stage.stage === "slim_ci" ? "pull-request" : "deploy";
                            const j = stage.jobs[0];
                            const steps = j.steps ?? j.strategy.runOnce.deploy.steps;
                            const mapped = new Set<string>();
                            for (const s of steps) for (const v of Object.values(s.env ?? {})) for (const m of String(v).matchAll(/\$\(([A-Za-z0-9_]+)\)/g)) mapped.add(m[1]);
                            assert.deepStrictEqual([...mapped].sort(), names(variables[job]), `${stage.stage} maps other variables`);
                        }
                    } else {
                        // Bitbucket exports repository/deployment variables itself: nothing in the file may shadow them.
                        for (const v of [...(variables["pull-request"] ?? []), ...variables.deploy]) {
                            assert.ok(!files["bitbucket-pipelines.yml"].includes(`export ${v.name}=`), `${v.name} is overwritten in the file`);
                        }
                    }
                });

                it("is wired to the recorded bucket, distribution and roles", async () => {
                    const { files, resources, exports } = await render(stack, system);
                    const all = Object.values(files).join("\n");
                    const aws = stack !== "dev";
                    const bucket = resources.find((r) => r.type === "aws:s3/bucket:Bucket" || r.type === "aws:s3/bucketV2:BucketV2");
                    if (!aws) {
                        assert.strictEqual(bucket, undefined);
                        assert.ok(!all.includes("aws s3"), "a stack without AWS calls AWS");
                        return;
                    }
                    assert.ok(bucket, "no bucket recorded");
                    const bucketName = bucket.state.bucket ?? bucket.state.id;
                    assert.ok(all.includes(`s3://${bucketName}/artifacts/latest/manifest.json`), "latest manifest not wired");
                    const deployRole = (await resolve(exports.ciRoleArns.deploy)).value as string;
                    const prRole = (await resolve(exports.ciRoleArns.pullRequest)).value as string;
                    if (system !== "azure-devops") {
                        assert.ok(all.includes(deployRole), "deploy role not wired");
                        // Only a stack with a CI user has a PR job that reads the manifest.
                        if (files[".github/workflows/ci.yml"] || all.includes("pull-requests:")) assert.ok(all.includes(prRole), "PR role not wired");
                    } else {
                        assert.ok(!all.includes("arn:aws:iam"), "Azure assumes roles through its service connection, not an ARN in the file");
                    }
                    const distribution = resources.find((r) => r.type === "aws:cloudfront/distribution:Distribution");
                    if (stackDoc(stack, "features").docsSite === true) {
                        assert.ok(distribution);
                        assert.ok(all.includes(`--distribution-id ${distribution.id}`), "distribution id not wired");
                    } else {
                        assert.ok(!all.includes("create-invalidation"));
                    }
                });

                it("writes profiles.yml (or leaves it to the secure file) and the cleanup macro", async () => {
                    const { files, exports } = await render(stack, system);
                    const profiles = (await resolve(exports.profilesYaml)).value as string;
                    if (system === "azure-devops") assert.strictEqual(files[".ci/profiles.yml"], undefined);
                    else assert.strictEqual(files[".ci/profiles.yml"], profiles);
                    const kind = kindOf(stack);
                    const [macroFile, expected] =
                        kind === "postgres"
                            ? ["macros/dbt_platform_drop_pr_schemas.sql", dropSchemaMacro("dbt_pr_")]
                            : kind === "snowflake"
                              ? ["macros/dbt_platform_drop_pr_schema.sql", snowflakeDropMacro(stackDoc(stack, "warehouse").schemas.pullRequestPrefix)]
                              : ["macros/dbt_platform_drop_pr_schema.sql", redshiftDropMacro(stackDoc(stack, "warehouse").schemas.pullRequestPrefix ?? "dbt_build_")];
                    const macro = files[macroFile];
                    if (stack === "sandbox" || stack === "staging") assert.strictEqual(macro, undefined, "no PR job, no cleanup macro");
                    else assert.strictEqual(macro, expected);
                    // Postgres's deploy check and schema-creation macros belong to Postgres stacks only.
                    assert.strictEqual(files["macros/dbt_platform_check_schema_ownership.sql"] !== undefined, kind === "postgres");
                    assert.strictEqual(files["macros/dbt_platform_create_schema.sql"] !== undefined, kind === "postgres" && macro !== undefined);
                });
            });
        }
    }

    describe("the model", () => {
        const base = (): PipelineContext => ({
            stack: "staging",
            system: "github",
            repository: "acme/analytics",
            mainBranch: "main",
            dbt: { profile: "acme", version: DBT_CORE_VERSION, pythonVersion: "3.11" },
            targets: { ci: "ci", deploy: "staging" },
            warehouse: postgresPipelineWarehouse({ ci: "ci", deploy: "staging" }),
            environment: { kind: "release", promotesFrom: "sandbox" },
            aws: { region: "eu-west-1", bucket: "b", pullRequestRoleArn: "arn:pr", deployRoleArn: "arn:deploy" },
            projectEvaluator: true,
        });

        it("CI: slim build with deferral, full build without a manifest, cleanup always", () => {
            const pr = pipelineModel(base()).jobs.find((j) => j.id === "pull-request")!;
            const text = pr.steps.map((s) => s.lines.join("\n")).join("\n");
            // Reset, freshness (a warning), clone and build run in one dbt process (runner.ts); with the gate, deps and cleanup stay steps.
            const reset = `"run-operation dbt_platform_drop_pr_schemas --target ci --args \\"{schema_name: $DBT_CI_SCHEMA, run_id: '$RUN_ID', claim: true}\\""`;
            assert.ok(
                text.includes(
                    `python .ci/dbt_platform_run.py ${reset} "?source freshness --target ci" "clone --target ci --select state:modified+,config.materialized:incremental,state:old --state .state --exclude package:dbt_project_evaluator" "build --target ci --select state:modified+ --defer --state .state --fail-fast --exclude package:dbt_project_evaluator"\n`,
                ),
                text,
            );
            assert.ok(text.includes(`else\n  python .ci/dbt_platform_run.py ${reset} "?source freshness --target ci" "build --target ci --fail-fast --exclude package:dbt_project_evaluator"\nfi`));
            assert.match(text, /dbt build --target ci --select package:dbt_project_evaluator\b/);
            assert.match(pr.steps[0].lines.join("\n"), /\n {2}dbt deps\n/, "with the gate, the install step runs dbt deps");
            const cleanup = pr.steps[pr.steps.length - 1];
            assert.strictEqual(cleanup.id, "cleanup");
            assert.strictEqual(cleanup.when, "always");
            assert.ok(pr.steps.every((s) => s.lines.includes('export DBT_CI_SCHEMA=dbt_pr_"$PR_NUMBER"')), "a step does not derive the PR schema");
            assert.deepStrictEqual(pr.concurrency, { group: "dbt-ci-staging-pr-$PR_NUMBER", cancelInProgress: true });
            // A re-run starts by claiming (and emptying) the PR's schema family; cleanup passes the same run id.
            assert.deepStrictEqual(pr.steps.map((s) => s.id), ["install", "fetch-manifest", "build", "project-evaluator", "cleanup"]);
            assert.ok(cleanup.lines.includes(`dbt run-operation dbt_platform_drop_pr_schemas --target ci --args "{schema_name: $DBT_CI_SCHEMA, run_id: '$RUN_ID', claim: false}"`));
        });

        it("CI without the gate: one dbt process does deps (unless restored), reset, build and cleanup; the always-step cleans up only what it did not", () => {
            const pr = pipelineModel({ ...base(), projectEvaluator: false }).jobs.find((j) => j.id === "pull-request")!;
            assert.deepStrictEqual(pr.steps.map((s) => s.id), ["install", "fetch-manifest", "build", "cleanup"]);
            const install = pr.steps[0].lines.join("\n");
            assert.ok(!/dbt deps|DEPS_KEY/.test(install), `the install step still runs deps:\n${install}`);
            const build = pr.steps.find((s) => s.id === "build")!.lines.join("\n");
            assert.match(
                build,
                /then\n {2}echo "dbt deps skipped: dbt_packages was restored for this package-lock\.yml"\n {2}DBT_DEPS=""\nelif \[ ! -f packages\.yml \] && \[ ! -f dependencies\.yml \]; then\n {2}echo "dbt deps skipped: the project has no packages\.yml or dependencies\.yml"\n {2}DBT_DEPS=""\nelse\n {2}DBT_DEPS="--deps"\nfi\n/,
            );
            const cleanupCommand = `"!run-operation dbt_platform_drop_pr_schemas --target ci --args \\"{schema_name: $DBT_CI_SCHEMA, run_id: '$RUN_ID', claim: false}\\""`;
            const drivers = build.split("\n").filter((l) => l.includes("dbt_platform_run.py"));
            assert.strictEqual(drivers.length, 2);
            for (const l of drivers) {
                assert.ok(l.trim().startsWith('python .ci/dbt_platform_run.py $DBT_DEPS --finally-done "target/dbt-platform-pr-cleanup.done" "$RUN_ID" "run-operation dbt_platform_drop_pr_schemas'), l);
                assert.ok(l.endsWith(` ${cleanupCommand}`), l);
            }
            // The marker is written only after the install it records (the driver ran deps and passed).
            assert.match(build, /\nif \[ -n "\$DBT_DEPS" \]; then\n {2}DEPS_KEY=.*\n {2}mkdir -p dbt_packages && echo "\$DEPS_KEY" > dbt_packages\/\.dbt-platform-deps\nfi$/);
            const cleanup = pr.steps.find((s) => s.id === "cleanup")!;
            assert.strictEqual(cleanup.when, "always");
            assert.deepStrictEqual(cleanup.lines.slice(-5), [
                `if [ "$(cat target/dbt-platform-pr-cleanup.done 2>/dev/null || true)" = "$RUN_ID" ]; then`,
                `  echo "The build step already dropped the pull request's schemas"`,
                "else",
                `  dbt run-operation dbt_platform_drop_pr_schemas --target ci --args "{schema_name: $DBT_CI_SCHEMA, run_id: '$RUN_ID', claim: false}"`,
                "fi",
            ]);
        });

        it("CI: only a missing manifest means a full build; any other fetch failure fails, naming bucket, key and role", () => {
            const pr = pipelineModel(base()).jobs.find((j) => j.id === "pull-request")!;
            const fetch = pr.steps.find((s) => s.id === "fetch-manifest")!.lines.join("\n");
            assert.match(fetch, /elif grep -q 'NoSuchKey' \.state\/fetch\.err; then\n {2}rm -f \.state\/manifest\.json\n {2}echo "No production manifest yet/);
            assert.match(fetch, /Cannot fetch the production manifest: bucket b, key artifacts\/latest\/manifest\.json, as role arn:pr\./);
            assert.ok(!/\|\| echo/.test(fetch), "a fetch failure is swallowed");
        });

        it("CI: the evaluator gate errors on violations and on a missing package; builds exclude the package", () => {
            const ctx = base();
            const pr = pipelineModel(ctx).jobs.find((j) => j.id === "pull-request")!;
            const gate = pr.steps.find((s) => s.id === "project-evaluator")!.lines.join("\n");
            assert.match(gate, /export DBT_PROJECT_EVALUATOR_SEVERITY=error/);
            assert.match(pr.steps[0].lines.join("\n"), /has no dbt_project_evaluator tests/, "the install step does not check for the package");
            const deploy = pipelineModel(ctx).jobs.find((j) => j.id === "deploy")!;
            const build = deploy.steps.find((s) => s.id === "build")!.lines.filter((l) => l.includes("dbt build"));
            // The full refresh, the slim deploy (state:modified+) and the full build.
            assert.ok(build.length === 3 && build.every((l) => l.endsWith("--exclude package:dbt_project_evaluator")), build.join("\n"));
            ctx.projectEvaluator = false;
            const off = pipelineModel(ctx).jobs.flatMap((j) => j.steps.flatMap((s) => s.lines)).join("\n");
            assert.ok(!off.includes("dbt_project_evaluator"), "the gate is off but the package is named");
        });

        it("CI: skips fork pull requests and pull requests into other branches, with a notice; missing variables fail by name", () => {
            const pr = pipelineModel(base()).jobs.find((j) => j.id === "pull-request")!;
            assert.deepStrictEqual(pr.context, ["PR_NUMBER", "PR_TARGET_BRANCH", "IS_FORK", "RUN_ID"]);
            for (const s of pr.steps) {
                const fork = s.lines.findIndex((l) => l.startsWith('case "$IS_FORK" in [Tt]rue)'));
                const branch = s.lines.findIndex((l) => l.startsWith('if [ "${PR_TARGET_BRANCH#refs/heads/}" != main ]'));
                const vars = s.lines.findIndex((l) => l.startsWith("for v in DBT_CI_HOST DBT_CI_PORT DBT_CI_USER DBT_CI_PASSWORD DBT_CI_DBNAME;"));
                assert.ok(branch > 0 && fork > branch && vars > fork, `${s.id}: skip and check lines out of order`);
            }
        });

        it("dbt.projectDir: steps run in the project folder, macro and profiles land inside it", () => {
            const ctx = base();
            ctx.dbt.projectDir = "transform/dbt";
            const model = pipelineModel(ctx);
            for (const j of model.jobs) for (const s of j.steps) assert.ok(s.lines.includes("cd transform/dbt"), `${j.id}/${s.id} does not cd`);
            const files = renderPipelineFiles(ctx, "profiles").files;
            assert.ok(files["transform/dbt/.ci/profiles.yml"] && files["transform/dbt/macros/dbt_platform_drop_pr_schemas.sql"], Object.keys(files).join(", "));
            assert.ok(files[".github/workflows/ci.yml"]);
            ctx.dbt.projectDir = "../elsewhere";
            assert.throws(() => pipelineModel(ctx), /dbt\.projectDir = "\.\.\/elsewhere": expected a path inside the repository/);
        });

        it("a promoted stage is a manual release from main with a guard and optional full refresh", () => {
            const deploy = pipelineModel(base()).jobs.find((j) => j.id === "deploy")!;
            assert.deepStrictEqual(deploy.trigger, { kind: "manual", branch: "main" });
            assert.strictEqual(deploy.steps[0].id, "guard");
            assert.strictEqual(deploy.fullRefreshInput, true);
            assert.deepStrictEqual(deploy.concurrency, { group: "dbt-deploy-staging", cancelInProgress: false });
            const ids = deploy.steps.map((s) => s.id);
            assert.deepStrictEqual(ids, ["guard", "install", "schema-ownership", "fetch-manifest", "build", "publish-manifest"]);
            // The ownership check runs before anything is built (issue 11: no build into a squatted schema).
            assert.match(deploy.steps[2].lines.join("\n"), /dbt run-operation dbt_platform_check_schema_ownership --target staging$/);
            // A full refresh needs a selector and never refreshes seeds (their drop cascades to dependent views).
            const build = deploy.steps.find((s) => s.id === "build")!.lines.join("\n");
            assert.match(build, /\*\) echo "Refusing a full refresh without a selector/);
            assert.match(build, /dbt build --target staging --fail-fast --full-refresh --select "\$FULL_REFRESH_SELECT" --exclude resource_type:seed/);
            assert.match(build, /\nfi\n[^]*\n  dbt_deadlock_retry dbt build --target staging --fail-fast --exclude package:dbt_project_evaluator\nfi$/);
            // Every build (full refresh, slim deploy, full build) retries a Postgres deadlock, and only that (deadlock-retry.test.ts).
            assert.match(build, /^set -eu\n[^]*\ndbt_deadlock_retry\(\) \{\n[^]*40P01[^]*deadlock detected[^]*\n {4}dl_rc=0; dbt retry --threads 1 \|\| dl_rc=\$\?\n/);
            assert.strictEqual(build.split("\n").filter((l) => /\bdbt build\b/.test(l) && !l.trimStart().startsWith("dbt_deadlock_retry dbt build ")).length, 0, build);
        });

        it("renders the full-refresh selector input and the Bitbucket queue on every system", () => {
            const gh = parse(renderPipelineFiles({ ...base(), system: "github" }, "").files[".github/workflows/deploy.yml"]);
            assert.deepStrictEqual(Object.keys(gh.on.workflow_dispatch.inputs), ["full_refresh", "full_refresh_select", "full_build"]);
            assert.strictEqual(gh.jobs.deploy.env.FULL_REFRESH_SELECT, "${{ inputs.full_refresh_select }}");
            const az = parse(renderPipelineFiles({ ...base(), system: "azure-devops", aws: { ...base().aws!, azureServiceConnection: "aws" } }, "").files["azure-pipelines.yml"]);
            assert.deepStrictEqual(az.parameters.map((p: any) => p.name), ["fullRefresh", "fullRefreshSelect", "fullBuild"]);
            const bb = parse(renderPipelineFiles({ ...base(), system: "bitbucket" }, "").files["bitbucket-pipelines.yml"]);
            assert.deepStrictEqual(bb.pipelines.custom["release-staging"][0].variables.map((v: any) => v.name), ["FULL_REFRESH", "FULL_REFRESH_SELECT"]);
            assert.strictEqual(bb.pipelines["pull-requests"]["**"][0].step["concurrency-group"], "dbt-ci-staging-pull-requests");
            assert.strictEqual(bb.pipelines.custom["release-staging"][1].step["concurrency-group"], "dbt-deploy-staging");
        });

        it("the first stage and development deploy on every push to main", () => {
            const ctx = base();
            ctx.environment = { kind: "release" };
            assert.deepStrictEqual(pipelineModel(ctx).jobs.find((j) => j.id === "deploy")!.trigger, { kind: "push", branch: "main" });
            ctx.environment = { kind: "development" };
            assert.deepStrictEqual(pipelineModel(ctx).jobs.find((j) => j.id === "deploy")!.trigger, { kind: "push", branch: "main" });
        });

        it("publishes history before latest, then docs and the invalidation", () => {
            const ctx = base();
            ctx.aws!.distributionId = "E123";
            const deploy = pipelineModel(ctx).jobs.find((j) => j.id === "deploy")!;
            const lines = deploy.steps.flatMap((s) => s.lines);
            const history = lines.findIndex((l) => l.includes("artifacts/history/"));
            const latest = lines.findIndex((l) => l.startsWith("aws s3 cp") && l.includes("artifacts/latest/manifest.json"));
            assert.ok(history >= 0 && latest > history);
            assert.ok(lines.some((l) => l === "aws cloudfront create-invalidation --distribution-id E123 --paths '/*'"));
        });

        it("pins come from versions.ts and can be overridden, validated", () => {
            const sha = "0123456789abcdef0123456789abcdef01234567";
            const image = `python:3.12-slim@sha256:${"ab".repeat(32)}`;
            const gh = renderPipelineFiles({ ...base(), pins: { actions: { checkout: { sha, tag: "v9.9.9" } } } }, "").files[".github/workflows/deploy.yml"];
            assert.ok(gh.includes(`uses: actions/checkout@${sha} # v9.9.9`), gh);
            assert.ok(gh.includes(`uses: actions/setup-python@${GITHUB_ACTION_PINS.setupPython.sha} # ${GITHUB_ACTION_PINS.setupPython.tag}`));
            const bbCtx: PipelineContext = { ...base(), system: "bitbucket", dbt: { ...base().dbt, pythonVersion: "3.12" } };
            assert.deepStrictEqual(contextProblems(bbCtx).map((p) => p.split(":")[0]), ["pins.bitbucketImage"]);
            assert.strictEqual(parse(renderPipelineFiles({ ...bbCtx, pins: { bitbucketImage: image } }, "").files["bitbucket-pipelines.yml"]).image, image);
            assert.strictEqual(parse(renderPipelineFiles({ ...base(), system: "bitbucket" }, "").files["bitbucket-pipelines.yml"]).image, BITBUCKET_IMAGE);
            assert.deepStrictEqual(
                pinProblems({ actions: { checkout: { sha: "v4", tag: "v4" }, setupPython: { sha, tag: "x y" }, nope: { sha, tag: "v1" } } as any, bitbucketImage: "python:3.11-slim" }).map(
                    (p) => p.split(":")[0],
                ),
                ["pins.actions.checkout.sha", "pins.actions.setupPython.tag", "pins.actions.nope", "pins.bitbucketImage"],
            );
            assert.throws(() => pipelineModel({ ...base(), pins: { bitbucketImage: "python:3.11" } }), /pins\.bitbucketImage: expected an image pinned by digest/);
        });

        it("follows the warehouse contract: Snowflake's adapter, drop-macro convention, key file and credential secret", () => {
            const warehouse = SnowflakeWarehouse.pipelineWarehouse("wh", {
                account: "ACME-ANALYTICS",
                admin: { user: "PULUMI_ADMIN" },
                users: [{ name: "SVC_DBT_CI", duty: "ci" }, { name: "SVC_DBT_DEPLOY", duty: "deploy" }],
                profile: "acme",
                deployTarget: "staging",
            });
            const ctx: PipelineContext = { ...base(), warehouse, projectEvaluator: false };
            const text = (job: Job) => job.steps.map((x) => x.lines.join("\n")).join("\n");
            const model = pipelineModel(ctx);
            const pr = model.jobs.find((j) => j.id === "pull-request")!;
            const deploy = model.jobs.find((j) => j.id === "deploy")!;
            assert.match(text(pr), /pip install --quiet dbt-core==\S+ dbt-snowflake==1\.11\.\d+ /);
            assert.match(text(pr), /print\("dbt-core", m\.version\("dbt-core"\), "dbt-snowflake", m\.version\("dbt-snowflake"\)\)/);
            // Snowflake's macro takes schema_name only: the reset and the cleanup both drop the family.
            const build = pr.steps.find((x) => x.id === "build")!.lines.join("\n");
            for (const claim of ["", "!"]) assert.ok(build.includes(`"${claim}run-operation dbt_platform_drop_pr_schema --target ci --args \\"{schema_name: $DBT_CI_SCHEMA}\\""`), build);
            assert.ok(pr.steps.find((x) => x.id === "cleanup")!.lines.includes('  dbt run-operation dbt_platform_drop_pr_schema --target ci --args "{schema_name: $DBT_CI_SCHEMA}"'));
            assert.match(text(pr), /export DBT_CI_SCHEMA=CI_PR_"\$PR_NUMBER"/);
            // No Postgres deploy check on Snowflake.
            assert.ok(!deploy.steps.some((x) => x.id === "schema-ownership"));
            // The key is a secret setting; its path variable is the job's, with the file written mode 600 in every step.
            assert.deepStrictEqual(pr.variables.filter((v) => v.secret).map((v) => v.name), ["DBT_CI_PRIVATE_KEY"]);
            assert.ok(!pr.variables.some((v) => v.name === "DBT_CI_PRIVATE_KEY_PATH" || v.name === "DBT_CI_SCHEMA"));
            for (const step of pr.steps) assert.ok(step.lines.includes('chmod 600 "$DBT_CI_PRIVATE_KEY_PATH"'), step.id);
            assert.ok(text(deploy).includes(`(umask 077 && printf '%s\\n' "$DBT_STAGING_PRIVATE_KEY" > "$DBT_STAGING_PRIVATE_KEY_PATH")`));
            const bb = pipelineModel({ ...ctx, system: "bitbucket" }).jobs.find((j) => j.id === "deploy")!;
            assert.ok(text(bb).includes(`(umask 077 && printf '%s' "$DBT_STAGING_PRIVATE_KEY" | base64 -d > "$DBT_STAGING_PRIVATE_KEY_PATH")`));
            // With the credential secrets named, GitHub jobs read them instead of settings.
            const gh = pipelineModel({ ...ctx, credentialSecretNames: { ci: "dbt/staging/ci", staging: "dbt/staging/staging" } });
            for (const j of gh.jobs) {
                assert.deepStrictEqual(j.variables, []);
                assert.deepStrictEqual(j.credentialSecret, { secretId: `dbt/staging/${j.target}`, alias: `DBT_${j.target.toUpperCase()}` });
            }
            const wf = parse(renderPipelineFiles({ ...ctx, credentialSecretNames: { ci: "dbt/staging/ci", staging: "dbt/staging/staging" } }, "").files[".github/workflows/ci.yml"]);
            const names = wf.jobs["slim-ci"].steps.map((x: any) => x.name);
            assert.ok(names.indexOf("Read the warehouse credentials (Secrets Manager)") === names.indexOf("Configure AWS credentials (OIDC)") + 1);
            // Bitbucket and Azure have no such action: the settings carry the variables there.
            assert.strictEqual(pipelineModel({ ...ctx, system: "bitbucket", credentialSecretNames: { ci: "x" } }).jobs[0].credentialSecret, undefined);
        });

        it("rejects a bad context naming each field", () => {
            const ctx = base();
            ctx.warehouse = { ...ctx.warehouse, pullRequestSchemas: { ...ctx.warehouse.pullRequestSchemas, prefix: "PR-" } };
            ctx.aws = { region: "eu-west-1", bucket: "", deployRoleArn: "" };
            assert.deepStrictEqual(contextProblems(ctx).map((p) => p.split(" ")[0]), [
                "warehouse.pullRequestSchemas.prefix",
                "aws.bucket:",
                "aws.deployRoleArn:",
                "aws.pullRequestRoleArn:",
            ]);
            assert.throws(() => pipelineModel(ctx), /pipelines for stack staging: invalid context/);
            assert.throws(() => dropSchemaMacro("x; drop"), /not a schema name prefix/);
            // What the warehouse contract hands the model is checked too: it reaches shell lines.
            const bad = base();
            bad.warehouse = { ...bad.warehouse, adapter: { type: "postgres", package: "dbt-postgres; curl x", version: "1.11" } };
            assert.deepStrictEqual(contextProblems(bad).map((p) => p.split(" ")[0]), ["warehouse.adapter.package", "warehouse.adapter.version"]);
            assert.throws(() => pipelineModel({ ...base(), targets: { ci: "ci", deploy: "nope" } }), /targets: the warehouse has no target nope \(has: ci, staging\)/);
        });
    });

    describe("npm run render", () => {
        it("--ci reshapes the repository and labels stand-ins", () => {
            const { config, standIns } = withCiSystem(stackConfig("prod"), "azure-devops");
            assert.strictEqual(JSON.parse(config["dbt-platform:ci"]).repository, "acme-data/analytics-dbt/analytics-dbt");
            assert.deepStrictEqual(standIns, ["aws.azureDevops.organizationId", "aws.azureDevops.serviceConnection"]);
        });

        it("writes the files into a checkout", () => {
            const out = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-render-"));
            try {
                const log = execFileSync(path.join(ROOT, "node_modules/.bin/tsx"), ["scripts/render.ts", "--stack", "dev", "--ci", "github", "--out", out], { cwd: ROOT, encoding: "utf8" });
                assert.match(log, /stack dev, CI system github: 7 files/);
                for (const f of [".github/workflows/ci.yml", ".github/workflows/deploy.yml", ".ci/profiles.yml", "macros/dbt_platform_drop_pr_schemas.sql", "macros/dbt_platform_create_schema.sql", "macros/dbt_platform_check_schema_ownership.sql"]) {
                    assert.ok(fs.existsSync(path.join(out, f)), `${f} not written`);
                }
                assert.throws(() => execFileSync(path.join(ROOT, "node_modules/.bin/tsx"), ["scripts/render.ts", "--stack", "dev", "--ci", "jenkins"], { cwd: ROOT, stdio: "pipe" }), /--ci jenkins: expected one of/);
            } finally {
                fs.rmSync(out, { recursive: true, force: true });
            }
        });
    });
});
