/**
 * A shipped stack's config pointed at the test servers: the warehouse connection at a test
 * Postgres (the database created by the program), the artifacts bucket at a moto bucket, and the
 * features a test wants. Scheduled runs off drops their section (config refuses a section for a
 * feature that is off).
 */
import * as fs from "fs";
import { parse } from "yaml";
import { ROOT } from "../../scripts/offline";
import type { TestServer } from "./postgres";

/** What a test sets on the stack. */
export interface StackOnServers {
    database: string;
    /** The moto bucket; leaves aws as the stack has it when absent. */
    bucket?: string;
    features?: { docsSite: boolean; scheduledRuns: boolean; projectEvaluator: boolean };
}

/** The `config:` document of Pulumi.<stack>.yaml, rewired to the test servers. */
export function stackOnServers(stack: string, server: TestServer, o: StackOnServers): Record<string, any> {
    const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.${stack}.yaml`, "utf8")).config;
    const wh = doc["dbt-platform:warehouse"];
    wh.connection = { host: server.host, port: server.port, database: o.database, username: server.adminUser, sslmode: "disable" };
    wh.createDatabase = true;
    if (o.bucket) doc["dbt-platform:aws"].artifacts.bucketName = o.bucket;
    if (o.features) {
        doc["dbt-platform:features"] = o.features;
        if (!o.features.scheduledRuns) delete doc["dbt-platform:scheduledRuns"];
    }
    return doc;
}
