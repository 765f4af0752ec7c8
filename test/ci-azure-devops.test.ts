/**
 * Azure DevOps dynamic providers (components/ci/azureDevops) against a fake Azure DevOps REST 7.1
 * server on 127.0.0.1: CRUD and diff per resource type, adoption of duplicates, paging, retries,
 * dropped connections, out-of-band deletes, auth and error messages, and secrecy (serialised
 * providers and the mock runtime).
 */
import assert from "assert";
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import {
    ApprovalCheck,
    BuildDefinition,
    branchControlCheckProvider,
    buildValidationPolicyProvider,
    exclusiveLockCheckProvider,
    resourceApprovalCheckProvider,
    Environment,
    PipelinePermission,
    SecureFile,
    VariableGroup,
    approvalCheckProvider,
    buildDefinitionProvider,
    environmentProvider,
    pipelinePermissionProvider,
    secureFileProvider,
    variableGroupProvider,
} from "../components/ci/azureDevops";
import { AzureDevops, clearConfiguredTokenForTests, setRestOverridesForTests } from "../components/ci/azureDevops/common";
import { find, installMocks, runProgram, stackConfig } from "../scripts/offline";
import { withCiSystem } from "../scripts/render";
import { AzureDevopsCiSettings } from "../components/ci/azureDevops/settings";
import { applyDynamicResources, EngineChain, stateSize } from "./support/engineAzure";
import { FakeAzureDevops } from "./support/fakeAzureDevops";
import { attack } from "./support/attacks";

const PAT = `pat-${crypto.randomBytes(12).toString("hex")}`;
const BEARER = `bearer-${crypto.randomBytes(12).toString("hex")}`;
const CONFIG_TOKEN = `cfg-${crypto.randomBytes(12).toString("hex")}`;
const APPROVER_A = "6f1c1b8e-2a7d-4c55-9a4e-0b6a3c9d1e2f";
const APPROVER_B = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d";
const TOKEN_VARS = ["AZURE_DEVOPS_EXT_PAT", "SYSTEM_ACCESSTOKEN"] as const;

type Provider = pulumi.dynamic.ResourceProvider;

let fake: FakeAzureDevops;
let sleeps: number[] = [];
const savedEnv: Record<string, string | undefined> = {};

const target = () => ({ organization: "acme", project: "dbt", apiUrl: fake.url });

/** Checks inputs like the engine does and fails the test on check failures. */
async function checked<T>(p: Provider, news: T, olds: any = {}): Promise<T> {
    const r = await p.check!(olds, news);
    assert.deepStrictEqual(r.failures ?? [], [], `check failed: ${JSON.stringify(r.failures)}`);
    return r.inputs as T;
}

/** The check failures' reasons. */
async function failures(p: Provider, news: any): Promise<string[]> {
    return ((await p.check!({}, news)).failures ?? []).map((f) => `${f.property}: ${f.reason}`);
}

/** Create as the engine would: check, then create. */
async function create<T>(p: Provider, news: T): Promise<{ id: string; outs: any }> {
    const r = await p.create(await checked(p, news));
    return { id: r.id, outs: r.outs };
}

/** Every string in a value, for secrecy assertions. */
function strings(v: unknown): string {
    return JSON.stringify(v ?? null);
}

