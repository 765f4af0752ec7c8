/**
 * @integration The platform repository's pull-request comment, run as the rendered pipelines run
 * it. In a throwaway git repository holding this project (base commit, then a pull request's head
 * commits that change the dev stack), the rendered "Preview, SQL plan and access matrix" lines run
 * with bash: the real `npm run sql` and `npm run access` on the head and on a worktree of the base
 * commit; only the Pulumi CLI, which cannot be installed here, is a stand-in printing a preview
 * summary. Then each system's rendered comment step (GitHub's step, Bitbucket's after-script,
 * Azure DevOps' step) runs with the variables the CI system sets, against a local server that
 * enforces that system's comment API (test/support/fakePrComments.ts), twice: exactly one comment
 * of ours exists, updated in place, carrying the preview summary, the SQL-plan diff and the
 * access-matrix diff between base and head.
 */
import assert from "assert";
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { COMMENT_FILE, COMMENT_MARKER, PlatformPipelineArgs, renderPlatformAzure, renderPlatformBitbucket, renderPlatformGithub } from "../components/pipelines/platformRepo";
import { ROOT } from "../scripts/offline";
import { CommentSystem, FakeCommentServer, startFakeCommentServer } from "./support/fakePrComments";

const ARGS: PlatformPipelineArgs = {
    // One stack per warehouse kind.
    stacks: ["dev", "snowflake", "redshift"],
    mainBranch: "main",
    backend: { kind: "pulumi-cloud", organization: "acme" },
    auditCron: "17 5 * * *",
    pulumiVersion: "3.248.0",
    nodeVersion: "20",
};
const PR = 42;
const REPOSITORY: Record<CommentSystem, string> = { github: "acme/platform", bitbucket: "acme/platform", "azure-devops": "acme/Data Platform/platform-repo" };

/** Stand-in for the Pulumi CLI: logs in, and previews with a summary in the CLI's layout. */
const FAKE_PULUMI = `#!/usr/bin/env bash
case "$1" in
  login) echo "Logged in to $2";;
  preview) printf '%s\\n' "Previewing update ($3):" "     Type                          Name          Plan" "  ~  postgresql:index/role:Role    dbt-dev-role  update" "Policies:" "    dbt-platform@v0.1.0 (local: policy): 0 mandatory violations" "Resources:" "    ~ 1 to update" "    41 unchanged";;
  *) echo "unexpected pulumi $*" >&2; exit 2;;
esac
`;

/** `npm ci` links the installed dependencies (there is no registry to install from); everything else is npm. */
function fakeNpm(realNpm: string, nodeModules: string): string {
    return `#!/usr/bin/env bash
if [ "$1" = ci ]; then [ -e node_modules ] || ln -s ${JSON.stringify(nodeModules)} node_modules; exit 0; fi
if [ "$1" = install ]; then exit 0; fi
exec ${JSON.stringify(realNpm)} "$@"
`;
}

/** Runs a script with bash without blocking this process (the fake servers answer from its event loop). */
function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", ["-c", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", reject);
        child.on("close", (status) => resolve({ status, output }));
    });
}

const git = (cwd: string, ...args: string[]) =>
    execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false", ...args], { cwd, encoding: "utf8" }).trim();

