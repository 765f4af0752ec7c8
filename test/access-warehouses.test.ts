/**
 * The access matrix of Redshift and Snowflake stacks, derived from the warehouse component's
 * declared plan (the contract's accessPlan) with each warehouse's semantics, under mocks; rendered
 * as Markdown and JSON with the same rows and columns as Postgres, and diffed base against head.
 * (The Redshift cells are proven on a real Postgres by test/access-redshift.test.ts.)
 */
import assert from "assert";
import { matrixFromContract, snowflakeMatrix } from "../components/access/contract";
import { accessMatrix, diffMatrices, MatrixRow, renderMatrixDiff, renderMatrixMarkdown } from "../components/access/matrix";
import { SnowflakeWarehouse } from "../components/warehouse/snowflake";
import { RedshiftWarehouse } from "../components/warehouse/redshift";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseStackConfig } from "../components/config/stack";
import { snowflakeWarehouseArgs } from "../components/warehouse/factory";
import { snowflakePullRequestSchemas } from "../components/warehouse/snowflake/profiles";
import { ROOT, stackConfig } from "../scripts/offline";
import { declaredRedshift, declaredSnowflake, REDSHIFT_ARGS, seed002 } from "./support/declaredWarehouses";

const COLUMNS = ["name", "kind", "sessionRole", "connect", "createSchema", "create", "replaceDrop", "read", "own"];
const HEADER = "| login / role | kind | session runs as | connect | create schema | create in | replace/drop in | read | own |";

