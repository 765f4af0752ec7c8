/**
 * The published library as another project sees it: `npm pack` (prepack builds dist/), the tarball installed
 * into a throwaway consumer (own package.json, strict tsconfig) with @pulumi/pulumi at the lowest and the highest
 * release of the peer range on npm, the README's library example type-checked with the consumer's tsc and run
 * under Pulumi mocks, the package imported from CommonJS and from an ES module.
 * Needs the npm registry (the providers come from the npm cache when it has them).
 */
import assert from "assert";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { ROOT } from "../scripts/offline";

const exec = promisify(execFile);
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";

async function npm(cwd: string, ...args: string[]): Promise<string> {
    const env = { ...process.env };
    // This test's own loader (tsx) must not leak into npm, tsc or the consumer's node.
    delete env.NODE_OPTIONS;
    const { stdout } = await exec(NPM, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
}

async function node(cwd: string, ...args: string[]): Promise<string> {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    for (const k of Object.keys(env)) if (k.startsWith("PULUMI_")) delete env[k];
    try {
        const { stdout } = await exec(process.execPath, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 });
        return stdout;
    } catch (e: any) {
        throw new Error(`node ${args.join(" ").slice(0, 200)} failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
    }
}

/** The ```ts block of README.md's "As a library" section. */
function readmeExample(): string {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## As a library"));
    const m = /```ts\n([\s\S]*?)```/.exec(section);
    if (!m) throw new Error("README.md has no ```ts block under ## As a library");
    return m[1];
}

const semverCmp = (a: string, b: string) => {
    const pa = a.split(".").map(Number);
    const pb = b.split(".").map(Number);
    return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2];
};

/** Runs the compiled example under mocks and checks what it registered and exported. */
const CHECK = `"use strict";
const pulumi = require("@pulumi/pulumi");
const registered = [];
pulumi.runtime.setMocks({
    newResource: (a) => {
        registered.push(a.type + " " + a.name);
        const state = a.type === "random:index/randomPassword:RandomPassword" ? { ...a.inputs, result: "x".repeat(a.inputs.length || 32) } : a.inputs;
        return { id: a.name + "-id", state };
    },
    call: (a) => a.inputs,
}, "consumer", "dev", false);
pulumi.runtime.setAllConfig({ "consumer:warehouseHost": "warehouse.internal", "consumer:warehouseAdminPassword": "admin-password" }, ["consumer:warehouseAdminPassword"]);
const program = require("./bin/index.js");
const value = (o) => new Promise((resolve) => o.apply(resolve));
(async () => {
    const profiles = await value(program.profilesYaml);
    const targets = await value(program.dbtTargets);
    await new Promise((r) => setTimeout(r, 200));
    console.log(JSON.stringify({ profiles, targets, registered, secret: await program.dbtTargets.isSecret }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe("library: the packed package in a consumer project @integration", function () {
    this.timeout(360_000);
    let work: string;
    let tarball: string;
    let consumer: string;

    before(async () => {
        work = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-platform-consumer-"));
        const packed = JSON.parse(await npm(ROOT, "pack", "--json", "--pack-destination", work));
        tarball = path.join(work, packed[0].filename);
        consumer = path.join(work, "consumer");
        fs.mkdirSync(consumer);
    });

    after(() => {
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("ships compiled JavaScript and declarations only: no sources, tests, fixtures, program or state", async () => {
        const { stdout } = await exec("tar", ["-tzf", tarball]);
        const files = stdout.split("\n").filter(Boolean).map((f) => f.replace(/^package\//, ""));
        const stray = files.filter((f) => !/^dist\/.*\.(js|d\.ts)$/.test(f) && !["package.json", "README.md"].includes(f));
        assert.deepStrictEqual(stray, []);
        for (const f of ["dist/index.js", "dist/index.d.ts", "dist/warehouse/index.js", "dist/ci/index.js"]) assert.ok(files.includes(f), `tarball has ${f}`);
        for (const [sub, target] of Object.entries(pkg.exports as Record<string, any>)) {
            const t = typeof target === "string" ? target : target.default;
            assert.ok(files.includes(t.replace(/^\.\//, "")), `exports["${sub}"] → ${t} is in the tarball`);
            if (typeof target !== "string") assert.ok(files.includes(target.types.replace(/^\.\//, "")), `exports["${sub}"] types are in the tarball`);
        }
        assert.strictEqual(pkg.private, undefined);
        assert.match(pkg.name, /^@[a-z0-9-]+\/[a-z0-9-]+$/);
        for (const dep of Object.keys(pkg.dependencies ?? {})) assert.ok(!dep.startsWith("@pulumi/"), `${dep} is a peer dependency, not a dependency`);
    });

    it("type-checks and runs the README example with @pulumi/pulumi at both ends of the peer range", async () => {
        const range: string = pkg.peerDependencies["@pulumi/pulumi"];
        const available = JSON.parse(await npm(work, "view", `@pulumi/pulumi@${range}`, "version", "--json")) as string | string[];
        const versions = [available].flat().filter((v) => /^\d+\.\d+\.\d+$/.test(v)).sort(semverCmp);
        const ends = [...new Set([versions[0], versions[versions.length - 1]])];
        assert.ok(ends.length === 2, `the peer range ${range} has more than one release on npm: ${versions.join(", ")}`);

        // The providers at the versions this repository pins (they satisfy the peer ranges), installed once.
        const peers = Object.fromEntries(Object.keys(pkg.peerDependencies).filter((d) => d !== "@pulumi/pulumi").map((d) => [d, pkg.devDependencies[d]]));
        fs.writeFileSync(
            path.join(consumer, "package.json"),
            JSON.stringify({ name: "consumer", version: "1.0.0", private: true, main: "bin/index.js", dependencies: { "@dbt-platform/platform": `file:${tarball}`, "@pulumi/pulumi": ends[0], ...peers, typescript: pkg.devDependencies.typescript, "@types/node": pkg.devDependencies["@types/node"] } }, null, 2),
        );
        fs.writeFileSync(
            path.join(consumer, "tsconfig.json"),
            // Pulumi's TypeScript template: CommonJS, classic node resolution (exports maps are not read: typesVersions is).
            JSON.stringify({ compilerOptions: { strict: true, target: "ES2020", module: "commonjs", moduleResolution: "node", outDir: "bin", skipLibCheck: true, types: ["node"] }, files: ["index.ts"] }, null, 2),
        );
        fs.writeFileSync(path.join(consumer, "index.ts"), readmeExample());
        fs.writeFileSync(path.join(consumer, "check.js"), CHECK);

        for (const [i, version] of ends.entries()) {
            if (i === 0) await npm(consumer, "install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts");
            else await npm(consumer, "install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact", `@pulumi/pulumi@${version}`);

            // One copy of @pulumi/pulumi, the one asked for: the library and the providers share it.
            const { stdout: copies } = await exec("find", ["node_modules", "-path", "*/@pulumi/pulumi/package.json"], { cwd: consumer });
            assert.deepStrictEqual(copies.split("\n").filter(Boolean), ["node_modules/@pulumi/pulumi/package.json"]);
            assert.strictEqual(JSON.parse(fs.readFileSync(path.join(consumer, "node_modules/@pulumi/pulumi/package.json"), "utf8")).version, version);

            fs.rmSync(path.join(consumer, "bin"), { recursive: true, force: true });
            const tsc = path.join(consumer, "node_modules/typescript/bin/tsc");
            // Node16 resolution reads the exports map and its types conditions.
            await node(consumer, tsc, "-p", "tsconfig.json", "--module", "node16", "--moduleResolution", "node16", "--noEmit");
            await node(consumer, tsc, "-p", "tsconfig.json");
            const out = JSON.parse(await node(consumer, "check.js"));
            assert.match(out.profiles, /^analytics:\n/m);
            assert.deepStrictEqual(Object.keys(out.targets).sort(), ["ci", "prod"]);
            assert.strictEqual(out.targets.prod.user, "dbt_deploy");
            assert.strictEqual(out.targets.prod.host, "warehouse.internal");
            assert.strictEqual(out.secret, true, "targets (passwords) stay secret");
            for (const r of ["dbt-platform:warehouse:PostgresWarehouse analytics", "postgresql:index/role:Role analytics-user-dbt_deploy", "postgresql:index/schema:Schema analytics-schema-analytics"]) {
                assert.ok(out.registered.includes(r), `registered ${r}`);
            }

            // CommonJS and ES-module consumers both load the root and every subpath.
            const subpaths = Object.keys(pkg.exports).filter((s) => s !== "./package.json").map((s) => `@dbt-platform/platform${s.slice(1)}`);
            await node(consumer, "-e", `for (const s of ${JSON.stringify(subpaths)}) if (!Object.keys(require(s)).length) throw new Error(s + " exports nothing");`);
            await node(consumer, "--input-type=module", "-e", `import { PostgresWarehouse } from "@dbt-platform/platform/warehouse"; import { DbtPlatform } from "@dbt-platform/platform"; if (typeof PostgresWarehouse !== "function" || typeof DbtPlatform !== "function") throw new Error("named ESM imports");`);
            console.log(`library: consumer with @pulumi/pulumi ${version} ok`);
        }
    });
});
