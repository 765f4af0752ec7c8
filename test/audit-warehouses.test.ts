/**
 * The drift audit for Redshift and Snowflake, where no server is available: the plan is the one
 * the warehouse component declares (its contract accessPlan, the component constructed under
 * mocks), the catalog is the audit's queries' recorded results in the documented column shapes.
 * A clean catalog reports nothing; each out-of-band change, made to the recorded rows as the
 * warehouse would show it, is reported by name.
 */
import assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { describeDrift } from "../components/access/audit";
import { DeclaredWarehouse } from "../components/access/contract";
import { auditRedshiftDeclared, auditSnowflakeDeclared, REDSHIFT_AUDIT_QUERIES, RedshiftRows, SNOWFLAKE_AUDIT_QUERIES, SnowflakeRows } from "../components/access/warehouses";
import { declaredRedshift, declaredSnowflake } from "./support/declaredWarehouses";

const FIXTURES = path.join(__dirname, "fixtures", "audit");
const load = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), "utf8"));

interface Change<R> {
    what: string;
    apply: (rows: R) => void;
    expect: string[];
}

function prove<R>(label: string, plan: DeclaredWarehouse, clean: R, audit: (plan: DeclaredWarehouse, rows: R) => string[], changes: Change<R>[]): void {
    assert.deepStrictEqual(audit(plan, clean), [], `${label}: a clean catalog is not drift`);
    const rows = structuredClone(clean);
    const expected = new Set<string>();
    const falseAlarms = new Set<string>();
    let detected = 0;
    for (const c of changes) {
        c.apply(rows);
        const reported = audit(plan, rows);
        if (c.expect.every((e) => reported.includes(e))) detected++;
        else console.log(`  ${label} did not report (${c.what}): ${c.expect.filter((e) => !reported.includes(e)).join("; ")}`);
        c.expect.forEach((e) => expected.add(e));
        reported.filter((r) => !expected.has(r)).forEach((r) => falseAlarms.add(r));
    }
    console.log(`audit (${label}): detected ${detected}/${changes.length} drifts, ${falseAlarms.size} false alarms`);
    assert.deepStrictEqual([...falseAlarms], []);
    assert.strictEqual(detected, changes.length);
}

