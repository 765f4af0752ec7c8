/**
 * The class-field problem can't come back: every component and dynamic resource class the library exports,
 * constructed under the compilation Pulumi's Node.js host uses (run.js → ts-node with the project's tsconfig,
 * ES2022, define semantics for class fields), exposes each declared Output field as an Output with its value.
 * The checks read the fields of the constructed objects (test/support/classFieldsProgram.ts), not the mocks' records.
 */
import assert from "assert";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { ROOT, stackConfig } from "../scripts/offline";

interface ClassReport {
    file: string;
    kind: string;
    instances: number;
    fields: string[];
    declared: string[];
    failures: string[];
}

describe("class fields under the host's compilation", function () {
    this.timeout(300_000);
    let compiler: { tsNode: boolean; target: string; useDefineForClassFields: boolean | null };
    let classes: Record<string, ClassReport>;

    before(async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-platform-fields-"));
        const out = path.join(dir, "result.json");
        const env: NodeJS.ProcessEnv = { ...process.env, PULUMI_CONFIG: JSON.stringify(stackConfig("prod")), PULUMI_CONFIG_SECRET_KEYS: "[]" };
        for (const k of Object.keys(env)) if (k.startsWith("PULUMI_NODEJS_") || k === "NODE_OPTIONS" || k.startsWith("TS_NODE_")) delete env[k];
        try {
            await promisify(execFile)(process.execPath, [path.join(ROOT, "test/support/pulumiHost.js"), ROOT, "prod", out, "test/support/classFieldsProgram.ts"], {
                cwd: ROOT,
                env,
                maxBuffer: 64 * 1024 * 1024,
            });
            ({ compiler, classes } = JSON.parse(fs.readFileSync(out, "utf8")).stackOutputs);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("compiles with ts-node at ES2022 with define semantics for class fields", () => {
        assert.deepStrictEqual(compiler.tsNode, true);
        assert.strictEqual(compiler.target, "ES2022");
        assert.notStrictEqual(compiler.useDefineForClassFields, false, "useDefineForClassFields=false would hide the problem");
    });

    it("covers every component and dynamic resource class, each constructed at least once", () => {
        const kinds = (k: string) => Object.keys(classes).filter((n) => classes[n].kind === k).sort();
        for (const c of ["DbtPlatform", "PostgresWarehouse", "ArtifactStore", "DocsSite", "CiIdentity", "WarehouseCredentials", "BitbucketCiSettings", "GithubCiSettings", "AzureDevopsCiSettings"]) {
            assert.ok(kinds("component").includes(c), `component ${c}`);
        }
        for (const c of ["PipelinesConfig", "DeploymentEnvironment", "RepositoryVariable", "DeploymentVariable", "VariableGroup", "SecureFile", "BuildDefinition", "Environment", "ApprovalCheck", "PipelinePermission"]) {
            assert.ok(kinds("dynamic").includes(c), `dynamic resource ${c}`);
        }
        for (const [name, c] of Object.entries(classes)) assert.ok(c.instances > 0, `${name} (${c.file}) was never constructed`);
    });

    it("exposes every declared Output field of the constructed objects as an Output with its value", () => {
        const failures = Object.entries(classes).flatMap(([name, c]) => c.failures.map((f) => `${name}: ${f}`));
        for (const [name, c] of Object.entries(classes).sort()) {
            if (!c.failures.length) console.log(`class fields: ${name} (${c.kind}, ${c.instances} constructed) ${c.fields.length} outputs ok`);
        }
        assert.deepStrictEqual(failures, []);
    });
});
