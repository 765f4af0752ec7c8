/**
 * A Pulumi program for test/class-fields.test.ts, run by pulumiHost.js, i.e. compiled by run.js's ts-node with the
 * project's tsconfig (ES2022: class fields have define semantics). It constructs every component and dynamic
 * resource class the library exports — three DbtPlatforms (one per CI system, AWS and the docs site on, CI settings
 * managed) reach all of them — and checks each declared `Output` field on the constructed objects: an Output that
 * resolves to the value (for a dynamic resource, the value its provider returned; for a component, a defined one).
 * A `public readonly x!: pulumi.Output<T>` on a dynamic resource is reset to undefined after the base constructor
 * assigned it; `declare public readonly x: …` is not.
 */
import * as fs from "fs";
import * as path from "path";
import { isDeepStrictEqual } from "util";
import * as pulumi from "@pulumi/pulumi";
import * as ts from "typescript";
import * as library from "../../components";
import { parseStackConfig } from "../../components/config";
import { ROOT, stackConfig } from "../../scripts/offline";
import { withCiSystem } from "../../scripts/render";

interface DeclaredClass {
    file: string;
    base: string;
    fields: { name: string; declare: boolean; optional: boolean }[];
}

/** Classes of components/ extending a Pulumi resource (directly or through an abstract base of ours), with their public Output-typed property declarations. */
function declaredClasses(): Map<string, DeclaredClass> {
    const out = new Map<string, DeclaredClass>();
    // Abstract bases (e.g. RedshiftResource) are never constructed; their subclasses are resources.
    const abstractBases = new Set<string>();
    const walk = (dir: string): string[] =>
        fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
    for (const file of walk(path.join(ROOT, "components"))) {
        const sf = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
        const visit = (node: ts.Node) => {
            if (ts.isClassDeclaration(node) && node.name) {
                const base = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression.getText(sf) ?? "";
                const isAbstract = (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.AbstractKeyword);
                if (isAbstract && /(ComponentResource|CustomResource|dynamic\.Resource)$/.test(base)) abstractBases.add(node.name.text);
                else if (/(ComponentResource|CustomResource|dynamic\.Resource)$/.test(base) || abstractBases.has(base)) {
                    const fields = node.members.filter(ts.isPropertyDeclaration).flatMap((m) => {
                        const mods = ts.getModifiers(m) ?? [];
                        const has = (k: ts.SyntaxKind) => mods.some((x) => x.kind === k);
                        if (has(ts.SyntaxKind.StaticKeyword) || has(ts.SyntaxKind.PrivateKeyword) || has(ts.SyntaxKind.ProtectedKeyword)) return [];
                        // The field itself is an Output (not a record or object of Outputs).
                        if (!m.type || !ts.isTypeReferenceNode(m.type) || !/^(pulumi\.)?Output$/.test(m.type.typeName.getText(sf))) return [];
                        return [{ name: m.name.getText(sf), declare: has(ts.SyntaxKind.DeclareKeyword), optional: !!m.questionToken }];
                    });
                    if (out.has(node.name.text)) throw new Error(`two resource classes named ${node.name.text}`);
                    out.set(node.name.text, { file: path.relative(ROOT, file), base, fields });
                }
            }
            ts.forEachChild(node, visit);
        };
        visit(sf);
    }
    return out;
}

/** Every Resource class the library's root exports, its CI namespaces included. */
function exportedClasses(): Map<string, Function> {
    const out = new Map<string, Function>();
    const scan = (mod: Record<string, unknown>, depth: number) => {
        for (const v of Object.values(mod)) {
            if (typeof v === "function" && v.prototype instanceof pulumi.Resource) out.set(v.name, v);
            else if (depth === 0 && v && typeof v === "object") scan(v as Record<string, unknown>, 1);
        }
    };
    scan(library as unknown as Record<string, unknown>, 0);
    return out;
}

/** A provider's secret output arrives as the SDK's signed wrapper; the resource exposes the plain value, marked secret. */
const SECRET_SIG = { key: "4dabf18193072939515e22adb298388d", value: "1b47061264138c4ac30d75fd1eb44270" };
function unwrapSecret(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(unwrapSecret);
    if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (o[SECRET_SIG.key] === SECRET_SIG.value) return unwrapSecret(o.value);
        return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecret(x)]));
    }
    return v;
}

