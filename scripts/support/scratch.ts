/**
 * A benchmark's throwaway resources: a temp directory and the servers it starts, removed when the
 * body ends, fails, or the process gets SIGINT/SIGTERM (an interrupted benchmark must not leave a
 * Postgres, a moto_server or gigabytes of temp behind).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** Something the scratch stops on the way out. */
export interface Stoppable {
    stop(): Promise<void>;
}

/** Runs `body` with a fresh temp directory; `track` registers servers to stop with it. */
export async function withScratch<T>(prefix: string, body: (tmp: string, track: <S extends Stoppable>(server: S) => S) => Promise<T>): Promise<T> {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const servers: Stoppable[] = [];
    let cleaned: Promise<void> | undefined;
    const cleanup = () =>
        (cleaned ??= (async () => {
            await Promise.all(servers.map((s) => s.stop().catch(() => {})));
            fs.rmSync(tmp, { recursive: true, force: true });
        })());
    const onSignal = (signal: NodeJS.Signals) => {
        console.error(`\n${signal}: cleaning up`);
        void cleanup().finally(() => process.exit(130));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
        return await body(tmp, (server) => (servers.push(server), server));
    } finally {
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
        await cleanup();
    }
}
