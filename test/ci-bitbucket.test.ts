/**
 * Bitbucket settings providers (components/ci/bitbucket) against the fake Bitbucket Cloud server
 * (test/support/fakeBitbucket.ts): check, diff and CRUD of each resource type, pagination,
 * adoption on 409, retries (429 Retry-After, 5xx, a dropped create), out-of-band deletion and drift,
 * auth errors, and the secrecy proofs (serialised providers, hashes only, secret registration).
 */
import assert from "assert";
import Module from "module";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
    BitbucketDiff,
    bitbucketProviderObjects,
    bitbucketProviders,
    BitbucketProviders,
    DEFAULT_API_URL,
    DeploymentEnvironment,
    DeploymentVariable,
    forgetConfiguredToken,
    hashValue,
    PipelinesConfig,
    RepositoryVariable,
    TOKEN_CONFIG,
    TOKEN_ENV,
    UNKNOWN,
} from "../components/ci/bitbucket";
import { find, installMocks, plainStrings, resolve } from "../scripts/offline";
import { EngineResource } from "./support/engine";
import { FakeBitbucket, LoggedRequest } from "./support/fakeBitbucket";
import { attack } from "./support/attacks";

const TOKEN = "bbtok-3f9a1c7e-live";
const READ_ONLY = "bbtok-readonly-77c1";
const CONFIG_TOKEN = "bbtok-from-stack-config-5d20";
const WS = "acme";
const T = {
    repositoryVariable: "pulumi-nodejs:dynamic/bitbucket:RepositoryVariable",
    deploymentVariable: "pulumi-nodejs:dynamic/bitbucket:DeploymentVariable",
    environment: "pulumi-nodejs:dynamic/bitbucket:DeploymentEnvironment",
    pipelinesConfig: "pulumi-nodejs:dynamic/bitbucket:PipelinesConfig",
};
const BRACED_UUID = /^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/;

/** A stack config as the provider host's `configure` sees it. */
const stackConfig = (values: Record<string, string>): pulumi.dynamic.Config => ({
    get: (key) => values[key.includes(":") ? key : `dbt-platform:${key}`],
    require: (key) => {
        const v = values[key.includes(":") ? key : `dbt-platform:${key}`];
        if (v === undefined) throw new Error(`Missing required configuration key: ${key}`);
        return v;
    },
});

async function rejects(p: Promise<unknown>): Promise<string> {
    try {
        await p;
    } catch (e) {
        return (e as Error).message;
    }
    throw new Error("expected a rejection");
}

