/**
 * The program `pulumi up` runs: loaded the way the CLI and Pulumi's Node.js host resolve and compile it
 * (Pulumi.yaml `main`, else package.json exports/main, via the SDK's own cmd/run/run.js and ts-node with the
 * project's tsconfig; see test/support/pulumiHost.js), never by requiring index.ts, under mocks, per stack.
 */
import assert from "assert";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { parse } from "yaml";
import { ROOT, stackConfig } from "../scripts/offline";

interface HostResult {
    pwd: string;
    entryPoint: string;
    loaded: string[];
    exportKeys: string[];
    undefinedExports: string[];
    resources: { type: string; name: string; custom: boolean; parent: string; inputs: Record<string, any> }[];
    stackOutputs: Record<string, any>;
}

/** Runs `stack` through pulumiHost.js in a child process (the host compiles with ts-node, not this test's tsx). */
async function host(stack: string): Promise<{ result: HostResult; stderr: string }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-platform-host-"));
    const out = path.join(dir, "result.json");
    const env: NodeJS.ProcessEnv = { ...process.env, PULUMI_CONFIG: JSON.stringify(stackConfig(stack)), PULUMI_CONFIG_SECRET_KEYS: "[]" };
    // Nothing of this test process's loader or a surrounding Pulumi run may leak into the host.
    for (const k of Object.keys(env)) if (k.startsWith("PULUMI_NODEJS_") || k === "NODE_OPTIONS" || k.startsWith("TS_NODE_")) delete env[k];
    try {
        const { stderr } = await promisify(execFile)(process.execPath, [path.join(ROOT, "test/support/pulumiHost.js"), ROOT, stack, out], {
            cwd: ROOT,
            env,
            maxBuffer: 64 * 1024 * 1024,
        });
        return { result: JSON.parse(fs.readFileSync(out, "utf8")), stderr };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const STACKS = ["dev", "sandbox", "staging", "prod", "snowflake", "redshift"];

describe("entry point: what `pulumi up` runs", () => {
    it("Pulumi.yaml names the program, and package.json's entries are the built library, not the program", () => {
        const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
        assert.strictEqual(project.main, "index.ts");
        const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
        const exported = Object.entries(pkg.exports ?? {}).filter(([k]) => k !== "./package.json").map(([, e]) => e);
        const entries = [pkg.main, pkg.types, ...exported.flatMap((e: any) => (typeof e === "string" ? [e] : Object.values(e)))];
        for (const e of entries) assert.match(String(e), /^\.?\/?dist\//, `package.json entry ${e} must be the compiled library`);
    });

    for (const stack of STACKS) {
        describe(`stack ${stack}`, function () {
            this.timeout(240_000);
            let result: HostResult;
            let stderr: string;
            const doc = parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")).config;
            const cfg = (k: string) => doc[`dbt-platform:${k}`] ?? {};
            const names = () => new Set(result.resources.map((r) => `${r.type} ${r.name}`));
            const has = (type: string, name: string) => assert.ok(names().has(`${type} ${name}`), `${stack}: expected ${type} ${name}`);

            before(async () => {
                ({ result, stderr } = await host(stack));
                console.log(`entry point: stack ${stack} runs ${result.entryPoint}: ${result.resources.length} resources, ${result.exportKeys.length} outputs`);
            });

            it("runs index.ts from the project root", () => {
                assert.strictEqual(result.pwd, ROOT);
                assert.strictEqual(result.entryPoint, "index.ts");
                assert.strictEqual(result.loaded[0], "index.ts", `first module the host loaded: ${result.loaded[0]}`);
            });

            it("registers the platform under the stack", () => {
                const s = `dbt-${stack}`;
                has("pulumi:pulumi:Stack", `dbt-platform-${stack}`);
                has("dbt-platform:index:DbtPlatform", s);
                const wh = cfg("warehouse");
                const kind = wh.kind ?? "postgres";
                // Exactly one warehouse component: the one of the stack's kind (built by the factory).
                const components = result.resources.filter((r) => r.type.startsWith("dbt-platform:warehouse:") && r.name === `${s}-warehouse`).map((r) => r.type);
                const component = { postgres: "PostgresWarehouse", snowflake: "SnowflakeWarehouse", redshift: "RedshiftWarehouse" }[kind as string];
                assert.deepStrictEqual(components, [`dbt-platform:warehouse:${component}`]);
                if (kind === "postgres") {
                    has("pulumi:providers:postgresql", `${s}-warehouse-provider`);
                    for (const role of ["dev", "prod"]) has("postgresql:index/role:Role", `${s}-warehouse-role-${role}`);
                    for (const u of wh.users) {
                        has("postgresql:index/role:Role", `${s}-warehouse-user-${u.name}`);
                        has("random:index/randomPassword:RandomPassword", `${s}-warehouse-user-${u.name}-password`);
                    }
                    for (const d of wh.developers ?? []) {
                        has("postgresql:index/role:Role", `${s}-warehouse-developer-${d.name}`);
                        has("postgresql:index/schema:Schema", `${s}-warehouse-schema-${d.schema ?? `dbt_${d.name}`}`);
                    }
                    for (const schema of wh.schemas.production) has("postgresql:index/schema:Schema", `${s}-warehouse-schema-${schema}`);
                    assert.strictEqual(names().has(`postgresql:index/database:Database ${s}-warehouse-database`), wh.createDatabase === true);
                } else if (kind === "snowflake") {
                    for (const p of ["sysadmin", "securityadmin"]) has("pulumi:providers:snowflake", `${s}-warehouse-${p}`);
                    for (const key of ["production", "development"]) assert.strictEqual(names().has(`snowflake:index/database:Database ${s}-warehouse-database-${key}`), wh.createDatabases !== false);
                    for (const duty of ["transform", "ci", "reporting"]) has("snowflake:index/warehouse:Warehouse", `${s}-warehouse-warehouse-${duty}`);
                    for (const role of ["transformer", "ci", "reporter"]) has("snowflake:index/accountRole:AccountRole", `${s}-warehouse-role-${role}`);
                    // Key-pair service users, no passwords anywhere.
                    for (const u of wh.users) {
                        has("snowflake:index/serviceUser:ServiceUser", `${s}-warehouse-user-${u.name}`);
                        has("tls:index/privateKey:PrivateKey", `${s}-warehouse-user-${u.name}-key-1`);
                    }
                    assert.deepStrictEqual(result.resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword").map((r) => r.name), []);
                    assert.ok(!names().has(`pulumi:providers:postgresql ${s}-warehouse-provider`));
                } else {
                    for (const g of ["dev", "prod"]) has("pulumi-nodejs:dynamic/redshift:Group", `${s}-warehouse-group-${g}`);
                    for (const u of wh.users) {
                        has("pulumi-nodejs:dynamic/redshift:User", `${s}-warehouse-user-${u.name}`);
                        has("random:index/randomPassword:RandomPassword", `${s}-warehouse-user-${u.name}-password`);
                    }
                    for (const d of wh.developers ?? []) has("pulumi-nodejs:dynamic/redshift:Schema", `${s}-warehouse-schema-${d.schema ?? d.name}`);
                    for (const schema of wh.schemas.production) has("pulumi-nodejs:dynamic/redshift:Schema", `${s}-warehouse-schema-${schema}`);
                    assert.ok(!result.resources.some((r) => r.type.startsWith("postgresql:")), "no @pulumi/postgresql resource on Redshift");
                }

                const aws = cfg("aws").enabled === true;
                const awsTypes = result.resources.filter((r) => r.type.startsWith("aws:") || r.type.startsWith("dbt-platform:aws:"));
                if (!aws) assert.deepStrictEqual(awsTypes.map((r) => r.name), []);
                else {
                    has("pulumi:providers:aws", `${s}-aws`);
                    has("dbt-platform:aws:ArtifactStore", `${s}-artifacts`);
                    has("aws:s3/bucket:Bucket", `${s}-artifacts-bucket`);
                    has("dbt-platform:aws:CiIdentity", `${s}-ci`);
                    has("dbt-platform:aws:WarehouseCredentials", `${s}-credentials`);
                    assert.strictEqual(names().has(`dbt-platform:aws:DocsSite ${s}-artifacts-docs`), cfg("features").docsSite === true);
                }
            });

            it("exports only what the stack has: no undefined export, no 'Undefined value' warning", () => {
                assert.deepStrictEqual(result.undefinedExports, []);
                assert.doesNotMatch(stderr, /Undefined value/);
                const aws = cfg("aws").enabled === true;
                const kind = cfg("warehouse").kind ?? "postgres";
                // Group roles are Postgres's; developer logins exist on Postgres and Redshift.
                const expected = ["environment", "ciSystem", "dbtTargets", "profileEnvironment", "profilesYaml", "pipelineFiles", "pipelineVariables"];
                if (kind === "postgres") expected.push("warehouseRoles", "developerTargets");
                if (kind === "redshift") expected.push("developerTargets");
                if (aws) expected.push("artifactsBucket", "latestManifestKey", "ciRoleArns", "credentialSecretNames");
                if (aws && cfg("features").docsSite === true) expected.push("docsUrl", "docsDistributionId");
                assert.deepStrictEqual([...result.exportKeys].sort(), expected.sort());
                assert.deepStrictEqual(Object.keys(result.stackOutputs).sort(), expected.sort());
                assert.strictEqual(result.stackOutputs.environment.kind, cfg("environment").kind);
                assert.match(result.stackOutputs.profilesYaml, new RegExp(`^${cfg("dbt").profile}:`, "m"));
            });
        });
    }
});
