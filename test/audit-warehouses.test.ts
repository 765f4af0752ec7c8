/**
 * The drift audit for Redshift and Snowflake, where no server is available: the audit's queries
 * (as data) against recorded catalog results in the documented column shapes. A clean catalog
 * reports nothing; each out-of-band change, made to the recorded rows as the warehouse would show
 * it, is reported by name.
 */
import assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { describeDrift } from "../components/access/audit";
import { AccessPlan } from "../components/access/plan";
import { auditRedshift, auditSnowflake, REDSHIFT_AUDIT_QUERIES, RedshiftRows, SNOWFLAKE_AUDIT_QUERIES, SnowflakeRows } from "../components/access/warehouses";

const FIXTURES = path.join(__dirname, "fixtures", "audit");
const load = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), "utf8"));

interface Change<R> {
    what: string;
    apply: (rows: R) => void;
    expect: string[];
}

function prove<R>(label: string, plan: AccessPlan, clean: R, audit: (plan: AccessPlan, rows: R) => string[], changes: Change<R>[]): void {
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
    console.log(`audit (${label}, recorded catalog): detected ${detected}/${changes.length} drifts, ${falseAlarms.size} false alarms`);
    assert.deepStrictEqual([...falseAlarms], []);
    assert.strictEqual(detected, changes.length);
}

describe("drift audit for Redshift and Snowflake (recorded catalogs)", () => {
    it("writes every query against the documented catalog views and commands", () => {
        for (const sql of Object.values(REDSHIFT_AUDIT_QUERIES)) assert.match(sql, /^SELECT /);
        assert.match(Object.values(REDSHIFT_AUDIT_QUERIES).join("\n"), /svv_user_grants[\s\S]*svv_relation_privileges[\s\S]*svv_default_privileges/);
        assert.ok(!Object.values(REDSHIFT_AUDIT_QUERIES).join("\n").includes("pg_authid"), "superuser-only catalogs are not used");
        assert.deepStrictEqual(
            Object.values(SNOWFLAKE_AUDIT_QUERIES).map((q) => q.sql.split(" ").slice(0, 3).join(" ")),
            ["SHOW USERS", "SHOW ROLES", "SHOW SCHEMAS IN", "SHOW GRANTS TO", "SHOW GRANTS TO", "SHOW FUTURE GRANTS", "SHOW FUTURE GRANTS"],
        );
    });

    it("Redshift: a clean catalog reports nothing; each out-of-band change is reported by name", () => {
        const audit = (plan: AccessPlan, rows: RedshiftRows) => auditRedshift(plan, rows, { ignoreRoles: ["rdsdb"] }).map(describeDrift);
        prove<RedshiftRows>("redshift", load("redshift-plan.json"), load("redshift-catalog.json"), audit, [
            {
                what: "a GRANT",
                apply: (r) => r.schemaPrivileges.push({ namespace_name: "analytics", privilege_type: "CREATE", identity_name: "role_dev", identity_type: "role" }),
                expect: ["excess privilege: CREATE on schema analytics to role_dev (live, not declared)"],
            },
            { what: "a new login", apply: (r) => r.users.push({ user_name: "intruder" }), expect: ["unknown login: intruder"] },
            { what: "a changed owner", apply: (r) => (r.schemas.find((s) => s.schema_name === "dbt_ci")!.owner = "dbt_deploy"), expect: ["changed ownership: schema dbt_ci (declared dev_ci, live dbt_deploy)"] },
            { what: "a dropped default privilege", apply: (r) => r.defaultPrivileges.splice(0, 1), expect: ["missing default privilege: dbt_deploy in schema analytics: SELECT on new tables to role_dev (declared, not live)"] },
            { what: "a reset setting", apply: (r) => r.settings.splice(0, 1), expect: ["missing role setting: dev_ci search_path=dbt_ci (declared, not live)"] },
            { what: "a member added to role_prod", apply: (r) => r.userGrants.push({ user_name: "dev_ci", role_name: "role_prod" }), expect: ["excess membership: dev_ci in role_prod (live, not declared)"] },
        ]);
    });

    it("Snowflake: a clean catalog reports nothing; each out-of-band change is reported by name", () => {
        const audit = (plan: AccessPlan, rows: SnowflakeRows) => auditSnowflake(plan, rows, { ignoreRoles: ["auditor", "audit_reader"] }).map(describeDrift);
        prove<SnowflakeRows>("snowflake", load("snowflake-plan.json"), load("snowflake-catalog.json"), audit, [
            {
                what: "a GRANT",
                apply: (r) => r.grantsToRole.push({ privilege: "CREATE TABLE", granted_on: "SCHEMA", name: "ANALYTICS.ANALYTICS", granted_to: "ROLE", grantee_name: "ROLE_DEV" }),
                expect: ["excess privilege: CREATE TABLE on schema ANALYTICS to ROLE_DEV (live, not declared)"],
            },
            { what: "a new login", apply: (r) => r.users.push({ name: "INTRUDER", default_role: null }), expect: ["unknown login: INTRUDER"] },
            { what: "a changed owner", apply: (r) => (r.schemas.find((s) => s.name === "DBT_CI")!.owner = "ROLE_PROD"), expect: ["changed ownership: schema DBT_CI (declared ROLE_DEV, live ROLE_PROD)"] },
            { what: "a dropped future grant", apply: (r) => r.futureGrantsInSchema.splice(0, 1), expect: ["missing default privilege: any owner in schema ANALYTICS: SELECT on new tables to ROLE_DEV (declared, not live)"] },
            { what: "a reset default role", apply: (r) => (r.users.find((u) => u.name === "DBT_DEPLOY")!.default_role = ""), expect: ["missing role setting: DBT_DEPLOY default_role=ROLE_PROD (declared, not live)"] },
            { what: "a member added to role_prod", apply: (r) => r.grantsToUser.push({ role: "ROLE_PROD", granted_to: "USER", grantee_name: "DEV_CI" }), expect: ["excess membership: DEV_CI in ROLE_PROD (live, not declared)"] },
        ]);
    });
});
