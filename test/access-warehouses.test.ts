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
import { runCapturingWarehouses } from "../scripts/access";
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

    it("the program's warehouse component is caught as it registers (what npm run access reads for Redshift and Snowflake stacks)", async function () {
        this.timeout(60_000);
        const { warehouses } = await runCapturingWarehouses("dev");
        assert.deepStrictEqual(warehouses.map((w) => w.kind), ["postgres"]);
        assert.ok(warehouses[0].accessPlan.logins.length > 0);
    });
});