describe("access matrix of Redshift and Snowflake from the components' declared plans", () => {
    describe("Snowflake", () => {
        let wh: SnowflakeWarehouse;
        before(async () => {
            wh = await declaredSnowflake();
        });
        const row = (name: string) => snowflakeMatrix(wh).rows.find((r) => r.name === name)!;

        it("has the Postgres rows and columns: every user, functional, access and system role", () => {
            const m = snowflakeMatrix(wh);
            assert.strictEqual(m.database, "ANALYTICS, ANALYTICS_DEV");
            assert.deepStrictEqual(m.schemas, ["ANALYTICS.*", "ANALYTICS_DEV.*", "ANALYTICS_DEV.CI_PR_<n>"]);
            assert.deepStrictEqual(m.rows.map((r) => `${r.name}:${r.kind}`), [
                "ANALYTICS_DEV.ANALYTICS_DEV_READ:role", "ANALYTICS_DEV.ANALYTICS_DEV_WRITE:role", "ANALYTICS.ANALYTICS_READ:role", "ANALYTICS.ANALYTICS_WRITE:role",
                "REPORTER:role", "SVC_DBT_CI:login", "SVC_DBT_DEPLOY:login", "SVC_DBT_SCHEDULER:login", "SYSADMIN:role", "TRANSFORMER:role", "TRANSFORMER_CI:role",
            ]);
            for (const r of m.rows) for (const c of COLUMNS) assert.ok(c in r, `${r.name}: ${c}`);
            assert.deepStrictEqual(SnowflakeWarehouse.accessPlan("analytics", seed002()), wh.accessPlan, "the component's plan is the static one");
        });

        it("production bots run as TRANSFORMER and own (so replace) whatever any of them builds: future ownership at database level", () => {
            for (const bot of ["SVC_DBT_DEPLOY", "SVC_DBT_SCHEDULER"]) {
                const { name: _n, duties: _d, ...cells } = row(bot);
                assert.deepStrictEqual(cells, {
                    kind: "login", sessionRole: "TRANSFORMER", connect: true, createSchema: true,
                    create: ["ANALYTICS.*"], replaceDrop: ["ANALYTICS.*"], read: ["ANALYTICS.*"], own: ["ANALYTICS.*"],
                });
            }
            assert.deepStrictEqual(row("SVC_DBT_DEPLOY").duties, ["deploy"]);
        });

        it("CI builds and owns its PR schemas in the development database, reads production for deferral, changes nothing there", () => {
            const ci = row("SVC_DBT_CI");
            assert.strictEqual(ci.sessionRole, "TRANSFORMER_CI");
            assert.deepStrictEqual(ci.read, ["ANALYTICS.*", "ANALYTICS_DEV.*", "ANALYTICS_DEV.CI_PR_<n>"]);
            assert.deepStrictEqual(ci.create, ["ANALYTICS_DEV.*", "ANALYTICS_DEV.CI_PR_<n>"]);
            assert.deepStrictEqual([ci.replaceDrop, ci.own], [["ANALYTICS_DEV.CI_PR_<n>"], ["ANALYTICS_DEV.CI_PR_<n>"]]);
            assert.deepStrictEqual(row("REPORTER").read, ["ANALYTICS.*"]);
            assert.deepStrictEqual([row("REPORTER").create, row("REPORTER").createSchema], [[], false]);
            // Database roles cannot be a session's role and hold no warehouse: no session of their own.
            assert.strictEqual(row("ANALYTICS.ANALYTICS_READ").connect, false);
        });

        it("renders Markdown and JSON, and diffs base against head", async () => {
            const m = snowflakeMatrix(wh);
            const md = renderMatrixMarkdown(m);
            assert.ok(md.startsWith("### Access matrix (snowflake, databases ANALYTICS, ANALYTICS_DEV)\n\n" + HEADER + "\n"), md);
            assert.match(md, /\| SVC_DBT_DEPLOY \(deploy\) \| login \| TRANSFORMER \| yes \| yes \| ANALYTICS\.\* \| ANALYTICS\.\* \| ANALYTICS\.\* \| ANALYTICS\.\* \|/);
            assert.deepStrictEqual(JSON.parse(JSON.stringify(m)), m);
            const head = snowflakeMatrix(await declaredSnowflake(seed002({ users: seed002().users.filter((u) => u.duty !== "scheduler") })));
            const diff = diffMatrices(m, head);
            assert.deepStrictEqual(diff.added, []);
            assert.ok(diff.removed.includes("SVC_DBT_SCHEDULER: exists as login") && diff.removed.includes("SVC_DBT_SCHEDULER: replace/drop in ANALYTICS.*"), diff.removed.join("\n"));
            assert.match(renderMatrixDiff(diff), /^```diff\n- SVC_DBT_SCHEDULER: exists as login\n/);
        });
    });

    describe("Redshift", () => {
        it("renders the matrix read from the component's declared plan, with the production identity's duties", async () => {
            const { wh, plan } = await declaredRedshift();
            const m = matrixFromContract(wh);
            assert.deepStrictEqual(m, accessMatrix(plan));
            assert.deepStrictEqual(RedshiftWarehouse.accessPlan("rs", REDSHIFT_ARGS), wh.accessPlan, "the component's plan is the static one");
            const md = renderMatrixMarkdown(m);
            assert.ok(md.includes(HEADER));
            assert.match(md, /\| dbt_prod \(deploy, scheduler\) \| login \| dbt_prod \| yes \| yes \| analytics, analytics_staging \|/);
            assert.match(md, /\| dbt_ci \(ci\) \| login \| dbt_ci \| yes \| yes \| dbt_build_<n> \| dbt_build_<n> \| analytics, analytics_staging, dbt_build_<n> \| dbt_build_<n> \|/);
            const cells = (r: MatrixRow) => Object.keys(r).filter((k) => k !== "duties");
            assert.ok(m.rows.every((r) => JSON.stringify(cells(r)) === JSON.stringify(COLUMNS)));
        });
    });

    describe("npm run access / npm run audit on the snowflake and redshift stacks", function () {
        this.timeout(120_000);
        const run = (script: string, ...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", script), ...args], { cwd: ROOT, encoding: "utf8" });

        it("prints the matrix of the stack's warehouse component as JSON and Markdown, and the diff against a base", () => {
            const json = run("access.ts", "--stack", "snowflake", "--format", "json");
            assert.strictEqual(json.status, 0, json.stderr);
            const m = JSON.parse(json.stdout);
            // The same matrix as the component's static plan for the stack's own arguments.
            const config = parseStackConfig("snowflake", stackConfig("snowflake"));
            assert.strictEqual(config.warehouse.kind, "snowflake");
            const args = snowflakeWarehouseArgs(config, config.warehouse as Extract<typeof config.warehouse, { kind: "snowflake" }>, undefined);
            const w = { kind: "snowflake" as const, accessPlan: SnowflakeWarehouse.accessPlan("dbt-snowflake-warehouse", args), pullRequestSchemas: snowflakePullRequestSchemas("CI_PR_", "ANALYTICS_DEV") };
            assert.deepStrictEqual(m, snowflakeMatrix(w));
            assert.deepStrictEqual(m.schemas, ["ANALYTICS.*", "ANALYTICS_DEV.*", "ANALYTICS_DEV.CI_PR_<n>"]);
            const md = run("access.ts", "--stack", "redshift");
            assert.strictEqual(md.status, 0, md.stderr);
            assert.ok(md.stdout.startsWith("### Access matrix — stack redshift (redshift, database dev)\n\n" + HEADER), md.stdout);
            assert.match(md.stdout, /\| dbt_prod \(deploy, scheduler\) \| login \| dbt_prod \| yes \| yes \| dbt, dbt_staging \| dbt, dbt_staging \|/);
            const base = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "access-")), "base.json");
            fs.writeFileSync(base, JSON.stringify({ ...m, rows: m.rows.filter((r: MatrixRow) => r.name !== "SVC_DBT_DEPLOY") }));
            const diff = run("access.ts", "--stack", "snowflake", "--base", base);
            assert.strictEqual(diff.status, 0, diff.stderr);
            assert.match(diff.stdout, /^```diff\n\+ SVC_DBT_DEPLOY: exists as login\n\+ SVC_DBT_DEPLOY: serves deploy\n/);
        });

        it("audits recorded catalogs of the stacks against their declared plans: clean, then a new login by name, exit 1", () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-"));
            // The recorded seed-003 / seed-002 catalogs, renamed to the stacks' own databases, schemas and users.
            const redshift = fs.readFileSync(path.join(ROOT, "test/fixtures/audit/redshift-catalog.json"), "utf8")
                .replace(/"rs_matrix"/g, '"dev"').replace(/"analytics_staging"/g, '"dbt_staging"').replace(/"analytics"/g, '"dbt"');
            const snowflake = JSON.parse(fs.readFileSync(path.join(ROOT, "test/fixtures/audit/snowflake-catalog.json"), "utf8"));
            snowflake.users = snowflake.users.filter((u: any) => u.name !== "SVC_DBT_SCHEDULER");
            snowflake.grantsOfRole = snowflake.grantsOfRole.filter((g: any) => g.grantee_name !== "SVC_DBT_SCHEDULER");
            for (const [stack, catalog, ignore] of [["redshift", JSON.parse(redshift), ["rdsdb"]], ["snowflake", snowflake, ["PULUMI_ADMIN", "AUDITOR", "AUDIT_READER"]]] as const) {
                const file = path.join(dir, `${stack}.json`);
                const audit = () => run("audit.ts", "--stack", stack, "--catalog", file, ...ignore.flatMap((r) => ["--ignore-role", r]));
                fs.writeFileSync(file, JSON.stringify(catalog));
                const clean = audit();
                assert.strictEqual(clean.status, 0, `${stack}: ${clean.stdout}${clean.stderr}`);
                assert.strictEqual(clean.stdout, `audit ${stack}: no drift — the live grants are the declared plan\n`);
                catalog.users.push(stack === "redshift" ? { user_name: "intruder" } : { name: "INTRUDER", default_role: null });
                fs.writeFileSync(file, JSON.stringify(catalog));
                const drift = audit();
                assert.strictEqual(drift.status, 1, `${stack}: ${drift.stdout}${drift.stderr}`);
                assert.strictEqual(drift.stdout, `audit ${stack}: 1 drift from the declared plan\n  - unknown login: ${stack === "redshift" ? "intruder" : "INTRUDER"}\n`);
            }
            fs.rmSync(dir, { recursive: true, force: true });
        });
    });
});
