/**
 * @integration The Redshift access matrix derived from RedshiftWarehouse's declared plan (the
 * contract's accessPlan, read from the component constructed under mocks) is the truth of a real
 * Postgres 15: the component's plan steps are applied through the `redshift:*` providers (as
 * test/redshift-access.test.ts applies them), a pull request's build schema is created by the CI
 * user as dbt would, and every cell is probed with real SQL as each user (and, for groups, as the
 * group via SET ROLE), denials being SQLSTATE 42501. The probed matrix must equal the derived one.
 */
import assert from "assert";
import * as crypto from "crypto";
import { Client, DatabaseError } from "pg";
import { AccessMatrix, accessMatrix, MatrixRow, renderMatrixMarkdown } from "../components/access/matrix";
import { PULL_REQUEST_NUMBER } from "../components/access/contract";
import { AccessPlan } from "../components/access/plan";
import { quoteIdent } from "../components/warehouse/postgres/identifiers";
import { RedshiftAdminConnection, redshiftProviderObjects, RedshiftWarehouse } from "../components/warehouse/redshift";
import { declaredRedshift, REDSHIFT_ARGS } from "./support/declaredWarehouses";
import { startPostgres, TestServer } from "./support/postgres";
import { allowed, INSUFFICIENT_PRIVILEGE, matchingCells, probeColumns } from "./support/accessProbe";

const DATABASE = REDSHIFT_ARGS.database;

/** The pull request whose build schema the CI user creates for the probe. */
const PR = "7";

const newPassword = () => `Rs${crypto.randomBytes(12).toString("hex")}9`;

describe("Redshift access matrix from the declared plan against a real Postgres 15 @integration", function () {
    this.timeout(180_000);
    let server: TestServer;
    let derived: AccessMatrix;
    let plan: AccessPlan;
    const passwords: Record<string, string> = {};
    /** The matrix's schema names as they exist on the server (the PR family gets a number). */
    const concrete = (s: string) => s.replace(PULL_REQUEST_NUMBER, PR);

    before(async () => {
        ({ plan } = await declaredRedshift());
        derived = accessMatrix(plan);
        server = await startPostgres();
        await server.admin("postgres", `CREATE DATABASE ${DATABASE}`);
        const connection: RedshiftAdminConnection = { host: server.host, port: server.port, database: DATABASE, user: server.adminUser, password: server.adminPassword, sslmode: "disable" };
        for (const step of RedshiftWarehouse.plan("rs", REDSHIFT_ARGS, (u) => (passwords[u] = newPassword())).filter((s) => !s.redshiftOnly)) {
            const provider = redshiftProviderObjects[step.kind];
            const checked = await provider.check!({}, { ...step.props, connection });
            assert.deepStrictEqual(checked.failures ?? [], [], step.key);
            await provider.create(checked.inputs);
        }
        // The CI user creates its pull-request schema at run time, as dbt does on the first build.
        const ci = plan.runtimeSchemas![0];
        const c = new Client(server.config(DATABASE, ci.owner, passwords[ci.owner]));
        await c.connect();
        await c.query(`CREATE SCHEMA ${quoteIdent(concrete(ci.name))}`);
        await c.end();
        // A relation per schema, built by the schema's owner (as dbt, logged in as that user, builds it).
        const owners = new Map([...plan.schemas, ...plan.runtimeSchemas!].map((s) => [s.name, s.owner]));
        for (const s of derived.schemas) {
            await server.admin(DATABASE, `SET ROLE ${quoteIdent(owners.get(s)!)}; CREATE TABLE ${quoteIdent(concrete(s))}.access_probe AS SELECT 1 AS x`);
        }
    });

    after(async () => {
        await server?.stop();
    });

    async function probe(row: MatrixRow): Promise<MatrixRow> {
        let client: Client;
        let connect: boolean;
        if (row.kind === "login") {
            client = new Client(server.config(DATABASE, row.name, passwords[row.name]));
            try {
                await client.connect();
                connect = true;
            } catch (err) {
                if ((err as DatabaseError).code !== INSUFFICIENT_PRIVILEGE) throw err;
                return { ...row, connect: false, sessionRole: "", createSchema: false, create: [], replaceDrop: [], read: [], own: [] };
            }
        } else {
            // A group cannot open a session: what it holds is what its members inherit.
            client = new Client(server.config(DATABASE));
            await client.connect();
            connect = (await client.query("SELECT has_database_privilege($1, $2, 'CONNECT') AS ok", [row.name, DATABASE])).rows[0].ok;
            await client.query(`SET ROLE ${quoteIdent(row.name)}`);
        }
        try {
            const per = async (sql: (s: string) => string) => {
                const out: string[] = [];
                for (const s of derived.schemas) if (await allowed(client, sql(quoteIdent(concrete(s))))) out.push(s);
                return out;
            };
            return {
                name: row.name,
                kind: row.kind,
                ...(row.duties ? { duties: row.duties } : {}),
                sessionRole: row.kind === "login" ? (await client.query("SELECT current_user AS u")).rows[0].u : "",
                connect,
                ...(await probeColumns(client, per)),
            };
        } finally {
            await client.end();
        }
    }

    it("the matrix derived from RedshiftWarehouse's declared plan equals the probed one, cell by cell", async () => {
        const probed: AccessMatrix = { ...derived, rows: [] };
        for (const row of derived.rows) probed.rows.push(await probe(row));
        const { matching, total } = matchingCells(derived, probed);
        console.log(`access matrix (redshift): ${matching}/${total} derived cells match the real Postgres`);
        // Every user, both groups, the production and developer schemas and the PR family are covered.
        assert.deepStrictEqual(derived.rows.map((r) => r.name), ["anton", "dbt_ci", "dbt_prod", "grp_dev", "grp_prod", "maria"]);
        assert.deepStrictEqual(derived.schemas, ["analytics", "analytics_staging", "anton", "anton_staging", "dbt_build_<n>", "maria", "maria_staging"]);
        assert.deepStrictEqual(probed, derived);
        console.log(renderMatrixMarkdown(derived));
    });

    it("reads the one production identity, default privileges FOR USER, the CI user's build family and private developer schemas", () => {
        const row = (n: string) => derived.rows.find((r) => r.name === n)!;
        assert.deepStrictEqual(row("dbt_prod").duties, ["deploy", "scheduler"]);
        assert.deepStrictEqual(row("dbt_prod").replaceDrop, ["analytics", "analytics_staging"]);
        assert.deepStrictEqual(row("dbt_ci").read, ["analytics", "analytics_staging", "dbt_build_<n>"]);
        assert.deepStrictEqual(row("dbt_ci").own, ["dbt_build_<n>"]);
        assert.deepStrictEqual(row("maria").own, ["maria", "maria_staging"]);
        assert.deepStrictEqual(row("grp_prod").create, [], "the group alone may not build in production: the identity is shared");
        assert.ok(plan.defaults.every((d) => d.owner === "dbt_prod" && d.grantee === "grp_dev"), "default privileges FOR USER the production identity");
    });
});