describe("platform PR comment against fake servers @integration", function () {
    this.timeout(600_000);
    let dir: string;
    let repo: string;
    let env: NodeJS.ProcessEnv;
    let baseSha: string;
    const servers: Partial<Record<CommentSystem, FakeCommentServer>> = {};

    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-comment-"));
        repo = path.join(dir, "repo");
        // The project as committed files (this checkout's contents), beside ../shared as the repository expects.
        for (const f of execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean)) {
            if (!fs.existsSync(path.join(ROOT, f))) continue;
            fs.mkdirSync(path.dirname(path.join(repo, f)), { recursive: true });
            fs.copyFileSync(path.join(ROOT, f), path.join(repo, f));
        }
        fs.symlinkSync(fs.realpathSync(path.join(ROOT, "..", "shared")), path.join(dir, "shared"));
        const nodeModules = fs.realpathSync(path.join(ROOT, "node_modules"));
        fs.symlinkSync(nodeModules, path.join(repo, "node_modules"));
        fs.writeFileSync(path.join(repo, ".gitignore"), "node_modules\n");
        git(repo, "init", "-q", "-b", "main");
        git(repo, "add", "-A");
        git(repo, "commit", "-qm", "base");
        baseSha = git(repo, "rev-parse", "HEAD");
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(bin, "pulumi"), FAKE_PULUMI, { mode: 0o755 });
        const realNpm = execFileSync("bash", ["-c", "command -v npm"], { encoding: "utf8" }).trim();
        fs.writeFileSync(path.join(bin, "npm"), fakeNpm(realNpm, nodeModules), { mode: 0o755 });
        env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
        for (const system of ["github", "bitbucket", "azure-devops"] as const) {
            servers[system] = await startFakeCommentServer(system, { repository: REPOSITORY[system], pr: PR, peopleComments: system === "azure-devops" ? 12 : 150 });
        }
    });

    after(async () => {
        for (const s of Object.values(servers)) await s?.stop();
        if (dir) {
            spawnSync("git", ["worktree", "prune"], { cwd: repo });
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    /** Commits changes of stack files as the pull request's next head and runs the rendered preview lines. */
    function previewHead(changes: Record<string, (stackYaml: string) => string>, message: string): string {
        for (const [stack, change] of Object.entries(changes)) {
            const file = path.join(repo, `Pulumi.${stack}.yaml`);
            const before = fs.readFileSync(file, "utf8");
            const after = change(before);
            assert.notStrictEqual(after, before, `${message}: the change of ${stack} applies`);
            fs.writeFileSync(file, after);
        }
        git(repo, "commit", "-qam", message);
        spawnSync("git", ["worktree", "remove", "--force", "../platform-base"], { cwd: repo });
        const job = parse(renderPlatformGithub(ARGS)[".github/workflows/platform-preview.yml"]).jobs.preview;
        const run = job.steps.find((s: any) => s.name === "Preview, SQL plan and access matrix").run;
        // The job's env as the runner evaluates it.
        const expressions: Record<string, string> = { "${{ github.event.pull_request.base.sha }}": baseSha, "${{ secrets.PULUMI_ACCESS_TOKEN }}": "pul-test-token" };
        const jobEnv = Object.fromEntries(Object.entries(job.env as Record<string, string>).map(([k, v]) => [k, v.includes("${{") ? (expressions[v] ?? assert.fail(`unexpected expression ${v}`)) : v]));
        const r = spawnSync("bash", ["-c", run], { cwd: repo, env: { ...env, ...jobEnv }, encoding: "utf8" });
        assert.strictEqual(r.status, 0, `the preview lines failed:\n${r.stdout}\n${r.stderr}`);
        return fs.readFileSync(path.join(repo, COMMENT_FILE), "utf8");
    }

    /** The comment step of `system` as rendered, and the variables the CI system gives it. */
    function commentStep(system: CommentSystem, server: FakeCommentServer): { script: string; vars: Record<string, string> } {
        if (system === "github") {
            const step = parse(renderPlatformGithub(ARGS)[".github/workflows/platform-preview.yml"]).jobs.preview.steps.find((s: any) => s.name === "Post or update the PR comment");
            // The step's env, its expressions evaluated as the runner would, plus the runner's own variables.
            const expressions: Record<string, string> = { "${{ github.token }}": server.token, "${{ github.event.pull_request.number }}": String(PR) };
            const vars = Object.fromEntries(Object.entries(step.env as Record<string, string>).map(([k, v]) => [k, expressions[v] ?? assert.fail(`unexpected expression ${v}`)]));
            return { script: step.run, vars: { ...vars, GITHUB_API_URL: server.apiUrl, GITHUB_REPOSITORY: REPOSITORY.github } };
        }
        if (system === "bitbucket") {
            const step = parse(renderPlatformBitbucket(ARGS)["bitbucket-pipelines.yml"]).pipelines["pull-requests"]["**"][0].step;
            // BITBUCKET_PR_COMMENT_TOKEN is the secured repository variable; the rest are Bitbucket's.
            return {
                script: step["after-script"].join("\n"),
                vars: { BITBUCKET_API_URL: server.apiUrl, BITBUCKET_REPO_FULL_NAME: REPOSITORY.bitbucket, BITBUCKET_PR_ID: String(PR), BITBUCKET_PR_COMMENT_TOKEN: server.token },
            };
        }
        const step = parse(renderPlatformAzure(ARGS)["azure-pipelines.yml"]).stages[0].jobs[0].steps.find((s: any) => s.displayName === "Post or update the PR comment");
        assert.deepStrictEqual(step.env, { SYSTEM_ACCESSTOKEN: "$(System.AccessToken)" });
        const [org, project, repoId] = REPOSITORY["azure-devops"].split("/");
        assert.ok(server.apiUrl.endsWith(`/${org}/`));
        return {
            script: step.bash,
            vars: { SYSTEM_ACCESSTOKEN: server.token, SYSTEM_COLLECTIONURI: server.apiUrl, SYSTEM_TEAMPROJECT: project, BUILD_REPOSITORY_ID: repoId, SYSTEM_PULLREQUEST_PULLREQUESTID: String(PR) },
        };
    }

    async function postComment(system: CommentSystem): Promise<void> {
        const server = servers[system]!;
        const { script, vars } = commentStep(system, server);
        const r = await bash(script, repo, { ...env, ...vars });
        assert.strictEqual(r.status, 0, `${system}: the comment step failed:\n${r.output}\n${server.requests.join("\n")}`);
    }

    it("posts one comment per system on the first run and updates it in place on the next, with the preview, SQL-plan and access-matrix diffs", async () => {
        const first = previewHead(
            {
                dev: (y) => y.replace("    - name: maria\n      schema: dbt_maria\n", ""),
                snowflake: (y) => y.replace("      - { name: SVC_DBT_DEPLOY, duty: deploy }\n", "      - { name: SVC_DBT_DEPLOY, duty: deploy }\n      - { name: SVC_DBT_SCHEDULER, duty: scheduler }\n"),
            },
            "remove developer maria; a Snowflake scheduler bot",
        );
        const firstSha = git(repo, "rev-parse", "--short", "HEAD");
        assert.ok(first.startsWith(`${COMMENT_MARKER}\n## Platform preview for ${firstSha}\n`), first);
        assert.match(first, /### Stack dev: preview ok/);
        assert.match(first, /Resources:\n {4}~ 1 to update/, "the preview summary");
        assert.match(first, /```diff\n--- sql\/dev\.sql[\s\S]*\n-.*maria/, "the SQL-plan diff");
        assert.match(first, /\*\*Access matrix\*\* \(base vs head\):\n```diff\n(- .*\n)*- maria: exists as login\n/, "the access-matrix diff between base and head");
        // Every warehouse kind: Snowflake's matrix diff and SQL plan diff, Redshift unchanged.
        assert.match(first, /### Stack snowflake: preview ok[\s\S]*\+CREATE USER IF NOT EXISTS "SVC_DBT_SCHEDULER"[\s\S]*\+ SVC_DBT_SCHEDULER: exists as login\n\+ SVC_DBT_SCHEDULER: serves scheduler\n/);
        assert.match(first, /### Stack redshift: preview ok[\s\S]*\(unchanged\)[\s\S]*\*\*Access matrix\*\* \(base vs head\):\nNo access changes\.\n$/);

        const ids: Partial<Record<CommentSystem, number>> = {};
        for (const system of ["github", "bitbucket", "azure-devops"] as const) {
            await postComment(system);
            const mine = servers[system]!.comments.filter((c) => c.bot);
            assert.strictEqual(mine.length, 1, `${system}: one comment`);
            assert.strictEqual(mine[0].body, first);
            ids[system] = mine[0].id;
        }

        const second = previewHead({ dev: (y) => y.replace("      - staging\n", "      - staging\n      - marts\n") }, "add production schema marts");
        assert.match(second, /\+ dbt_bitbucket: own marts\n/, "the second head's access change");
        assert.match(second, /- maria: exists as login\n/, "still diffed against the base commit");
        for (const system of ["github", "bitbucket", "azure-devops"] as const) {
            const server = servers[system]!;
            const before = server.requests.length;
            await postComment(system);
            const mine = server.comments.filter((c) => c.bot);
            assert.deepStrictEqual(mine.map((c) => c.id), [ids[system]], `${system}: still exactly one comment, the same one`);
            assert.strictEqual(mine[0].body, second, `${system}: updated in place`);
            const calls = server.requests.slice(before);
            const update = { github: "PATCH", bitbucket: "PUT", "azure-devops": "PATCH" }[system];
            assert.ok(calls.some((c) => c.startsWith(`${update} `) && c.endsWith(" → 200")), `${system}: ${calls.join("; ")}`);
            assert.ok(!calls.some((c) => c.startsWith("POST ")), `${system}: nothing new posted`);
            const pages = calls.filter((c) => c.startsWith("GET ")).length;
            assert.ok(server.comments.filter((c) => !c.bot).every((c) => /^(review comment \d+|> <!--)/.test(c.body)), `${system}: people's comments untouched`);
            console.log(`platform PR comment (${system}): 1 comment after 2 runs, updated in place by ${update} after listing ${pages} page${pages === 1 ? "" : "s"}`);
        }
    });

    it("never follows a page link to another origin (the token would go with it)", async () => {
        for (const system of ["github", "bitbucket"] as const) {
            const elsewhere = await startFakeCommentServer(system, { repository: REPOSITORY[system], pr: PR, peopleComments: 150 });
            const server = await startFakeCommentServer(system, { repository: REPOSITORY[system], pr: PR, peopleComments: 150, foreignPages: elsewhere.apiUrl.replace(/\/2\.0$/, "") });
            try {
                const { script, vars } = commentStep(system, server);
                const r = await bash(script, repo, { ...env, ...vars });
                assert.notStrictEqual(r.status, 0, system);
                assert.match(r.output, /refusing to follow a page link to another origin/);
                assert.deepStrictEqual(elsewhere.requests, [], `${system}: nothing reached the other origin`);
                assert.ok(!server.comments.some((c) => c.bot), `${system}: nothing posted`);
            } finally {
                await server.stop();
                await elsewhere.stop();
            }
        }
    });
});