async function rejects(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<Error> {
    let caught: Error | undefined;
    try {
        await promise;
    } catch (err) {
        caught = err as Error;
    }
    assert.ok(caught, "expected a rejection");
    for (const p of patterns) assert.match(caught.message, p);
    return caught;
}

describe("Azure DevOps providers (components/ci/azureDevops)", () => {
    before(async () => {
        for (const k of TOKEN_VARS) savedEnv[k] = process.env[k];
        fake = await new FakeAzureDevops({ pats: [PAT, CONFIG_TOKEN], bearerTokens: [BEARER] }).start();
        setRestOverridesForTests({ sleep: async (ms) => void sleeps.push(ms), timeoutMs: 5000 });
    });

    beforeEach(() => {
        sleeps = [];
        process.env.AZURE_DEVOPS_EXT_PAT = PAT;
        delete process.env.SYSTEM_ACCESSTOKEN;
        clearConfiguredTokenForTests();
    });

    after(async () => {
        await fake?.close();
        setRestOverridesForTests(undefined);
        clearConfiguredTokenForTests();
        for (const k of TOKEN_VARS) {
            if (savedEnv[k] === undefined) delete process.env[k];
            else process.env[k] = savedEnv[k];
        }
    });

    describe("Azure DevOps VariableGroup", () => {
        const inputs = (name: string, secret = "s3cret-warehouse-password", extra: Record<string, any> = {}) => ({
            ...target(),
            name,
            description: "dbt CI settings",
            variables: { DBT_TARGET: { value: "ci" }, DBT_PASSWORD: { value: secret, isSecret: true } },
            ...extra,
        });

        it("check names the resource, the field and what is expected", async () => {
            const msgs = await failures(variableGroupProvider, {
                organization: "acme",
                project: "dbt",
                name: "dbt-ci",
                variables: {},
                apiUrl: "ftp://x",
            });
            assert.ok(
                msgs.some((m) => /variables: variable group "dbt-ci": variables must be an object with at least one variable/.test(m)),
                msgs.join("\n"),
            );
            assert.ok(
                msgs.some((m) => /apiUrl: .*http\(s\) URL/.test(m)),
                msgs.join("\n"),
            );
            const more = await failures(variableGroupProvider, {
                organization: "a/b",
                project: "dbt",
                name: " x",
                variables: { "bad name": { value: 1 } },
            });
            assert.ok(more.some((m) => /^organization:/.test(m)));
            assert.ok(more.some((m) => /^name:/.test(m)));
            assert.ok(more.some((m) => /^variables\.bad name:/.test(m)));
            assert.ok(more.some((m) => /^variables\.bad name\.value: .*a string/.test(m)));
            // Values unknown during preview are not judged.
            const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
            assert.deepStrictEqual(
                await failures(variableGroupProvider, {
                    organization: "acme",
                    project: unknown,
                    name: unknown,
                    variables: { A: { value: unknown, isSecret: true } },
                }),
                [],
            );
        });

        it("creates, reads, diffs, updates and deletes through the documented routes", async () => {
            const { id, outs } = await create(variableGroupProvider, inputs("dbt-ci"));
            const project = fake.project();
            const post = fake.requests("POST", /^\/acme\/_apis\/distributedtask\/variablegroups$/).at(-1)!;
            assert.strictEqual(post.query["api-version"], "7.1");
            assert.strictEqual(fake.requests("GET", /^\/acme\/_apis\/projects\/dbt$/).length > 0, true, "the project id is looked up");
            const stored = fake.variableGroup(Number(id))!;
            assert.deepStrictEqual(stored.projectIds, [project.id]);
            assert.strictEqual(stored.variables.DBT_PASSWORD.value, "s3cret-warehouse-password");
            assert.strictEqual(outs.groupId, Number(id));
            assert.strictEqual(outs.projectId, project.id);
            assert.deepStrictEqual(outs.variables, { DBT_TARGET: { value: "ci", isSecret: false }, DBT_PASSWORD: { value: null, isSecret: true } });
            assert.ok(!strings(outs).includes("s3cret-warehouse-password"), "no secret value in outputs");

            const read = await variableGroupProvider.read!(id, outs);
            assert.strictEqual(read.id, id);
            assert.deepStrictEqual(read.props, outs);
            // Reads go to the project by id, which survives a project rename.
            assert.strictEqual(fake.requests("GET", new RegExp(`^/acme/${project.id}/_apis/distributedtask/variablegroups/${id}$`)).length, 1);

            const same = await variableGroupProvider.diff!(id, outs, await checked(variableGroupProvider, inputs("dbt-ci")));
            assert.strictEqual(same.changes, false);

            const renamed = await checked(
                variableGroupProvider,
                inputs("dbt-ci-settings", undefined, {
                    variables: { DBT_TARGET: { value: "ci2" }, DBT_PASSWORD: { value: "s3cret-warehouse-password", isSecret: true } },
                }),
            );
            const d = await variableGroupProvider.diff!(id, outs, renamed);
            assert.strictEqual(d.changes, true);
            assert.deepStrictEqual(d.replaces, []);
            const up = await variableGroupProvider.update!(id, outs, renamed);
            assert.strictEqual(fake.variableGroup(Number(id))!.name, "dbt-ci-settings");
            assert.strictEqual(fake.variableGroup(Number(id))!.variables.DBT_TARGET.value, "ci2");
            assert.strictEqual(up.outs.salt, outs.salt, "the salt is kept so hashes stay comparable");
            assert.strictEqual(fake.requests("PUT", new RegExp(`^/acme/_apis/distributedtask/variablegroups/${id}$`)).length, 1);

            const moved = await variableGroupProvider.diff!(id, up.outs, { ...renamed, project: "other" });
            assert.deepStrictEqual(moved.replaces, ["project"]);
            assert.strictEqual(moved.deleteBeforeReplace, true);

            await variableGroupProvider.delete!(id, up.outs);
            const del = fake.requests("DELETE", new RegExp(`^/acme/_apis/distributedtask/variablegroups/${id}$`)).at(-1)!;
            assert.strictEqual(del.query.projectIds, project.id);
            assert.strictEqual(fake.variableGroup(Number(id)), undefined);
            await variableGroupProvider.delete!(id, up.outs); // 404 tolerated
            assert.deepStrictEqual(await variableGroupProvider.read!(id, up.outs), {});
        });

        it("detects a changed secret value through the salted hash, without keeping the value", async () => {
            const { id, outs } = await create(variableGroupProvider, inputs("dbt-secret", "first-secret"));
            assert.match(outs.salt, /^[0-9a-f]{32}$/);
            assert.match(outs.secretHashes.DBT_PASSWORD, /^[0-9a-f]{64}$/);
            assert.strictEqual((await variableGroupProvider.diff!(id, outs, inputs("dbt-secret", "first-secret"))).changes, false);
            const d = await variableGroupProvider.diff!(id, outs, inputs("dbt-secret", "second-secret"));
            assert.strictEqual(d.changes, true);
            assert.deepStrictEqual(d.replaces, []);
            const up = await variableGroupProvider.update!(id, outs, inputs("dbt-secret", "second-secret"));
            assert.strictEqual(fake.variableGroup(Number(id))!.variables.DBT_PASSWORD.value, "second-secret");
            assert.notStrictEqual(up.outs.secretHashes.DBT_PASSWORD, outs.secretHashes.DBT_PASSWORD);
            assert.ok(!strings(up.outs).includes("second-secret"));
            // The API never returns the secret: a read keeps the known hash.
            const read = await variableGroupProvider.read!(id, up.outs);
            assert.strictEqual(read.props.secretHashes.DBT_PASSWORD, up.outs.secretHashes.DBT_PASSWORD);
            assert.strictEqual((await variableGroupProvider.diff!(id, read.props, inputs("dbt-secret", "second-secret"))).changes, false);
            // Turning a secret into a plain variable is a change too.
            const plain = { ...inputs("dbt-secret"), variables: { DBT_TARGET: { value: "ci" }, DBT_PASSWORD: { value: "second-secret" } } };
            assert.strictEqual((await variableGroupProvider.diff!(id, read.props, plain)).changes, true);
            await variableGroupProvider.delete!(id, up.outs);
        });

        it("read reports drift made outside Pulumi", async () => {
            const { id, outs } = await create(variableGroupProvider, inputs("dbt-drift"));
            fake.variableGroup(Number(id))!.variables.DBT_TARGET.value = "edited-in-ui";
            const read = await variableGroupProvider.read!(id, outs);
            assert.strictEqual(read.props.variables.DBT_TARGET.value, "edited-in-ui");
            const d = await variableGroupProvider.diff!(id, read.props, inputs("dbt-drift"));
            assert.strictEqual(d.changes, true);
            await variableGroupProvider.update!(id, read.props, inputs("dbt-drift"));
            assert.strictEqual(fake.variableGroup(Number(id))!.variables.DBT_TARGET.value, "ci");
            await variableGroupProvider.delete!(id, outs);
        });

        it("refuses a foreign group of the same name: not taken over, not changed, not deleted (issue 11 #5)", async () => {
            const tried = attack("refuses a foreign group of the same name: not taken over, not changed, not deleted (issue 11 #5)");
            const existing = fake.seedVariableGroup("dbt-foreign", { OLD: { value: "theirs", isSecret: true } });
            for (let n = 0; n < 5; n++) fake.seedVariableGroup(`dbt-foreign-other-${n}`, { A: { value: "a", isSecret: false } });
            const mark = fake.log.length;
            await rejects(
                create(variableGroupProvider, inputs("dbt-foreign", "s3cret", { description: "dbt deploy settings (managed by dbt-platform stack prod)" })),
                /variable group dbt-foreign in acme\/dbt already exists and is not ours/,
                /managed by dbt-platform stack prod/,
                /adopt: true/,
            );
            assert.deepStrictEqual(fake.log.slice(mark).filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path}`), [], "no write");
            assert.deepStrictEqual(fake.variableGroup(existing.id)!.variables, { OLD: { value: "theirs", isSecret: true } });
            assert.strictEqual(fake.variableGroup(existing.id)!.description, "made by hand");
            // Nothing of ours exists, so nothing can be deleted on destroy.
            assert.strictEqual(fake.variableGroupsNamed("dbt-foreign").length, 1);
            tried.blocked();
        });

        it("takes over a group carrying our ownership marker, or with adopt: true, and sets it to the desired state", async () => {
            const marked = fake.seedVariableGroup("dbt-ours", { OLD: { value: "x", isSecret: false } });
            marked.description = "dbt deploy settings (managed by dbt-platform stack prod)";
            const { id } = await create(variableGroupProvider, inputs("dbt-ours", "s3cret", { description: "dbt deploy settings (managed by dbt-platform stack prod)" }));
            assert.strictEqual(id, String(marked.id));
            assert.deepStrictEqual(Object.keys(fake.variableGroup(marked.id)!.variables).sort(), ["DBT_PASSWORD", "DBT_TARGET"]);
            assert.strictEqual(fake.requests("PUT", new RegExp(`variablegroups/${marked.id}$`)).length, 1);
            // Another stack's marker is not ours.
            const other = fake.seedVariableGroup("dbt-other-stack", { OLD: { value: "x", isSecret: false } });
            other.description = "managed by dbt-platform stack staging";
            await rejects(create(variableGroupProvider, inputs("dbt-other-stack", "s", { description: "managed by dbt-platform stack prod" })), /is not ours/);
            const adopted = fake.seedVariableGroup("dbt-adopt", { OLD: { value: "x", isSecret: false } });
            const taken = await create(variableGroupProvider, inputs("dbt-adopt", "s3cret", { adopt: true }));
            assert.strictEqual(taken.id, String(adopted.id));
            assert.strictEqual(fake.variableGroupsNamed("dbt-adopt").length, 1, "no duplicate");
        });

        it("lists follow continuation tokens to the last page", async () => {
            for (let n = 0; n < 5; n++) fake.seedVariableGroup(`paged-${n}`, { A: { value: "a", isSecret: false } });
            const before = fake.log.length;
            const ado = new AzureDevops(target(), "variable groups in acme/dbt");
            const all = await ado.list<{ id: number; name: string }>({
                method: "GET",
                path: "dbt/_apis/distributedtask/variablegroups",
                apiVersion: "7.1",
                resource: "variable groups in acme/dbt",
            });
            const pages = fake.log.slice(before);
            const total = [...new Set(all.map((g) => g.id))].length;
            assert.strictEqual(total, all.length, "no item twice");
            assert.ok(all.some((g) => g.name === "paged-0") && all.some((g) => g.name === "paged-4"));
            assert.strictEqual(pages.length, Math.ceil(all.length / fake.pageSize));
            assert.deepStrictEqual(
                pages.slice(1).map((r) => r.query.continuationToken),
                pages.slice(1).map((_, n) => String((n + 1) * fake.pageSize)),
            );
        });

        it("stops paging after the page cap, naming the list (issue 11 #6)", async () => {
            for (let n = 0; n < 7; n++) fake.seedVariableGroup(`capped-${n}`, { A: { value: "a", isSecret: false } });
            const ado = new AzureDevops(target(), "variable groups in acme/dbt");
            const req = {
                method: "GET" as const,
                path: "dbt/_apis/distributedtask/variablegroups",
                apiVersion: "7.1",
                query: { groupName: "capped-*" },
                resource: "variable groups capped-* in acme/dbt",
            };
            const before = fake.log.length;
            await rejects(ado.list(req, undefined, 3), /more than 3 pages of results; stopping/, /variable groups capped-\* in acme\/dbt/);
            assert.strictEqual(fake.log.length - before, 3, "it asked for a page past the cap");
            assert.strictEqual((await ado.list(req, undefined, 4)).length, 7);
        });

        it("honours Retry-After on 429", async () => {
            fake.failNext(/\/_apis\/distributedtask\/variablegroups$/, 429, 1, { "retry-after": "7" }, "POST");
            const { id } = await create(variableGroupProvider, inputs("dbt-429"));
            assert.ok(sleeps.includes(7000), `slept ${sleeps.join(", ")}`);
            assert.deepStrictEqual(
                fake
                    .requests("POST", /variablegroups$/)
                    .slice(-2)
                    .map((r) => r.status),
                [429, 200],
            );
            assert.ok(fake.variableGroup(Number(id)));
        });

        it("retries a 500 twice, then succeeds with one group", async () => {
            fake.failNext(/\/_apis\/distributedtask\/variablegroups$/, 500, 2, {}, "POST");
            await create(variableGroupProvider, inputs("dbt-500"));
            assert.deepStrictEqual(
                fake
                    .requests("POST", /variablegroups$/)
                    .slice(-3)
                    .map((r) => r.status),
                [500, 500, 200],
            );
            assert.strictEqual(sleeps.length, 2);
            assert.strictEqual(fake.variableGroupsNamed("dbt-500").length, 1);
        });

        it("adopts its own group after the connection drops mid-create, without a duplicate", async () => {
            fake.dropNextCreate(/variablegroups$/);
            const { id, outs } = await create(variableGroupProvider, inputs("dbt-drop"));
            assert.strictEqual(fake.variableGroupsNamed("dbt-drop").length, 1);
            assert.strictEqual(id, String(fake.variableGroupsNamed("dbt-drop")[0].id));
            assert.deepStrictEqual(
                fake
                    .requests("POST", /variablegroups$/)
                    .slice(-2)
                    .map((r) => r.status),
                [0, 409],
            );
            assert.ok(!strings(outs).includes("s3cret-warehouse-password"));
        });

        it("reports an out-of-band delete from read, and a later create recreates the group", async () => {
            const { id, outs } = await create(variableGroupProvider, inputs("dbt-oob"));
            fake.deleteOutOfBand("variablegroup", id);
            assert.deepStrictEqual(await variableGroupProvider.read!(id, outs), {});
            await rejects(variableGroupProvider.update!(id, outs, inputs("dbt-oob")), /variable group dbt-oob in acme\/dbt/, /pulumi refresh/);
            const again = await create(variableGroupProvider, inputs("dbt-oob"));
            assert.notStrictEqual(again.id, id);
            assert.strictEqual(fake.variableGroupsNamed("dbt-oob").length, 1);
        });
    });

    describe("Azure DevOps SecureFile", () => {
        const PROFILES =
            "dbt:\n  target: ci\n  outputs:\n    ci:\n      password: \"{{ env_var('DBT_PASSWORD') }}\"\n      secret_marker: profile-secret-42\n";
        const inputs = (name: string, content = PROFILES) => ({ ...target(), name, content });

        it("uploads as octet-stream, never keeps the content, renames in place and deletes", async () => {
            const { id, outs } = await create(secureFileProvider, inputs("profiles.yml"));
            const upload = fake.requests("POST", /^\/acme\/dbt\/_apis\/distributedtask\/securefiles$/).at(-1)!;
            assert.strictEqual(upload.query.name, "profiles.yml");
            assert.strictEqual(upload.query["api-version"], "7.1-preview.1");
            assert.strictEqual(upload.contentType, "application/octet-stream");
            assert.strictEqual(fake.secureFile(id)!.content.toString(), PROFILES);
            assert.strictEqual(outs.secureFileId, id);
            assert.ok(!strings(outs).includes("profile-secret-42"));
            assert.match(outs.contentHash, /^[0-9a-f]{64}$/);

            const read = await secureFileProvider.read!(id, outs);
            assert.deepStrictEqual(read.props, outs);
            assert.strictEqual((await secureFileProvider.diff!(id, outs, inputs("profiles.yml"))).changes, false);

            const renamed = await secureFileProvider.diff!(id, outs, inputs("redshift-profiles.yml"));
            assert.strictEqual(renamed.changes, true);
            assert.deepStrictEqual(renamed.replaces, []);
            const up = await secureFileProvider.update!(id, outs, inputs("redshift-profiles.yml"));
            assert.strictEqual(fake.secureFile(id)!.name, "redshift-profiles.yml");
            assert.strictEqual(up.outs.name, "redshift-profiles.yml");

            await secureFileProvider.delete!(id, up.outs);
            assert.strictEqual(fake.secureFile(id), undefined);
            await secureFileProvider.delete!(id, up.outs);
        });

        it("replaces the file when the content changes (delete first, new id)", async () => {
            const first = await create(secureFileProvider, inputs("replace.yml"));
            const d = await secureFileProvider.diff!(first.id, first.outs, inputs("replace.yml", `${PROFILES}# v2\n`));
            assert.deepStrictEqual(d.replaces, ["content"]);
            assert.strictEqual(d.deleteBeforeReplace, true);
            // What the engine does for a delete-before-replace.
            await secureFileProvider.delete!(first.id, first.outs);
            const second = await create(secureFileProvider, inputs("replace.yml", `${PROFILES}# v2\n`));
            assert.notStrictEqual(second.id, first.id);
            assert.strictEqual(fake.secureFilesNamed("replace.yml").length, 1);
            assert.strictEqual(fake.secureFile(second.id)!.content.toString(), `${PROFILES}# v2\n`);
            await secureFileProvider.delete!(second.id, second.outs);
        });

        it("refuses a foreign file of the same name: not replaced, not deleted (issue 11 #5)", async () => {
            const tried = attack("refuses a foreign file of the same name: not replaced, not deleted (issue 11 #5)");
            const theirs = fake.seedSecureFile("foreign.yml", "their content");
            const mark = fake.log.length;
            await rejects(create(secureFileProvider, { ...inputs("foreign.yml"), marker: "managed by dbt-platform stack prod" }), /secure file foreign.yml in acme\/dbt already exists and is not ours/);
            assert.deepStrictEqual(fake.log.slice(mark).filter((r) => r.method !== "GET").map((r) => r.method), [], "no write");
            assert.strictEqual(fake.secureFile(theirs.id)!.content.toString(), "their content");
            tried.blocked();
        });

        it("replaces a file of ours (marker in its properties) or with adopt: true, and marks what it uploads", async () => {
            const ours = fake.seedSecureFile("ours.yml", "stale content");
            ours.properties = { "dbt-platform": "managed by dbt-platform stack prod" };
            const { id } = await create(secureFileProvider, { ...inputs("ours.yml"), marker: "managed by dbt-platform stack prod" });
            assert.notStrictEqual(id, ours.id, "content cannot be updated in place, so the file is re-uploaded");
            assert.strictEqual(fake.secureFilesNamed("ours.yml").length, 1);
            assert.strictEqual(fake.secureFile(id)!.content.toString(), PROFILES);
            assert.deepStrictEqual(fake.secureFile(id)!.properties, { "dbt-platform": "managed by dbt-platform stack prod" });
            fake.seedSecureFile("adopt.yml", "stale content");
            const adopted = await create(secureFileProvider, { ...inputs("adopt.yml"), adopt: true });
            assert.strictEqual(fake.secureFilesNamed("adopt.yml").length, 1);
            assert.strictEqual(fake.secureFile(adopted.id)!.content.toString(), PROFILES);
        });

        it("ends with one file after the connection drops mid-upload", async () => {
            fake.dropNextCreate(/securefiles$/);
            const { id } = await create(secureFileProvider, inputs("drop.yml"));
            assert.strictEqual(fake.secureFilesNamed("drop.yml").length, 1);
            assert.strictEqual(fake.secureFile(id)!.content.toString(), PROFILES);
        });

        it("reports an out-of-band delete from read", async () => {
            const { id, outs } = await create(secureFileProvider, inputs("oob.yml"));
            fake.deleteOutOfBand("securefile", id);
            assert.deepStrictEqual(await secureFileProvider.read!(id, outs), {});
            const again = await create(secureFileProvider, inputs("oob.yml"));
            assert.strictEqual(fake.secureFilesNamed("oob.yml").length, 1);
            assert.notStrictEqual(again.id, id);
        });

        it("check rejects an empty content and a name with a slash", async () => {
            const msgs = await failures(secureFileProvider, { ...target(), name: "a/b.yml", content: "" });
            assert.ok(
                msgs.some((m) => /^name: secure file "a\/b.yml": name must be a file name without slashes/.test(m)),
                msgs.join("\n"),
            );
            assert.ok(
                msgs.some((m) => /^content: .*non-empty string/.test(m)),
                msgs.join("\n"),
            );
        });
    });

    describe("Azure DevOps BuildDefinition", () => {
        const inputs = (name: string, extra: Record<string, any> = {}) => ({
            ...target(),
            name,
            path: "\\dbt",
            repository: { type: "TfsGit", id: "5f0c2f1e-1111-4c2b-9d7e-0123456789ab", name: "dbt-transform", defaultBranch: "main" },
            poolName: "Azure Pipelines",
            variableGroupIds: [12, 3],
            ...extra,
        });

        it("creates a YAML pipeline, reads it, updates with the current revision and deletes it", async () => {
            const { id, outs } = await create(buildDefinitionProvider, inputs("dbt-ci"));
            const stored = fake.definition(Number(id))!;
            assert.deepStrictEqual(stored.body.process, { type: 2, yamlFilename: "azure-pipelines.yml" });
            assert.deepStrictEqual(stored.body.repository, {
                id: "5f0c2f1e-1111-4c2b-9d7e-0123456789ab",
                name: "dbt-transform",
                type: "TfsGit",
                defaultBranch: "refs/heads/main",
            });
            assert.deepStrictEqual(stored.body.variableGroups, [{ id: 3 }, { id: 12 }]);
            assert.deepStrictEqual(stored.body.queue, { name: "Azure Pipelines", pool: { name: "Azure Pipelines" } });
            assert.ok(
                stored.body.triggers.every((t: any) => t.settingsSourceType === 2),
                "triggers come from the YAML",
            );
            assert.strictEqual(outs.definitionId, Number(id));
            assert.strictEqual(outs.revision, 1);
            assert.match(outs.url, /_build\/definition\?definitionId=/);

            const read = await buildDefinitionProvider.read!(id, outs);
            assert.deepStrictEqual(read.props, outs);
            assert.strictEqual((await buildDefinitionProvider.diff!(id, outs, inputs("dbt-ci"))).changes, false);

            const next = inputs("dbt-ci", { yamlFilename: "ci/azure-pipelines.yml", variableGroupIds: [3] });
            const d = await buildDefinitionProvider.diff!(id, outs, next);
            assert.strictEqual(d.changes, true);
            assert.deepStrictEqual(d.replaces, []);
            const up = await buildDefinitionProvider.update!(id, outs, next);
            const put = fake.requests("PUT", new RegExp(`/build/definitions/${id}$`)).at(-1)!;
            assert.strictEqual(put.status, 200);
            assert.strictEqual(up.outs.revision, 2);
            assert.strictEqual(fake.definition(Number(id))!.body.process.yamlFilename, "ci/azure-pipelines.yml");
            assert.deepStrictEqual(fake.definition(Number(id))!.body.variableGroups, [{ id: 3 }]);

            assert.deepStrictEqual((await buildDefinitionProvider.diff!(id, up.outs, { ...next, project: "elsewhere" })).replaces, ["project"]);
            await buildDefinitionProvider.delete!(id, up.outs);
            assert.strictEqual(fake.definition(Number(id)), undefined);
            await buildDefinitionProvider.delete!(id, up.outs);
        });

        it("refuses a foreign pipeline of the same name and folder unless adopt: true (issue 11 #5)", async () => {
            const tried = attack("refuses a foreign pipeline of the same name and folder unless adopt: true (issue 11 #5)");
            for (let n = 0; n < 4; n++) fake.seedDefinition(`dbt-adopt`, `\\other${n}`);
            const existing = fake.seedDefinition("dbt-adopt", "\\dbt");
            const mark = fake.log.length;
            await rejects(create(buildDefinitionProvider, inputs("dbt-adopt")), /pipeline dbt-adopt in acme\/dbt already exists and is not ours/);
            assert.deepStrictEqual(fake.log.slice(mark).filter((r) => r.method !== "GET").map((r) => r.method), [], "no write");
            assert.strictEqual(fake.definition(existing.id)!.body.process.yamlFilename, "old.yml");
            const { id, outs } = await create(buildDefinitionProvider, inputs("dbt-adopt", { adopt: true }));
            assert.strictEqual(id, String(existing.id));
            assert.strictEqual(fake.definitionsNamed("dbt-adopt").filter((d) => d.body.path === "\\dbt").length, 1);
            assert.strictEqual(fake.definition(existing.id)!.body.process.yamlFilename, "azure-pipelines.yml");
            assert.strictEqual(outs.revision, 4, "the PUT carried the current revision 3");
            assert.ok(
                fake
                    .definitionsNamed("dbt-adopt")
                    .filter((d) => d.body.path !== "\\dbt")
                    .every((d) => d.body.process.yamlFilename === "old.yml"),
                "other folders untouched",
            );
            tried.blocked();
        });

        it("adopts its own pipeline after the connection drops mid-create (DefinitionExistsException on the retry)", async () => {
            fake.dropNextCreate(/build\/definitions$/);
            const { id } = await create(buildDefinitionProvider, inputs("dbt-dropped"));
            assert.strictEqual(fake.definitionsNamed("dbt-dropped").length, 1);
            assert.strictEqual(fake.requests("POST", /build\/definitions$/).at(-1)!.status, 400);
            assert.ok(fake.definition(Number(id)));
        });

        it("re-reads and retries once when the revision is stale (409)", async () => {
            const { id, outs } = await create(buildDefinitionProvider, inputs("dbt-stale"));
            fake.failNext(new RegExp(`/build/definitions/${id}$`), 409, 1, {}, "PUT");
            const up = await buildDefinitionProvider.update!(id, outs, inputs("dbt-stale", { yamlFilename: "x.yml" }));
            assert.deepStrictEqual(
                fake.requests("PUT", new RegExp(`/build/definitions/${id}$`)).map((r) => r.status),
                [409, 200],
            );
            assert.strictEqual(up.outs.revision, 2);
        });

        it("reports an out-of-band delete from read; update asks for a refresh", async () => {
            const { id, outs } = await create(buildDefinitionProvider, inputs("dbt-oob"));
            fake.deleteOutOfBand("definition", id);
            assert.deepStrictEqual(await buildDefinitionProvider.read!(id, outs), {});
            await rejects(buildDefinitionProvider.update!(id, outs, inputs("dbt-oob")), /pipeline dbt-oob in acme\/dbt/, /pulumi refresh/);
        });

        it("check requires a service connection for GitHub and owner/repo ids", async () => {
            const msgs = await failures(buildDefinitionProvider, { ...target(), name: "gh", repository: { type: "GitHub", id: "just-a-name" } });
            assert.ok(
                msgs.some((m) => /^serviceConnectionId: pipeline "gh": .*GitHub service connection/.test(m)),
                msgs.join("\n"),
            );
            assert.ok(
                msgs.some((m) => /^repository\.id: .*"owner\/repo"/.test(m)),
                msgs.join("\n"),
            );
            const byName = await failures(buildDefinitionProvider, { ...target(), name: "x", repository: { type: "TfsGit", name: "dbt-transform" } });
            assert.ok(
                byName.some((m) => /^repository\.id: .*Azure Repos repository GUID/.test(m)),
                byName.join("\n"),
            );
            const bad = await failures(buildDefinitionProvider, {
                ...target(),
                name: "x",
                repository: { type: "Svn", id: "r" },
                yamlFilename: "pipe.txt",
            });
            assert.ok(bad.some((m) => /^repository\.type: .*TfsGit, GitHub, Bitbucket/.test(m)));
            assert.ok(bad.some((m) => /^yamlFilename:/.test(m)));
            const ok = await failures(buildDefinitionProvider, {
                ...target(),
                name: "gh",
                repository: { type: "GitHub", id: "acme/dbt" },
                serviceConnectionId: "c0ffee00-0000-4000-8000-000000000000",
            });
            assert.deepStrictEqual(ok, []);
        });
    });

    describe("Azure DevOps Environment and ApprovalCheck", () => {
        const env = (name: string, description = "dbt release stage") => ({ ...target(), name, description });
        const approval = (environmentId: number, environmentName: string, extra: Record<string, any> = {}) => ({
            ...target(),
            environmentId,
            environmentName,
            approverIds: [APPROVER_B, APPROVER_A],
            minRequiredApprovers: 1,
            instructions: "Check the dbt test results before releasing to prod.",
            ...extra,
        });

        it("creates, reads, renames and deletes an environment with the preview api-version", async () => {
            const { id, outs } = await create(environmentProvider, env("sandbox"));
            const post = fake.requests("POST", /^\/acme\/dbt\/_apis\/distributedtask\/environments$/).at(-1)!;
            assert.strictEqual(post.query["api-version"], "7.1-preview.1");
            assert.strictEqual(outs.environmentId, Number(id));
            assert.deepStrictEqual((await environmentProvider.read!(id, outs)).props, outs);
            assert.strictEqual((await environmentProvider.diff!(id, outs, env("sandbox"))).changes, false);
            const d = await environmentProvider.diff!(id, outs, env("sandbox-1", "renamed"));
            assert.strictEqual(d.changes, true);
            assert.deepStrictEqual(d.replaces, []);
            const up = await environmentProvider.update!(id, outs, env("sandbox-1", "renamed"));
            assert.strictEqual(fake.environment(Number(id))!.name, "sandbox-1");
            assert.strictEqual(up.outs.description, "renamed");
            await environmentProvider.delete!(id, up.outs);
            assert.strictEqual(fake.environment(Number(id)), undefined);
            assert.deepStrictEqual(await environmentProvider.read!(id, up.outs), {});
        });

        it("refuses a foreign environment of the same name: not taken over, not deleted (issue 11 #5)", async () => {
            const tried = attack("refuses a foreign environment of the same name: not taken over, not deleted (issue 11 #5)");
            const existing = fake.seedEnvironment("staging");
            for (let n = 0; n < 3; n++) fake.seedEnvironment(`staging-${n}`);
            const mark = fake.log.length;
            await rejects(create(environmentProvider, env("staging", "dbt deployments (managed by dbt-platform stack staging)")), /environment staging in acme\/dbt already exists and is not ours/);
            assert.deepStrictEqual(fake.log.slice(mark).filter((r) => r.method !== "GET").map((r) => r.method), [], "no write");
            assert.strictEqual(fake.environment(existing.id)!.description, "made by hand");
            assert.strictEqual(fake.environmentsNamed("staging").length, 1);
            tried.blocked();
        });

        it("takes over an environment carrying our marker, and its own after a dropped POST (409 on the retry)", async () => {
            const ours = fake.seedEnvironment("sandbox");
            ours.description = "dbt deployments (managed by dbt-platform stack sandbox)";
            const { id } = await create(environmentProvider, env("sandbox", "dbt deployments of sandbox (managed by dbt-platform stack sandbox)"));
            assert.strictEqual(id, String(ours.id));
            assert.strictEqual(fake.environment(ours.id)!.description, "dbt deployments of sandbox (managed by dbt-platform stack sandbox)");
            fake.dropNextCreate(/environments$/);
            const dropped = await create(environmentProvider, env("dropped-env"));
            assert.strictEqual(fake.environmentsNamed("dropped-env").length, 1);
            assert.strictEqual(fake.requests("POST", /environments$/).at(-1)!.status, 409);
            assert.ok(fake.environment(Number(dropped.id)));
        });

        it("adds an Approval check, reads it, updates approvers in place and deletes it", async () => {
            const e = await create(environmentProvider, env("prod"));
            const envId = Number(e.id);
            const { id, outs } = await create(approvalCheckProvider, approval(envId, "prod"));
            const stored = fake.check(Number(id))!;
            assert.strictEqual(stored.type.id, "8C6F20A7-A545-4486-9777-F762FAFE0D4D");
            assert.deepStrictEqual(stored.resource, { type: "environment", id: String(envId), name: "prod" });
            assert.deepStrictEqual(
                stored.settings.approvers,
                [{ id: APPROVER_B }, { id: APPROVER_A }].sort((a, b) => a.id.localeCompare(b.id)),
            );
            assert.strictEqual(stored.settings.minRequiredApprovers, 1);
            assert.strictEqual(stored.settings.requesterCannotBeApprover, true);
            assert.strictEqual(stored.timeout, 43200);
            const listed = fake.requests("GET", /checks\/configurations$/).at(-1)!;
            assert.deepStrictEqual(
                [listed.query.resourceType, listed.query.resourceId, listed.query.$expand],
                ["environment", String(envId), "settings"],
            );

            const read = await approvalCheckProvider.read!(id, outs);
            assert.deepStrictEqual(read.props, outs);
            assert.strictEqual((await approvalCheckProvider.diff!(id, outs, approval(envId, "prod"))).changes, false);
            assert.strictEqual(
                (await approvalCheckProvider.diff!(id, outs, approval(envId, "prod", { approverIds: [APPROVER_A, APPROVER_B] }))).changes,
                false,
                "approver order is not a change",
            );

            const next = approval(envId, "prod", { approverIds: [APPROVER_A], minRequiredApprovers: 0, timeoutMinutes: 60 });
            const d = await approvalCheckProvider.diff!(id, outs, next);
            assert.strictEqual(d.changes, true);
            assert.deepStrictEqual(d.replaces, []);
            await approvalCheckProvider.update!(id, outs, next);
            assert.deepStrictEqual(fake.check(Number(id))!.settings.approvers, [{ id: APPROVER_A }]);
            assert.strictEqual(fake.check(Number(id))!.timeout, 60);
            assert.deepStrictEqual((await approvalCheckProvider.diff!(id, outs, approval(envId + 1000, "prod"))).replaces, ["environmentId"]);

            await approvalCheckProvider.delete!(id, outs);
            assert.strictEqual(fake.check(Number(id)), undefined);
            await approvalCheckProvider.delete!(id, outs);
        });

        it("never doubles its Approval check after a dropped POST", async () => {
            const e = await create(environmentProvider, env("prod-2"));
            const envId = Number(e.id);
            fake.dropNextCreate(/checks\/configurations$/);
            const first = await create(approvalCheckProvider, approval(envId, "prod-2"));
            assert.strictEqual(fake.checksOn(envId).length, 1, "no duplicate after the dropped connection");
            assert.strictEqual(fake.requests("POST", /checks\/configurations$/).filter((r) => r.status === 0).length, 1);
            assert.strictEqual(fake.check(Number(first.id))!.settings.instructions, "Check the dbt test results before releasing to prod.");
        });

        it("retries a throttled or failed check POST without doubling the check", async () => {
            const e = await create(environmentProvider, env("prod-5"));
            const envId = Number(e.id);
            fake.failNext(/checks\/configurations$/, 429, 1, { "retry-after": "2" }, "POST");
            fake.failNext(/checks\/configurations$/, 503, 1, {}, "POST");
            await create(approvalCheckProvider, approval(envId, "prod-5"));
            assert.ok(sleeps.includes(2000), `slept ${sleeps.join(", ")}`);
            assert.deepStrictEqual(
                fake
                    .requests("POST", /checks\/configurations$/)
                    .slice(-3)
                    .map((r) => r.status),
                [429, 503, 200],
            );
            assert.strictEqual(fake.checksOn(envId).length, 1);
        });

        it("leaves an Approval check made by hand alone (behind other checks on later list pages) and adds its own (issue 11 #5)", async () => {
            const e = await create(environmentProvider, env("prod-4"));
            const envId = Number(e.id);
            for (let n = 0; n < 3; n++) fake.seedCheck(envId, "fe1de3ee-a436-41b4-bb20-f6eb4cb879a7", { displayName: `branch control ${n}` });
            const manual = fake.seedCheck(envId, "8c6f20a7-a545-4486-9777-f762fafe0d4d", { approvers: [{ id: APPROVER_B }] });
            const before = fake.log.length;
            const { id } = await create(approvalCheckProvider, approval(envId, "prod-4"));
            assert.notStrictEqual(id, String(manual.id), "someone else's check was taken over");
            const lists = fake.log.slice(before).filter((r) => r.method === "GET" && /checks\/configurations$/.test(r.path));
            assert.ok(lists.length >= 2 && lists.slice(1).every((r) => r.query.continuationToken), "the list was paged");
            assert.deepStrictEqual(fake.log.slice(before).filter((r) => r.method === "PATCH" || r.method === "DELETE"), [], "a foreign check was changed");
            assert.strictEqual(fake.checksOn(envId).length, 5);
            assert.deepStrictEqual(fake.check(manual.id)!.settings.approvers, [{ id: APPROVER_B }]);
        });

        it("reports a check gone when its environment is deleted out of band", async () => {
            const e = await create(environmentProvider, env("prod-3"));
            const c = await create(approvalCheckProvider, approval(Number(e.id), "prod-3"));
            fake.deleteOutOfBand("environment", e.id);
            assert.deepStrictEqual(await environmentProvider.read!(e.id, e.outs), {});
            assert.deepStrictEqual(await approvalCheckProvider.read!(c.id, c.outs), {});
        });

        it("check rejects approvers that are not identity ids and an impossible minimum", async () => {
            const msgs = await failures(approvalCheckProvider, {
                ...target(),
                environmentId: 7,
                environmentName: "prod",
                approverIds: ["alice@acme.example"],
                minRequiredApprovers: 3,
            });
            assert.ok(
                msgs.some((m) => /^approverIds\[0\]: approval check "prod": .*identity id \(GUID\)/.test(m)),
                msgs.join("\n"),
            );
            assert.ok(
                msgs.some((m) => /^minRequiredApprovers: .*from 0 to 1/.test(m)),
                msgs.join("\n"),
            );
            const env = await failures(environmentProvider, { ...target(), name: "prod/eu" });
            assert.ok(env.some((m) => /^name: environment "prod\/eu"/.test(m)));
        });
    });

    describe("Azure DevOps PipelinePermission", () => {
        it("authorises one pipeline on a variable group, reads it and revokes on delete", async () => {
            const vg = await create(variableGroupProvider, { ...target(), name: "perm-vg", variables: { A: { value: "1" } } });
            const def = await create(buildDefinitionProvider, {
                ...target(),
                name: "perm-pipeline",
                repository: { type: "TfsGit", id: "5f0c2f1e-2222-4c2b-9d7e-0123456789ab", name: "dbt" },
            });
            const inputs = { ...target(), resourceType: "variablegroup", resourceId: Number(vg.id), pipelineId: Number(def.id) };
            const { id, outs } = await create(pipelinePermissionProvider, inputs);
            assert.strictEqual(id, `variablegroup/${vg.id}/${def.id}`);
            const patch = fake.requests("PATCH", new RegExp(`/pipelines/pipelinepermissions/variablegroup/${vg.id}$`)).at(-1)!;
            assert.strictEqual(patch.query["api-version"], "7.1-preview.1");
            assert.deepStrictEqual([...fake.permission(fake.project().id, "variablegroup", vg.id)!.pipelines.keys()], [Number(def.id)]);
            assert.deepStrictEqual((await pipelinePermissionProvider.read!(id, outs)).props, outs);
            assert.strictEqual((await pipelinePermissionProvider.diff!(id, outs, inputs)).changes, false);
            const d = await pipelinePermissionProvider.diff!(id, outs, { ...inputs, pipelineId: Number(def.id) + 1 });
            assert.deepStrictEqual(d.replaces, ["pipelineId"]);
            assert.strictEqual(d.deleteBeforeReplace, true);
            await pipelinePermissionProvider.delete!(id, outs);
            assert.strictEqual(fake.permission(fake.project().id, "variablegroup", vg.id)!.pipelines.size, 0);
            assert.deepStrictEqual(await pipelinePermissionProvider.read!(id, outs), {}, "a revoked grant reads as gone");
        });

        it("authorises all pipelines on a secure file and reports it gone when the file is deleted out of band", async () => {
            const file = await create(secureFileProvider, { ...target(), name: "perm.yml", content: "x: 1\n" });
            const { id, outs } = await create(pipelinePermissionProvider, { ...target(), resourceType: "securefile", resourceId: file.id });
            assert.strictEqual(id, `securefile/${file.id}/all`);
            assert.strictEqual(fake.permission(fake.project().id, "securefile", file.id)!.allPipelines?.authorized, true);
            assert.deepStrictEqual((await pipelinePermissionProvider.read!(id, outs)).props, outs);
            fake.deleteOutOfBand("securefile", file.id);
            assert.deepStrictEqual(await pipelinePermissionProvider.read!(id, outs), {});
            await pipelinePermissionProvider.delete!(id, outs); // the resource is gone: 404 tolerated
        });

        it("check rejects an unknown resource type", async () => {
            const msgs = await failures(pipelinePermissionProvider, { ...target(), resourceType: "repository", resourceId: "x" });
            assert.ok(
                msgs.some((m) =>
                    /^resourceType: pipeline permission: resourceType must be one of variablegroup, securefile, environment, queue, endpoint/.test(m),
                ),
                msgs.join("\n"),
            );
        });
    });

    describe("Azure DevOps credentials and errors", () => {
        const vg = (name: string) => ({ ...target(), name, variables: { A: { value: "1" } } });

        it("a rejected token (401) names the resource and the variable to fix", async () => {
            process.env.AZURE_DEVOPS_EXT_PAT = "revoked-token";
            await rejects(
                create(variableGroupProvider, vg("auth-401")),
                /401/,
                /variable group auth-401 in acme\/dbt/,
                /token came from AZURE_DEVOPS_EXT_PAT/,
            );
            assert.ok(!fake.log.some((r) => JSON.stringify(r).includes("revoked-token")));
        });

        it("a 403 names the resource and the missing permission", async () => {
            fake.failNext(/\/_apis\/distributedtask\/environments$/, 403, 1, {}, "POST");
            await rejects(
                create(environmentProvider, { ...target(), name: "forbidden" }),
                /403 Forbidden/,
                /environment forbidden in acme\/dbt/,
                /AZURE_DEVOPS_EXT_PAT/,
            );
        });

        it("a 404 names what was not found", async () => {
            await rejects(
                create(variableGroupProvider, { ...vg("nowhere"), project: "no-such-project" }),
                /404/,
                /project no-such-project/,
                /TF200016/,
            );
        });

        it("a 203 sign-in page (Azure's answer to a bad PAT) is an auth failure, not a success", async () => {
            fake.failNext(/\/_apis\/distributedtask\/environments$/, 203, 1, {}, "POST");
            await rejects(create(environmentProvider, { ...target(), name: "signin" }), /sign-in page/, /environment signin/, /AZURE_DEVOPS_EXT_PAT/);
        });

        it("without any credential the error lists every way to give one, before any request", async () => {
            delete process.env.AZURE_DEVOPS_EXT_PAT;
            const before = fake.log.length;
            await rejects(
                create(variableGroupProvider, vg("nocreds")),
                /no credentials/,
                /AZURE_DEVOPS_EXT_PAT/,
                /SYSTEM_ACCESSTOKEN/,
                /dbt-platform:azureDevopsToken/,
            );
            assert.strictEqual(fake.log.length, before);
        });

        it("uses SYSTEM_ACCESSTOKEN as a bearer token, and the stack config token through configure", async () => {
            delete process.env.AZURE_DEVOPS_EXT_PAT;
            process.env.SYSTEM_ACCESSTOKEN = BEARER;
            await create(environmentProvider, { ...target(), name: "bearer-env" });
            assert.strictEqual(fake.requests("POST", /environments$/).at(-1)!.auth, "bearer");
            delete process.env.SYSTEM_ACCESSTOKEN;
            await environmentProvider.configure!({
                config: { get: (k: string) => (k === "dbt-platform:azureDevopsToken" ? CONFIG_TOKEN : undefined), require: () => "" },
            });
            await create(environmentProvider, { ...target(), name: "config-env" });
            const last = fake.requests("POST", /environments$/).at(-1)!;
            assert.deepStrictEqual([last.auth, last.status], ["basic", 200]);
        });

        it("the fake enforces the contract: api-version, preview flag, auth, malformed JSON", async () => {
            const auth = { Authorization: `Basic ${Buffer.from(`:${PAT}`).toString("base64")}` };
            const noVersion = await fetch(`${fake.url}/acme/dbt/_apis/distributedtask/variablegroups`, { headers: auth });
            assert.strictEqual(noVersion.status, 400);
            assert.strictEqual(((await noVersion.json()) as any).typeKey, "VssVersionNotSpecifiedException");
            const noPreview = await fetch(`${fake.url}/acme/dbt/_apis/distributedtask/environments?api-version=7.1`, { headers: auth });
            assert.strictEqual(((await noPreview.json()) as any).typeKey, "VssInvalidPreviewVersionException");
            const anonymous = await fetch(`${fake.url}/acme/dbt/_apis/distributedtask/variablegroups?api-version=7.1`);
            assert.strictEqual(anonymous.status, 203);
            const badJson = await fetch(`${fake.url}/acme/_apis/distributedtask/variablegroups?api-version=7.1`, {
                method: "POST",
                headers: { ...auth, "content-type": "application/json" },
                body: "{nope",
            });
            assert.strictEqual(badJson.status, 400);
            const noRefs = await fetch(`${fake.url}/acme/_apis/distributedtask/variablegroups?api-version=7.1`, {
                method: "POST",
                headers: { ...auth, "content-type": "application/json" },
                body: JSON.stringify({ name: "x", variables: { A: { value: "1" } } }),
            });
            assert.strictEqual(noRefs.status, 400);
            const missing = await fetch(`${fake.url}/acme/dbt/_apis/distributedtask/variablegroups/999999?api-version=7.1`, { headers: auth });
            assert.strictEqual(((await missing.json()) as any).typeKey, "VariableGroupNotFoundException");
        });
    });

    describe("Azure DevOps providers under the engine's call chain", () => {
        /**
         * First up (check → create), second up (check against recorded inputs → diff against recorded
         * outputs), refresh (read) and a preview after it: the last two must report no change and send no
         * write. Values cross the engine boundary as it does (protobuf Struct, sorted keys, __provider).
         */
        async function steadyState(type: string, provider: Provider, program: Record<string, any>): Promise<void> {
            const chain = new EngineChain(provider, type);
            const first = await chain.create(program);
            const mark = fake.log.length;
            const second = await chain.diff(first, program);
            assert.strictEqual(second.changes, false, `${type}: second up reports changes (replaces: ${JSON.stringify(second.replaces)})`);
            assert.deepStrictEqual(second.replaces ?? [], [], `${type}: second up replaces`);
            const refreshed = await chain.refresh(first);
            const preview = await chain.diff(refreshed, program);
            assert.strictEqual(preview.changes, false, `${type}: preview after refresh reports changes (replaces: ${JSON.stringify(preview.replaces)})`);
            assert.deepStrictEqual(preview.replaces ?? [], [], `${type}: preview after refresh replaces`);
            const again = await chain.refresh(refreshed);
            assert.deepStrictEqual(again.outputs, refreshed.outputs, `${type}: a second refresh changes the recorded outputs`);
            const writes = fake.log.slice(mark).filter((r) => r.method !== "GET");
            assert.deepStrictEqual(writes.map((r) => `${r.method} ${r.path}`), [], `${type}: the second up and refresh sent writes`);
            const size = stateSize(first);
            console.log(`state size: azuredevops:${type} ${size.total} bytes`);
        }

        it("VariableGroup: a second up and a preview after refresh change nothing", async () => {
            await steadyState("VariableGroup", variableGroupProvider, {
                ...target(),
                name: "engine-vg",
                description: "dbt deploy settings",
                variables: { DBT_TARGET: { value: "prod" }, DBT_PASSWORD: { value: "engine-secret-1", isSecret: true } },
            });
        });

        it("SecureFile: a second up and a preview after refresh change nothing", async () => {
            await steadyState("SecureFile", secureFileProvider, { ...target(), name: "engine-profiles.yml", content: "profile: {}\n" });
        });

        it("BuildDefinition: a second up and a preview after refresh change nothing (repository compared normalised)", async () => {
            await steadyState("BuildDefinition", buildDefinitionProvider, {
                ...target(),
                name: "engine-pipeline",
                yamlFilename: "azure-pipelines.yml",
                repository: { type: "TfsGit", id: "5f0c2f1e-4444-4c2b-9d7e-0123456789ab", name: "dbt-transform", defaultBranch: "refs/heads/main" },
                variableGroupIds: [7, 3],
            });
        });

        it("Environment and ApprovalCheck: a second up and a preview after refresh change nothing", async () => {
            const env = await new EngineChain(environmentProvider, "Environment").create({ ...target(), name: "engine-env", description: "dbt" });
            await steadyState("Environment", environmentProvider, { ...target(), name: "engine-env-2", description: "dbt deployments" });
            await steadyState("ApprovalCheck", approvalCheckProvider, {
                ...target(),
                environmentId: Number(env.id),
                environmentName: "engine-env",
                approverIds: [APPROVER_B, APPROVER_A],
                instructions: "Approve the release",
            });
        });

        it("BranchControlCheck, ExclusiveLockCheck, ResourceApprovalCheck: a second up and a preview after refresh change nothing", async () => {
            const vg = await create(variableGroupProvider, { ...target(), name: "engine-checked-vg", variables: { A: { value: "1" } } });
            const env = await create(environmentProvider, { ...target(), name: "engine-locked-env" });
            const onGroup = { ...target(), resourceType: "variablegroup", resourceId: vg.id, resourceName: "engine-checked-vg" };
            await steadyState("BranchControlCheck", branchControlCheckProvider, { ...onGroup, allowedBranches: ["main"], displayName: "Only main" });
            await steadyState("ResourceApprovalCheck", resourceApprovalCheckProvider, { ...onGroup, approverIds: [APPROVER_B, APPROVER_A], instructions: "Approve" });
            await steadyState("ExclusiveLockCheck", exclusiveLockCheckProvider, { ...target(), resourceType: "environment", resourceId: env.id, resourceName: "engine-locked-env" });
        });

        it("BranchControlCheck on a service connection found by name: a second up and a preview after refresh change nothing", async () => {
            const connection = fake.seedServiceEndpoint("engine-aws-deploy");
            await steadyState("BranchControlCheck", branchControlCheckProvider, {
                ...target(),
                resourceType: "endpoint",
                resourceName: "engine-aws-deploy",
                allowedBranches: ["main"],
            });
            assert.strictEqual(fake.checksOnResource("endpoint", connection.id).length, 1);
            await rejects(
                create(branchControlCheckProvider, { ...target(), resourceType: "endpoint", resourceName: "no-such-connection", allowedBranches: ["main"] }),
                /no service connection named no-such-connection/,
            );
        });

        it("BuildValidationPolicy: a second up and a preview after refresh change nothing", async () => {
            const def = await create(buildDefinitionProvider, {
                ...target(),
                name: "engine-policy-pipeline",
                repository: { type: "TfsGit", id: "5f0c2f1e-6666-4c2b-9d7e-0123456789ab", name: "dbt" },
            });
            await steadyState("BuildValidationPolicy", buildValidationPolicyProvider, {
                ...target(),
                repositoryId: "5F0C2F1E-6666-4C2B-9D7E-0123456789AB",
                branch: "main",
                buildDefinitionId: Number(def.id),
                displayName: "dbt slim CI",
            });
        });

        it("PipelinePermission: a second up and a preview after refresh change nothing", async () => {
            const vg = await create(variableGroupProvider, { ...target(), name: "engine-perm-vg", variables: { A: { value: "1" } } });
            const def = await create(buildDefinitionProvider, {
                ...target(),
                name: "engine-perm-pipeline",
                repository: { type: "TfsGit", id: "5f0c2f1e-5555-4c2b-9d7e-0123456789ab", name: "dbt" },
            });
            await steadyState("PipelinePermission", pipelinePermissionProvider, {
                ...target(),
                resourceType: "variablegroup",
                resourceId: vg.id,
                pipelineId: Number(def.id),
            });
        });
    });

    describe("Azure DevOps settings: no path from pull-request code to production (issue 11 #3, #4)", () => {
        const REPO = "5f0c2f1e-7777-4c2b-9d7e-0123456789ab";
        const PR_BRANCH = "refs/pull/17/merge";
        const MAIN = "refs/heads/main";
        const providers = {
            VariableGroup: variableGroupProvider,
            SecureFile: secureFileProvider,
            BuildDefinition: buildDefinitionProvider,
            Environment: environmentProvider,
            ApprovalCheck: approvalCheckProvider,
            PipelinePermission: pipelinePermissionProvider,
            BranchControlCheck: branchControlCheckProvider,
            ExclusiveLockCheck: exclusiveLockCheckProvider,
            ResourceApprovalCheck: resourceApprovalCheckProvider,
            BuildValidationPolicy: buildValidationPolicyProvider,
        };
        const variables = (target: string) => [
            { name: `DBT_${target}_HOST`, secret: false },
            { name: `DBT_${target}_PASSWORD`, secret: true },
        ];
        const values = (stack: string) =>
            pulumi.secret({ DBT_CI_HOST: "db", DBT_CI_PASSWORD: "ci-pw-1", [`DBT_${upper(stack)}_HOST`]: "db", [`DBT_${upper(stack)}_PASSWORD`]: "prod-pw-1" });
        const upper = (stack: string) => stack.toUpperCase().replace(/[^A-Z0-9]/g, "_");

        /** Applies AzureDevopsCiSettings against the fake through the real providers; the objects it made. */
        async function apply(stack: string, withCi: boolean, approverIds: string[], deployServiceConnection?: string) {
            const { applied, errors, settle } = await applyDynamicResources("azuredevops", providers, stack);
            const jobs = [
                ...(withCi ? [{ id: "pull-request" as const, variables: variables("CI") }] : []),
                { id: "deploy" as const, variables: variables(upper(stack)), deploymentEnvironment: stack },
            ];
            const settings = new AzureDevopsCiSettings("ado", {
                organization: "acme",
                project: "dbt",
                stack,
                jobs,
                values: values(stack),
                profilesYaml: "acme:\n  target: ci\n",
                repositoryId: REPO,
                repositoryName: "analytics-dbt",
                defaultBranch: "main",
                approverIds,
                deployServiceConnection,
                apiUrl: fake.url,
            });
            const pipelineId = await (settings.pipeline.definitionId as any).promise();
            await settle();
            assert.deepStrictEqual(errors.map((e) => e.message), []);
            const byName = (type: string, name: string) => applied.find((a) => a.type === type && a.outs.name === name)!;
            return {
                applied,
                pipelineId: Number(pipelineId),
                deployGroup: byName("VariableGroup", `dbt-${stack}-deploy`),
                prGroup: byName("VariableGroup", `dbt-${stack}-pull-request`),
                profiles: byName("SecureFile", `dbt-${stack}-profiles.yml`),
                deployProfiles: byName("SecureFile", `dbt-${stack}-profiles-deploy.yml`),
                env: byName("Environment", stack),
                settings,
            };
        }

        it("the production group is usable only by runs of main, after an approval; PR runs keep their own group and profiles", async () => {
            const tried = attack("the production group is usable only by runs of main, after an approval; PR runs keep their own group and profiles");
            const connection = fake.seedServiceEndpoint("aws-shop-prod-deploy");
            const r = await apply("shop-prod", true, [APPROVER_A], "aws-shop-prod-deploy");
            // The deploy role's service connection: a PR run gets no token from it.
            assert.ok(fake.usage("endpoint", connection.id, { pipelineId: r.pipelineId, sourceBranch: PR_BRANCH }).rejectedBy.length > 0, "the deploy connection serves PR runs");
            assert.deepStrictEqual(fake.checksOnResource("endpoint", connection.id).map((c) => c.settings.inputs.allowedBranches), [MAIN]);
            const deploy = { type: "variablegroup", id: r.deployGroup.id };
            const fromPr = fake.usage(deploy.type, deploy.id, { pipelineId: r.pipelineId, sourceBranch: PR_BRANCH });
            assert.strictEqual(fromPr.authorized, true, "the pipeline is permitted to use the group");
            assert.strictEqual(fromPr.usableWithoutCheck, false, "group usable without a check from a pull-request run");
            assert.ok(fromPr.rejectedBy.some((c) => c.startsWith("branch control")), `a PR run is not rejected: ${JSON.stringify(fromPr)}`);
            const fromFeature = fake.usage(deploy.type, deploy.id, { pipelineId: r.pipelineId, sourceBranch: "refs/heads/feature/x" });
            assert.ok(fromFeature.rejectedBy.length > 0, "a feature branch run may use the production group");
            const fromMain = fake.usage(deploy.type, deploy.id, { pipelineId: r.pipelineId, sourceBranch: MAIN });
            assert.deepStrictEqual(fromMain.rejectedBy, [], "a main run is rejected");
            assert.ok(fromMain.waitsFor.some((c) => c.startsWith("approval")), "a main run needs no approval for the production group");
            // CI must keep working on pull requests: its group and the (secret-free) profiles file carry no check.
            assert.strictEqual(fake.usage("variablegroup", r.prGroup.id, { pipelineId: r.pipelineId, sourceBranch: PR_BRANCH }).usableWithoutCheck, true);
            assert.strictEqual(fake.usage("securefile", r.profiles.id, { pipelineId: r.pipelineId, sourceBranch: PR_BRANCH }).usableWithoutCheck, true);
            // The deploy job downloads its own profiles file: main only, after the approval, even with a PR job on the stage.
            assert.ok(fake.usage("securefile", r.deployProfiles.id, { pipelineId: r.pipelineId, sourceBranch: PR_BRANCH }).rejectedBy.some((c) => c.startsWith("branch control")));
            const deployFileFromMain = fake.usage("securefile", r.deployProfiles.id, { pipelineId: r.pipelineId, sourceBranch: MAIN });
            assert.deepStrictEqual(deployFileFromMain.rejectedBy, []);
            assert.ok(deployFileFromMain.waitsFor.some((c) => c.startsWith("approval")));
            // Permissions name this pipeline only: another pipeline of the project gets nothing.
            const other = await create(buildDefinitionProvider, {
                ...target(),
                name: "someone-elses-pipeline",
                repository: { type: "TfsGit", id: "5f0c2f1e-8888-4c2b-9d7e-0123456789ab", name: "other" },
            });
            for (const [type, id] of [["variablegroup", r.deployGroup.id], ["variablegroup", r.prGroup.id], ["securefile", r.profiles.id], ["securefile", r.deployProfiles.id], ["environment", r.env.id]]) {
                assert.strictEqual(fake.usage(type, id, { pipelineId: Number(other.id), sourceBranch: MAIN }).authorized, false, `${type} ${id} is open to every pipeline`);
                assert.strictEqual(fake.permission(fake.project().id, type, id)!.allPipelines, null, `${type} ${id} authorises all pipelines`);
            }
            assert.deepStrictEqual(r.settings.protectedResources, ["variablegroup:dbt-shop-prod-deploy", "securefile:dbt-shop-prod-profiles-deploy.yml"]);
            tried.blocked();
        });

        it("the shipped prod stack on Azure DevOps registers the checks, the lock and the PR policy", async function () {
            this.timeout(300_000);
            const base = withCiSystem(stackConfig("prod"), "azure-devops").config;
            const ci = JSON.parse(base["dbt-platform:ci"]);
            const config = { ...base, "dbt-platform:ci": JSON.stringify({ ...ci, manageSettings: true, azureRepositoryId: REPO, approvers: [APPROVER_A] }) };
            const { resources } = await runProgram("prod", config);
            const of = (type: string) => resources.filter((r) => r.type === `pulumi-nodejs:dynamic/azuredevops:${type}`).map((r) => r.inputs);
            assert.deepStrictEqual(of("BranchControlCheck").map((i) => [i.resourceType, i.resourceName, i.allowedBranches]).sort(), [
                ["environment", "prod", [MAIN]],
                ["securefile", "dbt-prod-profiles-deploy.yml", [MAIN]],
                ["variablegroup", "dbt-prod-deploy", [MAIN]],
            ]);
            assert.deepStrictEqual(of("ResourceApprovalCheck").map((i) => [i.resourceType, i.resourceName, i.approverIds]).sort(), [
                ["securefile", "dbt-prod-profiles-deploy.yml", [APPROVER_A]],
                ["variablegroup", "dbt-prod-deploy", [APPROVER_A]],
            ]);
            assert.deepStrictEqual(of("ExclusiveLockCheck").map((i) => [i.resourceType, i.resourceName]), [["environment", "prod"]]);
            assert.deepStrictEqual(of("BuildValidationPolicy").map((i) => [i.repositoryId, i.branch]), [[REPO, MAIN]]);
            // One permission per resource (for this pipeline only: asserted against the fake above).
            assert.deepStrictEqual(of("PipelinePermission").map((i) => i.resourceType).sort(), ["environment", "securefile", "securefile", "variablegroup", "variablegroup"]);
            for (const i of [...of("VariableGroup"), ...of("Environment")]) assert.match(i.description, /managed by dbt-platform stack prod/);
        });

        it("pull requests into main run the pipeline: a blocking build-validation policy", async () => {
            const r = await apply("shop-staging", true, []);
            const builds = fake.pullRequestBuilds(REPO, MAIN);
            assert.deepStrictEqual(builds.filter((b) => b.definitionId === r.pipelineId), [{ definitionId: r.pipelineId, blocking: true }], "no build-validation policy");
            const [policy] = fake.allPolicies().filter((p) => Number(p.settings.buildDefinitionId) === r.pipelineId);
            assert.deepStrictEqual(policy.settings.scope, [{ repositoryId: REPO, refName: MAIN, matchKind: "Exact" }]);
            // Without approvers the production group still admits main only.
            const fromPr = fake.usage("variablegroup", r.deployGroup.id, { pipelineId: r.pipelineId, sourceBranch: PR_BRANCH });
            assert.ok(fromPr.rejectedBy.length > 0);
            assert.deepStrictEqual(fake.usage("variablegroup", r.deployGroup.id, { pipelineId: r.pipelineId, sourceBranch: MAIN }).usableWithoutCheck, true);
        });

        it("releases never overlap: an exclusive lock on the deploy environment, besides its approval", async () => {
            const tried = attack("releases never overlap: an exclusive lock on the deploy environment, besides its approval");
            const r = await apply("shop-sandbox", false, [APPROVER_B]);
            const checks = fake.checksOnResource("environment", r.env.id).map((c) => c.type.id.toUpperCase()).sort();
            assert.deepStrictEqual(
                checks,
                ["2EF31AD6-BAA0-403A-8B45-2CBC9B4E5563", "8C6F20A7-A545-4486-9777-F762FAFE0D4D", "FE1DE3EE-A436-41B4-BB20-F6EB4CB879A7"],
                "no exclusive lock",
            );
            // A pull-request branch's own deployment job cannot target the environment either.
            assert.ok(fake.usage("environment", r.env.id, { pipelineId: r.pipelineId, sourceBranch: PR_BRANCH }).rejectedBy.length > 0);
            // A stage without a pull-request job: the profiles file is production-only too, and no PR policy exists.
            assert.deepStrictEqual([...r.settings.protectedResources].sort(), ["securefile:dbt-shop-sandbox-profiles-deploy.yml", "variablegroup:dbt-shop-sandbox-deploy"]);
            assert.strictEqual(r.profiles, undefined, "a stage without a pull-request job has no PR profiles file");
            assert.ok(fake.usage("securefile", r.deployProfiles.id, { pipelineId: r.pipelineId, sourceBranch: PR_BRANCH }).rejectedBy.length > 0);
            assert.strictEqual(fake.allPolicies().filter((p) => Number(p.settings.buildDefinitionId) === r.pipelineId).length, 0);
            // Every object carries the stack's ownership marker.
            assert.match(fake.variableGroup(Number(r.deployGroup.id))!.description, /managed by dbt-platform stack shop-sandbox/);
            assert.match(fake.environment(Number(r.env.id))!.description, /managed by dbt-platform stack shop-sandbox/);
            assert.deepStrictEqual(fake.secureFile(r.deployProfiles.id)!.properties, { "dbt-platform": "managed by dbt-platform stack shop-sandbox" });
            tried.blocked();
        });
    });

    describe("Azure DevOps declared outputs", () => {
        // tsconfig targets ES2022 (define semantics, reproduced by tsx): a `field!:` declaration would reset
        // the Output the base constructor assigned, so dependants would read undefined.
        it("every resource exposes its declared output fields as resolved Outputs", async () => {
            const computed: Record<string, Record<string, unknown>> = {
                VariableGroup: { groupId: 11, projectId: "p-1", name: "dbt-ci", variables: { A: { value: "a", isSecret: false } }, secretHashes: {} },
                SecureFile: { secureFileId: "f-1", name: "profiles.yml", contentHash: "h" },
                BuildDefinition: { definitionId: 12, revision: 2, url: "https://x/12", name: "dbt" },
                Environment: { environmentId: 13, name: "prod" },
                ApprovalCheck: { checkId: 14, approverIds: [APPROVER_A] },
                PipelinePermission: { authorized: true },
            };
            await pulumi.runtime.setMocks(
                {
                    newResource: (a) => ({ id: `${a.name}-id`, state: { ...a.inputs, ...computed[a.type.split(":").pop()!] } }),
                    call: (a) => a.inputs,
                },
                "dbt-platform",
                "dev",
                false,
            );
            const t = { organization: "acme", project: "dbt" };
            const made: Record<string, pulumi.Resource> = {
                VariableGroup: new VariableGroup("vg", { ...t, name: "dbt-ci", variables: { A: { value: "a" } } }),
                SecureFile: new SecureFile("profiles", { ...t, name: "profiles.yml", content: "c" }),
                BuildDefinition: new BuildDefinition("pipeline", {
                    ...t,
                    name: "dbt",
                    repository: { type: "TfsGit", id: "5f0c2f1e-3333-4c2b-9d7e-0123456789ab", name: "dbt" },
                }),
                Environment: new Environment("prod", { ...t, name: "prod" }),
                ApprovalCheck: new ApprovalCheck("approval", { ...t, environmentId: 13, environmentName: "prod", approverIds: [APPROVER_A] }),
                PipelinePermission: new PipelinePermission("perm", { ...t, resourceType: "variablegroup", resourceId: 11, pipelineId: 12 }),
            };
            const missing: string[] = [];
            for (const [type, fields] of Object.entries(computed)) {
                for (const [field, want] of Object.entries(fields)) {
                    const v = (made[type] as any)[field];
                    if (!pulumi.Output.isInstance(v)) {
                        missing.push(`${type}.${field} is ${typeof v}`);
                        continue;
                    }
                    assert.deepStrictEqual(await (v as any).promise(), want, `${type}.${field}`);
                }
            }
            assert.deepStrictEqual(missing, []);
        });
    });

    describe("Azure DevOps provider secrecy", () => {
        const providers: [string, Provider][] = [
            ["VariableGroup", variableGroupProvider],
            ["SecureFile", secureFileProvider],
            ["BuildDefinition", buildDefinitionProvider],
            ["Environment", environmentProvider],
            ["ApprovalCheck", approvalCheckProvider],
            ["PipelinePermission", pipelinePermissionProvider],
            ["BranchControlCheck", branchControlCheckProvider],
            ["ExclusiveLockCheck", exclusiveLockCheckProvider],
            ["ResourceApprovalCheck", resourceApprovalCheckProvider],
            ["BuildValidationPolicy", buildValidationPolicyProvider],
        ];

        it("serialised providers contain no token and no secret value", async () => {
            process.env.SYSTEM_ACCESSTOKEN = BEARER;
            await variableGroupProvider.configure!({
                config: { get: (k: string) => (k === "dbt-platform:azureDevopsToken" ? CONFIG_TOKEN : undefined), require: () => "" },
            });
            // Exercise the providers with secrets first, so any caching of them would show.
            await create(variableGroupProvider, {
                ...target(),
                name: "secrecy-vg",
                variables: { S: { value: "vg-secret-value-314", isSecret: true } },
            });
            await create(secureFileProvider, { ...target(), name: "secrecy.yml", content: "file-secret-value-271" });
            for (const [name, provider] of providers) {
                const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
                for (const needle of [
                    PAT,
                    BEARER,
                    CONFIG_TOKEN,
                    "vg-secret-value-314",
                    "file-secret-value-271",
                    Buffer.from(`:${PAT}`).toString("base64"),
                ]) {
                    assert.ok(!sf.text.includes(needle), `${name}'s serialised provider contains ${needle.slice(0, 8)}…`);
                }
                assert.strictEqual(sf.containsSecrets, false, `${name} captured a secret Output`);
            }
        });

        it("under the mock runtime, secret inputs are secrets, additionalSecretOutputs are requested and type tokens are distinct", async () => {
            const { resources, settle } = await installMocks("dev");
            const monitor = pulumi.runtime.getMonitor() as any;
            const register = monitor.registerResource.bind(monitor);
            const secretOutputs = new Map<string, string[]>();
            monitor.registerResource = (req: any, cb: any) => {
                secretOutputs.set(req.getName(), req.getAdditionalsecretoutputsList());
                return register(req, cb);
            };
            const t = { organization: "acme", project: "dbt" };
            new VariableGroup("vg", {
                ...t,
                name: "dbt-ci",
                variables: { DBT_TARGET: { value: "ci" }, DBT_PASSWORD: { value: "plain-but-secret-161", isSecret: true } },
            });
            new SecureFile("profiles", { ...t, name: "profiles.yml", content: "profiles-content-577" });
            new BuildDefinition("pipeline", {
                ...t,
                name: "dbt",
                repository: { type: "TfsGit", id: "5f0c2f1e-3333-4c2b-9d7e-0123456789ab", name: "dbt" },
            });
            new Environment("prod", { ...t, name: "prod" });
            new ApprovalCheck("prod-approval", { ...t, environmentId: 1, environmentName: "prod", approverIds: [APPROVER_A] });
            new PipelinePermission("perm", { ...t, resourceType: "variablegroup", resourceId: 1, pipelineId: 2 });
            await settle();

            const vg = find(resources, "pulumi-nodejs:dynamic/azuredevops:VariableGroup", "vg");
            assert.ok(vg.secretInputs.includes("variables"), `secret inputs: ${vg.secretInputs.join(", ")}`);
            assert.deepStrictEqual([...secretOutputs.get("vg")!].sort(), ["secretHashes", "variables"]);
            const file = find(resources, "pulumi-nodejs:dynamic/azuredevops:SecureFile", "profiles");
            assert.ok(file.secretInputs.includes("content"), "a plain content string is made secret");
            assert.deepStrictEqual(secretOutputs.get("profiles"), ["contentHash"]);
            for (const [type, name] of [
                ["BuildDefinition", "pipeline"],
                ["Environment", "prod"],
                ["ApprovalCheck", "prod-approval"],
                ["PipelinePermission", "perm"],
            ]) {
                find(resources, `pulumi-nodejs:dynamic/azuredevops:${type}`, name);
            }
            // The serialised provider the engine would receive carries no credential.
            for (const r of resources.filter((x) => x.type.startsWith("pulumi-nodejs:dynamic/azuredevops:"))) {
                const text = String(r.inputs.__provider ?? "");
                assert.ok(text.length > 0, `${r.name} has a serialised provider`);
                for (const needle of [PAT, BEARER, CONFIG_TOKEN, "plain-but-secret-161", "profiles-content-577"])
                    assert.ok(!text.includes(needle), `${r.name}'s __provider contains a secret`);
            }
        });
    });
});
