/**
 * @integration `sslmode: verify-full` with the CA given by `warehouse.connection.sslrootcert` (issue 10
 * #5), with real dbt against a real Postgres that serves TLS with a certificate from a private CA:
 * the rendered profiles.yml carries the path (or `system`), and dbt connects; without it dbt fails the
 * way a stock runner does (no ~/.postgresql/root.crt).
 */
import assert from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./support/python";
import { startPostgres, TestServer } from "./support/postgres";
import { resolve, ROOT, runProgram, toPulumiConfig } from "../scripts/offline";
import { applyRecorded } from "./support/apply";

function openssl(args: string[], cwd: string): void {
    execFileSync("openssl", args, { cwd, stdio: "pipe" });
}

/** A private CA and a server certificate for 127.0.0.1 signed by it. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=dbt-platform test CA"], dir);
    openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], dir);
    fs.writeFileSync(path.join(dir, "san.ext"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n");
    openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext"], dir);
    return { ca: path.join(dir, "ca.pem"), cert: path.join(dir, "server.crt"), key: path.join(dir, "server.key") };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; output: string }> {
    return new Promise((done, fail) => {
        const child = spawn(cmd, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", fail);
        child.on("close", (code) => done({ code, output }));
    });
}

describe("sslrootcert with verify-full, real dbt over TLS @integration", function () {
    this.timeout(180_000);
    let server: TestServer;
    let tmp: string;
    let certs: { ca: string; cert: string; key: string };

    before(async () => {
        ensurePythonEnv();
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-tls-"));
        certs = makeCertificates(tmp);
        server = await startPostgres({ tls: { certFile: certs.cert, keyFile: certs.key } });
        fs.cpSync(path.join(__dirname, "fixtures", "cancel-project"), path.join(tmp, "project"), { recursive: true });
        fs.mkdirSync(path.join(tmp, "home"));
    });

    after(async () => {
        await server?.stop();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    /** Deploys the dev stack with verify-full (and `sslrootcert` when given); runs `dbt debug` as the deploy bot. */
    async function dbtDebug(database: string, sslrootcert: string | undefined, extraEnv: Record<string, string> = {}) {
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.dev.yaml`, "utf8")).config;
        const conn: Record<string, unknown> = { host: "127.0.0.1", port: server.port, database, username: server.adminUser, sslmode: "verify-full" };
        if (sslrootcert) conn.sslrootcert = sslrootcert;
        doc["dbt-platform:warehouse"].connection = conn;
        // Role names are cluster-wide: one deployment per database, each with its own names.
        const suffix = database.replace(/^tls_/, "");
        const wh = doc["dbt-platform:warehouse"];
        wh.roles = { dev: `role_dev_${suffix}`, prod: `role_prod_${suffix}` };
        wh.users = [{ name: `deploy_${suffix}`, role: `role_prod_${suffix}`, duty: "deploy" }];
        wh.developers = [];
        const { resources, exports } = await runProgram("dev", toPulumiConfig(doc));
        await applyRecorded(server, resources);
        const profiles = (await resolve(exports.profilesYaml)).value as string;
        const dir = path.join(tmp, database);
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, "profiles.yml"), profiles);
        const env = pythonEnv({ ...((await resolve(exports.profileEnvironment)).value as Record<string, string>), DBT_PROFILES_DIR: dir, HOME: path.join(tmp, "home"), ...extraEnv });
        const r = await run(path.join(VENV_BIN, "dbt"), ["debug", "--target", "prod"], env, path.join(tmp, "project"));
        return { ...r, profile: parse(profiles).acme_analytics.outputs.prod };
    }

    it("connects with the CA bundle from config, and fails as a stock runner does without it", async () => {
        const withCa = await dbtDebug("tls_path", certs.ca);
        assert.strictEqual(withCa.profile.sslmode, "verify-full");
        assert.strictEqual(withCa.profile.sslrootcert, certs.ca);
        assert.strictEqual(withCa.code, 0, withCa.output);
        assert.match(withCa.output, /Connection test: \[.*OK/, withCa.output);

        const without = await dbtDebug("tls_none", undefined);
        assert.ok(!("sslrootcert" in without.profile));
        assert.notStrictEqual(without.code, 0, without.output);
        assert.match(without.output, /root certificate file .*root\.crt.* does not exist/, without.output);
    });

    it("passes sslrootcert: system through to libpq (the OS trust store, here pointed at the CA by SSL_CERT_FILE)", async () => {
        const trusted = await dbtDebug("tls_system", "system", { SSL_CERT_FILE: certs.ca });
        assert.strictEqual(trusted.profile.sslrootcert, "system");
        assert.strictEqual(trusted.code, 0, trusted.output);
        // With the OS store not trusting the private CA, verification itself fails (not a missing file).
        const untrusted = await dbtDebug("tls_system_untrusted", "system", { SSL_CERT_FILE: path.join(tmp, "nothing.pem") });
        assert.notStrictEqual(untrusted.code, 0, untrusted.output);
        assert.doesNotMatch(untrusted.output, /root\.crt.* does not exist/, untrusted.output);
        assert.match(untrusted.output, /certificate verify failed|SSL error/i, untrusted.output);
    });
});