describe("drift audit for Redshift and Snowflake (recorded catalogs)", () => {
    it("writes every query against the documented catalog views and commands", () => {
        for (const sql of Object.values(REDSHIFT_AUDIT_QUERIES)) assert.match(sql, /^SELECT /);
        assert.match(Object.values(REDSHIFT_AUDIT_QUERIES).join("\n"), /pg_group[\s\S]*svv_user_grants[\s\S]*svv_relation_privileges[\s\S]*svv_default_privileges/);
        assert.ok(!Object.values(REDSHIFT_AUDIT_QUERIES).join("\n").includes("pg_authid"), "superuser-only catalogs are not used");
        assert.deepStrictEqual(
            Object.values(SNOWFLAKE_AUDIT_QUERIES).map((q) => q.sql.split(" ").slice(0, 3).join(" ")),
            ["SHOW USERS", "SHOW ROLES", "SHOW DATABASE ROLES", "SHOW SCHEMAS IN", "SHOW TABLES IN", "SHOW VIEWS IN", "SHOW GRANTS OF", "SHOW GRANTS TO", "SHOW GRANTS TO", "SHOW FUTURE GRANTS", "SHOW FUTURE GRANTS"],
        );
    });

    it("Redshift: the plan RedshiftWarehouse declares; a clean catalog reports nothing; each out-of-band change is reported by name", async () => {
        const { wh } = await declaredRedshift();
        const audit = (w: DeclaredWarehouse, rows: RedshiftRows) => auditRedshiftDeclared(w, rows, { ignoreRoles: ["rdsdb"] }).map(describeDrift);
        prove<RedshiftRows>("redshift", wh, load("redshift-catalog.json"), audit, [
            {
                what: "a GRANT",
                apply: (r) => r.schemaPrivileges.push({ namespace_name: "analytics", privilege_type: "CREATE", identity_name: "grp_dev", identity_type: "group" }),
                expect: ["excess privilege: CREATE on schema analytics to grp_dev (live, not declared)"],
            },
            { what: "a new login", apply: (r) => r.users.push({ user_name: "intruder" }), expect: ["unknown login: intruder"] },
            { what: "a changed owner", apply: (r) => (r.schemas.find((s) => s.schema_name === "analytics_staging")!.owner = "dbt_ci"), expect: ["changed ownership: schema analytics_staging (declared dbt_prod, live dbt_ci)"] },
            {
                what: "a dropped default privilege",
                apply: (r) => r.defaultPrivileges.splice(r.defaultPrivileges.findIndex((d) => d.schema_name === "analytics"), 1),
                expect: ["missing default privilege: dbt_prod in schema analytics: SELECT on new tables to grp_dev (declared, not live)"],
            },
            // Redshift has no role masking (no SET ROLE): a user setting made out of band is what can change a session.
            { what: "a user setting made out of band", apply: (r) => r.settings.push({ usename: "dbt_prod", useconfig: "search_path=public" }), expect: ["excess role setting: dbt_prod search_path=public (live, not declared)"] },
            { what: "a member added to the production group", apply: (r) => r.groups.push({ groname: "grp_prod", usename: "dbt_ci" }), expect: ["excess membership: dbt_ci in grp_prod (live, not declared)"] },
        ]);
    });

    it("Snowflake: the plan SnowflakeWarehouse declares; a clean catalog reports nothing; each out-of-band change is reported by name", async () => {
        const wh = await declaredSnowflake();
        const audit = (w: DeclaredWarehouse, rows: SnowflakeRows) => auditSnowflakeDeclared(w, rows, { ignoreRoles: ["AUDITOR", "AUDIT_READER", "PULUMI_ADMIN"] }).map(describeDrift);
        prove<SnowflakeRows>("snowflake", wh, load("snowflake-catalog.json"), audit, [
            {
                what: "a GRANT",
                apply: (r) => r.grantsToRole.push({ privilege: "CREATE TABLE", granted_on: "SCHEMA", name: "ANALYTICS.MARTS", granted_to: "ROLE", grantee_name: "TRANSFORMER_CI" }),
                expect: ["excess privilege: CREATE TABLE on schema ANALYTICS.MARTS to TRANSFORMER_CI (live, not declared)"],
            },
            { what: "a new login", apply: (r) => r.users.push({ name: "INTRUDER", default_role: null }), expect: ["unknown login: INTRUDER"] },
            {
                what: "a changed owner",
                apply: (r) => (r.tables.find((t) => t.database_name === "ANALYTICS" && t.name === "ORDERS")!.owner = "SYSADMIN"),
                expect: ["changed ownership: table ANALYTICS.MARTS.ORDERS (declared TRANSFORMER, live SYSADMIN)"],
            },
            {
                what: "a dropped future grant",
                apply: (r) => r.futureGrantsInDatabase.splice(r.futureGrantsInDatabase.findIndex((g) => g.name === "ANALYTICS.<TABLE>" && g.privilege === "SELECT"), 1),
                expect: ["missing default privilege: ANALYTICS.ANALYTICS_READ: SELECT on new tables in database ANALYTICS (declared, not live)"],
            },
            { what: "a reset default role", apply: (r) => (r.users.find((u) => u.name === "SVC_DBT_DEPLOY")!.default_role = ""), expect: ["missing role setting: SVC_DBT_DEPLOY default_role=TRANSFORMER (declared, not live)"] },
            { what: "a member added to TRANSFORMER", apply: (r) => r.grantsOfRole.push({ role: "TRANSFORMER", granted_to: "USER", grantee_name: "SVC_DBT_CI" }), expect: ["excess membership: SVC_DBT_CI in TRANSFORMER (live, not declared)"] },
            {
                what: "a schema-level future grant (it would override the database-level ones)",
                apply: (r) => r.futureGrantsInSchema.push({ privilege: "SELECT", grant_on: "TABLE", name: "ANALYTICS.MARTS.<TABLE>", grant_to: "ROLE", grantee_name: "REPORTER" }),
                expect: ["excess default privilege: REPORTER: SELECT on new tables in schema ANALYTICS.MARTS (live, not declared)"],
            },
        ]);
    });
});
