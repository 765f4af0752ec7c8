/**
 * @integration The drift audit on a real Postgres, run as an unprivileged read-only login: after a
 * clean apply of the dev stack (and dbt's normal run-time activity) it reports nothing; then each
 * out-of-band change is made and must be reported by name, and nothing else.
 */
import assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Client } from "pg";
import { parse } from "yaml";
import { AccessPlan, accessPlan } from "../components/access/plan";
import { auditPostgres, describeDrift, readPostgresCatalog } from "../components/access/audit";
import { applyRecorded } from "./support/apply";
import { resolve, ROOT, runProgram, toPulumiConfig } from "../scripts/offline";
import { startPostgres, TestServer } from "./support/postgres";

const DATABASE = "analytics_dev";
const AUDITOR = { user: "auditor", password: "auditor-pw" };

describe("drift audit on a real Postgres @integration", function () {
    this.timeout(180_000);
    let server: TestServer;
    let plan: AccessPlan;
    const passwords: Record<string, string> = {};

    const audit = async () => {
        const client = new Client(server.config(DATABASE, AUDITOR.user, AUDITOR.password));
        await client.connect();
        try {
            return auditPostgres(plan, await readPostgresCatalog(client), { ignoreRoles: [AUDITOR.user, server.adminUser] }).map(describeDrift);
        } finally {
            await client.end();
        }
    };
    const as = async (user: string, sql: string) => {
        const client = new Client(server.config(DATABASE, user, passwords[user]));
        await client.connect();
        try {
            await client.query(sql);
        } finally {
            await client.end();
        }
    };

    before(async () => {
        server = await startPostgres();
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.dev.yaml`, "utf8")).config;
        Object.assign(doc["dbt-platform:warehouse"].connection, { host: server.host, port: server.port, username: server.adminUser });
        const { resources, exports } = await runProgram("dev", toPulumiConfig(doc));
        await applyRecorded(server, resources);
        plan = accessPlan(resources);
        for (const out of [exports.dbtTargets, exports.developerTargets]) {
            for (const t of Object.values((await resolve(out)).value as Record<string, any>)) passwords[t.user] = t.password;
        }
        // The audit login: no superuser, no membership, CONNECT only.
        await server.admin("postgres", `CREATE ROLE ${AUDITOR.user} LOGIN NOSUPERUSER PASSWORD '${AUDITOR.password}'`);
        await server.admin("postgres", `GRANT CONNECT ON DATABASE ${DATABASE} TO ${AUDITOR.user}`);
        // dbt's normal run-time activity is not drift: production builds, a pull-request schema, a custom schema.
        await as("dbt_bitbucket", "CREATE TABLE analytics.orders AS SELECT 1 AS id; CREATE VIEW staging.stg_orders AS SELECT 1 AS id");
        await as("dev_ci", "SELECT dbt_platform.create_schema('dbt_pr_7'); CREATE TABLE dbt_pr_7.m AS SELECT id FROM analytics.orders");
        await as("anton", "SELECT dbt_platform.create_schema('dbt_anton_scratch')");
        await as("dbt_scheduler", "CREATE SCHEMA analytics_extra; CREATE TABLE analytics_extra.t AS SELECT 1 AS x");
    });

    after(async () => {
        await server?.stop();
    });

    it("reports nothing after a clean apply, then each out-of-band change by name", async () => {
        assert.deepStrictEqual(await audit(), [], "a clean apply is not drift");
        const changes: { what: string; sql: string; database?: string; expect: string[] }[] = [
            { what: "a GRANT", sql: "GRANT CREATE ON SCHEMA analytics TO role_dev", expect: ["excess privilege: CREATE on schema analytics to role_dev (live, not declared)"] },
            { what: "a new login", sql: "CREATE ROLE intruder LOGIN PASSWORD 'x'", expect: ["unknown login: intruder"] },
            { what: "a schema nobody declared", sql: "CREATE SCHEMA side_project AUTHORIZATION intruder", expect: ["unknown schema: side_project (owned by intruder)"] },
            { what: "a changed owner", sql: "ALTER SCHEMA staging OWNER TO maria", expect: ["changed ownership: schema staging (declared role_prod, live maria)"] },
            {
                what: "a dropped default privilege",
                sql: "ALTER DEFAULT PRIVILEGES FOR ROLE role_prod IN SCHEMA analytics REVOKE SELECT ON TABLES FROM role_dev",
                expect: ["missing default privilege: role_prod in schema analytics: SELECT on new tables to role_dev (declared, not live)"],
            },
            { what: "a reset masking setting", sql: "ALTER ROLE dbt_scheduler RESET role", expect: ["missing role setting: dbt_scheduler role=role_prod (declared, not live)"] },
            { what: "a member added to role_prod", sql: "GRANT role_prod TO maria", expect: ["excess membership: maria in role_prod (live, not declared)"] },
        ];
        const expected = new Set<string>();
        let detected = 0;
        const falseAlarms = new Set<string>();
        for (const c of changes) {
            await server.admin(DATABASE, c.sql);
            const reported = await audit();
            const found = c.expect.every((e) => reported.includes(e));
            if (found) detected++;
            c.expect.forEach((e) => expected.add(e));
            reported.filter((r) => !expected.has(r)).forEach((r) => falseAlarms.add(r));
            if (!found) console.log(`  not reported (${c.what}): ${c.expect.filter((e) => !reported.includes(e)).join("; ")}`);
        }
        console.log(`audit: detected ${detected}/${changes.length} drifts, ${falseAlarms.size} false alarms`);
        assert.deepStrictEqual([...falseAlarms], []);
        assert.strictEqual(detected, changes.length);

        // The CLI: same findings, JSON, exit code 1, as the read-only login from the environment.
        const run = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts/audit.ts"), "--stack", "dev", "--format", "json"], {
            cwd: ROOT,
            encoding: "utf8",
            env: { ...process.env, PGHOST: server.host, PGPORT: String(server.port), PGUSER: AUDITOR.user, PGPASSWORD: AUDITOR.password, PGSSLMODE: "disable" },
        });
        assert.strictEqual(run.status, 1, run.stderr);
        const report = JSON.parse(run.stdout);
        assert.strictEqual(report.drift, true);
        assert.deepStrictEqual(report.drifts.map(describeDrift).sort(), [...expected].sort());
    });
});
