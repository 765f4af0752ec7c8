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
    /** The id the (mock) provider assigned. */
    id: string;
    type: string;
    name: string;
    custom: boolean;
    /** Inputs as sent, with secrets unwrapped. */
    inputs: Record<string, any>;
    /** Top-level input keys that reached the engine as secrets (the runtime lifts nested secrets to the top-level key). */
    secretInputs: string[];
    /** URNs this resource waits for (explicit dependsOn and implicit output dependencies). */
    dependencies: string[];
    parent: string;
    /** Provider reference `<provider urn>::<provider id>`; "" for the default provider. */
    provider: string;
    /** The retainOnDelete resource option: `pulumi destroy` leaves the object in place. */
    retainOnDelete: boolean;
    /** The import resource option's id ("" when not importing). */
    importId: string;
    /** Mock provider outputs, with secrets unwrapped. */
    state: Record<string, any>;
    /** Outputs a component registered with registerOutputs, with secrets unwrapped ({} until then). */
    outputs: Record<string, any>;
    /** Top-level output keys that were registered as secrets. */
    secretOutputs: string[];
}

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";

/**
 * Outputs that real providers compute and the program reads (ids, ARNs, generated names, domain
 * names), filled in with plausible, deterministic values so offline evaluation is complete.
 */
function mockResource(type: string, name: string, inputs: Record<string, any>): { id: string; state: Record<string, any> } {
    const hash = crypto.createHash("sha256").update(`${type}/${name}`).digest("hex");
    const id = `${name}-id`;
    switch (type) {
        case "random:index/randomPassword:RandomPassword": {
            const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            const bytes = crypto.randomBytes(inputs.length);
            const result = Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
            return { id, state: { ...inputs, result, bcryptHash: "mock" } };
        }
        case "tls:index/privateKey:PrivateKey": {
            // A real key pair, so what consumes the PEMs (Snowflake's RSA_PUBLIC_KEY, dbt's private_key_path) is exercised.
            const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", { modulusLength: inputs.rsaBits ?? 2048 });
            return {
                id,
                state: {
                    ...inputs,
                    privateKeyPem: privateKey.export({ type: "pkcs1", format: "pem" }),
                    privateKeyPemPkcs8: privateKey.export({ type: "pkcs8", format: "pem" }),
                    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }),
                },
            };
        }
        case "aws:s3/bucket:Bucket": {
            // A bucket's id is its name.
            const bucket = inputs.bucket ?? `${name}-${hash.slice(0, 7)}`;
            return { id: bucket, state: { ...inputs, bucket, arn: `arn:aws:s3:::${bucket}`, bucketRegionalDomainName: `${bucket}.s3.${REGION}.amazonaws.com` } };
        }
        case "aws:iam/role:Role":
            return { id, state: { ...inputs, name: inputs.name ?? name, arn: `arn:aws:iam::${ACCOUNT}:role/${inputs.name ?? name}` } };
        case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            return { id, state: { ...inputs, arn: `arn:aws:iam::${ACCOUNT}:oidc-provider/${String(inputs.url).replace(/^https:\/\//, "")}` } };
        case "aws:secretsmanager/secret:Secret":
            return { id, state: { ...inputs, arn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${inputs.name ?? name}-${hash.slice(0, 6)}` } };
        case "aws:cloudfront/distribution:Distribution": {
            // A distribution's id is the E… identifier that ends its ARN.
            const distributionId = `E${hash.slice(0, 13).toUpperCase()}`;
            return {
                id: distributionId,
                state: {
                    ...inputs,
                    arn: `arn:aws:cloudfront::${ACCOUNT}:distribution/${distributionId}`,
                    domainName: `d${hash.slice(0, 13)}.cloudfront.net`,
                    hostedZoneId: "Z2FDTNDATAQYW2",
                },
            };
        }
        case "aws:acm/certificate:Certificate":
            return {
                id,
                state: {
                    ...inputs,
                    arn: `arn:aws:acm:us-east-1:${ACCOUNT}:certificate/${hash.slice(0, 8)}`,
                    domainValidationOptions: [
                        { domainName: inputs.domainName, resourceRecordName: `_${hash.slice(0, 8)}.${inputs.domainName}.`, resourceRecordType: "CNAME", resourceRecordValue: `_${hash.slice(8, 16)}.acm-validations.aws.` },
                    ],
                },
            };
        case "aws:acm/certificateValidation:CertificateValidation":
            return { id, state: { ...inputs } };
        case "aws:ecr/repository:Repository": {
            // ECR derives the push URL from the account, region and repository name.
            const repository = inputs.name ?? name;
            return { id: repository, state: { ...inputs, name: repository, arn: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${repository}`, repositoryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${repository}` } };
        }
        case "aws:route53/record:Record":
            // Route 53 reports the FQDN without the trailing dot a record name may carry.
            return { id, state: { ...inputs, fqdn: String(inputs.name).replace(/\.$/, "") } };
        default: {
            const scheduled = scheduledRunsOutputs(type, name, inputs);
            if (scheduled) return { id, state: { ...inputs, ...scheduled } };
            return { id, state: type.startsWith("aws:") ? { ...inputs, arn: `arn:aws:${type.split(":")[1].split("/")[0]}:${REGION}:${ACCOUNT}:${name}` } : inputs };
        }
    }
}

/**
 * Computed outputs of the AWS types ScheduledRuns uses (ECR is above): log group name and ARN, ECS cluster and
 * task definition ARNs, queue, topic, rule, alarm and schedule ARNs, with their resource-type paths.
 */
export function scheduledRunsOutputs(type: string, name: string, inputs: Record<string, any>): Record<string, any> | undefined {
    const a = (service: string, rest: string) => `arn:aws:${service}:${REGION}:${ACCOUNT}:${rest}`;
    switch (type) {
        case "aws:cloudwatch/logGroup:LogGroup": {
            const n = inputs.name ?? `/${name}`;
            // The provider reports the ARN without the trailing ":*" the API returns.
            return { name: n, arn: a("logs", `log-group:${n}`) };
        }
        case "aws:ecs/cluster:Cluster":
            return { name: inputs.name ?? name, arn: a("ecs", `cluster/${inputs.name ?? name}`) };
        case "aws:ecs/taskDefinition:TaskDefinition":
            return { arn: a("ecs", `task-definition/${inputs.family}:1`), arnWithoutRevision: a("ecs", `task-definition/${inputs.family}`), revision: 1 };
        case "aws:sqs/queue:Queue": {
            const n = inputs.name ?? name;
            return { name: n, arn: a("sqs", n), url: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${n}` };
        }
        case "aws:sns/topic:Topic":
            return { name: inputs.name ?? name, arn: a("sns", inputs.name ?? name) };
        case "aws:cloudwatch/eventRule:EventRule":
            return { name: inputs.name ?? name, arn: a("events", `rule/${inputs.name ?? name}`) };
        case "aws:cloudwatch/metricAlarm:MetricAlarm":
            return { arn: a("cloudwatch", `alarm:${inputs.name ?? name}`) };
        case "aws:scheduler/schedule:Schedule":
            return { name: inputs.name ?? name, arn: a("scheduler", `schedule/default/${inputs.name ?? name}`) };
        default:
            return undefined;
    }
}

