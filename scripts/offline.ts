/**
 * Evaluates the program offline: Pulumi code under the mock runtime and records every registered resource with its
 * resolved inputs and its real dependency list (dependsOn plus implicit output dependencies),
 * as the engine would receive them.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";

export const ROOT = path.resolve(__dirname, "..");

/** One registered resource as the engine would see it. */
export interface Recorded {
    urn: string;
    type: string;
    name: string;
    custom: boolean;
    inputs: Record<string, any>;
    /** URNs this resource waits for (explicit dependsOn and implicit output dependencies). */
    dependencies: string[];
    parent: string;
    state: Record<string, any>;
}

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";

/**
 * Outputs that real providers compute and the program reads (ARNs, generated names, domain
 * names), filled in with plausible, deterministic values so offline evaluation is complete.
 */
function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    const hash = crypto.createHash("sha256").update(`${type}/${name}`).digest("hex");
    switch (type) {
        case "random:index/randomPassword:RandomPassword": {
            const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            const bytes = crypto.randomBytes(inputs.length);
            const result = Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
            return { ...inputs, result, bcryptHash: "mock" };
        }
        case "aws:s3/bucket:Bucket": {
            const bucket = inputs.bucket ?? `${name}-${hash.slice(0, 7)}`;
            return { ...inputs, bucket, arn: `arn:aws:s3:::${bucket}`, bucketRegionalDomainName: `${bucket}.s3.${REGION}.amazonaws.com` };
        }
        case "aws:iam/role:Role":
            return { ...inputs, name: inputs.name ?? name, arn: `arn:aws:iam::${ACCOUNT}:role/${inputs.name ?? name}` };
        case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            return { ...inputs, arn: `arn:aws:iam::${ACCOUNT}:oidc-provider/${String(inputs.url).replace(/^https:\/\//, "")}` };
        case "aws:secretsmanager/secret:Secret":
            return { ...inputs, arn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${inputs.name ?? name}-${hash.slice(0, 6)}` };
        case "aws:cloudfront/distribution:Distribution": {
            const id = `E${hash.slice(0, 13).toUpperCase()}`;
            return { ...inputs, arn: `arn:aws:cloudfront::${ACCOUNT}:distribution/${id}`, domainName: `d${hash.slice(0, 13)}.cloudfront.net`, hostedZoneId: "Z2FDTNDATAQYW2" };
        }
        case "aws:acm/certificate:Certificate":
            return {
                ...inputs,
                arn: `arn:aws:acm:us-east-1:${ACCOUNT}:certificate/${hash.slice(0, 8)}`,
                domainValidationOptions: [
                    { domainName: inputs.domainName, resourceRecordName: `_${hash.slice(0, 8)}.${inputs.domainName}.`, resourceRecordType: "CNAME", resourceRecordValue: `_${hash.slice(8, 16)}.acm-validations.aws.` },
                ],
            };
        case "aws:acm/certificateValidation:CertificateValidation":
            return { ...inputs };
        case "aws:route53/record:Record":
            return { ...inputs, fqdn: inputs.name };
        default:
            return type.startsWith("aws:") ? { ...inputs, arn: `arn:aws:${type.split(":")[1].split("/")[0]}:${REGION}:${ACCOUNT}:${name}` } : inputs;
    }
}

/** Installs mocks for `stack` and returns the live record of registrations. */
export async function installMocks(stack: string): Promise<{ resources: Recorded[]; settle: () => Promise<void> }> {
    const resources: Recorded[] = [];
    const byUrn = new Map<string, Recorded>();
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const state = mockState(args.type, args.name, args.inputs);
                return { id: state.bucket ?? `${args.name}-id`, state };
            },
            call: (args) => args.inputs,
        },
        "dbt-platform",
        stack,
        false,
    );
    const monitor = pulumi.runtime.getMonitor() as any;
    const original = monitor.registerResource.bind(monitor);
    let inflight = 0;
    monitor.registerResource = (req: any, callback: (err: any, resp: any) => void) => {
        inflight++;
        original(req, (err: any, resp: any) => {
            if (!err) {
                const urn: string = resp.getUrn();
                const record: Recorded = {
                    urn,
                    type: req.getType(),
                    name: req.getName(),
                    custom: req.getCustom(),
                    inputs: unwrapSecrets(pulumi.runtime.deserializeProperties(req.getObject())),
                    dependencies: req.getDependenciesList(),
                    parent: req.getParent(),
                    state: unwrapSecrets(pulumi.runtime.deserializeProperties(resp.getObject())),
                };
                resources.push(record);
                byUrn.set(urn, record);
            }
            inflight--;
            callback(err, resp);
        });
    };
    const settle = async () => {
        // Registrations chain on each other's outputs; wait until nothing is in flight for a while.
        let quiet = 0;
        while (quiet < 5) {
            await new Promise((r) => setTimeout(r, 5));
            quiet = inflight === 0 ? quiet + 1 : 0;
        }
    };
    return { resources, settle };
}

/** Secrets arrive as signed wrappers; tests inspect the plain values. */
function unwrapSecrets(v: any): any {
    const SIG = "4dabf18193072939515e22adb298388d";
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    if (v && typeof v === "object") {
        if (v[SIG] === "1b47061264138c4ac30d75fd1eb44270") return unwrapSecrets(v.value);
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
    }
    return v;
}

/** Reads Pulumi.<stack>.yaml's config map as the CLI hands it to the program (objects as JSON). */
export function stackConfig(stack: string): Record<string, string> {
    const doc = parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8"));
    return toPulumiConfig(doc.config ?? {});
}

/** Serialises config values the way the Pulumi CLI passes them to the language host. */
export function toPulumiConfig(config: Record<string, unknown>): Record<string, string> {
    return Object.fromEntries(
        Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
}

/** Resolves an Output's value (and whether it is secret) under mocks. */
export function resolve<T>(o: pulumi.Output<T>): Promise<{ value: T; secret: boolean }> {
    const any = o as any;
    return Promise.all([any.promise(), any.isSecret]).then(([value, secret]) => ({ value, secret }));
}

/**
 * Evaluates the program (index.ts) for `stack` under mocks with the given config and returns
 * the recorded resources and the program's exports.
 */
export async function runProgram(stack: string, config: Record<string, string> = stackConfig(stack), secretKeys: string[] = []) {
    const { resources, settle } = await installMocks(stack);
    pulumi.runtime.setAllConfig(config, secretKeys);
    const entry = require.resolve(path.join(ROOT, "index.ts"));
    delete require.cache[entry];
    const exports = require(entry) as Record<string, pulumi.Output<any>>;
    await settle();
    return { resources, exports };
}

/** Finds exactly one recorded resource by type token and logical name. */
export function find(resources: Recorded[], type: string, name: string): Recorded {
    const hits = resources.filter((r) => r.type === type && r.name === name);
    if (hits.length !== 1) {
        const names = resources.filter((r) => r.type === type).map((r) => r.name);
        throw new Error(`expected one ${type} named ${name}, found ${hits.length} (have: ${names.join(", ")})`);
    }
    return hits[0];
}