describe("Bitbucket settings providers", function () {
    let fake: FakeBitbucket;
    let p: BitbucketProviders;
    let sleeps: number[];
    let savedToken: string | undefined;
    let repoCount = 0;

    /** A fresh repository per test, so no state leaks between tests. */
    function newRepo(opts?: { defaultEnvironments?: boolean; pipelinesEnabled?: boolean }): string {
        const slug = `dbt-transform-${++repoCount}`;
        fake.addRepo(WS, slug, opts);
        return slug;
    }

    /** Checked inputs (asserting check passes), as the engine hands them to create/update. */
    async function checked(provider: pulumi.dynamic.ResourceProvider, news: Record<string, unknown>): Promise<any> {
        const r = await provider.check!({}, news);
        assert.deepStrictEqual(r.failures, []);
        return r.inputs;
    }

    const repoVar = (repoSlug: string, over: Record<string, unknown> = {}) => ({
        apiUrl: fake.url,
        workspace: WS,
        repoSlug,
        key: "DB_CI_HOST",
        value: "db.internal.acme",
        secured: false,
        ...over,
    });

    before(async () => {
        fake = await FakeBitbucket.start({ token: TOKEN, readOnlyToken: READ_ONLY });
    });
    after(async () => {
        await fake.close();
    });
    beforeEach(() => {
        savedToken = process.env[TOKEN_ENV];
        process.env[TOKEN_ENV] = TOKEN;
        forgetConfiguredToken();
        sleeps = [];
        // Retries are instant; the waits the client asked for are recorded.
        p = bitbucketProviders({ sleep: async (ms) => void sleeps.push(ms), baseDelayMs: 10, maxAttempts: 4 });
    });
    afterEach(() => {
        if (savedToken === undefined) delete process.env[TOKEN_ENV];
        else process.env[TOKEN_ENV] = savedToken;
        forgetConfiguredToken();
    });

    describe("RepositoryVariable", () => {
        it("check: defaults apiUrl; failures name the resource, the field and what is expected, never the value", async () => {
            const ok = await p.repositoryVariable.check!({}, { workspace: WS, repoSlug: "dbt", key: "DB_CI_HOST", value: "x", secured: false });
            assert.deepStrictEqual(ok.failures, []);
            assert.strictEqual(ok.inputs.apiUrl, DEFAULT_API_URL);
            const trimmed = await p.repositoryVariable.check!({}, { ...repoVar("dbt"), apiUrl: `${fake.url}/` });
            assert.strictEqual(trimmed.inputs.apiUrl, fake.url);

            const bad = await p.repositoryVariable.check!({}, { workspace: "", repoSlug: "dbt", key: "1BAD", value: 424242, secured: "yes", apiUrl: "ftp://x" });
            const byProp = Object.fromEntries((bad.failures ?? []).map((f) => [f.property, f.reason]));
            assert.deepStrictEqual(Object.keys(byProp).sort(), ["apiUrl", "key", "secured", "value", "workspace"]);
            for (const reason of Object.values(byProp)) assert.match(reason, /^RepositoryVariable 1BAD in \/dbt: \w+ must be /);
            assert.match(byProp.key, /letters, digits and underscores.*"1BAD"/);
            assert.match(byProp.secured, /true or false/);
            assert.doesNotMatch(byProp.value, /424242/);

            // Values unknown during preview pass; they are checked again when known.
            const preview = await p.repositoryVariable.check!({}, { ...repoVar("dbt"), key: UNKNOWN, value: UNKNOWN });
            assert.deepStrictEqual(preview.failures, []);
        });

        it("create, read, update, delete: a secured value exists only on the server and as a salted hash in outputs", async () => {
            const slug = newRepo();
            const secret = "s3cr3t-ci-password-1";
            const inputs = await checked(p.repositoryVariable, repoVar(slug, { key: "DB_CI_PWD", value: secret, secured: true }));
            const { id, outs } = await p.repositoryVariable.create(inputs);
            assert.strictEqual(id, `${WS}/${slug}/DB_CI_PWD`);
            assert.match(outs.uuid, BRACED_UUID);
            assert.strictEqual(outs.valueHash, hashValue(outs.valueSalt, secret));
            assert.strictEqual(JSON.stringify(outs).includes(secret), false, "no plain value in outputs");
            assert.deepStrictEqual(fake.variables(WS, slug).map(({ key, value, secured }) => ({ key, value, secured })), [{ key: "DB_CI_PWD", value: secret, secured: true }]);
            assert.deepStrictEqual(fake.requests("POST", /variables/).map((r) => r.path), [`/2.0/repositories/${WS}/${slug}/pipelines_config/variables/`]);

            // Read: the API never returns a secured value, so the hash is kept as written.
            const read = await p.repositoryVariable.read!(id, outs);
            assert.strictEqual(read.id, id);
            assert.deepStrictEqual(read.props, outs);
            assert.strictEqual(fake.requests("GET", /variables\/%7B/).length, 1, "read GETs the variable by its encoded {uuid}");

            // No change → no diff; a changed secured value is seen through the hash alone.
            assert.strictEqual((await p.repositoryVariable.diff!(id, outs, inputs)).changes, false);
            const next = { ...inputs, value: "s3cr3t-ci-password-2" };
            const diff = await p.repositoryVariable.diff!(id, outs, next);
            assert.deepStrictEqual({ ...diff }, { changes: true, replaces: [], deleteBeforeReplace: false, changedKeys: ["value"] });

            const updated = (await p.repositoryVariable.update!(id, outs, next)).outs;
            assert.strictEqual(updated.uuid, outs.uuid, "updated in place");
            assert.strictEqual(updated.valueHash, hashValue(outs.valueSalt, "s3cr3t-ci-password-2"));
            assert.strictEqual(JSON.stringify(updated).includes("s3cr3t-ci-password"), false);
            assert.strictEqual(fake.variables(WS, slug)[0].value, "s3cr3t-ci-password-2");
            assert.deepStrictEqual(fake.requests("PUT", /variables/).map((r) => r.body), [{ key: "DB_CI_PWD", value: "s3cr3t-ci-password-2", secured: true }]);

            await p.repositoryVariable.delete!(id, updated);
            assert.deepStrictEqual(fake.variables(WS, slug), []);
            await p.repositoryVariable.delete!(id, updated); // already gone: 404 is fine
            assert.deepStrictEqual(fake.requests("DELETE", /variables/).map((r) => r.status), [204, 404]);
        });

        it("diff: a new slot replaces; a secured variable going plain replaces delete-first; securing updates in place", async () => {
            const olds = { apiUrl: fake.url, workspace: WS, repoSlug: "dbt", key: "DB_CI_HOST", secured: false, uuid: "{u}", valueSalt: "salt", valueHash: hashValue("salt", "v") };
            const news = { apiUrl: fake.url, workspace: WS, repoSlug: "dbt", key: "DB_CI_HOST", value: "v", secured: false };
            const diff = async (n: Record<string, unknown>, o: Record<string, unknown> = olds) =>
                (await p.repositoryVariable.diff!("id", o, { ...news, ...n })) as BitbucketDiff;
            assert.deepStrictEqual({ ...(await diff({})) }, { changes: false, replaces: [], deleteBeforeReplace: false, changedKeys: [] });
            assert.deepStrictEqual({ ...(await diff({ key: "DB_CI_HOST2" })) }, { changes: true, replaces: ["key"], deleteBeforeReplace: false, changedKeys: ["key"] });
            assert.deepStrictEqual((await diff({ workspace: "other" })).replaces, ["workspace"]);
            assert.deepStrictEqual((await diff({ repoSlug: "other" })).replaces, ["repoSlug"]);
            assert.deepStrictEqual((await diff({ apiUrl: "https://bitbucket.example/2.0" })).replaces, ["apiUrl"]);
            assert.deepStrictEqual({ ...(await diff({ secured: true })) }, { changes: true, replaces: [], deleteBeforeReplace: false, changedKeys: ["secured"] });
            assert.deepStrictEqual(
                { ...(await diff({ secured: false }, { ...olds, secured: true })) },
                { changes: true, replaces: ["secured"], deleteBeforeReplace: true, changedKeys: ["secured"] },
            );
            assert.deepStrictEqual((await diff({ value: UNKNOWN })).changedKeys, ["value"], "an unknown value may change");
            const { valueSalt: _s, ...legacy } = olds;
            assert.deepStrictEqual((await diff({}, legacy)).changedKeys, ["value"], "no salt: treated as changed");
        });

        it("lists follow `next` across pages; with adopt: true, create adopts an existing key found on page 3 (409) and PUTs the desired value", async () => {
            const slug = newRepo();
            for (const key of ["A_ONE", "B_TWO", "C_THREE", "D_FOUR", "E_FIVE"]) fake.seedVariable(WS, slug, { key, value: "x" });
            const existing = fake.seedVariable(WS, slug, { key: "DB_CI_HOST", value: "old-host" });
            const { outs } = await p.repositoryVariable.create(await checked(p.repositoryVariable, repoVar(slug, { value: "new-host", adopt: true })));
            assert.strictEqual(outs.uuid, existing.uuid, "adopted, not duplicated");
            assert.strictEqual(fake.variables(WS, slug).length, 6);
            assert.strictEqual(existing.value, "new-host");
            assert.deepStrictEqual(fake.requests("POST", new RegExp(slug)).map((r) => r.status), [409]);
            const pages = fake.requests("GET", new RegExp(`${slug}/pipelines_config/variables/$`));
            assert.deepStrictEqual(pages.map((r) => r.query.page), [undefined, "2", "3"], "followed next to the last page");
            assert.deepStrictEqual(fake.requests("PUT", new RegExp(slug)).map((r) => r.status), [200]);
        });

        it("429 with Retry-After: waits exactly the advertised time, then creates", async () => {
            const slug = newRepo();
            fake.failNext(new RegExp(`${slug}/pipelines_config/variables`), 429, 1, { "Retry-After": "7" }, "POST");
            const { outs } = await p.repositoryVariable.create(await checked(p.repositoryVariable, repoVar(slug)));
            assert.deepStrictEqual(sleeps, [7000]);
            assert.deepStrictEqual(fake.requests("POST", new RegExp(slug)).map((r) => r.status), [429, 201]);
            assert.strictEqual(fake.variables(WS, slug)[0].uuid, outs.uuid);
        });

        it("500 twice, then success: two backoff waits and one variable", async () => {
            const slug = newRepo();
            fake.failNext(new RegExp(`${slug}/pipelines_config/variables`), 500, 2, {}, "POST");
            await p.repositoryVariable.create(await checked(p.repositoryVariable, repoVar(slug)));
            assert.strictEqual(sleeps.length, 2);
            assert.ok(sleeps.every((ms) => ms > 0 && ms <= 40), `capped exponential backoff from 10 ms: ${sleeps}`);
            assert.deepStrictEqual(fake.requests("POST", new RegExp(slug)).map((r) => r.status), [500, 500, 201]);
            assert.strictEqual(fake.variables(WS, slug).length, 1);
        });

        it("a connection dropped after the server stored the create: the retry adopts it, leaving exactly one variable", async () => {
            const slug = newRepo();
            fake.dropNextCreate();
            const { outs } = await p.repositoryVariable.create(await checked(p.repositoryVariable, repoVar(slug, { key: "DB_CI_PWD", value: "pw-1", secured: true })));
            assert.deepStrictEqual(fake.requests("POST", new RegExp(slug)).map((r) => r.status), [0, 409], "dropped, then retried into a 409");
            assert.strictEqual(sleeps.length, 1);
            const stored = fake.variables(WS, slug);
            assert.strictEqual(stored.length, 1);
            assert.deepStrictEqual({ uuid: stored[0].uuid, value: stored[0].value, secured: stored[0].secured }, { uuid: outs.uuid, value: "pw-1", secured: true });
        });

        it("deleted out of band: read reports it gone; create makes it again; update re-creates it under the same id", async () => {
            const slug = newRepo();
            const inputs = await checked(p.repositoryVariable, repoVar(slug));
            const { id, outs } = await p.repositoryVariable.create(inputs);
            fake.deleteOutOfBand("variable", WS, slug, "DB_CI_HOST");
            const gone = await p.repositoryVariable.read!(id, outs);
            assert.strictEqual(gone.id, undefined, "no id: the engine drops it from state");

            const again = await p.repositoryVariable.create(inputs);
            assert.strictEqual(again.id, id);
            assert.notStrictEqual(again.outs.uuid, outs.uuid);

            fake.deleteOutOfBand("variable", WS, slug, "DB_CI_HOST");
            const next = { ...inputs, value: "db2.internal.acme" };
            const updated = (await p.repositoryVariable.update!(id, again.outs, next)).outs;
            assert.deepStrictEqual(fake.requests("PUT", new RegExp(slug)).map((r) => r.status), [404]);
            assert.deepStrictEqual(fake.variables(WS, slug).map((v) => [v.uuid, v.value]), [[updated.uuid, "db2.internal.acme"]]);
            assert.notStrictEqual(updated.uuid, again.outs.uuid);
        });

        it("read reports drift: a plain value changed by hand (through its hash) and a variable secured by hand", async () => {
            const slug = newRepo();
            const inputs = await checked(p.repositoryVariable, repoVar(slug));
            const { id, outs } = await p.repositoryVariable.create(inputs);
            fake.variables(WS, slug)[0].value = "changed-by-hand";
            const drifted = (await p.repositoryVariable.read!(id, outs)).props!;
            assert.strictEqual(drifted.valueHash, hashValue(outs.valueSalt, "changed-by-hand"));
            const diff = await p.repositoryVariable.diff!(id, drifted, inputs);
            assert.deepStrictEqual([diff.changes, diff.replaces, (diff as BitbucketDiff).changedKeys], [true, [], ["value"]]);
            await p.repositoryVariable.update!(id, drifted, inputs);
            assert.strictEqual(fake.variables(WS, slug)[0].value, inputs.value);

            fake.variables(WS, slug)[0].secured = true;
            const secured = (await p.repositoryVariable.read!(id, outs)).props!;
            assert.strictEqual(secured.secured, true);
            assert.strictEqual(secured.valueHash, outs.valueHash, "a secured value cannot be read: the last hash stays");
            const back = await p.repositoryVariable.diff!(id, secured, inputs);
            assert.deepStrictEqual([back.replaces, back.deleteBeforeReplace], [["secured"], true]);
        });

        it("auth: 401 names the resource, BITBUCKET_TOKEN and the config key; no token fails before any request; a stack config token works", async () => {
            const slug = newRepo();
            const inputs = await checked(p.repositoryVariable, repoVar(slug));
            process.env[TOKEN_ENV] = "bbtok-wrong-0000";
            const unauthorized = await rejects(p.repositoryVariable.create(inputs));
            assert.match(unauthorized, /401/);
            assert.ok(unauthorized.includes(`repository variable DB_CI_HOST in ${WS}/${slug}`), unauthorized);
            assert.ok(unauthorized.includes(TOKEN_ENV) && unauthorized.includes(TOKEN_CONFIG), unauthorized);
            assert.ok(!unauthorized.includes("bbtok-wrong-0000"), "the token is never echoed");
            assert.strictEqual(sleeps.length, 0, "401 is not retried");

            delete process.env[TOKEN_ENV];
            const before = fake.log.length;
            const missing = await rejects(p.repositoryVariable.create(inputs));
            assert.match(missing, /no credentials to manage repository variable DB_CI_HOST/);
            assert.ok(missing.includes(TOKEN_ENV) && missing.includes(TOKEN_CONFIG), missing);
            assert.strictEqual(fake.log.length, before, "nothing sent without a token");

            await p.repositoryVariable.configure!({ config: stackConfig({ [TOKEN_CONFIG]: TOKEN }) });
            const { outs } = await p.repositoryVariable.create(inputs);
            assert.match(outs.uuid, BRACED_UUID);
        });

        it("403 (token without write scopes) and 404 (unknown repository) name the resource", async () => {
            const slug = newRepo();
            process.env[TOKEN_ENV] = READ_ONLY;
            const forbidden = await rejects(p.repositoryVariable.create(await checked(p.repositoryVariable, repoVar(slug))));
            assert.match(forbidden, /403 Forbidden/);
            assert.ok(forbidden.includes(`repository variable DB_CI_HOST in ${WS}/${slug}`), forbidden);
            assert.ok(forbidden.includes(TOKEN_ENV) && !forbidden.includes(READ_ONLY), forbidden);

            process.env[TOKEN_ENV] = TOKEN;
            const notFound = await rejects(p.repositoryVariable.create(await checked(p.repositoryVariable, repoVar("no-such-repo"))));
            assert.match(notFound, /404/);
            assert.ok(notFound.includes(`repository variable DB_CI_HOST in ${WS}/no-such-repo`), notFound);
        });
    });

    describe("DeploymentEnvironment", () => {
        const envInputs = (repoSlug: string, over: Record<string, unknown> = {}) => ({
            apiUrl: fake.url,
            workspace: WS,
            repoSlug,
            name: "dbt-ci",
            environmentType: "Test",
            ...over,
        });

        it("check: environmentType must be Test, Staging or Production and the name non-empty", async () => {
            const bad = await p.deploymentEnvironment.check!({}, envInputs("dbt", { name: " ", environmentType: "QA" }));
            assert.deepStrictEqual(bad.failures?.map((f) => f.property).sort(), ["environmentType", "name"]);
            assert.match(bad.failures!.find((f) => f.property === "environmentType")!.reason, /^DeploymentEnvironment " " in acme\/dbt: environmentType must be one of Test, Staging, Production \(got "QA"\)/);
        });

        it("create, read, delete; outputs the braced uuid; Bitbucket's default Production is adopted on 409 across pages", async () => {
            const slug = newRepo({ defaultEnvironments: true });
            const seeded = fake.environments(WS, slug).find((e) => e.name === "Production")!;
            const prod = await p.deploymentEnvironment.create(await checked(p.deploymentEnvironment, envInputs(slug, { name: "Production", environmentType: "Production" })));
            assert.strictEqual(prod.outs.uuid, seeded.uuid, "adopted");
            assert.deepStrictEqual(fake.requests("GET", new RegExp(`${slug}/environments/$`)).map((r) => r.query.page), [undefined, "2"]);

            const inputs = await checked(p.deploymentEnvironment, envInputs(slug));
            const { id, outs } = await p.deploymentEnvironment.create(inputs);
            assert.strictEqual(id, `${WS}/${slug}/dbt-ci`);
            assert.match(outs.uuid, BRACED_UUID);
            assert.deepStrictEqual({ name: outs.name, environmentType: outs.environmentType, slug: outs.slug }, { name: "dbt-ci", environmentType: "Test", slug: "dbt-ci" });
            assert.deepStrictEqual(fake.requests("POST", new RegExp(slug)).map((r) => [r.status, r.body]), [
                [409, { type: "deployment_environment", name: "Production", environment_type: { type: "deployment_environment_type", name: "Production" } }],
                [201, { type: "deployment_environment", name: "dbt-ci", environment_type: { type: "deployment_environment_type", name: "Test" } }],
            ]);
            assert.deepStrictEqual((await p.deploymentEnvironment.read!(id, outs)).props, outs);
            assert.strictEqual((await p.deploymentEnvironment.diff!(id, outs, inputs)).changes, false);

            await p.deploymentEnvironment.delete!(id, outs);
            assert.strictEqual(fake.environments(WS, slug).some((e) => e.name === "dbt-ci"), false);
            await p.deploymentEnvironment.delete!(id, outs);
            assert.deepStrictEqual(fake.requests("DELETE", new RegExp(slug)).map((r) => r.status), [204, 404]);
        });

        it("adopting a same-named environment of another type fails and says what to do", async () => {
            const slug = newRepo({ defaultEnvironments: true });
            const message = await rejects(p.deploymentEnvironment.create(await checked(p.deploymentEnvironment, envInputs(slug, { name: "staging", environmentType: "Production" }))));
            assert.ok(message.includes(`deployment environment staging in ${WS}/${slug}`), message);
            assert.match(message, /already exists with type Staging, not Production.*cannot change the type in place/);
        });

        it("diff: every change replaces; the same name is deleted before it is re-created", async () => {
            const olds = { ...envInputs("dbt"), uuid: "{u}" };
            const diff = (n: Record<string, unknown>) => p.deploymentEnvironment.diff!("id", olds, { ...envInputs("dbt"), ...n });
            assert.deepStrictEqual({ ...(await diff({ environmentType: "Staging" })) }, { changes: true, replaces: ["environmentType"], deleteBeforeReplace: true, changedKeys: ["environmentType"] });
            assert.deepStrictEqual({ ...(await diff({ name: "dbt-ci-2" })) }, { changes: true, replaces: ["name"], deleteBeforeReplace: false, changedKeys: ["name"] });
            assert.deepStrictEqual({ ...(await diff({ name: "DBT-CI" })) }, { changes: false, replaces: [], deleteBeforeReplace: false, changedKeys: [] }, "names are one case-insensitive identity, as Bitbucket matches them");
            assert.deepStrictEqual((await diff({ repoSlug: "other" })).replaces, ["repoSlug"]);
        });

        it("deleted out of band: read reports it gone; update re-creates it; a dropped create is adopted", async () => {
            const slug = newRepo({ defaultEnvironments: false });
            const inputs = await checked(p.deploymentEnvironment, envInputs(slug));
            fake.dropNextCreate();
            const { id, outs } = await p.deploymentEnvironment.create(inputs);
            assert.strictEqual(fake.environments(WS, slug).length, 1, "one environment after the dropped create");
            fake.deleteOutOfBand("environment", WS, slug, "dbt-ci");
            assert.strictEqual((await p.deploymentEnvironment.read!(id, outs)).id, undefined);
            const updated = (await p.deploymentEnvironment.update!(id, outs, inputs)).outs;
            assert.notStrictEqual(updated.uuid, outs.uuid);
            assert.deepStrictEqual(fake.environments(WS, slug).map((e) => e.uuid), [updated.uuid]);
        });
    });

    describe("DeploymentVariable", () => {
        async function environment(slug: string): Promise<string> {
            const { outs } = await p.deploymentEnvironment.create(
                await checked(p.deploymentEnvironment, { apiUrl: fake.url, workspace: WS, repoSlug: slug, name: "Production", environmentType: "Production" }),
            );
            return outs.uuid;
        }
        const depVar = (repoSlug: string, environmentUuid: string, over: Record<string, unknown> = {}) => ({
            apiUrl: fake.url,
            workspace: WS,
            repoSlug,
            environmentUuid,
            key: "DB_PROD_PWD",
            value: "prod-pw-1",
            secured: true,
            ...over,
        });

        it("check: environmentUuid must be a UUID; braces are added", async () => {
            const bad = await p.deploymentVariable.check!({}, depVar("dbt", "production"));
            assert.deepStrictEqual(bad.failures?.map((f) => f.property), ["environmentUuid"]);
            assert.match(bad.failures![0].reason, /^DeploymentVariable DB_PROD_PWD in acme\/dbt: environmentUuid must be the environment's UUID/);
            const bare = "8f7c2d1e-0a9b-4c3d-8e7f-6a5b4c3d2e1f";
            assert.strictEqual((await checked(p.deploymentVariable, depVar("dbt", bare))).environmentUuid, `{${bare}}`);
        });

        it("CRUD in an environment: reads list (no single GET) across pages; secured value only hashed; a changed value is an update", async () => {
            const slug = newRepo();
            const env = await environment(slug);
            for (const key of ["DB_PROD_HOST", "DB_PROD_USER", "DB_PROD_SCHEMA"]) {
                await p.deploymentVariable.create(await checked(p.deploymentVariable, depVar(slug, env, { key, value: `v-${key}`, secured: false })));
            }
            const inputs = await checked(p.deploymentVariable, depVar(slug, env));
            const { id, outs } = await p.deploymentVariable.create(inputs);
            assert.strictEqual(id, `${WS}/${slug}/${env}/DB_PROD_PWD`);
            assert.strictEqual(JSON.stringify(outs).includes("prod-pw-1"), false);
            const envPath = `/2.0/repositories/${WS}/${slug}/deployments_config/environments/${encodeURIComponent(env)}/variables`;
            assert.strictEqual(fake.requests("POST", /deployments_config/).at(-1)!.path, envPath);

            const read = await p.deploymentVariable.read!(id, outs);
            assert.deepStrictEqual(read.props, outs);
            const lists = fake.requests("GET", /deployments_config/);
            assert.deepStrictEqual(lists.map((r) => [r.path, r.query.page]), [[envPath, undefined], [envPath, "2"]], "listed page by page, never GET by uuid");

            const next = { ...inputs, value: "prod-pw-2" };
            assert.deepStrictEqual(((await p.deploymentVariable.diff!(id, outs, next)) as BitbucketDiff).changedKeys, ["value"]);
            const updated = (await p.deploymentVariable.update!(id, outs, next)).outs;
            assert.strictEqual(updated.uuid, outs.uuid);
            assert.strictEqual(fake.deploymentVariables(WS, slug, env).find((v) => v.key === "DB_PROD_PWD")!.value, "prod-pw-2");
            assert.strictEqual(fake.requests("PUT", /deployments_config/).at(-1)!.path, `${envPath}/${encodeURIComponent(outs.uuid)}`);

            await p.deploymentVariable.delete!(id, updated);
            assert.deepStrictEqual(fake.deploymentVariables(WS, slug, env).map((v) => v.key), ["DB_PROD_HOST", "DB_PROD_USER", "DB_PROD_SCHEMA"]);
            await p.deploymentVariable.delete!(id, updated);
        });

        it("adopt: true adopts an existing key (409); deleted out of band → gone → update re-creates; gone with its environment", async () => {
            const slug = newRepo();
            const env = await environment(slug);
            fake.deploymentVariables(WS, slug, env).push({ uuid: "{0b7a2c4d-1e2f-4a5b-8c6d-7e8f9a0b1c2d}", key: "DB_PROD_PWD", value: "old", secured: true });
            const inputs = await checked(p.deploymentVariable, depVar(slug, env, { adopt: true }));
            const { id, outs } = await p.deploymentVariable.create(inputs);
            assert.strictEqual(outs.uuid, "{0b7a2c4d-1e2f-4a5b-8c6d-7e8f9a0b1c2d}");
            assert.strictEqual(fake.deploymentVariables(WS, slug, env)[0].value, "prod-pw-1");

            fake.deleteOutOfBand("deploymentVariable", WS, slug, "DB_PROD_PWD", env);
            assert.strictEqual((await p.deploymentVariable.read!(id, outs)).id, undefined);
            const updated = (await p.deploymentVariable.update!(id, outs, inputs)).outs;
            assert.deepStrictEqual(fake.deploymentVariables(WS, slug, env).map((v) => v.uuid), [updated.uuid]);

            fake.deleteOutOfBand("environment", WS, slug, "Production");
            assert.strictEqual((await p.deploymentVariable.read!(id, updated)).id, undefined, "the environment took it along");
            await p.deploymentVariable.delete!(id, updated); // 404 tolerated
        });

        it("diff: another environment replaces (create first: a different slot)", async () => {
            const olds = { ...depVar("dbt", "{a}"), uuid: "{u}", valueSalt: "s", valueHash: hashValue("s", "prod-pw-1") };
            const diff = await p.deploymentVariable.diff!("id", olds, depVar("dbt", "{b}"));
            assert.deepStrictEqual([diff.replaces, diff.deleteBeforeReplace], [["environmentUuid"], false]);
            const preview = await p.deploymentVariable.diff!("id", olds, depVar("dbt", UNKNOWN));
            assert.deepStrictEqual(preview.replaces, ["environmentUuid"], "an environment not yet known replaces");
        });
    });

    describe("PipelinesConfig", () => {
        const cfg = (repoSlug: string, over: Record<string, unknown> = {}) => ({ apiUrl: fake.url, workspace: WS, repoSlug, enabled: true, ...over });

        it("create enables; read reports drift; update; delete leaves it on unless disableOnDelete", async () => {
            const slug = newRepo();
            const inputs = await checked(p.pipelinesConfig, cfg(slug));
            assert.strictEqual(inputs.disableOnDelete, false);
            const { id, outs } = await p.pipelinesConfig.create(inputs);
            assert.strictEqual(id, `${WS}/${slug}`);
            assert.strictEqual(fake.pipelinesEnabled(WS, slug), true);
            assert.deepStrictEqual(fake.requests("PUT", new RegExp(slug)).map((r) => [r.path, r.body]), [[`/2.0/repositories/${WS}/${slug}/pipelines_config`, { enabled: true }]]);

            fake.setPipelinesEnabled(WS, slug, false);
            const drifted = (await p.pipelinesConfig.read!(id, outs)).props!;
            assert.strictEqual(drifted.enabled, false);
            const diff = await p.pipelinesConfig.diff!(id, drifted, inputs);
            assert.deepStrictEqual([diff.changes, diff.replaces, (diff as BitbucketDiff).changedKeys], [true, [], ["enabled"]]);
            await p.pipelinesConfig.update!(id, drifted, inputs);
            assert.strictEqual(fake.pipelinesEnabled(WS, slug), true);

            await p.pipelinesConfig.delete!(id, outs);
            assert.strictEqual(fake.pipelinesEnabled(WS, slug), true, "left as it is by default");
            await p.pipelinesConfig.delete!(id, { ...outs, disableOnDelete: true });
            assert.strictEqual(fake.pipelinesEnabled(WS, slug), false);
            assert.deepStrictEqual((await p.pipelinesConfig.diff!(id, outs, { ...inputs, repoSlug: "other" })).replaces, ["repoSlug"]);
        });

        it("an unknown repository: read reports it gone, create fails naming it; bad inputs are named", async () => {
            assert.strictEqual((await p.pipelinesConfig.read!(`${WS}/gone`, { ...cfg("gone"), disableOnDelete: false })).id, undefined);
            const message = await rejects(p.pipelinesConfig.create(await checked(p.pipelinesConfig, cfg("gone"))));
            assert.ok(message.includes(`Pipelines settings of ${WS}/gone`) && /404/.test(message), message);
            const bad = await p.pipelinesConfig.check!({}, cfg("dbt", { enabled: "on", disableOnDelete: 1 }));
            assert.deepStrictEqual(bad.failures?.map((f) => f.property), ["enabled", "disableOnDelete"]);
        });
    });

    describe("the fake's contract", () => {
        const call = (method: string, path: string, body?: string, token = TOKEN) =>
            fetch(`${fake.url}/${path}`, { method, body, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" } });

        it("pages with ?pagelen up to the maximum; 400 on malformed JSON and missing fields; 401; 404; 405; secured values never returned", async () => {
            const slug = newRepo();
            for (let i = 0; i < 5; i++) fake.seedVariable(WS, slug, { key: `K${i}`, value: `v${i}`, secured: i === 0 });
            const vars = `repositories/${WS}/${slug}/pipelines_config/variables/`;
            const first: any = await (await call("GET", vars)).json();
            assert.deepStrictEqual([first.pagelen, first.size, first.values.length, first.next], [2, 5, 2, `${fake.url}/${vars}?page=2`]);
            assert.strictEqual("value" in first.values[0], false, "secured value not returned");
            assert.strictEqual(first.values[1].value, "v1");
            const big: any = await (await call("GET", `${vars}?pagelen=500`)).json();
            assert.deepStrictEqual([big.pagelen, big.values.length, big.next], [100, 5, undefined]);
            assert.strictEqual((await call("GET", `${vars}?pagelen=0`)).status, 400);
            assert.strictEqual((await call("POST", vars, "{not json")).status, 400);
            assert.strictEqual((await call("POST", vars, JSON.stringify({ value: "x" }))).status, 400);
            assert.strictEqual((await call("POST", vars, JSON.stringify({ key: "K9" }))).status, 400);
            assert.strictEqual((await call("POST", `repositories/${WS}/${slug}/environments/`, JSON.stringify({ environment_type: { name: "Test" } }))).status, 400);
            assert.strictEqual((await call("POST", vars, JSON.stringify({ key: "K1", value: "dup" }))).status, 409);
            assert.strictEqual((await call("GET", vars, undefined, "nope")).status, 401);
            assert.strictEqual((await fetch(`${fake.url}/${vars}`)).status, 401);
            assert.strictEqual((await call("GET", `${vars}${encodeURIComponent("{00000000-0000-4000-8000-000000000000}")}`)).status, 404);
            assert.strictEqual((await call("GET", `repositories/${WS}/nope/pipelines_config`)).status, 404);
            assert.strictEqual((await call("PATCH", vars, "{}")).status, 405);
            const secured = fake.variables(WS, slug)[0];
            const one: unknown = await (await call("GET", `${vars}${encodeURIComponent(secured.uuid)}`)).json();
            assert.deepStrictEqual(one, { type: "pipeline_variable", uuid: secured.uuid, key: "K0", secured: true });
            assert.strictEqual((await call("PUT", `${vars}${encodeURIComponent(secured.uuid)}`, JSON.stringify({ key: "K0", value: "x", secured: false }))).status, 400);
        });
    });

    describe("under the engine: first up, second up, refresh, preview (test/support/engine.ts)", () => {
        const writes = (log: LoggedRequest[]) => log.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path} → ${r.status}`);

        /** Second up, refresh and preview after a first up: no change reported and no write sent. */
        async function settled(r: EngineResource, news: Record<string, unknown>): Promise<void> {
            const from = fake.log.length;
            const second = await r.up(news);
            assert.deepStrictEqual([second.op, second.diff?.replaces ?? []], ["same", []], `${r.type}: second up must be a no-op (${JSON.stringify(second.diff)})`);
            assert.deepStrictEqual(writes(fake.log.slice(from)), [], `${r.type}: second up sent writes`);
            assert.strictEqual(await r.refresh(), true, `${r.type}: refresh found it`);
            const preview = await r.preview(news);
            assert.deepStrictEqual([preview.op, preview.diff?.replaces ?? []], ["same", []], `${r.type}: preview after refresh (${JSON.stringify(preview.diff)})`);
            assert.deepStrictEqual(writes(fake.log.slice(from)), [], `${r.type}: refresh or preview sent writes`);
            const third = await r.up(news);
            assert.strictEqual(third.op, "same", `${r.type}: up after refresh`);
            assert.deepStrictEqual(writes(fake.log.slice(from)), [], `${r.type}: up after refresh sent writes`);
            console.log(`state size: ${r.type} ${r.stateBytes()} bytes`);
            // The host copies __provider into every result, so the engine keeps it in inputs and outputs alike.
            console.log(`state size: ${r.type} __provider ${r.providerBytes} bytes x2 (inputs and outputs)`);
            assert.strictEqual(JSON.stringify(r.state!.inputs.__provider), JSON.stringify(r.state!.outputs.__provider));
        }

        it("every Bitbucket resource type: a second up is a no-op on the request log; refresh + preview show no change", async () => {
            const slug = newRepo(); // Bitbucket's built-in Test, Staging, Production are there
            const builtIn = fake.environments(WS, slug).find((e) => e.name === "Production")!;
            const config = { [TOKEN_CONFIG]: TOKEN };
            delete process.env[TOKEN_ENV]; // the token from stack config, through the reloaded provider's configure

            const env = await EngineResource.start(bitbucketProviderObjects.deploymentEnvironment, { type: "bitbucket:DeploymentEnvironment", config });
            // Lowercase, as bitbucket-pipelines.yml `deployment: production` names it; Bitbucket's is "Production".
            const envNews = { apiUrl: fake.url, workspace: WS, repoSlug: slug, name: "production", environmentType: "Production", uuid: undefined, slug: undefined };
            assert.strictEqual((await env.up(envNews)).op, "create");
            const envUuid = env.programOutputs().uuid;
            assert.strictEqual(envUuid, builtIn.uuid, "the built-in Production is the environment");
            await settled(env, envNews);
            assert.deepStrictEqual(fake.environments(WS, slug).map((e) => [e.name, e.uuid]).find(([n]) => n === "Production"), ["Production", builtIn.uuid], "Bitbucket's Production survives");
            assert.ok(!fake.environments(WS, slug).some((e) => e.name === "production"), "no lowercase twin");

            const variables: [string, EngineResource, Record<string, unknown>][] = [
                ["RepositoryVariable", await EngineResource.start(bitbucketProviderObjects.repositoryVariable, { type: "bitbucket:RepositoryVariable", config }), repoVar(slug, { key: "DB_CI_PWD", value: pulumi.secret("ci-pw-1"), secured: true })],
                ["RepositoryVariable", await EngineResource.start(bitbucketProviderObjects.repositoryVariable, { type: "bitbucket:RepositoryVariable", config }), repoVar(slug)],
                [
                    "DeploymentVariable",
                    await EngineResource.start(bitbucketProviderObjects.deploymentVariable, { type: "bitbucket:DeploymentVariable", config }),
                    { ...repoVar(slug, { key: "DB_PROD_PWD", value: pulumi.secret("prod-pw-1"), secured: true }), environmentUuid: envUuid.replace(/[{}]/g, "") },
                ],
            ];
            for (const [, r, news] of variables) {
                assert.strictEqual((await r.up({ ...news, uuid: undefined, valueHash: undefined, valueSalt: undefined })).op, "create");
                await settled(r, news);
            }
            assert.deepStrictEqual(fake.deploymentVariables(WS, slug, builtIn.uuid).map((v) => [v.key, v.value, v.secured]), [["DB_PROD_PWD", "prod-pw-1", true]]);

            const pipelines = await EngineResource.start(bitbucketProviderObjects.pipelinesConfig, { type: "bitbucket:PipelinesConfig", config });
            const pcNews = { apiUrl: fake.url, workspace: WS, repoSlug: slug, enabled: true, disableOnDelete: false };
            assert.strictEqual((await pipelines.up(pcNews)).op, "create");
            await settled(pipelines, pcNews);

            // Destroy leaves nothing of ours and keeps Bitbucket's built-in environment.
            for (const [, r] of variables) await r.destroy();
            await env.destroy();
            await pipelines.destroy();
            assert.deepStrictEqual(fake.variables(WS, slug), []);
            assert.deepStrictEqual(fake.environments(WS, slug).map((e) => e.name), ["Test", "Staging", "Production"]);
        });
    });

    describe("adoption: only what is provably ours (issue 11 #5)", () => {
        const envInputs = (repoSlug: string, over: Record<string, unknown> = {}) => ({ apiUrl: fake.url, workspace: WS, repoSlug, name: "dbt-ci", environmentType: "Test", ...over });

        it("a foreign repository variable is neither overwritten nor deleted: create fails naming it", async () => {
            const tried = attack("a foreign repository variable is neither overwritten nor deleted: create fails naming it");
            const slug = newRepo();
            const foreign = fake.seedVariable(WS, slug, { key: "DB_CI_HOST", value: "someone-elses-host" });
            const message = await rejects(p.repositoryVariable.create(await checked(p.repositoryVariable, repoVar(slug))));
            assert.ok(message.includes(`repository variable DB_CI_HOST in ${WS}/${slug}`) && message.includes(foreign.uuid), message);
            assert.match(message, /not created by this stack.*adopt: true/);
            assert.deepStrictEqual(fake.variables(WS, slug).map((v) => [v.uuid, v.value]), [[foreign.uuid, "someone-elses-host"]], "untouched");
            assert.deepStrictEqual(fake.log.filter((r) => r.path.includes(slug) && r.method !== "GET").map((r) => `${r.method} ${r.status}`), ["POST 409"], "no PUT, no DELETE");
            tried.blocked();
        });

        it("a foreign secured variable stays secured: no delete-and-recreate as plain, not even with adopt: true", async () => {
            const tried = attack("a foreign secured variable stays secured: no delete-and-recreate as plain, not even with adopt: true");
            const slug = newRepo();
            const foreign = fake.seedVariable(WS, slug, { key: "DB_CI_PWD", value: "their-secret", secured: true });
            for (const adopt of [false, true]) {
                const message = await rejects(p.repositoryVariable.create(await checked(p.repositoryVariable, repoVar(slug, { key: "DB_CI_PWD", value: "plain", secured: false, adopt }))));
                assert.ok(message.includes(`repository variable DB_CI_PWD in ${WS}/${slug}`), message);
            }
            assert.deepStrictEqual(fake.variables(WS, slug).map((v) => [v.uuid, v.value, v.secured]), [[foreign.uuid, "their-secret", true]]);
            tried.blocked();
        });

        it("a foreign variable in Bitbucket's built-in Production is not adopted; adopt: true takes it over and destroy then removes it", async () => {
            const slug = newRepo();
            const prod = fake.environments(WS, slug).find((e) => e.name === "Production")!;
            fake.deploymentVariables(WS, slug, prod.uuid).push({ uuid: "{1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f}", key: "DB_PROD_PWD", value: "theirs", secured: true });
            const news = { ...repoVar(slug, { key: "DB_PROD_PWD", value: "ours", secured: true }), environmentUuid: prod.uuid };
            const message = await rejects(p.deploymentVariable.create(await checked(p.deploymentVariable, news)));
            assert.ok(message.includes("deployment variable DB_PROD_PWD") && message.includes("not created by this stack"), message);
            assert.strictEqual(fake.deploymentVariables(WS, slug, prod.uuid)[0].value, "theirs");
            const { id, outs } = await p.deploymentVariable.create(await checked(p.deploymentVariable, { ...news, adopt: true }));
            assert.strictEqual(fake.deploymentVariables(WS, slug, prod.uuid)[0].value, "ours");
            await p.deploymentVariable.delete!(id, outs);
            assert.deepStrictEqual(fake.deploymentVariables(WS, slug, prod.uuid), []);
        });

        it("a foreign environment is not taken over (nor deleted); the built-ins are adopted and kept on delete; adopt: true hands one over", async () => {
            const tried = attack("a foreign environment is not taken over (nor deleted); the built-ins are adopted and kept on delete; adopt: true hands one over");
            const slug = newRepo();
            const foreign = fake.seedEnvironment(WS, slug, "dbt-ci", "Test");
            const message = await rejects(p.deploymentEnvironment.create(await checked(p.deploymentEnvironment, envInputs(slug))));
            assert.ok(message.includes(`deployment environment dbt-ci in ${WS}/${slug}`) && message.includes(foreign.uuid), message);
            assert.match(message, /not created by this stack.*adopt: true/);

            const staging = await p.deploymentEnvironment.create(await checked(p.deploymentEnvironment, envInputs(slug, { name: "staging", environmentType: "Staging" })));
            assert.deepStrictEqual([staging.outs.name, staging.outs.origin], ["Staging", "built-in"]);
            await p.deploymentEnvironment.delete!(staging.id, staging.outs);
            assert.ok(fake.environments(WS, slug).some((e) => e.name === "Staging"), "Bitbucket's Staging stays");

            const { origin: _o, ...legacy } = staging.outs; // state written before `origin` existed
            await p.deploymentEnvironment.delete!(staging.id, legacy);
            assert.ok(fake.environments(WS, slug).some((e) => e.name === "Staging"), "still kept");

            const adopted = await p.deploymentEnvironment.create(await checked(p.deploymentEnvironment, envInputs(slug, { adopt: true })));
            assert.deepStrictEqual([adopted.outs.uuid, adopted.outs.origin], [foreign.uuid, "adopted"]);
            await p.deploymentEnvironment.delete!(adopted.id, adopted.outs);
            assert.ok(!fake.environments(WS, slug).some((e) => e.uuid === foreign.uuid), "handed over, so deleted with the stack");
            assert.deepStrictEqual(fake.requests("DELETE", new RegExp(`${slug}/environments/`)).map((r) => r.path.split("/").pop()), [encodeURIComponent(foreign.uuid)]);
            tried.blocked();
        });

        it("refresh does not re-bind to a foreign object re-made under the same key or name after ours was deleted", async () => {
            const tried = attack("refresh does not re-bind to a foreign object re-made under the same key or name after ours was deleted");
            const slug = newRepo();
            const inputs = await checked(p.repositoryVariable, repoVar(slug));
            const { id, outs } = await p.repositoryVariable.create(inputs);
            fake.deleteOutOfBand("variable", WS, slug, "DB_CI_HOST");
            const theirs = fake.seedVariable(WS, slug, { key: "DB_CI_HOST", value: "theirs" });
            assert.strictEqual((await p.repositoryVariable.read!(id, outs)).id, undefined, "ours is gone");
            const message = await rejects(p.repositoryVariable.update!(id, outs, inputs));
            assert.ok(message.includes("not created by this stack"), message);
            assert.strictEqual(theirs.value, "theirs");

            const env = await p.deploymentEnvironment.create(await checked(p.deploymentEnvironment, envInputs(slug)));
            fake.deleteOutOfBand("environment", WS, slug, "dbt-ci");
            fake.seedEnvironment(WS, slug, "dbt-ci", "Test");
            assert.strictEqual((await p.deploymentEnvironment.read!(env.id, env.outs)).id, undefined);
            tried.blocked();
        });
    });

    describe("class fields under the project's compilation (ES2022 define semantics)", () => {
        it("every declared output of each Bitbucket resource is a resolved Output on the constructed object, not reset to undefined", async () => {
            // tsx compiles with the tsconfig target (ES2022: useDefineForClassFields), as ts-node does in Pulumi's host.
            await installMocks("dev");
            const env = new DeploymentEnvironment("fields-env", { workspace: WS, repoSlug: "dbt", name: "Production", environmentType: "Production" });
            const repoVariable = new RepositoryVariable("fields-rv", { workspace: WS, repoSlug: "dbt", key: "DB_CI_HOST", value: "h", secured: false });
            const deploymentVariable = new DeploymentVariable("fields-dv", { workspace: WS, repoSlug: "dbt", environmentUuid: "{8f7c2d1e-0a9b-4c3d-8e7f-6a5b4c3d2e1f}", key: "K", value: "v", secured: true });
            const pipelines = new PipelinesConfig("fields-pc", { workspace: WS, repoSlug: "dbt", enabled: true });
            const expected: [string, pulumi.Resource, Record<string, unknown>, string[]][] = [
                ["DeploymentEnvironment", env, { workspace: WS, repoSlug: "dbt", name: "Production", environmentType: "Production", apiUrl: DEFAULT_API_URL }, ["uuid", "slug"]],
                ["RepositoryVariable", repoVariable, { workspace: WS, repoSlug: "dbt", key: "DB_CI_HOST", secured: false, apiUrl: DEFAULT_API_URL }, ["uuid", "valueHash", "valueSalt"]],
                [
                    "DeploymentVariable",
                    deploymentVariable,
                    { workspace: WS, repoSlug: "dbt", environmentUuid: "{8f7c2d1e-0a9b-4c3d-8e7f-6a5b4c3d2e1f}", key: "K", secured: true, apiUrl: DEFAULT_API_URL },
                    ["uuid", "valueHash", "valueSalt"],
                ],
                ["PipelinesConfig", pipelines, { workspace: WS, repoSlug: "dbt", enabled: true, disableOnDelete: false, apiUrl: DEFAULT_API_URL }, []],
            ];
            for (const [type, resource, values, computedOnly] of expected) {
                for (const field of [...Object.keys(values), ...computedOnly]) {
                    const out = (resource as any)[field];
                    assert.ok(pulumi.Output.isInstance(out), `${type}.${field} is ${out === undefined ? "undefined" : typeof out}, not an Output`);
                }
                for (const [field, value] of Object.entries(values)) {
                    assert.deepStrictEqual((await resolve((resource as any)[field])).value, value, `${type}.${field}`);
                }
            }
        });
    });

    describe("secrecy", () => {
        const SECRET = "prod-password-that-must-not-leak-91c2";

        it("serialised providers hold neither the token (environment or stack config) nor a secret value they handled", async () => {
            const slug = newRepo();
            const objects = bitbucketProviderObjects;
            for (const provider of Object.values(objects)) await provider.configure!({ config: stackConfig({ [TOKEN_CONFIG]: CONFIG_TOKEN }) });
            // The default providers do real work with the secret first: nothing of it may stay behind in them.
            const env = await objects.deploymentEnvironment.create(await checked(objects.deploymentEnvironment, { apiUrl: fake.url, workspace: WS, repoSlug: slug, name: "Production", environmentType: "Production" }));
            await objects.repositoryVariable.create(await checked(objects.repositoryVariable, repoVar(slug, { key: "DB_PROD_PWD", value: SECRET, secured: true })));
            await objects.deploymentVariable.create(await checked(objects.deploymentVariable, { ...repoVar(slug, { key: "DB_PROD_PWD", value: SECRET, secured: true }), environmentUuid: env.outs.uuid }));
            await objects.pipelinesConfig.create(await checked(objects.pipelinesConfig, { apiUrl: fake.url, workspace: WS, repoSlug: slug, enabled: true }));
            for (const [name, provider] of Object.entries(objects)) {
                // Exactly what pulumi.dynamic.Resource stores as __provider.
                const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
                for (const needle of [TOKEN, CONFIG_TOKEN, SECRET]) assert.ok(!sf.text.includes(needle), `${name}: serialised provider contains ${needle}`);
                assert.strictEqual(sf.containsSecrets, false, name);
                assert.match(sf.text, /process\.env/, `${name}: reads the token at call time`);
            }
        });

        /** Serialises a provider as pulumi.dynamic.Resource does and loads it as the provider host does. */
        async function reloaded(provider: pulumi.dynamic.ResourceProvider): Promise<pulumi.dynamic.ResourceProvider> {
            const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
            const m = new Module(path.join(__dirname, "__provider.js"));
            m.paths = (Module as any)._nodeModulePaths(path.join(__dirname, ".."));
            (m as any)._compile(sf.text, m.id);
            return m.exports.handler();
        }

        it("a serialised provider, loaded as the provider host loads it, creates, reads and deletes against the fake", async () => {
            const slug = newRepo();
            const provider = await reloaded(bitbucketProviderObjects.repositoryVariable);
            const inputs = await checked(provider, repoVar(slug, { adopt: true }));
            fake.seedVariable(WS, slug, { key: inputs.key, value: "old" }); // the 409 → adopt path too
            const { id, outs } = await provider.create(inputs);
            assert.strictEqual(fake.variables(WS, slug)[0].value, inputs.value);
            assert.deepStrictEqual((await provider.read!(id, outs)).props, outs);
            await provider.delete!(id, outs);
            assert.deepStrictEqual(fake.variables(WS, slug), []);
        });

        it("a serialised provider also retries (429) and reports errors (401)", async () => {
            const slug = newRepo();
            const provider = await reloaded(bitbucketProviderObjects.repositoryVariable);
            const inputs = await checked(provider, repoVar(slug));
            fake.failNext(new RegExp(`${slug}/pipelines_config/variables`), 429, 1, { "Retry-After": "0" }, "POST");
            // The retry table and the error factory must survive closure serialisation (see components/ci/rest.ts).
            await provider.create(inputs);
            assert.deepStrictEqual(fake.requests("POST", new RegExp(slug)).map((r) => r.status), [429, 201]);
            process.env[TOKEN_ENV] = "bbtok-wrong-0000";
            let message = "";
            try {
                await provider.update!(`${WS}/${slug}/DB_CI_HOST`, { uuid: fake.variables(WS, slug)[0].uuid, valueSalt: "s" }, inputs);
                assert.fail("expected a 401");
            } catch (e) {
                message = (e as Error).message;
            }
            assert.match(message, /401 Unauthorized/);
            assert.ok(message.includes(TOKEN_ENV) && !message.includes("bbtok-wrong-0000"), message);
        });

        it("mock runtime: secured variables register `value` as a secret and ask for value and valueHash as secret outputs", async () => {
            const { resources, settle } = await installMocks("dev");
            const monitor = pulumi.runtime.getMonitor() as any;
            const register = monitor.registerResource.bind(monitor);
            const secretOutputs = new Map<string, string[]>();
            monitor.registerResource = (req: any, callback: (err: any, resp: any) => void) => {
                secretOutputs.set(req.getName(), req.getAdditionalsecretoutputsList());
                register(req, callback);
            };
            const env = new DeploymentEnvironment("prod-env", { workspace: WS, repoSlug: "dbt", name: "Production", environmentType: "Production" });
            new RepositoryVariable("db-ci-pwd", { workspace: WS, repoSlug: "dbt", key: "DB_CI_PWD", value: SECRET, secured: true });
            new DeploymentVariable("db-prod-pwd", { workspace: WS, repoSlug: "dbt", environmentUuid: env.uuid, key: "DB_PROD_PWD", value: SECRET, secured: true });
            new PipelinesConfig("pipelines", { workspace: WS, repoSlug: "dbt", enabled: true });
            await settle();

            for (const [type, name] of [[T.repositoryVariable, "db-ci-pwd"], [T.deploymentVariable, "db-prod-pwd"]]) {
                const r = find(resources, type, name);
                assert.ok(r.secretInputs.includes("value"), `${name}: value is a secret input`);
                assert.strictEqual(r.inputs.value, SECRET);
                assert.ok(!plainStrings(r.inputs, r.secretInputs).some((s) => s.includes(SECRET)), `${name}: no plain copy of the value`);
                assert.deepStrictEqual(secretOutputs.get(name), ["value", "valueHash"]);
                assert.strictEqual(r.inputs.apiUrl, DEFAULT_API_URL);
            }
            find(resources, T.environment, "prod-env");
            assert.deepStrictEqual(find(resources, T.pipelinesConfig, "pipelines").inputs.disableOnDelete, false);
            assert.ok(!resources.some((r) => JSON.stringify(r.inputs).includes(TOKEN)), "no token in any input");
        });
    });
});
