/**
 * A local S3-compatible endpoint: the venv's moto_server on a free loopback port. `env` points
 * the venv's AWS CLI at it; the bucket helpers shell out to that same CLI so that tests see
 * exactly what a pipeline's `aws s3 ...` would.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { freePort } from "./postgres";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./python";
import { startPythonServer } from "./pythonServer";

export interface MotoServer {
    endpoint: string;
    /** AWS_ENDPOINT_URL, dummy credentials and AWS_DEFAULT_REGION for the venv's `aws`. */
    env: Record<string, string>;
    createBucket(name: string): Promise<void>;
    listKeys(bucket: string, prefix?: string): Promise<string[]>;
    /** The object's bytes, or undefined when there is no such key. */
    getObject(bucket: string, key: string): Promise<Buffer | undefined>;
    stop(): Promise<void>;
}

export const MOTO_REGION = "eu-west-1";

export async function startMoto(): Promise<MotoServer> {
    ensurePythonEnv();
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const env: Record<string, string> = {
        AWS_ENDPOINT_URL: endpoint,
        AWS_ACCESS_KEY_ID: "testing",
        AWS_SECRET_ACCESS_KEY: "testing",
        AWS_DEFAULT_REGION: MOTO_REGION,
    };
    const server = await startPythonServer("moto_server", ["-H", "127.0.0.1", "-p", String(port)], () => answers(port), 30_000);

    const aws = (args: string[]) => run(path.join(VENV_BIN, "aws"), args, pythonEnv(env));
    return {
        endpoint,
        env,
        async createBucket(name) {
            await aws(["s3api", "create-bucket", "--bucket", name, "--create-bucket-configuration", `LocationConstraint=${MOTO_REGION}`]);
        },
        async listKeys(bucket, prefix = "") {
            // list-objects-v2 pages on its own; null when the prefix is empty.
            const out = await aws(["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix, "--query", "Contents[].Key", "--output", "json"]);
            return (JSON.parse(out.toString() || "null") as string[] | null) ?? [];
        },
        async getObject(bucket, key) {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moto-get-"));
            try {
                const file = path.join(dir, "object");
                try {
                    await aws(["s3api", "get-object", "--bucket", bucket, "--key", key, file]);
                } catch (e) {
                    if (/NoSuchKey|\(404\)/.test(String((e as Error).message))) return undefined;
                    throw e;
                }
                return fs.readFileSync(file);
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        },
        stop: () => server.stop(),
    };
}

function answers(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const req = http.get({ host: "127.0.0.1", port, path: "/", timeout: 1000 }, (res) => {
            res.resume();
            resolve(true);
        });
        req.on("timeout", () => req.destroy());
        req.on("error", () => resolve(false));
    });
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        execFile(file, args, { env, encoding: "buffer", maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`${path.basename(file)} ${args.join(" ")} failed: ${stderr.toString().trim() || err.message}`));
            else resolve(stdout);
        });
    });
}