export = async () => {
    const declared = declaredClasses();
    const classes = exportedClasses();
    const dynamicFields = new Set([...declared.values()].filter((c) => c.base !== "pulumi.ComponentResource").flatMap((c) => c.fields.map((f) => f.name)));

    // The mocks' provider answers every declared output a dynamic resource's inputs do not already give; record what it returned.
    const mocks = (pulumi.runtime.getMonitor() as any).mocks;
    const inner = mocks.newResource.bind(mocks);
    const returned = new Map<string, Record<string, unknown>>();
    mocks.newResource = async (args: pulumi.runtime.MockResourceArgs) => {
        const r = await inner(args);
        if (args.custom && args.type.startsWith("pulumi-nodejs:dynamic")) {
            r.state = { ...r.state };
            for (const f of dynamicFields) if (r.state[f] === undefined) r.state[f] = `${args.name}:${f}`;
        }
        returned.set(`${args.type}::${args.name}`, r.state);
        return r;
    };

    // Every constructed resource object, as the SDK registers it.
    const runtimeResource = require("@pulumi/pulumi/runtime/resource") as { registerResource: (res: pulumi.Resource, ...rest: unknown[]) => void };
    const register = runtimeResource.registerResource;
    const constructed: pulumi.Resource[] = [];
    runtimeResource.registerResource = (res, ...rest) => {
        constructed.push(res);
        return register(res, ...rest);
    };

    const systems: [string, Record<string, unknown>][] = [
        ["bitbucket", { manageSettings: true }],
        ["github", { manageSettings: true }],
        ["azure-devops", { manageSettings: true, azureRepositoryId: "5b1c2d3e-4f50-4a6b-9c7d-8e9fa0b1c2d3", approvers: ["0f1e2d3c-4b5a-4697-8877-665544332211"] }],
    ];
    for (const [system, ci] of systems) {
        const raw = withCiSystem(stackConfig("prod"), system as "bitbucket").config;
        raw["dbt-platform:ci"] = JSON.stringify({ ...JSON.parse(raw["dbt-platform:ci"]), ...ci });
        new library.DbtPlatform(`fields-${system}`, { config: parseStackConfig("prod", raw), warehouseAdminPassword: pulumi.secret("admin-password") });
    }
    // Not reachable through DbtPlatform until the platform is wired to the warehouse contract.
    new library.SnowflakeWarehouse("fields-snowflake", {
        account: "ACME-ANALYTICS",
        admin: { user: "PULUMI_ADMIN" },
        users: [{ name: "SVC_DBT_CI", duty: "ci" }, { name: "SVC_DBT_DEPLOY", duty: "deploy", secondKey: true }],
        networkPolicy: { allowedIpList: ["192.0.2.0/24"] },
        profile: "acme_analytics",
    });
    // Redshift: a Serverless namespace + workgroup feeding a warehouse (IAM), and a provisioned-cluster warehouse with
    // RBAC, so every redshift:* dynamic resource class is constructed at least once.
    const serverless = new library.RedshiftServerless("fields-redshift-sls", { namespaceName: "dbt-fields", workgroupName: "dbt-fields-wg", subnetIds: ["subnet-1"], securityGroupIds: ["sg-1"] });
    new library.RedshiftWarehouse("fields-redshift-sls-wh", {
        database: serverless.dbName,
        connection: serverless.adminConnection,
        auth: serverless.iamAuth("eu-west-1"),
        // The mocks give the workgroup no endpoint; dbt's host is stated instead.
        dbtHost: "dbt-fields-wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com",
        productionSchemas: ["dbt"],
        profile: "redshift_fields",
    });
    new library.RedshiftWarehouse("fields-redshift", {
        connection: { host: "dbt.abc123.eu-west-1.redshift.amazonaws.com", port: 5439, user: "admin", password: pulumi.secret("admin-password") },
        database: "dev",
        productionSchemas: ["dbt", "dbt_staging"],
        customSchemas: ["staging"],
        developers: [{ name: "anton" }],
        rbac: true,
        profile: "redshift_fields",
    });
    // Scheduled runs (not wired into DbtPlatform yet): one instance with every optional part.
    new library.ScheduledRuns("fields-scheduled", {
        region: "eu-west-1",
        artifactsBucketName: "fields-artifacts",
        artifactsBucketArn: "arn:aws:s3:::fields-artifacts",
        projectCommit: "0123456789abcdef0123456789abcdef01234567",
        image: { pythonVersion: "3.11", dbtVersion: "1.11.16", adapterPackage: "dbt-postgres", adapterVersion: "1.11.0", awscliVersion: "1.46.2" },
        imageTag: "1.11.16-0123456",
        credentialSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dbt/prod/scheduler-AbCdEf",
        credentialEnv: { DBT_SCHEDULER_USER: "user", DBT_SCHEDULER_PASSWORD: "password" },
        dbtTarget: "scheduler",
        schedules: [{ name: "nightly", expression: "cron(0 3 * * ? *)" }],
        network: { subnetIds: ["subnet-0a1b2c3d"], securityGroupIds: ["sg-0123abcd"] },
        runIntervalMinutes: 1440,
        subscriptions: [{ protocol: "email", endpoint: "data-alerts@acme.example" }],
        freshOnly: { fullBuildEvery: 24 },
    });
    runtimeResource.registerResource = register;

    const ofUrn = (urn: string) => {
        const parts = urn.split("::");
        return `${parts[2].split("$").pop()}::${parts.slice(3).join("::")}`;
    };
    const report: Record<string, { file: string; kind: string; instances: number; fields: string[]; declared: string[]; failures: string[] }> = {};
    for (const [name, c] of declared) {
        report[name] = {
            file: c.file,
            kind: c.base === "pulumi.ComponentResource" ? "component" : "dynamic",
            instances: 0,
            fields: c.fields.map((f) => f.name),
            declared: c.fields.filter((f) => f.declare).map((f) => f.name),
            failures: classes.has(name) ? [] : ["not exported by the library"],
        };
    }
    for (const name of classes.keys()) if (!report[name]) report[name] = { file: "?", kind: "?", instances: 0, fields: [], declared: [], failures: ["exported but not declared in components/"] };

    for (const res of constructed) {
        const name = res.constructor.name;
        const entry = report[name];
        if (!entry || classes.get(name) !== res.constructor) continue;
        entry.instances++;
        const key = ofUrn(await (res.urn as any).promise());
        for (const field of entry.fields) {
            const v = (res as unknown as Record<string, unknown>)[field];
            // An optional field (`x?: Output<T>`) may be absent (e.g. DocsSite's basic-auth password outside basic-auth).
            if (v === undefined && declared.get(name)!.fields.find((f) => f.name === field)!.optional) continue;
            if (!pulumi.Output.isInstance(v)) {
                entry.failures.push(`${key}: ${field} is ${v === undefined ? "undefined" : typeof v}, not an Output`);
                continue;
            }
            const value = await (v as any).promise();
            if (entry.kind === "dynamic") {
                const raw = returned.get(key)?.[field];
                const expected = unwrapSecret(raw);
                if (!isDeepStrictEqual(value, expected)) entry.failures.push(`${key}: ${field} resolved to ${JSON.stringify(value)}, the provider returned ${JSON.stringify(expected)}`);
                else if (JSON.stringify(raw).includes(SECRET_SIG.value) && !(await (v as any).isSecret)) entry.failures.push(`${key}: ${field} was returned as a secret but is not one on the object`);
            } else if (value === undefined) entry.failures.push(`${key}: ${field} resolved to undefined`);
        }
    }

    // The compilation this ran under (ts-node's, registered by run.js).
    const service = (process as any)[Symbol.for("ts-node.register.instance")];
    const options = service?.config?.options ?? {};
    return {
        compiler: { tsNode: !!service, target: ts.ScriptTarget[options.target] ?? String(options.target), useDefineForClassFields: options.useDefineForClassFields ?? null },
        classes: report,
    };
};
