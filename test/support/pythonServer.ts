/**
 * A venv server (moto_server, fakesnow) as a test dependency: its own process group, so stopping
 * it also takes down what it forks (uvicorn's workers); killed on process exit if nobody called
 * stop(); started only once `ready` says it serves, else killed and the error carries its output.
 */
import { ChildProcess, spawn } from "child_process";
import * as path from "path";
import { pythonEnv, VENV_BIN } from "./python";

/** A started server: stop() is SIGTERM, then SIGKILL after 5 s. */
export interface PythonServerProcess {
    stop(): Promise<void>;
}

/** Spawns `.venv/bin/<command>` and polls `ready` every 200 ms until it says yes, up to `timeoutMs`. */
export async function startPythonServer(command: string, args: string[], ready: (output: string) => Promise<boolean>, timeoutMs: number): Promise<PythonServerProcess> {
    const child = spawn(path.join(VENV_BIN, command), args, { env: pythonEnv(), detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (b: Buffer) => (output = (output + b.toString()).slice(-8000));
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const onExit = () => killGroup(child, "SIGKILL");
    process.once("exit", onExit);
    try {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${command} exited (${child.exitCode ?? child.signalCode}) before it served:\n${output}`);
            if (await ready(output)) break;
            if (Date.now() >= deadline) throw new Error(`${command} did not serve ${args.join(" ")} within ${timeoutMs / 1000} s:\n${output}`);
            await new Promise((r) => setTimeout(r, 200));
        }
    } catch (e) {
        killGroup(child, "SIGKILL");
        process.removeListener("exit", onExit);
        throw e;
    }
    return {
        async stop() {
            process.removeListener("exit", onExit);
            if (child.exitCode !== null || child.signalCode !== null) return;
            killGroup(child, "SIGTERM");
            const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
            await exited;
            clearTimeout(timer);
        },
    };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid === undefined) return;
    try {
        process.kill(-child.pid, signal);
    } catch {
        // Already gone.
    }
}
