/**
 * @integration The access matrix `npm run access` derives from the declared plan is the truth
 * of a real Postgres: the dev stack's declared resources are applied to an embedded Postgres,
 * then every cell is probed with real SQL as each login (and, for group roles, as the role via
 * SET ROLE), denials being SQLSTATE 42501, and the probed matrix must equal the derived one.
 */
import assert from "assert";
import { Client, DatabaseError } from "pg";
import { accessPlan } from "../components/access/plan";
import { AccessMatrix, accessMatrix, MatrixRow } from "../components/access/matrix";
import { quoteIdent } from "../components/warehouse/postgres/identifiers";
import { applyRecorded } from "./support/apply";
import { resolve, runProgram, toPulumiConfig } from "../scripts/offline";
import { startPostgres, TestServer } from "./support/postgres";
import { allowed, INSUFFICIENT_PRIVILEGE, matchingCells, probeColumns } from "./support/accessProbe";
import { stackOnServers } from "./support/stackOnServers";

const DATABASE = "access_matrix";

function devConfig(server: TestServer) {
    const doc = stackOnServers("dev", server, { database: DATABASE });
    return toPulumiConfig(doc);
}

describe("access matrix against a real Postgres @integration", function () {
    this.timeout(180_000);
    let server: TestServer;
    let derived: AccessMatrix;
    const passwords: Record<string, string> = {};

    before(async () => {
        server = await startPostgres();
        const { resources, exports } = await runProgram("dev", devConfig(server));
        await applyRecorded(server, resources);
        derived = accessMatrix(accessPlan(resources));
        for (const out of [exports.dbtTargets, exports.developerTargets]) {
            for (const t of Object.values((await resolve(out)).value as Record<string, any>)) passwords[t.user] = t.password;
        }
        // A relation per schema, built by the schema's owner as dbt (masked) would build it.
        const plan = accessPlan(resources);
        for (const s of derived.schemas) {
            const owner = plan.schemas.find((x) => x.name === s)?.owner;
            const as = owner ? `SET ROLE ${quoteIdent(owner)}; ` : "";
            await server.admin(DATABASE, `${as}CREATE TABLE ${quoteIdent(s)}.access_probe AS SELECT 1 AS x`);
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
            // A NOLOGIN role cannot open a session: CONNECT is what its members inherit.
            client = new Client(server.config(DATABASE));
            await client.connect();
            connect = (await client.query("SELECT has_database_privilege($1, $2, 'CONNECT') AS ok", [row.name, DATABASE])).rows[0].ok;
            await client.query(`SET ROLE ${quoteIdent(row.name)}`);
        }
        try {
            const sessionRole = row.kind === "login" ? (await client.query("SELECT current_user AS u")).rows[0].u : "";
            const per = async (sql: (s: string) => string) => {
                const out: string[] = [];
                for (const s of derived.schemas) if (await allowed(client, sql(quoteIdent(s)))) out.push(s);
                return out;
            };
            return {
                name: row.name,
                kind: row.kind,
                sessionRole,
                connect,
                ...(await probeColumns(client, per)),
            };
        } finally {
            await client.end();
        }
    }

    it("the matrix derived from the declared plan equals the probed one, cell by cell", async () => {
        const probed: AccessMatrix = { ...derived, rows: [] };
        for (const row of derived.rows) probed.rows.push(await probe(row));
        const { matching, total } = matchingCells(derived, probed);
        console.log(`access matrix: ${matching}/${total} derived cells match the real Postgres`);
        assert.ok(derived.rows.length >= 7 && derived.schemas.length >= 5, "the dev stack's matrix covers every login, role and schema");
        assert.deepStrictEqual(probed, derived);
    });
});