/** Installs mocks for `stack` and returns the live record of registrations. */
export async function installMocks(stack: string): Promise<{ resources: Recorded[]; settle: () => Promise<void> }> {
    const resources: Recorded[] = [];
    const byUrn = new Map<string, Recorded>();
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => mockResource(args.type, args.name, args.inputs),
            call: (args) => args.inputs,
        },
        "dbt-platform",
        stack,
        false,
    );
    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
    let inflight = 0;
    monitor.registerResource = (req: any, callback: (err: any, resp: any) => void) => {
        inflight++;
        register(req, (err: any, resp: any) => {
            if (!err) {
                const urn: string = resp.getUrn();
                const inputs = splitSecrets(pulumi.runtime.deserializeProperties(req.getObject()));
                const record: Recorded = {
                    urn,
                    id: resp.getId(),
                    type: req.getType(),
                    name: req.getName(),
                    custom: req.getCustom(),
                    inputs: inputs.values,
                    secretInputs: inputs.secret,
                    dependencies: req.getDependenciesList(),
                    parent: req.getParent(),
                    provider: req.getProvider(),
                    retainOnDelete: req.getRetainondelete() === true,
                    importId: req.getImportid() ?? "",
                    state: unwrapSecrets(pulumi.runtime.deserializeProperties(resp.getObject())),
                    outputs: {},
                    secretOutputs: [],
                };
                resources.push(record);
                byUrn.set(urn, record);
            }
            inflight--;
            callback(err, resp);
        });
    };
    monitor.registerResourceOutputs = (req: any, callback: (err: any, resp: any) => void) => {
        inflight++;
        registerOutputs(req, (err: any, resp: any) => {
            const record = byUrn.get(req.getUrn());
            if (!err && record) {
                const outputs = splitSecrets(pulumi.runtime.deserializeProperties(req.getOutputs()));
                record.outputs = outputs.values;
                record.secretOutputs = outputs.secret;
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

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const isSecretWrapper = (v: any) => !!v && typeof v === "object" && v[SIG_KEY] === SECRET_SIG;

/** Secrets arrive as signed wrappers; tests inspect the plain values. */
function unwrapSecrets(v: any): any {
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    if (isSecretWrapper(v)) return unwrapSecrets(v.value);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
    return v;
}

/** Deserialized properties as plain values plus the top-level keys that were secret on the wire. */
function splitSecrets(props: Record<string, any>): { values: Record<string, any>; secret: string[] } {
    return { values: unwrapSecrets(props), secret: Object.keys(props).filter((k) => isSecretWrapper(props[k])) };
}

/** Every string in `values` outside the `secret` keys: what the engine would store and show in plain text. */
export function plainStrings(values: Record<string, any>, secret: string[]): string[] {
    const strings = (v: any): string[] =>
        typeof v === "string" ? [v] : Array.isArray(v) ? v.flatMap(strings) : v && typeof v === "object" ? Object.values(v).flatMap(strings) : [];
    return Object.entries(values).flatMap(([k, v]) => (secret.includes(k) ? [] : strings(v)));
}

/** A provider-computed attribute from a recorded resource's mock state; throws if the mock left it unset. */
export function computed(r: Recorded, key: string): any {
    const v = r.state[key];
    if (v === undefined || v === null || v === "") throw new Error(`${r.type} ${r.name}: the mock state has no ${key}`);
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
