/**
 * The access matrix as derived from the declared plan (under mocks), its rendering, and the
 * base-vs-head diff the platform PR comment shows.
 */
import assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { accessPlan, AccessPlan, postgresPlan } from "../components/access/plan";
import { accessMatrix, diffMatrices, renderMatrixDiff, renderMatrixMarkdown } from "../components/access/matrix";
import { Recorded, ROOT, runProgram } from "../scripts/offline";

describe("access matrix from the declared plan", () => {
    let plan: AccessPlan;
    let declared: Recorded[];

    before(async () => {
        declared = (await runProgram("dev")).resources;
        plan = accessPlan(declared);
    });

    it("reads every login, role, membership, masking setting, schema owner, grant and default from the dev stack", () => {
        assert.strictEqual(plan.database, "analytics_dev");
        assert.deepStrictEqual(plan.roles.map((r) => `${r.name}${r.login ? "" : " (role)"} in [${r.memberOf}] masked as ${r.settings.role ?? "-"}`), [
            "anton in [role_dev] masked as -",
            "dbt_bitbucket in [role_prod] masked as role_prod",
            "dbt_scheduler in [role_prod] masked as role_prod",
            "dev_ci in [role_dev] masked as role_dev",
            "maria in [role_dev] masked as -",
            "role_dev (role) in [] masked as -",
            "role_prod (role) in [] masked as -",
        ]);
        // Every other setting the program declares (search_path pinning, timeouts) is carried as declared.
        for (const r of declared.filter((x) => x.type === "postgresql:index/role:Role" && x.inputs.searchPaths?.length)) {
            assert.strictEqual(plan.roles.find((p) => p.name === r.inputs.name)!.settings.search_path, r.inputs.searchPaths.join(", "));
        }
        assert.deepStrictEqual(
            plan.schemas,
            declared
                .filter((r) => r.type === "postgresql:index/schema:Schema")
                .map((r) => ({ name: r.inputs.name, owner: r.inputs.owner ?? "" }))
                .sort((a, b) => a.name.localeCompare(b.name)),
        );
        assert.deepStrictEqual(
            plan.schemas.filter((x) => x.owner).map((x) => `${x.name}:${x.owner}`),
            ["analytics:role_prod", "dbt_anton:anton", "dbt_ci:role_dev", "dbt_maria:maria", "staging:role_prod"],
        );
    });

    it("derives who may do what, with role masking", () => {
        const m = accessMatrix(plan);
        const row = (n: string) => m.rows.find((r) => r.name === n)!;
        assert.deepStrictEqual(row("dbt_scheduler"), {
            name: "dbt_scheduler", kind: "login", sessionRole: "role_prod", connect: true, createSchema: true,
            create: ["analytics", "staging"], replaceDrop: ["analytics", "staging"], read: ["analytics", "staging"], own: ["analytics", "staging"],
        });
        assert.deepStrictEqual(row("dev_ci").create, ["dbt_ci"]);
        assert.deepStrictEqual(row("dev_ci").read, ["analytics", "dbt_ci", "staging"]);
        assert.ok(!row("maria").read.includes("dbt_anton"), "developer schemas are private");
        const md = renderMatrixMarkdown(m);
        assert.match(md, /\| dbt_bitbucket \| login \| role_prod \| yes \| yes \| analytics, staging \|/);
    });

    it("diffs base against head cell by cell", () => {
        const base = accessMatrix(plan);
        const widened = structuredClone(plan);
        widened.grants.push({ grantee: "role_dev", on: "schema", schema: "analytics", privileges: ["CREATE"] });
        widened.roles = widened.roles.filter((r) => r.name !== "maria");
        const diff = diffMatrices(base, accessMatrix(widened));
        assert.deepStrictEqual(diff.added, ["anton: create in analytics", "dev_ci: create in analytics", "role_dev: create in analytics"]);
        assert.ok(diff.removed.includes("maria: exists as login") && diff.removed.includes("maria: own dbt_maria"));
        assert.match(renderMatrixDiff(diff), /^```diff\n- maria: exists as login\n/);
        assert.strictEqual(renderMatrixDiff(diffMatrices(base, base)), "No access changes.\n");
    });

    it("npm run access prints JSON and the diff against a base matrix file", function () {
        this.timeout(60_000);
        const run = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts/access.ts"), ...args], { cwd: ROOT, encoding: "utf8" });
        const json = run("--stack", "dev", "--format", "json");
        assert.strictEqual(json.status, 0, json.stderr);
        assert.deepStrictEqual(JSON.parse(json.stdout), accessMatrix(plan));
        const base = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "access-")), "base.json");
        const older = structuredClone(accessMatrix(plan));
        older.rows = older.rows.filter((r) => r.name !== "anton");
        fs.writeFileSync(base, JSON.stringify(older));
        const diff = run("--stack", "dev", "--base", base);
        assert.strictEqual(diff.status, 0, diff.stderr);
        assert.match(diff.stdout, /^```diff\n\+ anton: exists as login\n/);
        assert.match(run("--stack", "dev", "--format", "html").stderr, /--format html: expected markdown or json/);
    });

    it("reads the plan of every stack", async function () {
        this.timeout(60_000);
        for (const stack of ["sandbox", "staging", "prod"]) {
            const other = accessPlan((await runProgram(stack)).resources);
            assert.ok(other.roles.length >= 4 && other.schemas.length >= 3, `${stack}: ${other.roles.length} roles, ${other.schemas.length} schemas`);
            assert.ok(accessMatrix(other).rows.some((r) => r.kind === "login" && r.connect), `${stack}: some login connects`);
        }
    });

    it("keeps grants on named objects apart from ALL … IN SCHEMA, and refuses what it cannot model, naming the resource", () => {
        const grant = (objectType: string, objects?: string[]) => ({ type: "postgresql:index/grant:Grant", name: "g", inputs: { role: "r", database: "d", schema: "s", objectType, objects, privileges: ["select"] } });
        assert.deepStrictEqual(postgresPlan([grant("table", ["t2", "t1"])]).grants, [{ grantee: "r", on: "table", schema: "s", objects: ["t1", "t2"], privileges: ["SELECT"] }]);
        assert.throws(() => postgresPlan([grant("foreign_data_wrapper")]), /postgresql:index\/grant:Grant g: objectType foreign_data_wrapper is not part of the access model/);
    });
});
